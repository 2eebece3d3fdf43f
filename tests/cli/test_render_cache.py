"""Jinja2 renders, safe-compression results and latency runs kept in the content cache: a warm
run renders only what changed, and gives exactly what a ``--no-cache`` run gives whatever
changed: the template, a file its loader reads (included, imported, extended, named at render
time, or only looked at by the cycle check), a file that now shadows one, a deleted one, or a
value it is given."""

from __future__ import annotations

import base64
import contextlib
import json
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import Run, check_report, edit_text, templates_passed
from promptbudget.cache import CACHE_DIR_NAME
from promptbudget.templates import render
from promptbudget.templates.rendercache import packed, render_key, unpacked
from promptbudget.templates.rendered import VariableValue

RunCli = Callable[..., Run]

FILES = {
    "budgets.yaml": """\
        version: 1
        defaults: {model: gpt-4.1-mini}
        variables:
          question: {max_tokens: 200}
        workflows:
          support:
            traffic: {requests_per_day: 1000}
            steps:
              - name: answer
                prompt: answer.j2
                output_tokens: {p50: 200, p95: 800}
                variables:
                  customer: {sample: Ada Lovelace}
          plain:  # its template is rendered again for its lanes (the compiled one reused)
            traffic: {requests_per_day: 100}
            steps:
              - {name: plain, prompt: guarded.j2, output_tokens: 50}
    """,
    "prompts/answer.j2": """\
        {% extends "base.j2" %}
        {% import "macros.j2" as m %}
        {% block body %}{{ m.greet(customer) }} {% include "partials/tone.j2" %}
        Answer: {{ question }}{% endblock %}
    """,
    "prompts/base.j2": "system:\nYou help customers.\nuser:\n{% block body %}{% endblock %}\n",
    "prompts/macros.j2": "{% macro greet(name) %}Hello {{ name | shout }}.{% endmacro %}\n",
    "prompts/partials/tone.j2": "Be kind, concise and exact.\n",
    "prompts/dynamic.j2": """\
        ---
        sample: {style: formal}
        ---
        {% include "styles/" ~ style ~ ".j2" %} Reply to {{ question }}.
    """,
    "prompts/styles/formal.j2": "Dear customer,\n",
    "prompts/guarded.j2": """\
        {% if false %}{% include "partials/never.j2" %}{% endif %}Plain text, no variables.
    """,
    "prompts/partials/never.j2": "Never rendered.\n",
}


