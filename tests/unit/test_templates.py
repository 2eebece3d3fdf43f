"""Reading, parsing and rendering templates: the messy cases real files have."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from promptbudget.counting import count_prompt
from promptbudget.templates import source as source_module
from promptbudget.templates.deadline import RenderDeadline, RenderTimeoutError, check_deadline
from promptbudget.templates.meta import ParsedTemplate
from promptbudget.templates.parse import parse_template, split_front_matter
from promptbudget.templates.render import COMPILED_KEPT, TemplateRenderer
from promptbudget.templates.rendered import Slot, VariableValue
from promptbudget.templates.source import (
    TemplateFormat,
    decode_prompt_bytes,
    detect_format,
    iter_prompt_files,
    read_prompt_text,
)
from promptbudget.tokenizers import get_tokenizer

O200K = get_tokenizer("o200k_base")


def parse(tmp_path: Path, name: str, text: str | bytes) -> ParsedTemplate:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return parse_template(path, name, detect_format(path), read_prompt_text(path))


def render(
    tmp_path: Path,
    name: str,
    text: str,
    values: dict[str, VariableValue] | None = None,
    timeout: float = 5.0,
):  # type: ignore[no-untyped-def]
    parsed = parse(tmp_path, name, text)
    return TemplateRenderer(tmp_path, timeout_seconds=timeout).render(parsed, values or {})


# -- reading ----------------------------------------------------------------------------------


def test_text_is_read_as_python_reads_it() -> None:
    read = decode_prompt_bytes(b"\xef\xbb\xbfline one\r\nline two\rline three\n")
    assert read.text == "line one\nline two\nline three\n"
    assert read.had_bom
    assert read.problem is None


def test_invalid_utf8_is_reported_with_its_line() -> None:
    read = decode_prompt_bytes(b"ok\ncaf\xe9\n")
    assert read.text == "ok\ncaf\ufffd\n"
    assert read.problem is not None
    assert "not valid UTF-8" in read.problem and "line 2" in read.problem


def test_oversized_file_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(source_module, "MAX_TEMPLATE_BYTES", 10)
    path = tmp_path / "big.txt"
    path.write_text("x" * 11)
    read = read_prompt_text(path)
    assert not read.is_readable
    assert read.problem is not None and "limit" in read.problem


def test_directory_walk_is_sorted_skips_hidden_and_dedupes(tmp_path: Path) -> None:
    for name in (
        "b.j2",
        "a.prompty",
        ".hidden.j2",
        "notes.py",
        ".git/x.j2",
        "sub/c.md",
        "node_modules/d.j2",
        "data.json",
    ):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    found = list(iter_prompt_files([tmp_path, tmp_path / "b.j2"]))
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "a.prompty",
        "b.j2",
        "data.json",
        "sub/c.md",
    ]


def test_explicit_file_is_included_whatever_its_suffix(tmp_path: Path) -> None:
    path = tmp_path / "prompt.tsv"
    path.write_text("x")
    assert list(iter_prompt_files([path])) == [path]
    # a generic template: its engine is decided by its content
    assert detect_format(path) is TemplateFormat.JINJA2
    assert detect_format(tmp_path / "data.yaml") is TemplateFormat.TEXT


# -- front matter and metadata ---------------------------------------------------------------


def test_markdown_rule_is_not_front_matter() -> None:
    assert split_front_matter("---\nJust a rule in prose.\n---\ntext\n", required=False) is None
    front = split_front_matter("---\nmodel: gpt-4o\n---\nbody\n", required=False)
    assert front is not None and front.data == {"model": "gpt-4o"} and front.body == "body\n"
    assert front.body_line == 4


def test_broken_front_matter_is_pb001_with_its_line(tmp_path: Path) -> None:
    parsed = parse(tmp_path, "a.prompty", "---\nname: x\nmodel: [unclosed\n---\nsystem:\nhi\n")
    assert parsed.problem is not None and "not valid YAML" in parsed.problem
    assert parsed.problem_line is not None and parsed.problem_line >= 3
    unclosed = parse(tmp_path, "b.prompty", "---\nname: x\nsystem:\nhi\n")
    assert unclosed.problem is not None and "not closed" in unclosed.problem


def test_prompty_v1_metadata(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        "v1.prompty",
        "---\nname: t\nversion: 3\nmodel:\n  api: chat\n  configuration:\n    type: azure_openai\n"
        "    azure_deployment: gpt-4o\n  parameters:\n    max_tokens: 512\n"
        "inputs:\n  question:\n    type: string\nsample:\n  question: Why?\n---\n"
        "user:\n{{question}}\n",
    )
    meta = parsed.meta
    assert (meta.model, meta.max_output_tokens, meta.version) == ("gpt-4o", 512, "3")
    assert meta.samples == {"question": "Why?"}
    assert meta.declared_inputs == {"question"}
    assert parsed.body_line == 17


def test_prompty_v2_metadata(tmp_path: Path) -> None:
    parsed = parse(
        tmp_path,
        "v2.prompty",
        "---\nname: t\nmodel:\n  id: gpt-4o-mini\n  options:\n    maxOutputTokens: 1024\n"
        "inputs:\n  - name: city\n    kind: string\n    default: Seattle\n  - name: photo\n"
        "    kind: image\ntemplate:\n  format:\n    kind: mustache\n---\nuser:\n{{city}}\n",
    )
    meta = parsed.meta
    assert (meta.model, meta.max_output_tokens) == ("gpt-4o-mini", 1024)
    assert meta.samples == {"city": "Seattle"}
    assert meta.declared_inputs == {"city", "photo"}
    assert meta.engine == "mustache"


@pytest.mark.parametrize("model", ["${env:AZURE_DEPLOYMENT}", "<your-deployment>"])
def test_placeholder_models_are_ignored(tmp_path: Path, model: str) -> None:
    text = f"---\nmodel:\n  configuration:\n    azure_deployment: {model!r}\n---\nhi\n"
    assert parse(tmp_path, "p.prompty", text).meta.model is None


def test_bad_output_limit_is_pb001(tmp_path: Path) -> None:
    parsed = parse(tmp_path, "a.j2", "---\nmax_output_tokens: lots\n---\nhi\n")
    assert parsed.problem is not None and "max_output_tokens" in parsed.problem


# -- rendering --------------------------------------------------------------------------------


def test_plain_text_is_one_message_untouched(tmp_path: Path) -> None:
    rendered = render(tmp_path, "a.md", "# Title\n\nSome text.\n\n")
    assert [(m.role, m.text) for m in rendered.messages] == [("user", "# Title\n\nSome text.\n\n")]


def test_role_markers_split_messages(tmp_path: Path) -> None:
    rendered = render(
        tmp_path,
        "chat.j2",
        "Preamble.\n# system:\nBe brief.\n\nuser:\nHello\nAssistant:\nHi!\n"
        'user[name="bob"]:\nBye\n',
    )
    assert [(m.role, m.text) for m in rendered.messages] == [
        ("system", "Preamble."),
        ("system", "Be brief."),
        ("user", "Hello"),
        ("assistant", "Hi!"),
        ("user", "Bye"),
    ]


def test_role_words_inside_lines_are_text(tmp_path: Path) -> None:
    rendered = render(tmp_path, "a.prompty", "---\nname: x\n---\nsystem:\nuser: says hi\n")
    assert [(m.role, m.text) for m in rendered.messages] == [("system", "user: says hi")]


def test_markdown_without_front_matter_keeps_role_lines_as_text(tmp_path: Path) -> None:
    text = "User:\nhello\n"
    rendered = render(tmp_path, "notes.md", text)
    assert [(m.role, m.text) for m in rendered.messages] == [("user", text)]


def test_unbounded_variables_render_empty_and_are_listed(tmp_path: Path) -> None:
    rendered = render(
        tmp_path,
        "a.j2",
        "Q: {{ question }}\n{% for m in history %}{{ m.role }}: {{ m.content }}\n{% endfor %}",
    )
    assert rendered.unbounded == ("history", "question")
    assert rendered.messages[0].text == "Q: \n"


def test_samples_render_and_caps_become_slots(tmp_path: Path) -> None:
    values = {
        "name": VariableValue("name", "test", sample="Dana"),
        "context": VariableValue("context", "test", max_tokens=3000),
    }
    rendered = render(
        tmp_path, "a.j2", "Hi {{ name }}.\n{{ context }}\n{{ context|upper }}", values
    )
    parts = rendered.messages[0].parts
    assert parts[0] == "Hi Dana.\n"
    assert Slot("context", 3000, whole=True) in parts
    count = count_prompt(rendered, O200K)
    # Each {{ context }} is the cap again: 2 x 3,000 plus the static text.
    static = O200K.count("Hi Dana.\n") + O200K.count("\n")
    assert count.text_tokens == 6000 + static
    assert [(v.name, v.source, v.tokens) for v in count.variables] == [
        ("context", "cap", 6000),
        ("name", "sample", 1),
    ]


def test_a_capped_list_counts_its_cap_once_however_it_is_iterated(tmp_path: Path) -> None:
    values = {"history": VariableValue("history", "test", max_tokens=2000)}
    rendered = render(
        tmp_path,
        "chat.j2",
        "system:\nBe kind.\n{% for item in history %}\nuser:\n{{ item.inputs.question }}\n"
        "assistant:\n{{ item['outputs']['answer'] }}\n{% endfor %}\nuser:\nNow?\n",
        values,
    )
    assert [m.role for m in rendered.messages] == ["system", "user", "assistant", "user"]
    count = count_prompt(rendered, O200K)
    assert count.variables[0].tokens == 2000
    assert count.text_tokens == 2000 + O200K.count("Be kind.") + O200K.count("Now?")


def test_request_tokens_add_chat_framing(tmp_path: Path) -> None:
    rendered = render(tmp_path, "a.j2", "system:\nBe brief.\nuser:\nHello\n")
    count = count_prompt(rendered, O200K)
    # 2 messages x (3 + 1 role token) + 3 reply priming
    assert count.request_tokens == count.text_tokens + 2 * 4 + 3


def test_includes_resolve_inside_the_root(tmp_path: Path) -> None:
    (tmp_path / "partials").mkdir()
    (tmp_path / "partials" / "policy.j2").write_text("Be polite.")
    rendered = render(tmp_path, "a.j2", 'Rules: {% include "partials/policy.j2" %}')
    assert rendered.problem is None
    assert rendered.messages[0].text == "Rules: Be polite."


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_include_through_a_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path.parent / f"{tmp_path.name}-outside.j2"
    outside.write_text("secret")
    project = tmp_path / "p"
    project.mkdir()
    (project / "link.j2").symlink_to(outside)
    parsed = parse(project, "a.j2", '{% include "link.j2" %}')
    rendered = TemplateRenderer(project).render(parsed, {})
    assert rendered.problem is not None and "outside the project" in rendered.problem


def test_syntax_error_line_counts_front_matter(tmp_path: Path) -> None:
    text = "---\nmodel: gpt-4o\nversion: 1\n---\nfine line\n{{ broken }\n"
    rendered = render(tmp_path, "a.j2", text)
    assert rendered.problem is not None and "syntax error" in rendered.problem
    assert rendered.problem_line == 6
    # The raw file is still counted (approximate).
    assert rendered.messages[0].text == text


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ ''.__class__.__mro__ }}", "unsafe"),
        ("{{ cycler.__init__.__globals__.os }}", "unsafe"),
        ("{{ self._TemplateReference__context }}", "unsafe"),
        ("{% for i in range(10**9) %}x{% endfor %}", "unsafe"),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "iterations",
        ),
        ("{{ 10 ** 100000000 }}", "exponent"),
        ("{{ 'ab' * 1000000000 }}", "too large"),
        ("{{ 'x'|center(1000000000) }}", "larger than"),
        ("{{ '%999999999d' % 1 }}", "format width"),
        ("{{ '%999999999d'|format(1) }}", "format width"),
        ("{{ '{:>999999999}'.format(1) }}", "format width"),
        ('{% include "../../../../../../etc/passwd" %}', "outside the project"),
        ('{% include "/etc/passwd" %}', "absolute"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "recursed"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{% nosuchtag x %}", "nosuchtag"),
    ],
)
def test_hostile_templates_become_findings(tmp_path: Path, template: str, expected: str) -> None:
    rendered = render(tmp_path, "evil.j2", template)
    assert rendered.problem is not None
    assert expected in rendered.problem


@pytest.mark.parametrize(
    "name", ["plain.j2", "notes.md", "skprompt.txt", "a.prompt", "chat.prompty"]
)
def test_private_use_characters_are_ordinary_text(tmp_path: Path, name: str) -> None:
    text = "Markers \ue000 0\ue001 and \ue0002\ue002 stay as written."
    body = f"---\nmodel: gpt-4o\n---\n{text}\n" if name.endswith(".prompty") else text
    rendered = render(tmp_path, name, body)
    assert rendered.problem is None
    assert "".join(m.text for m in rendered.messages).strip() == text


def test_a_render_that_runs_too_long_is_stopped(tmp_path: Path) -> None:
    template = '{% set s = "x" * 100000 %}{% for i in s %}{% for j in s %}{% endfor %}{% endfor %}'
    rendered = render(tmp_path, "slow.j2", template, timeout=0.3)
    assert rendered.problem is not None and "longer than 0.3 s" in rendered.problem


def test_renders_start_no_thread(tmp_path: Path) -> None:
    """The time limit is a deadline the engines check, not a thread that interrupts them."""
    before = threading.active_count()
    renderer = TemplateRenderer(tmp_path)
    for index in range(40):
        parsed = parse(tmp_path, f"t{index}.j2", f"Hello {index} {{{{ 1 + 1 }}}}")
        assert renderer.render(parsed, {}).problem is None
    assert threading.active_count() == before


def test_a_short_deadline_inside_a_long_one_still_fires(tmp_path: Path) -> None:
    """The inner render's own limit applies (if it did not, it would run for the outer hour)."""
    with RenderDeadline(3600.0):
        template = (
            '{% set s = "x" * 100000 %}{% for i in s %}{% for j in s %}{% endfor %}{% endfor %}'
        )
        rendered = render(tmp_path, "slow.j2", template, timeout=0.3)
    assert rendered.problem is not None and "longer than 0.3 s" in rendered.problem


