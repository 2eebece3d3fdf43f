"""Dotprompt files end to end: front matter, partials, messages, variables, and the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import CORPUS, Run
from promptbudget.templates.formats import split_dotprompt
from promptbudget.templates.meta import ParsedTemplate
from promptbudget.templates.parse import parse_template
from promptbudget.templates.render import TemplateRenderer
from promptbudget.templates.rendered import RenderedPrompt, Slot, VariableValue
from promptbudget.templates.source import TemplateFormat, detect_format, read_prompt_text
from test_corpus import DOTPROMPT_PB001, DOTPROMPT_PB003

RunCli = Callable[..., Run]
DOTPROMPT = CORPUS / "google__dotprompt"
LICENSE_HEADER = "# Copyright 2026 Google LLC\n#\n# SPDX-License-Identifier: Apache-2.0\n\n"


def write(root: Path, name: str, text: str | bytes) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def parse(path: Path) -> ParsedTemplate:
    return parse_template(path, path.name, detect_format(path), read_prompt_text(path))


def render(
    root: Path,
    name: str,
    text: str | bytes,
    values: dict[str, Any] | None = None,
    *,
    caps: dict[str, int] | None = None,
    search_dirs: tuple[Path, ...] = (),
    timeout: float = 5.0,
    as_slots: bool = False,
) -> RenderedPrompt:
    parsed = parse(write(root, name, text))
    samples = {**parsed.meta.samples, **(values or {})}  # as the pipeline does
    given = {k: VariableValue(k, "test", sample=v) for k, v in samples.items()}
    given |= {k: VariableValue(k, "test", max_tokens=n) for k, n in (caps or {}).items()}
    renderer = TemplateRenderer(root, search_dirs, timeout_seconds=timeout)
    return renderer.render(parsed, given, as_slots=as_slots)


def texts(rendered: RenderedPrompt) -> list[tuple[str, str]]:
    assert rendered.problem is None, rendered.problem
    return [(m.role, m.text) for m in rendered.messages]


# -- front matter -------------------------------------------------------------------------------


def test_front_matter_may_follow_a_license_header(tmp_path: Path) -> None:
    text = (
        LICENSE_HEADER + "---\nmodel: googleai/gemini-2.5-flash\nconfig:\n  maxOutputTokens: 4096\n"
        "version: 2\ninput:\n  schema:\n    name: string\n    tone?: string, how to answer\n"
        "    items(array): string\n  default:\n    tone: friendly\n---\n\n\n"
        '{{role "system"}}\nBe {{tone}}.\n\n'
    )
    parsed = parse(write(tmp_path, "a.prompt", text))
    assert parsed.format is TemplateFormat.DOTPROMPT and parsed.problem is None
    meta = parsed.meta
    assert meta.engine == "handlebars"
    assert (meta.model, meta.max_output_tokens, meta.version) == (
        "googleai/gemini-2.5-flash",
        4096,
        "2",
    )
    assert meta.samples == {"tone": "friendly"}
    assert meta.declared_inputs == {"name", "tone", "items"}
    assert meta.declared_lines == {"name": 12, "tone": 13, "items": 14}
    # Dotprompt trims the body: it starts at the {{role}} line and loses its final newline
    assert parsed.body == '{{role "system"}}\nBe {{tone}}.'
    assert parsed.body_line == 20


@pytest.mark.parametrize(
    ("schema", "names"),
    [
        (
            "type: object\n    properties:\n      a: {type: string}\n      b: {type: number}",
            {"a", "b"},
        ),
        ("properties:\n      a: string", {"a"}),
        ("a?: string\n    b(object):\n      c: string\n    d(enum): [x, y]", {"a", "b", "d"}),
        ("MyNamedSchema", None),
        ("a: string\n    (*): string", None),
    ],
)
def test_input_schema_declares_the_inputs(
    tmp_path: Path, schema: str, names: set[str] | None
) -> None:
    text = f"---\ninput:\n  schema:\n    {schema}\n---\nHi\n"
    assert parse(write(tmp_path, "s.prompt", text)).meta.declared_inputs == names


def test_no_front_matter_keeps_the_text_as_is(tmp_path: Path) -> None:
    parsed = parse(write(tmp_path, "plain.prompt", "# not a header\n\nHello {{name}}!\n"))
    assert parsed.problem is None and parsed.meta.engine == "handlebars"
    assert parsed.body == "# not a header\n\nHello {{name}}!\n" and parsed.body_line == 1


def test_invalid_front_matter_is_reported_on_its_file_line(tmp_path: Path) -> None:
    text = LICENSE_HEADER + "---\nmodel: x\ninput:\n  schema\n    name: string\n---\nHi\n"
    parsed = parse(write(tmp_path, "bad.prompt", text))
    assert parsed.problem is not None and "not valid YAML" in parsed.problem
    assert parsed.problem_line == 9
    bad_limit = parse(
        write(tmp_path, "limit.prompt", "---\nconfig:\n  maxOutputTokens: lots\n---\n")
    )
    assert bad_limit.problem is not None and "config.maxOutputTokens" in bad_limit.problem


def test_split_dotprompt_accepts_an_empty_header_and_a_final_delimiter() -> None:
    document = split_dotprompt("---\n---\nbody")
    assert document is not None and document.data == {} and document.body == "body"
    document = split_dotprompt("---\nmodel: m\n---")
    assert document is not None and document.data == {"model": "m"} and document.body == ""


# -- rendering ----------------------------------------------------------------------------------


def test_roles_history_media_and_sections(tmp_path: Path) -> None:
    text = (
        "---\nmodel: gemini-2.5-flash\n---\n"
        'Preamble for the user.\n{{role "system"}}\nYou are {{who}}.\n'
        '{{role "model"}}\nEarlier answer.\n{{section "notes"}}\nNotes.\n'
        '{{role "user"}}\n{{media url=photo contentType="image/png"}}\n'
        "Look at this.\n{{history}}\nAfter the history.\n"
    )
    rendered = render(tmp_path, "chat.prompt", text, {"who": "a tutor", "photo": "http://x/y.png"})
    assert texts(rendered) == [
        ("user", "Preamble for the user.\n"),
        ("system", "\nYou are a tutor.\n"),
        ("assistant", "\nEarlier answer.\n\nNotes.\n"),  # Dotprompt's "model" is the assistant
        ("user", "\nLook at this.\n"),
        ("assistant", "\nAfter the history."),  # {{history}} starts a model message
    ]
    assert rendered.variables == ("photo", "who")
    assert rendered.variable_lines == {"who": 6, "photo": 12}


def test_variables_scopes_and_unbounded(tmp_path: Path) -> None:
    text = (
        "---\ninput:\n  schema:\n    topic: string\n    docs(array):\n      title: string\n"
        "    unused?: string\n  default:\n    topic: tides\n---\n"
        "About {{topic}}:\n{{#each docs}}\n- {{title}} ({{@index}})\n{{/each}}\n{{extra}}\n"
    )
    rendered = render(tmp_path, "v.prompt", text)
    assert rendered.variables == ("docs", "extra", "topic")
    assert rendered.unbounded == ("docs", "extra")
    assert rendered.variable_lines == {"topic": 11, "docs": 12, "extra": 15}
    assert texts(rendered) == [("user", "About tides:\n")]


def test_caps_render_as_slots_through_each(tmp_path: Path) -> None:
    text = (
        "---\n---\nDocs ({{docs.length}}):\n"
        "{{#each docs}}\n- {{title}}: {{body}}\n{{/each}}\nQ: {{q}}"
    )
    rendered = render(tmp_path, "slots.prompt", text, caps={"docs": 500, "q": 40})
    (message,) = rendered.messages
    assert message.parts == (
        "Docs (",
        Slot("docs", 500, whole=False),
        "):\n- ",
        Slot("docs", 500, whole=False),
        ": ",
        Slot("docs", 500, whole=False),
        "\nQ: ",
        Slot("q", 40, whole=True),
    )
    structure = render(tmp_path, "slots.prompt", text, as_slots=True)
    assert all(isinstance(p, str) or p.max_tokens == 0 for p in structure.messages[0].parts)


def test_json_this_prints_every_input_in_schema_order(tmp_path: Path) -> None:
    text = (
        "---\ninput:\n  schema:\n    b: string\n    a: string\n  default:\n    a: 1\n---\n"
        "{{json this}}"
    )
    rendered = render(tmp_path, "j.prompt", text, caps={"b": 10})
    assert rendered.variables == ("a", "b") and rendered.unbounded == ()
    (message,) = rendered.messages
    assert message.parts == ('{"b":"', Slot("b", 10, whole=True), '","a":1}')


def test_errors_are_pb001_on_the_file_line(tmp_path: Path) -> None:
    text = LICENSE_HEADER + "---\nmodel: m\n---\n\nHello {{name}}\n{{#if x}}\nnever closed\n"
    rendered = render(tmp_path, "e.prompt", text)
    assert rendered.problem is not None and "'{{#if}}' is never closed" in rendered.problem
    assert rendered.problem_line == 10
    assert rendered.is_raw and rendered.messages[0].text == text


def test_a_render_that_runs_too_long_is_stopped(tmp_path: Path) -> None:
    text = "{{#each a}}{{#each ../a}}{{#each ../../a}}x{{/each}}{{/each}}{{/each}}"
    rendered = render(tmp_path, "slow.prompt", text, {"a": list(range(99))}, timeout=0.2)
    assert rendered.problem is not None and "longer than 0.2 s" in rendered.problem


def test_a_huge_sample_list_is_refused(tmp_path: Path) -> None:
    rendered = render(tmp_path, "huge.prompt", "{{#each a}}{{/each}}", {"a": [0] * 1_000_001})
    assert rendered.problem is not None and "1,000,000 iterations" in rendered.problem


# -- partials -----------------------------------------------------------------------------------


def test_partials_next_to_the_template_and_in_the_prompts_dir(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    write(prompts, "support/_signature.prompt", "-- {{team}} team\n")
    write(prompts, "_header.prompt", "# {{title}}\n")
    write(prompts, "common/_footer.prompt", "Thanks!\n")
    text = "{{> header}}\nHello.\n  {{> signature}}\n{{> common/footer}}\n"
    rendered = render(
        tmp_path,
        "prompts/support/reply.prompt",
        text,
        {"title": "T", "team": "Ops"},
        search_dirs=(prompts,),
    )
    assert texts(rendered) == [("user", "# T\nHello.\n  -- Ops team\nThanks!\n")]
    assert rendered.variables == ("team", "title")
    renderer = TemplateRenderer(tmp_path, (prompts,))
    included = renderer.includes_of(parse(prompts / "support/reply.prompt"))
    assert included == (
        (prompts / "_header.prompt").resolve(),
        (prompts / "support/_signature.prompt").resolve(),
        (prompts / "common/_footer.prompt").resolve(),
    )


@pytest.mark.parametrize(
    ("reference", "fragment"),
    [
        ("{{> ../../../../../../../../etc/passwd}}", "resolves outside the project root"),
        ('{{> "/etc/passwd"}}', "a partial name is a relative path"),
    ],
)
def test_partials_stay_inside_the_project(tmp_path: Path, reference: str, fragment: str) -> None:
    rendered = render(tmp_path, "prompts/a.prompt", f"line one\n{reference}\n")
    assert rendered.problem is not None and fragment in rendered.problem
    assert rendered.problem_line == 2


def test_a_partial_that_includes_itself_is_pb001(tmp_path: Path) -> None:
    write(tmp_path, "_loop.prompt", "again {{> loop}}")
    rendered = render(tmp_path, "a.prompt", "{{> loop}}")
    assert rendered.problem is not None and "partials nested more than" in rendered.problem


# -- what the application provides: helpers and partials ---------------------------------------

HELPERS = (
    "---\ninput:\n  schema:\n    items(array): string\n---\n"
    "{{#each items}}\n{{add @index 1}}. {{this}}\n{{/each}}\n"  # lines 6-8
    "{{#gt items.length 1}}\nMany.\n{{else}}\nFew.\n{{/gt}}\n"  # lines 9-13
    "{{#if (isEmpty items)}}\nNone.\n{{/if}}\n"  # lines 14-16
    "{{json this}}"  # line 17
)


def test_a_capped_helper_renders_as_a_slot(tmp_path: Path) -> None:
    rendered = render(tmp_path, "h.prompt", HELPERS, {"items": ["a", "b"]}, caps={"add": 5})
    (message,) = rendered.messages
    assert message.parts == (
        Slot("add", 5, whole=True),
        ". a\n",
        Slot("add", 5, whole=True),
        '. b\nMany.\n{"items":["a","b"]}',  # the helpers are not part of the input
    )
    assert rendered.variables == ("add", "gt", "isEmpty", "items")
    assert rendered.functions == {"add", "gt", "isEmpty"}
    assert rendered.variable_lines == {"items": 6, "add": 7, "gt": 9, "isEmpty": 14}
    # a block helper's output is its block: it needs no value
    assert rendered.unbounded == ("isEmpty",)
    assert rendered.values["gt"].origin == "its block, rendered once"
    assert rendered.warnings == ()


def test_an_uncapped_helper_renders_nothing_and_is_unbounded(tmp_path: Path) -> None:
    rendered = render(tmp_path, "h.prompt", HELPERS, {"items": ["a"], "isEmpty": True})
    (message,) = rendered.messages
    assert message.parts == ('. a\nMany.\nNone.\n{"items":["a"]}',)
    assert rendered.unbounded == ("add",)


def test_known_helpers_are_not_functions(tmp_path: Path) -> None:
    text = (
        '{{role "system"}}{{#if a}}{{json b}}{{/if}}{{#each c}}{{/each}}{{lookup d 1}}'
        "{{#ifEquals e 1}}{{/ifEquals}}{{section 'x'}}{{history}}{{log f}}"
    )
    rendered = render(tmp_path, "k.prompt", text)
    assert rendered.problem is None
    assert rendered.functions == frozenset()
    assert rendered.variables == ("a", "b", "c", "d", "e", "f")


def test_a_helper_that_is_also_a_declared_input(tmp_path: Path) -> None:
    """Handlebars calls the helper: ``{{add a 1}}`` prints the helper's output, and the input
    named ``add`` cannot be reached by that name."""
    text = "---\ninput:\n  schema:\n    add: number\n    a: number\n---\n{{add a 1}} and {{a}}"
    rendered = render(tmp_path, "d.prompt", text, {"a": 2}, caps={"add": 4})
    (message,) = rendered.messages
    assert message.parts == (Slot("add", 4, whole=True), " and 2")
    assert rendered.variables == ("a", "add") and rendered.functions == {"add"}
    assert rendered.unbounded == ()


def test_a_partial_the_project_does_not_hold_is_dynamic(tmp_path: Path) -> None:
    write(tmp_path, "prompts/_known.prompt", "Known {{who}}.\n")
    text = "Intro\n{{> header}}\nBody {{> footer}}\n{{> common/sig}}\n{{> known}}\n"
    rendered = render(
        tmp_path,
        "prompts/p.prompt",
        text,
        {"who": "us", "footer": "(c) Acme"},
        caps={"header": 30},
    )
    (message,) = rendered.messages
    assert message.parts == (
        "Intro\n",
        Slot("header", 30, whole=True),
        "Body (c) Acme\nKnown us.\n",
    )
    assert rendered.variables == ("footer", "header", "who", "{{> common/sig}}")
    assert rendered.functions == {"footer", "header", "{{> common/sig}}"}
    # a name no manifest variable can have renders as nothing, listed in a readable form
    assert rendered.unbounded == ("{{> common/sig}}",)
    assert rendered.variable_lines == {
        "header": 2,
        "footer": 3,
        "{{> common/sig}}": 4,
        "who": 5,
    }
    included = TemplateRenderer(tmp_path).includes_of(parse(tmp_path / "prompts/p.prompt"))
    assert included == ((tmp_path / "prompts/_known.prompt").resolve(),)


def test_role_blocks_and_leaking_comments_are_warnings(tmp_path: Path) -> None:
    text = (
        "---\nmodel: gpt-4o\n---\n"
        '{{! the {{#role}} tag }}\n{{#role "system"}}\nBe brief.\n{{/role}}\n'
    )
    rendered = render(tmp_path, "w.prompt", text)
    assert texts(rendered) == [("user", " tag }}\n"), ("system", "Be brief.\n")]
    assert [line for _, line in rendered.warnings] == [4, 5]
    assert "comment contains a '{{'" in rendered.warnings[0][0]
    assert "drops the text of a '{{#role \"system\"}}' block" in rendered.warnings[1][0]


# -- other formats on the same engine -----------------------------------------------------------


def test_prompty_mustache_templates_are_rendered(tmp_path: Path) -> None:
    text = (
        "---\nname: t\nmodel:\n  id: gpt-4o-mini\n"
        "inputs:\n  - name: city\n    default: Paris & co\n"
        "template:\n  format:\n    kind: mustache\n---\nsystem:\nYou help.\n\nuser:\n"
        "{{#city}}Weather in {{city}}?{{/city}}\n"
    )
    rendered = render(tmp_path, "m.prompty", text)
    assert texts(rendered) == [("system", "You help."), ("user", "Weather in Paris &amp; co?")]


# -- the CLI ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", sorted(p.relative_to(DOTPROMPT).as_posix() for p in DOTPROMPT.rglob("*.prompt"))
)
def test_corpus_files_through_the_cli(run_cli: RunCli, path: str) -> None:
    """Each file alone: PB001 only where test_corpus.DOTPROMPT_PB001 says, with its line."""
    result = run_cli("count", str(DOTPROMPT / path), "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    payload = result.json()
    problems = [(f["message"], f["line"]) for f in payload["findings"] if f["rule"] == "PB001"]
    warnings = [f["line"] for f in payload["findings"] if f["rule"] == "PB003"]
    assert warnings == [line for _, line in DOTPROMPT_PB003.get(path, [])]
    (template,) = payload["templates"]
    expected = DOTPROMPT_PB001.get(path)
    if expected is None:
        assert problems == []
        assert template["messages"] and template["format"] == "dotprompt"
        assert all(f["rule"] != "PB001" for f in payload["findings"])
    else:
        ((message, line),) = problems
        assert expected[0] in message and line == expected[1]
        assert template["exact"] is False


def test_messy_files_count_like_clean_ones(run_cli: RunCli, tmp_path: Path) -> None:
    clean = (
        "---\nmodel: gpt-4o\ninput:\n  schema:\n    q: string\n    lang: string\n"
        "  default:\n    q: Why?\n---\n"
        '{{role "system"}}\nAnswer briefly in {{lang}}.\n{{role "user"}}\n{{q}}\n'
    )
    write(tmp_path, "clean.prompt", clean)
    messy = "\ufeff" + LICENSE_HEADER.replace("\n", "\r\n") + clean.replace("\n", "\r\n")
    write(tmp_path, "messy.prompt", messy.encode("utf-8"))
    result = run_cli("count", "clean.prompt", "messy.prompt", "--format", "json", cwd=tmp_path)
    templates = {t["path"]: t for t in result.json()["templates"]}
    for key in ("text_tokens", "messages", "variables", "exact"):
        assert templates["clean.prompt"][key] == templates["messy.prompt"][key]
    assert [m["role"] for m in templates["messy.prompt"]["messages"]] == ["system", "user"]
    unbounded = {(f["path"], f["line"]) for f in result.json()["findings"] if f["rule"] == "PB201"}
    assert unbounded == {("clean.prompt", 11), ("messy.prompt", 15)}
    assert result.exit_code == 1


def test_caps_samples_and_output_limit_from_the_manifest(run_cli: RunCli, tmp_path: Path) -> None:
    write(
        tmp_path,
        "budgets.yaml",
        "version: 1\nprompts: prompts/\nvariables:\n  context: {max_tokens: 300}\n"
        "workflows:\n  answer:\n    steps:\n      - prompt: answer.prompt\n"
        "        output_tokens: 100\n",
    )
    write(
        tmp_path,
        "prompts/answer.prompt",
        "---\nmodel: gpt-4o\nconfig:\n  maxOutputTokens: 256\ninput:\n  schema:\n"
        "    question: string\n    context: string\n"
        "  default:\n    question: Why is the sky blue?\n"
        '---\n{{> preamble}}\n{{role "user"}}\n{{question}}\n\n{{context}}\n',
    )
    write(tmp_path, "prompts/_preamble.prompt", '{{role "system"}}\nYou answer questions.\n')
    write(tmp_path, "prompts/answer.formal.prompt", "Formally: {{question}}\n")
    result = run_cli("count", "prompts", "--format", "json", cwd=tmp_path)
    templates = {t["path"]: t for t in result.json()["templates"]}
    answer = templates["prompts/answer.prompt"]
    assert [m["role"] for m in answer["messages"]] == ["system", "user"]
    sources = {v["name"]: v["source"] for v in answer["variables"]}
    assert sources == {"context": "cap", "question": "sample"}
    assert answer["text_tokens"] > 300
    # a variant is a template of its own, shown under its file name
    assert "prompts/answer.formal.prompt" in templates
    findings = {(f["rule"], f["path"]) for f in result.json()["findings"]}
    assert ("PB001", "prompts/answer.prompt") not in findings
    assert ("PB201", "prompts/answer.formal.prompt") in findings


def test_check_of_a_partial_selects_the_workflows_that_include_it(
    run_cli: RunCli, tmp_path: Path
) -> None:
    write(
        tmp_path,
        "budgets.yaml",
        "version: 1\nprompts: prompts/\nworkflows:\n  answer:\n    steps:\n"
        "      - prompt: answer.prompt\n        model: gpt-4o\n        output_tokens: 100\n"
        "  other:\n    steps:\n      - prompt: other.prompt\n        model: gpt-4o\n"
        "        output_tokens: 100\n",
    )
    write(tmp_path, "prompts/answer.prompt", "{{> preamble}}\nHi\n")
    write(tmp_path, "prompts/other.prompt", "Hello\n")
    write(tmp_path, "prompts/_preamble.prompt", "Be brief.\n")
    result = run_cli("check", "prompts/_preamble.prompt", "--format", "json", cwd=tmp_path)
    assert {w["name"] for w in result.json()["workflows"]} == {"answer"}


LIST_WITH_HELPER = (
    "---\ninput:\n  schema:\n    items(array): string\n  default:\n    items: [a, b]\n---\n"
    "{{#each items}}\n{{add @index 1}}. {{this}}\n{{/each}}\n"
)


def test_a_helper_capped_in_the_manifest_counts_like_a_capped_variable(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    root = make_project(
        {
            "budgets.yaml": "version: 1\ndefaults: {model: gpt-4.1-mini}\n"
            "variables:\n  add: {max_tokens: 7}\n  n: {max_tokens: 7}\n",
            "prompts/helper.prompt": LIST_WITH_HELPER,
            "prompts/twin.prompt": LIST_WITH_HELPER.replace("{{add @index 1}}", "{{@root.n}}"),
        }
    )
    result = run_cli("count", "--format", "json", cwd=root)
    assert result.exit_code == 0, result.stdout
    templates = {t["path"]: t for t in result.json()["templates"]}
    helper, twin = templates["prompts/helper.prompt"], templates["prompts/twin.prompt"]
    variables = {v["name"]: v for v in helper["variables"]}
    assert variables["add"]["source"] == "cap" and variables["add"]["tokens"] == 14  # 2 uses
    assert helper["request_tokens"] == twin["request_tokens"]
    assert helper["text_tokens"] == twin["text_tokens"] > 14
    assert not [f for f in result.json()["findings"] if f["rule"] in {"PB201", "PB202"}]


def test_an_uncapped_helper_is_reported_as_the_applications(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    root = make_project(
        {
            "budgets.yaml": "version: 1\ndefaults: {model: gpt-4.1-mini}\n",
            "prompts/helper.prompt": LIST_WITH_HELPER,
        }
    )
    result = run_cli("count", "--format", "json", cwd=root)
    assert result.exit_code == 1
    ((message, line),) = [
        (f["message"], f["line"]) for f in result.json()["findings"] if f["rule"] == "PB201"
    ]
    assert line == 9
    assert message.startswith("'add' is provided by your application")


def test_helpers_and_partials_are_never_undeclared_variables(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    root = make_project(
        {
            "budgets.yaml": "version: 1\ndefaults: {model: gpt-4.1-mini}\n"
            "variables:\n  header: {max_tokens: 20}\n  fmt: {max_tokens: 5}\n"
            "workflows:\n  reply:\n    steps:\n      - prompt: reply.prompt\n"
            "        output_tokens: 50\n        variables:\n          q: {max_tokens: 40}\n",
            "prompts/reply.prompt": "---\ninput:\n  schema:\n    q: string\n---\n"
            "{{> header}}\n{{#ifLong q}}\nLong: {{fmt q}}\n{{/ifLong}}\n{{q}}\n",
        }
    )
    result = run_cli("check", "--format", "json", cwd=root)
    findings = [(f["rule"], f["message"]) for f in result.json()["findings"]]
    assert not [f for f in findings if f[0] in {"PB001", "PB201", "PB202", "PB003"}], findings
    assert result.exit_code == 0, findings


def test_templates_outside_the_project_resolve_partials_next_to_them(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    """``promptbudget count ../elsewhere`` from inside a project: the project's prompts
    directory is not searched (it is outside what was named), so a partial the application
    defines is PB201, not "outside the project root"; a sibling partial is read."""
    project = make_project({"budgets.yaml": "version: 1\n", "prompts/a.j2": "Hi.\n"})
    elsewhere = make_project(
        {
            "app.prompt": "---\nmodel: gpt-4o\n---\n{{> header}}\nHello {{>footer}}\n",
            "_footer.prompt": "Bye.\n",
            "page.j2": "{% include '_part.j2' %} and more\n",
            "_part.j2": "Shared part\n",
            "escape.prompt": "{{> ../../../../../../../../etc/passwd}}\n",
        }
    )
    run = run_cli("count", str(elsewhere), "--format", "json", cwd=project)
    assert run.exit_code in (0, 1), run.stderr
    data = run.json()
    pb001 = {f["path"].rsplit("/", 1)[-1]: f["message"] for f in data["findings"]}
    problems = {f["path"].rsplit("/", 1)[-1] for f in data["findings"] if f["rule"] == "PB001"}
    assert problems == {"escape.prompt"}, pb001
    header = [f for f in data["findings"] if f["rule"] == "PB201" and "header" in f["message"]]
    assert header and "provided by your application" in header[0]["message"]
    texts = {t["path"].rsplit("/", 1)[-1]: t["text_tokens"] for t in data["templates"]}
    assert texts["page.j2"] > texts["_part.j2"]  # the include was read
