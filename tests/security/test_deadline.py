"""Renders that never end on their own stop at the render deadline, inside the render, as a
PB001 finding (issue 11: the render time limit). The limit is cooperative: the engines check
it at their safe points, nothing is injected into the thread from outside, so the exception
can never land in a garbage-collector callback, a ``finally`` or the CLI.

Each case runs in a child process under a timeout and an address-space limit (forked from the
fork server, ``forkserver.py``, when it can be); the renders there use a 0.5 s limit (the
CLI's is 5 s) so the suite stays fast."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from security.bounded_run import RunBounded, python_in_child
from security.forkserver import ForkServer

MakeProject = Callable[..., Path]

LIMIT = 0.5
MANIFEST = "version: 1\nprompts: prompts/\ndefaults:\n  model: gpt-4.1-mini\n"

# Renders with no end (or none within hours): each must stop within the limit.
LOOPS = {
    "self-recursive macro": "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "doubling macro": (
        "{% macro m(n) %}{% if n %}{{ m(n - 1) }}{{ m(n - 1) }}{% endif %}{% endmacro %}{{ m(30) }}"
    ),
    "huge range": "{% for i in range(100000000) %}x{% endfor %}",
    "huge range as a list": "{{ range(100000000)|list|length }}",
    "nested loops": (
        '{% set s = "x" * 100000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}'
    ),
    "nested loops with no output at all": (
        '{% set s = "x" * 30000 %}{% for a in s %}{% for b in s %}{% for c in s %}'
        "{% endfor %}{% endfor %}{% endfor %}"
    ),
    "recursive loop": (
        '{% set s = "x" * 100000 %}{% for a in [s] recursive %}'
        "{% for b in s %}{% endfor %}{{ loop([s, s]) }}{% endfor %}"
    ),
    "recursion through caller()": (
        "{% macro twice() %}{{ caller() }}{{ caller() }}{% endmacro %}"
        + "{% call twice() %}" * 50
        + "x"
        + "{% endcall %}" * 50
    ),
    "loop through a namespace": (
        "{% set ns = namespace(n=0) %}{% for a in range(1000) %}{% for b in range(1000) %}"
        "{% set ns.n = ns.n + 1 %}{% endfor %}{% endfor %}"
        '{% for a in "x" * 5000000 %}{% for b in "y" * 1000 %}{% endfor %}{% endfor %}'
    ),
}

CHILD = """
import json, sys
from pathlib import Path
from promptbudget.templates.parse import parse_template
from promptbudget.templates.render import TemplateRenderer
from promptbudget.templates.rendered import VariableValue
from promptbudget.templates.source import detect_format, read_prompt_text

root = Path(sys.argv[1])
renderer = TemplateRenderer(root, (root,), timeout_seconds=float(sys.argv[2]))
problems = {}
for name in sys.argv[3:]:
    path = root / name
    parsed = parse_template(path, name, detect_format(path), read_prompt_text(path))
    samples = parsed.meta.samples
    values = {k: VariableValue(k, "sample", sample=v) for k, v in samples.items()}
    problems[name] = renderer.render(parsed, values).problem