@pytest.fixture
def project(make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PROMPTBUDGET_CACHE_DIR")  # the cache in the project, as users have it
    return make_project(FILES)


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The templates Jinja2 rendered (cache misses), by display path."""
    yield templates_passed(monkeypatch, render.TemplateRenderer, "_render_jinja", 2)


def test_a_warm_run_renders_only_the_template_that_changed(
    run_cli: RunCli, project: Path, renders: list[str]
) -> None:
    check_report(run_cli, project)
    assert "prompts/answer.j2" in renders and "prompts/dynamic.j2" in renders
    renders.clear()
    check_report(run_cli, project)
    assert renders == []
    edit_text(project / "prompts/dynamic.j2", "Reply to", "Please reply to")
    check_report(run_cli, project)
    assert set(renders) == {"prompts/dynamic.j2"}


@pytest.mark.parametrize(
    ("change", "rerendered"),
    [
        (("prompts/partials/tone.j2", "kind", "kind, warm"), "prompts/answer.j2"),
        (("prompts/base.j2", "You help", "You, an agent, help"), "prompts/answer.j2"),
        (("prompts/macros.j2", "Hello", "Good morning"), "prompts/answer.j2"),
        (("prompts/styles/formal.j2", "Dear", "Most esteemed"), "prompts/dynamic.j2"),
        (("budgets.yaml", "Ada Lovelace", "Grace Hopper"), "prompts/answer.j2"),
        (("budgets.yaml", "{max_tokens: 200}", "{max_tokens: 300}"), "prompts/dynamic.j2"),
    ],
    ids=["include", "extends", "import", "named-at-render-time", "step-sample", "cap"],
)
def test_what_a_render_reads_changed_renders_it_again(
    run_cli: RunCli,
    project: Path,
    renders: list[str],
    change: tuple[str, str, str],
    rerendered: str,
) -> None:
    before = check_report(run_cli, project)
    edit_text(project / change[0], change[1], change[2])
    renders.clear()
    after = check_report(run_cli, project)
    assert rerendered in renders
    assert after != before
    assert after == check_report(run_cli, project, "--no-cache")


def test_a_file_that_now_shadows_an_include_is_read(run_cli: RunCli, project: Path) -> None:
    """The loader looks in the template's own directory first: a file added there now
    answers the name the template includes."""
    (project / "prompts/sub").mkdir()
    for name in ("answer.j2", "base.j2", "macros.j2"):
        (project / "prompts/sub" / name).write_bytes((project / "prompts" / name).read_bytes())
    before = check_report(run_cli, project)
    (project / "prompts/sub/partials").mkdir()
    (project / "prompts/sub/partials/tone.j2").write_text("Shout.\n", encoding="utf-8")
    after = check_report(run_cli, project)
    assert after != before
    assert after == check_report(run_cli, project, "--no-cache")


def test_a_deleted_include_is_a_problem_again(run_cli: RunCli, project: Path) -> None:
    check_report(run_cli, project)
    (project / "prompts/partials/tone.j2").unlink()
    after = check_report(run_cli, project)
    assert after == check_report(run_cli, project, "--no-cache")
    assert any(f["rule"] == "PB001" and "tone.j2" in f["message"] for f in after["findings"]), (
        after["findings"]
    )


def test_a_cycle_through_a_file_only_the_cycle_check_reads_is_found(
    run_cli: RunCli, project: Path
) -> None:
    """``never.j2`` is never rendered, only followed by the cycle check: that read counts."""
    check_report(run_cli, project)
    (project / "prompts/partials/never.j2").write_text(
        '{% include "guarded.j2" %}\n', encoding="utf-8"
    )
    after = check_report(run_cli, project)
    assert after == check_report(run_cli, project, "--no-cache")
    assert any(
        f["rule"] == "PB001" and "cycle" in f["message"] and f["path"] == "prompts/guarded.j2"
        for f in after["findings"]
    ), after["findings"]


def test_a_damaged_render_entry_is_a_miss(
    run_cli: RunCli, project: Path, renders: list[str]
) -> None:
    first = check_report(run_cli, project)
    for shard in (project / CACHE_DIR_NAME).glob("*/*.json"):
        signature, _, body = shard.read_bytes().partition(b"\n")
        entries = json.loads(body)
        for key, value in entries.items():
            with contextlib.suppress(ValueError):  # a render: another entry, as if forged
                entries[key] = packed({**unpacked(value), "v": ["question"]})
        # the HMAC no longer matches: the whole shard is ignored and rebuilt
        shard.write_bytes(signature + b"\n" + json.dumps(entries).encode())
    renders.clear()
    assert check_report(run_cli, project) == first
    assert "prompts/answer.j2" in renders


class _Store:
    def __init__(self, value: object) -> None:
        self.value = value

    def get(self, key: str) -> object:
        return self.value

    def put(self, key: str, value: object) -> None:
        self.value = value


def test_an_entry_the_renderer_did_not_write_is_a_miss() -> None:
    """Signed entries are trusted not to be forged, not to be well formed: each part is
    checked, and a packed entry is bounded when inflated."""
    from promptbudget.templates.rendercache import MAX_PACKED_BYTES, keep, lookup
    from promptbudget.templates.rendered import Message, RenderedPrompt, Slot
    from promptbudget.templates.sandbox import Loads

    values = {"q": VariableValue("q", "cap", max_tokens=5)}
    rendered = RenderedPrompt(
        messages=(Message("user", ("Hi ", Slot("q", 5, True)), "bob"),),
        variables=("q",),
        values=values,
        variable_lines={"q": 3},
    )
    store = _Store(None)
    keep(store, "k", rendered, Loads({"p.j2": ["file", "/p.j2", "00"]}))  # type: ignore[arg-type]
    good = unpacked(store.value)

    def found(value: object, answer: object = ("file", "/p.j2", "00")) -> object:
        return lookup(_Store(value), "k", values, lambda name: list(answer))  # type: ignore[arg-type]

    assert found(packed(good)) == rendered
    assert found(packed(good), ("file", "/p.j2", "01")) is None  # the partial changed
    bomb = base64.b64encode(zlib.compress(b"{" + b" " * (MAX_PACKED_BYTES + 1) + b"}"))
    for damaged in (
        "not base64!",
        bomb.decode(),
        base64.b64encode(zlib.compress(b"[1]")).decode(),
        base64.b64encode(zlib.compress(b"{"))[:-4].decode(),
        packed({**good, "m": [["user", None, [[1, 2, 3]]]]}),
        packed({**good, "v": ["q", 7]}),
        packed({**good, "l": {"q": "3"}}),
        packed({**good, "loads": [["p.j2"]]}),
        packed({**good, "loads": "p.j2"}),
        good,
    ):
        assert found(damaged) is None


def test_the_key_does_not_depend_on_the_order_of_sets_and_mappings() -> None:
    """Front matter's declared inputs are a frozenset and values a mapping: the key is built
    from them sorted, so it is the same in every process (whatever the hash seed)."""
    from promptbudget.templates.meta import ParsedTemplate, TemplateMeta
    from promptbudget.templates.source import TemplateFormat

    def parsed(inputs: list[str]) -> ParsedTemplate:
        meta = TemplateMeta(declared_inputs=frozenset(inputs), samples={"b": 1, "a": [1, 2]})
        return ParsedTemplate(Path("a.j2"), "a.j2", TemplateFormat.JINJA2, "x", "x", 1, meta)

    one = {"a": VariableValue("a", "sample"), "b": VariableValue("b", "cap", max_tokens=5)}
    two = dict(reversed(one.items()))
    names = [f"input{n}" for n in range(50)]
    assert render_key(parsed(names), one, ()) == render_key(parsed(names[::-1]), two, ())
    assert render_key(parsed(names), one, ()) != render_key(parsed(names[1:]), one, ())
    capped = {**one, "b": VariableValue("b", "cap", max_tokens=6)}
    assert render_key(parsed(names), one, ()) != render_key(parsed(names), capped, ())
    assert render_key(parsed(names), one, (True,)) != render_key(parsed(names), one, (False,))
    unkeyable = {"a": VariableValue("a", "sample", sample=object())}
    assert render_key(parsed(names), unkeyable, ()) is None


def test_savings_and_latency_runs_come_back_from_the_cache_exactly(
    run_cli: RunCli, project: Path
) -> None:
    """PB205's savings (kept as the first changed line and the compressed lines from it) and
    the latency figures of a warm ``check`` are those of an uncached run; a kept entry that
    is not what the code writes is a miss."""
    from promptbudget.evaluation import _savings_from
    from promptbudget.latencyrun import _decoded as latency_decoded

    edit_text(
        project / "prompts/guarded.j2", "Plain text", "Plain   text   \n\n\n\n\nwith   spaces  "
    )
    first = check_report(run_cli, project)
    warm = check_report(run_cli, project)
    assert warm == first == check_report(run_cli, project, "--no-cache")
    (pb205,) = [f for f in warm["findings"] if f["rule"] == "PB205"]
    assert pb205["path"] == "prompts/guarded.j2" and pb205["line"] == 1
    text = "a\nb  \nc\nd"
    kept = _savings_from([2, ["b", "c"], 9, 7, [["whitespace", 2]]], text)
    assert kept is not None
    assert (kept.original, kept.text) == ("\nb  \nc", "\nb\nc")  # line 1: the same, left empty
    for damaged in (
        [0, ["b"], 9, 7, []],
        [2, ["b", "c", "d"], 9, 7, []],
        [2, ["b"], 9, "7", []],
        [2, ["b"], 9, 7, [["whitespace", "2"]]],
        {"first": 2},
    ):
        assert _savings_from(damaged, text) is None
    stats = [1.0, 1.0, 2.0, [0.5, 1.5], [1.5, 2.5]]
    run = {"total": stats, "steps": [stats], "parts": [{"ttft": 1.0}]}
    assert latency_decoded(run, 1) is not None
    assert latency_decoded(run, 2) is None
    assert latency_decoded({**run, "parts": [{"ttft": 1}]}, 1) is None
    assert latency_decoded({**run, "parts": [{"evil": 1.0}]}, 1) is None
    assert latency_decoded({**run, "total": stats[:4]}, 1) is None


@given(
    st.text(alphabet="ab \n", max_size=40),
    st.text(alphabet="ab \n", max_size=40),
)
def test_savings_kept_compactly_read_back_the_same(head: str, body: str) -> None:
    """The compact entry gives back the cut texts ``first_change_kept`` makes, exactly."""
    from promptbudget.compression import PassOptions
    from promptbudget.evaluation import _safe_savings, _savings_entry, _savings_from
    from promptbudget.tokenizers import get_tokenizer

    text = head + body
    result = _safe_savings(text, head, body, get_tokenizer("o200k_base"), PassOptions())
    assert _savings_from(json.loads(json.dumps(_savings_entry(result))), text) == result