def test_an_inner_deadline_cannot_outlive_the_outer_one() -> None:
    with RenderDeadline(0.0), RenderDeadline(3600.0) as inner:
        assert inner.limit == 0.0
        with pytest.raises(RenderTimeoutError, match="longer than 0 s"):
            check_deadline()
    check_deadline()  # outside any render: never raises


def test_a_deadline_raises_only_where_an_engine_checks() -> None:
    """The watchdog this replaced injected its exception into whatever Python code ran next
    in the thread (a gc callback, a ``finally``): here, the spin loop. A deadline raises only
    at a check."""
    import time

    with RenderDeadline(0.01):
        start = time.monotonic()
        spins = 0
        while time.monotonic() - start < 0.2:  # Python code past the deadline, no check
            spins += 1
        with pytest.raises(RenderTimeoutError):
            check_deadline()
    assert spins > 0


def test_dotprompt_is_rendered_into_role_messages(tmp_path: Path) -> None:
    rendered = render(
        tmp_path, "a.prompt", '---\nmodel: gemini-2.5-flash\n---\n{{role "system"}}\nHi\n'
    )
    assert rendered.problem is None
    assert [(m.role, m.text) for m in rendered.messages] == [("system", "\nHi")]


def test_a_template_compiled_once_renders_like_a_fresh_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A renderer keeps the last templates it compiled (a step's template is rendered again
    for its lanes): rendering again, with other values or as slots, after other templates
    pushed it out or not, gives what a fresh renderer gives, and compiles only when needed."""
    compiled: list[str] = []
    original = TemplateRenderer._compile_now

    def counting(self: TemplateRenderer, env: Any, parsed: ParsedTemplate) -> Any:
        if self is renderer:
            compiled.append(parsed.display_path)
        return original(self, env, parsed)

    monkeypatch.setattr(TemplateRenderer, "_compile_now", counting)
    step = parse(tmp_path, "step.j2", "system: Be brief.\nuser: {{ question }} {{ n + 1 }}\n")
    broken = parse(tmp_path, "broken.j2", "Hi {{ name ")
    values = {
        "question": VariableValue("question", "test", sample="Why?"),
        "n": VariableValue("n", "test", sample=2),
    }
    renderer = TemplateRenderer(tmp_path)
    first = renderer.render(step, values)
    slots = renderer.render(step, {}, as_slots=True)
    assert renderer.render(broken, {}) == TemplateRenderer(tmp_path).render(broken, {})
    assert renderer.render(broken, {}).problem is not None
    assert compiled == ["step.j2", "broken.j2"]
    for index in range(COMPILED_KEPT):  # push both out
        renderer.render(parse(tmp_path, f"t{index}.j2", f"T{index} {{{{ x }}}}"), {})
    again = renderer.render(step, values)
    assert compiled.count("step.j2") == 2
    assert first == again == TemplateRenderer(tmp_path).render(step, values)
    assert slots == TemplateRenderer(tmp_path).render(step, {}, as_slots=True)
    assert slots != first
    # the same file and body under other front matter: a problem's raw prompt holds the text
    for model in ("gpt-4o", "gpt-4.1"):
        fronted = parse(tmp_path, "broken.j2", f"---\nmodel: {model}\n---\nHi {{{{ name ")
        assert renderer.render(fronted, {}) == TemplateRenderer(tmp_path).render(fronted, {})
    edited = parse(tmp_path, "step.j2", "user: {{ question }}!\n")  # same file, new body
    assert renderer.render(edited, values) == TemplateRenderer(tmp_path).render(edited, values)