print(json.dumps(problems))
"""


def _render_in_child(
    server: ForkServer, root: Path, names: list[str], *, timeout: float = 60
) -> dict[str, str]:
    done = python_in_child(server, CHILD, [str(root), str(LIMIT), *names], timeout=timeout)
    if done is None:
        pytest.fail(f"rendering {names} did not stop within {timeout} s")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    result: dict[str, str] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("template", LOOPS.values(), ids=list(LOOPS))
def test_a_render_with_no_end_stops_as_a_finding(
    template: str, tmp_path: Path, fork_server: ForkServer
) -> None:
    (tmp_path / "loop.j2").write_text(template, encoding="utf-8")
    problem = _render_in_child(fork_server, tmp_path, ["loop.j2"])["loop.j2"]
    assert problem is not None
    assert any(
        reason in problem
        for reason in (
            f"longer than {LIMIT:g} s",
            "recursed too deeply",
            "more than 1,000,000 iterations",
            "larger than 100,000",
        )
    ), problem


def test_handlebars_and_go_template_loops_stop(tmp_path: Path, fork_server: ForkServer) -> None:
    files = {
        # five nested loops over 99 items: 10^10 iterations
        "deep.prompt": "---\nmodel: gpt-4.1-mini\ninput:\n  default:\n    a: "
        + json.dumps(list(range(99)))
        + "\n---\n"
        + "".join("{{#each " + "../" * depth + "a}}" for depth in range(5))
        + "x"
        + "{{/each}}" * 5,
        "self.gotmpl.txt": '{{define "t"}}{{template "t" .}}{{end}}{{template "t" .}}',
        "range.gotmpl.txt": "{{range 200000}}{{range 200000}}{{.}}{{end}}{{end}}",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    problems = _render_in_child(fork_server, tmp_path, list(files))
    assert f"longer than {LIMIT:g} s" in problems["deep.prompt"], problems
    assert "maximum template depth" in problems["self.gotmpl.txt"], problems
    # Which bound stops the nested range first depends on the machine's speed: the deadline
    # (a slow or loaded machine) or the step budget (a fast one). Either way it stops.
    assert any(
        reason in problems["range.gotmpl.txt"]
        for reason in (f"longer than {LIMIT:g} s", "more than 200,000 steps")
    ), problems


GC_CHILD = """
import gc, json, sys, time
from pathlib import Path
from promptbudget.templates.parse import parse_template
from promptbudget.templates.render import TemplateRenderer
from promptbudget.templates.source import detect_format, read_prompt_text

root = Path(sys.argv[1])
path = root / "loop.j2"
parsed = parse_template(path, "loop.j2", detect_format(path), read_prompt_text(path))
renderer = TemplateRenderer(root, (root,), timeout_seconds=float(sys.argv[2]))
renderer.render(parsed, {})  # compiled and warm: the collector's load falls on the render
seen = []

def slow_callback(phase, info):  # like hypothesis's: Python code run by the collector
    try:
        end = time.monotonic() + 0.001
        while time.monotonic() < end:
            pass
    except BaseException as error:
        seen.append(type(error).__name__)
        raise

gc.callbacks.append(slow_callback)
gc.set_threshold(10)
try:
    problem = renderer.render(parsed, {}).problem
finally:
    gc.callbacks.remove(slow_callback)
    gc.set_threshold(700)
