"""Generic prompt files read by their content: engine detection, Python str.format and Go
text/template rendering, and a fresh project per style run as a new user would."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Run, readme_snippet
from promptbudget.counting import count_prompt
from promptbudget.templates.detect import detect_engine, engine_name
from promptbudget.templates.parse import parse_template
from promptbudget.templates.pyformat import MAX_FORMAT_WIDTH
from promptbudget.templates.render import TemplateRenderer
from promptbudget.templates.rendered import RenderedPrompt, VariableValue
from promptbudget.templates.source import detect_format, read_prompt_text
from promptbudget.tokenizers import get_tokenizer

O200K = get_tokenizer("o200k_base")


def render(
    tmp_path: Path,
    name: str,
    text: str,
    values: dict[str, VariableValue] | None = None,
    engine: str | None = None,
) -> RenderedPrompt:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    parsed = parse_template(path, name, detect_format(path), read_prompt_text(path), engine=engine)
    return TemplateRenderer(tmp_path).render(parsed, values or {})


def sample(name: str, value: object) -> VariableValue:
    return VariableValue(name, "test", sample=value)


# -- detection ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "engine"),
    [
        ("Just prose, no braces.", "text"),
        ('Return {"answer": "..."} exactly.', "text"),
        ("Summarize:\n{{$input}}\n", "semantic-kernel"),
        ('{{time.Now}} {{search.Find $query}} {{ConversationSummary.Run "x"}}', "semantic-kernel"),
        ("Today is {{.CurrentDate}}.", "go-template"),
        ("{{range .Items}}- {{.Title}}\n{{end}}", "go-template"),
        ("{{ if .Urgent }}Hurry.{{ end }}", "go-template"),
        ("{% if x %}{{ x }}{% endif %}", "jinja2"),
        ("Hello {{ name }}", "jinja2"),  # Jinja2 and Mustache read it alike: Jinja2 first
        ("{{#items}}- {{title}}\n{{/items}}", "mustache"),
        ("{{#each items}}- {{this}}\n{{/each}}", "handlebars"),
        ("Context: {context}\nQuestion: {question}", "format"),
        ('Reply as JSON like {{"answer": "..."}} for {question}', "format"),
        ("{user.name} asked {items[0]!r:>10}", "format"),
        ("Markdown heading {#anchor}", "text"),
        ('Return {{ "answer": "..." }} exactly.', "format"),  # only str.format's escapes
        ("Run `az --query '{prefix: addressPrefix, used: ipConfigurations}'`", "text"),
    ],
)
def test_engine_is_detected_by_content(text: str, engine: str) -> None:
    found = detect_engine(text)
    assert (found.engine, found.problem) == (engine, None), found


def test_no_engine_accepting_it_is_plain_text_with_a_note() -> None:
    found = detect_engine("Fill {{ answer: ... }} for {the question}.")
    assert found.engine == "text" and found.problem is None
    assert found.note is not None and "Jinja2 syntax error" in found.note


def test_the_one_engine_its_syntax_names_decides_pb001() -> None:
    found = detect_engine("Today is {{.CurrentDate}}.\n{{range .Items}}\n")
    assert found.engine == "go-template"
    assert found.problem is not None and "unexpected EOF" in found.problem[0]


def test_engine_names_and_aliases() -> None:
    assert engine_name("Nunjucks") == "jinja2"
    assert engine_name("str.format") == "format"
    assert engine_name("go") == "go-template"
    assert engine_name("cobol") is None


# -- str.format -----------------------------------------------------------------------------


def test_str_format_fields_samples_caps_and_escapes(tmp_path: Path) -> None:
    text = 'Context: {context}\nUser: {user.name} ({user[id]})\nReply like {{"a": 1}}\n'
    values = {
        "context": VariableValue("context", "test", max_tokens=500),
        "user": sample("user", {"name": "Dana", "id": 7}),
    }
    rendered = render(tmp_path, "p.txt", text, values)
    assert rendered.problem is None
    assert rendered.variables == ("context", "user")
    assert rendered.messages[0].text == 'Context: \nUser: Dana (7)\nReply like {"a": 1}\n'
    count = count_prompt(rendered, O200K)
    static = "Context: ", '\nUser: Dana (7)\nReply like {"a": 1}\n'
    assert count.text_tokens == 500 + sum(O200K.count(part) for part in static)


def test_str_format_unbounded_variable_is_listed(tmp_path: Path) -> None:
    rendered = render(tmp_path, "p.txt", "Q: {question}\n")
    assert rendered.unbounded == ("question",)
    assert rendered.variable_lines == {"question": 1}


def test_str_format_conversions_and_specs(tmp_path: Path) -> None:
    rendered = render(
        tmp_path,
        "p.txt",
        "{name!r} [{score:>6.2f}] [{name:{width}}]",
        {
            "name": sample("name", "Bo"),
            "score": sample("score", 3.14159),
            "width": sample("width", 4),
        },
    )
    assert rendered.messages[0].text == "'Bo' [  3.14] [Bo  ]"


def test_str_format_width_is_capped(tmp_path: Path) -> None:
    rendered = render(tmp_path, "p.txt", "[{x:>999999999}]", {"x": sample("x", "a")})
    assert rendered.problem is None
    assert len(rendered.messages[0].text) == MAX_FORMAT_WIDTH + 2
    assert any("width of 999,999,999" in m for m, _ in rendered.warnings)


def test_str_format_syntax_error_is_pb001_when_the_engine_is_named(tmp_path: Path) -> None:
    rendered = render(tmp_path, "p.txt", "line one\nbad {brace\n", engine="format")
    assert rendered.problem is not None and "str.format" in rendered.problem
    assert rendered.problem_line == 2


def test_str_format_never_reaches_into_objects(tmp_path: Path) -> None:
    rendered = render(
        tmp_path, "p.txt", "{x.__class__}", {"x": sample("x", "text")}, engine="format"
    )
    assert rendered.problem is None
    assert rendered.messages == () or rendered.messages[0].text == ""


# -- Go text/template -----------------------------------------------------------------------


def test_go_template_renders_over_samples(tmp_path: Path) -> None:
    text = (
        "Today is {{.CurrentDate}}.\n"
        "{{range $i, $e := .Items}}{{$i}}. {{.Title}}{{if .Done}} (done){{end}}\n{{end}}"
        "{{- with .Owner}}Owner: {{.Name}}{{end}}\n"
        '{{if gt (len .Items) 1}}several{{else}}one{{end}} {{printf "%s!" .CurrentDate}}'
    )
    values = {
        "CurrentDate": sample("CurrentDate", "2026-12-05"),
        "Items": sample("Items", [{"Title": "a", "Done": True}, {"Title": "b"}]),
        "Owner": sample("Owner", {"Name": "Dana"}),
    }
    rendered = render(tmp_path, "plan.md", text, values)
    assert rendered.problem is None
    assert rendered.variables == ("CurrentDate", "Items", "Owner")
    assert rendered.messages[0].text == (
        "Today is 2026-12-05.\n0. a (done)\n1. b\nOwner: Dana\nseveral 2026-12-05!"
    )


def test_go_template_caps_and_unbounded_values(tmp_path: Path) -> None:
    text = "{{.Intro}}\n{{range .Docs}}- {{.Text}}\n{{end}}{{ summarize .Intro }}"
    values = {"Docs": VariableValue("Docs", "test", max_tokens=800)}
    rendered = render(tmp_path, "plan.md", text, values)
    assert rendered.problem is None
    assert set(rendered.unbounded) == {"Intro", "summarize"}  # a lower bound: PB201
    assert "summarize" in rendered.functions
    count = count_prompt(rendered, O200K)
    docs = next(v for v in count.variables if v.name == "Docs")
    assert docs.tokens == 800  # the parts of a capped list: charged once


def test_go_template_named_engine_rejects_broken_syntax(tmp_path: Path) -> None:
    rendered = render(tmp_path, "plan.md", "{{if .X}}\nyes\n", engine="go-template")
    assert rendered.problem is not None and "Go template error" in rendered.problem


# -- a fresh project per style, as a new user would -----------------------------------------

STYLES = {
    "semantic-kernel": (
        "Prompts/Summarize/summarize.txt",
        "Summarize the text in three bullets.\n{{$input}}\nFacts: {{$facts}}\n",
        {"input": "The cat sat on the mat.", "facts": "Cats sit."},
        "Summarize the text in three bullets.\nThe cat sat on the mat.\nFacts: Cats sit.\n",
    ),
    "format": (
        "prompts/answer.txt",
        'Context: {context}\nQuestion: {question.text}\nReply as JSON like {{"answer": "..."}}\n',
        {"context": "Refunds take 30 days.", "question": {"text": "How long do refunds take?"}},
        "Context: Refunds take 30 days.\nQuestion: How long do refunds take?\n"
        'Reply as JSON like {"answer": "..."}\n',
    ),
    "go-template": (
        "prompts/plan.md",
        "Today is {{.CurrentDate}}.\n{{range .Items}}- {{.Title}}\n{{end}}",
        {"CurrentDate": "2026-12-05", "Items": [{"Title": "Read"}, {"Title": "Write"}]},
        "Today is 2026-12-05.\n- Read\n- Write\n",
    ),
    "mustache": (
        "prompts/greet.md",
        "Hello {{name}}.\n{{#topics}}- {{title}}\n{{/topics}}",
        {"name": "Dana", "topics": [{"title": "billing"}]},
        "Hello Dana.\n- billing\n",
    ),
}


@pytest.mark.parametrize("style", sorted(STYLES))
def test_a_fresh_project_per_style(
    style: str, make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    path, text, samples, expected = STYLES[style]
    prompts_dir = path.split("/")[0]
    step_prompt = path.split("/", 1)[1]
    variables = "".join(
        f"          {name}: {{sample: {_flow(value)}}}\n" for name, value in samples.items()
    )
    manifest = (
        f"version: 1\nprompts: {prompts_dir}/\ndefaults: {{model: gpt-4o}}\n"
        f"workflows:\n  main:\n    steps:\n      - prompt: {step_prompt}\n"
        f"        output_tokens: 50\n        variables:\n{variables}"
    )
    root = make_project({path: text, "budgets.yaml": manifest}, dedent=False)
    counted = run_cli("count", path, "--format", "json", cwd=root)
    assert counted.exit_code == 0, counted.stdout  # the step's samples fill the variables
    template = counted.json()["templates"][0]
    assert template["format"] == style
    assert sorted(v["name"] for v in template["variables"]) == sorted(samples)
    checked = run_cli("check", "--format", "json", cwd=root)
    assert checked.exit_code == 0, checked.stdout
    payload = checked.json()
    assert not [f for f in payload["findings"] if f["rule"] in ("PB001", "PB201")]
    # What the application sends, written out by hand: one user message (OpenAI framing:
    # 3 per message + the role, 3 to prime the reply).
    step_tokens = payload["workflows"][0]["steps"][0]["prompt_tokens"]
    assert step_tokens == O200K.count(expected) + 3 + O200K.count("user") + 3


def _flow(value: object) -> str:
    import json

    return json.dumps(value)


# -- engines: per glob, in budgets.yaml and pyproject.toml ----------------------------------


def test_engines_setting_overrides_detection(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = make_project(
        {
            "budgets.yaml": """\
            version: 1
            engines:
              "prompts/legacy/**/*.txt": semantic-kernel
              "prompts/py/*.txt": str.format
            """,
            "prompts/legacy/old/a.txt": "Hello {{ name }}\n",  # detection would say Jinja2
            "prompts/py/b.txt": "Hello {{name}} {x}\n",
            "prompts/c.txt": "Hello {{ name }}\n",
        }
    )
    result = run_cli("count", "prompts", "--format", "json", cwd=root)
    formats = {t["path"]: t["format"] for t in result.json()["templates"]}
    assert formats == {
        "prompts/legacy/old/a.txt": "semantic-kernel",
        "prompts/py/b.txt": "format",
        "prompts/c.txt": "jinja2",
    }


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("budgets.yaml", 'version: 1\nengines:\n  "prompts/*.txt": cobol\n'),
        (
            "pyproject.toml",
            "[tool.promptbudget]\nversion = 1\n"
            '[tool.promptbudget.engines]\n"prompts/*.txt" = "x"\n',
        ),
    ],
)
def test_an_unknown_engine_is_a_usage_error_naming_the_valid_ones(
    name: str, text: str, make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = make_project({name: text, "prompts/a.txt": "Hi\n"}, dedent=False)
    result = run_cli("count", "prompts/a.txt", cwd=root)
    assert result.exit_code == 2
    assert f"{name}:" in result.stderr and "go-template" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_readme_engines_snippet_works(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = make_project(
        {
            "budgets.yaml": readme_snippet("engines"),
            "prompts/legacy/x/summarize.txt": "Summarize {{ input }}\n",
            "prompts/py/answer.txt": "Hi {{name}}\n",
            "prompts/agents/plan.md": "Hi {{ name }}\n",
        },
        dedent=False,
    )
    result = run_cli("count", "prompts", "--format", "json", cwd=root)
    formats = {t["path"]: t["format"] for t in result.json()["templates"]}
    assert formats == {
        "prompts/agents/plan.md": "go-template",
        "prompts/legacy/x/summarize.txt": "semantic-kernel",
        "prompts/py/answer.txt": "format",
    }


def test_go_template_comments_carry_suppressions(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = make_project(
        {
            "prompts/plan.md": (
                "{{/* promptbudget: disable-next-line=PB201 */}}\n"
                "Today is {{.CurrentDate}}.\n"
                "Owner: {{.Owner}}\n"
            ),
        }
    )
    findings = run_cli("count", "prompts/plan.md", "--format", "json", cwd=root).json()["findings"]
    assert [(f["rule"], f["line"]) for f in findings] == [("PB201", 3)]


@pytest.mark.parametrize(
    "text",
    [
        "{#" * 200_000,  # a lazy comment pattern would be quadratic here
        "{a}\n" * 100_000,  # more braces than a template read by content may have
        "{{if .A}}" * 2_000 + "{{end}}" * 2_000,
        "{{ " + "(" * 3_000 + ".A" + ")" * 3_000 + " }}",
        "{% if " + "(" * 3_000 + "a" + ")" * 3_000 + " %}{% endif %}",
    ],
)
def test_hostile_generic_files_are_read_quickly_and_never_crash(text: str) -> None:
    found = detect_engine(text)  # no exception, no hang (a slow pattern would time out CI)
    assert found.engine in ("text", "go-template", "jinja2", "format")


def test_hostile_go_templates_render_as_findings(tmp_path: Path) -> None:
    deep = "{{ " + "(" * 400 + ".A" + ")" * 400 + " }}"
    rendered = render(tmp_path, "deep.md", deep, engine="go-template")
    assert rendered.problem is None or "Go template error" in rendered.problem
    loop = '{{define "a"}}{{template "a"}}{{end}}{{template "a"}}'
    rendered = render(tmp_path, "loop.md", loop, engine="go-template")
    assert rendered.problem is not None and "depth" in rendered.problem