print(json.dumps({"problem": problem, "seen": seen}))
"""


def test_the_time_limit_never_lands_in_a_gc_callback(
    tmp_path: Path, fork_server: ForkServer
) -> None:
    """The previous campaign's crash: the watchdog's exception, injected from its thread,
    landed in a garbage-collector callback (hypothesis's) that was running when the limit
    passed; the callback failed and the render ran on with no limit. Here the collector runs
    a slow callback every few allocations, so most of the render's time is spent in it (the
    old watchdog: the render never ends)."""
    template = LOOPS["doubling macro"]
    (tmp_path / "loop.j2").write_text(template, encoding="utf-8")
    done = python_in_child(fork_server, GC_CHILD, [str(tmp_path), str(LIMIT)], timeout=40)
    if done is None:
        pytest.fail("the render ran on past its limit")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Exception ignored" not in done.stderr, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["seen"] == []
    assert f"longer than {LIMIT:g} s" in result["problem"]


# ``python -m promptbudget ARGS`` with the render deadline's clock running ten times as fast
# as the real one: the CLI's own 5 s limit (the message says 5 s) passes in 0.5 s of CPU
# instead of 5. The deadline is still measured on the real monotonic clock, scaled.
FAST_CLOCK_CLI = """
import runpy, sys, time, types
from promptbudget.templates import deadline
deadline.time = types.SimpleNamespace(monotonic=lambda: time.monotonic() * 10)
sys.argv[0] = "-m"
runpy.run_module("promptbudget", run_name="__main__", alter_sys=True)
"""


def test_the_cli_reports_a_looping_template_and_checks_the_rest(
    fork_server: ForkServer, make_project: MakeProject
) -> None:
    root = make_project(
        {
            "budgets.yaml": MANIFEST,
            "prompts/ok.j2": "Healthy {{ other }}\n",
            # the loop on line 3: the finding names the line the render was running
            "prompts/loop.j2": "Intro\n\n" + LOOPS["nested loops"],
        },
        dedent=False,
    )
    env = {  # as run_bounded gives it
        key: value
        for key, value in os.environ.items()
        if not key.startswith("GITHUB_") and key not in {"PYTEST_XDIST_WORKER", "COLUMNS"}
    }
    env["NO_COLOR"] = "1"
    run = python_in_child(
        fork_server, FAST_CLOCK_CLI, ["check", "--format", "json"], cwd=root, env=env, timeout=60
    )
    assert run is not None, "the check did not stop within 60 s"
    assert run.returncode in (0, 1) and "Traceback" not in run.stderr, run.stderr[-3000:]
    findings = json.loads(run.stdout)["findings"]
    stopped = [f for f in findings if f["rule"] == "PB001" and f["path"] == "prompts/loop.j2"]
    assert stopped and "longer than 5 s" in stopped[0]["message"], findings
    assert stopped[0]["line"] == 3, stopped
    assert any(f["path"] == "prompts/ok.j2" for f in findings)


CYCLES = {
    # file -> (its text, the chain the finding names, the line of the tag)
    "self.j2": ('Hi\n{% extends "self.j2" %}\n', "self.j2 -> self.j2", 2),
    "a.j2": ('{% extends "b.j2" %}', "a.j2 -> b.j2 -> a.j2", 1),
    "b.j2": ('{% block x %}{% endblock %}{% extends "a.j2" %}', "b.j2 -> a.j2 -> b.j2", 1),
    "inc.j2": ('x\n\n{% include "inc2.j2" %}', "inc.j2 -> inc2.j2 -> inc.j2", 3),
    "inc2.j2": (
        'y{% if q %}{% include ["missing.j2", "inc.j2"] %}{% endif %}',
        "inc2.j2 -> inc.j2 -> inc2.j2",
        1,
    ),
    "imp.j2": ('{% from "imp.j2" import m %}{{ m() }}', "imp.j2 -> imp.j2", 1),
    "through.j2": ('{% include "inc.j2" %}', "through.j2 -> inc.j2 -> inc2.j2 -> inc.j2", 1),
    "mixed.j2": ('{% extends "mixed2.j2" %}', "mixed.j2 -> mixed2.j2 -> mixed.j2", 1),
    "mixed2.j2": ('{% include "mixed.j2" %}', "mixed2.j2 -> mixed.j2 -> mixed2.j2", 1),
}


def test_extends_and_include_cycles_are_refused_at_once_naming_the_chain(
    run_bounded: RunBounded, make_project: MakeProject
) -> None:
    """Refused before rendering (the old code rendered until Python's recursion limit or the
    watchdog, and said only that); a template reaching a cycle it is not part of names it."""
    files = {f"prompts/{name}": text for name, (text, _, _) in CYCLES.items()}
    files["prompts/base.j2"] = "base {% block x %}{% endblock %}"
    files["prompts/fine.j2"] = '{% extends "base.j2" %}{% block x %}{% include "leaf.j2" %}'
    files["prompts/fine.j2"] += '{% include "leaf.j2" %}{% endblock %}'
    files["prompts/leaf.j2"] = "leaf {{ other }}"
    root = make_project({"budgets.yaml": MANIFEST, **files}, dedent=False)
    run = run_bounded("check", "--format", "json", cwd=root, timeout=60)
    run.assert_clean(0, 1)
    findings = json.loads(run.stdout)["findings"]
    pb001 = {f["path"]: f for f in findings if f["rule"] == "PB001"}
    for name, (_, chain, line) in CYCLES.items():
        finding = pb001.get(f"prompts/{name}")
        assert finding is not None, (name, findings)
        expected = " -> ".join(f"prompts/{part}" for part in chain.split(" -> "))
        assert f"cycle: {expected} " in finding["message"], finding
        assert finding["line"] == line, finding
    # a diamond (two includes of one file, an extends of a base) is no cycle
    assert "prompts/fine.j2" not in pb001 and "prompts/base.j2" not in pb001
    assert "prompts/leaf.j2" not in pb001


# A loop on the template's third line, in every engine with its own interpreter: the render
# is stopped there and the finding names that line (they all said the first body line).
HANDLEBARS_LOOP = "{{#each a}}{{#each ../a}}{{#each ../../a}}x{{/each}}{{/each}}{{/each}}\n"
LOOP_ON_LINE_3 = {
    "handlebars.prompt": "Intro\n\n" + HANDLEBARS_LOOP,
    "partial.prompt": "Intro\n\n{{> spin}}\n",  # the loop is in the partial: at the tag
    "go.tmpl": "Intro\n\n{{range .a}}{{range $.a}}{{range $.a}}x{{end}}{{end}}{{end}}\n",
    "format.txt": "Intro\n\n{a}{a}{a}{a}{a}{a}{a}{a}{a}{a}\n",
}
ENGINES = {"go.tmpl": "go-template", "format.txt": "format"}


class SteppedClock:
    """``time.monotonic`` for the deadline: still until ``checks`` deadline checks were made,
    then far past any deadline. The Go and ``str.format`` engines stop on their step and size
    bounds long before a real 0.2 s passes, so their deadline is driven by this."""

    def __init__(self, checks: int | None) -> None:
        self.checks = checks
        self.calls = 0

    def monotonic(self) -> float:
        self.calls += 1
        expired = self.checks is not None and self.calls > self.checks + 1  # +1: __enter__
        return 1e9 if expired else 0.0


def _render(tmp_path: Path, name: str, text: str) -> Any:
    from promptbudget.templates.parse import parse_template
    from promptbudget.templates.render import TemplateRenderer
    from promptbudget.templates.rendered import VariableValue
    from promptbudget.templates.source import detect_format, read_prompt_text

    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    parsed = parse_template(
        path, name, detect_format(path), read_prompt_text(path), engine=ENGINES.get(name)
    )
    values = {"a": VariableValue("a", "test", sample=list(range(400)))}
    return TemplateRenderer(tmp_path, timeout_seconds=0.2).render(parsed, values)


def _render_stepped(
    tmp_path: Path, name: str, text: str, checks: int | None, monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, int]:
    from promptbudget.templates import deadline

    clock = SteppedClock(checks)
    with monkeypatch.context() as patch:
        patch.setattr(deadline, "time", clock)
        rendered = _render(tmp_path, name, text)
    return rendered, clock.calls


@pytest.mark.parametrize("name", sorted(LOOP_ON_LINE_3))
def test_other_engines_report_the_line_they_were_running(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "_spin.prompt").write_text(HANDLEBARS_LOOP, encoding="utf-8")
    if name in ENGINES:
        # how many checks the first two lines take, then a render that expires right after
        _, calls = _render_stepped(tmp_path, name, "Intro\n\n", None, monkeypatch)
        rendered, _ = _render_stepped(tmp_path, name, LOOP_ON_LINE_3[name], calls - 1, monkeypatch)
    else:  # Handlebars: 64 million iterations, stopped by the real 0.2 s
        rendered = _render(tmp_path, name, LOOP_ON_LINE_3[name])
    assert rendered.problem is not None and "longer than 0.2 s" in rendered.problem, rendered
    assert rendered.problem_line == 3, rendered.problem
