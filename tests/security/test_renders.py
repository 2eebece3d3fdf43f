"""Renders a pull request controls: amplification in the Jinja2 sandbox, uncapped Semantic
Kernel and LangChain renders, templates nested past every parser's recursion (issue 11
items 7, 8, 12). Each project runs in a child process under a timeout and a memory limit;
the rest of the project must still be checked."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from security.bounded_run import RunBounded

MakeProject = Callable[..., Path]

MANIFEST = "version: 1\nprompts: prompts/\ndefaults:\n  model: gpt-4.1-mini\n"
HEALTHY = "Healthy {{ other }}\n"

AMPLIFIERS = [
    '{{ ("x"*100000)|replace("x", "y"*100000) }}',
    '{{ ("x"*100000).replace("x", "y"*100000) }}',
    '{{ ("y"*100000)|join("x"*100000) }}',
    '{{ ("x"*100000).join("y"*100000) }}',
    '{{ ("a\\n"*100000)|indent("x"*100000) }}',
    '{{ ("a\\n"*100000)|indent(100000) }}',
    "{% set ns = namespace(x='x'*1000) %}{% for i in range(40) %}"
    "{% set ns.x = ns.x ~ ns.x %}{% endfor %}{{ ns.x }}",
    "{% set ns = namespace(x='x'*1000) %}{% for i in range(40) %}"
    "{% set ns.x = ns.x + ns.x %}{% endfor %}{{ ns.x }}",
    "{% set ns = namespace(x=['x']*1000) %}{% for i in range(40) %}"
    "{% set ns.x = ns.x + ns.x %}{% endfor %}{{ ns.x|length }}",
    '{{ ("x"*3000000)|list|join("y"*1000) }}',
    '{{ ("\\t"*80000).expandtabs(100000) }}',
    '{{ ("ab "*100000)|wordwrap(2, wrapstring="z"*10000) }}',
]


def _pb001_for(run: object, path: str) -> list[dict[str, object]]:
    data = json.loads(run.stdout)  # type: ignore[attr-defined]
    return [f for f in data["findings"] if f["rule"] == "PB001" and f["path"] == path]


def _checked_the_rest(run: object) -> None:
    data = json.loads(run.stdout)  # type: ignore[attr-defined]
    assert any(f["path"] == "prompts/ok.j2" for f in data["findings"]), "the rest was not checked"


@pytest.mark.parametrize("template", AMPLIFIERS)
def test_jinja2_amplification_is_refused_before_it_allocates(
    template: str, run_bounded: RunBounded, make_project: MakeProject
) -> None:
    root = make_project(
        {"budgets.yaml": MANIFEST, "prompts/ok.j2": HEALTHY, "prompts/amp.j2": template},
        dedent=False,
    )
    run = run_bounded("check", "--format", "json", cwd=root, timeout=30)
    run.assert_clean(0, 1)
    found = _pb001_for(run, "prompts/amp.j2")
    assert found, run.stdout[-2000:]
    # refused by the meter before the operation ran, not a MemoryError from the address-space
    # limit this test runs under (which the old code hit, then reported as a render failure)
    message = str(found[0]["message"])
    assert "unsafe template" in message and "would make" in message, message
    assert "MemoryError" not in message, message
    _checked_the_rest(run)


def test_ordinary_filters_still_render(run_bounded: RunBounded, make_project: MakeProject) -> None:
    template = (
        "{{ 'a,b'|replace(',', ';') }} {{ ['x', 'y']|join(', ') }} {{ 'hi'|indent(2) }}"
        " {{ 'a' ~ 'b' }} {{ [1] + [2] }} {{ 'x'.center(5) }} {{ 'long words here'|wordwrap(5) }}"
        " {{ [{'n': 'p'}, {'n': 'q'}]|join('/', attribute='n') }}\n"
    )
    root = make_project(
        {"budgets.yaml": MANIFEST, "prompts/ok.j2": HEALTHY, "prompts/fine.j2": template},
        dedent=False,
    )
    run = run_bounded("check", "--format", "json", cwd=root)
    run.assert_clean(0, 1)
    assert _pb001_for(run, "prompts/fine.j2") == []


@pytest.mark.parametrize(
    "files",
    [
        pytest.param(
            {
                "prompts/Big/skprompt.txt": "{{$input}}" * 3000,
                "prompts/Big/config.json": json.dumps(
                    {"input_variables": [{"name": "input", "default": "x" * 1_000_000}]}
                ),
            },
            id="semantic-kernel-1MB-default-x3000",
        ),
        pytest.param(
            {
                "prompts/lc.json": json.dumps(
                    {
                        "_type": "prompt",
                        "input_variables": ["q"],
                        "partial_variables": {"q": "y" * 1_000_000},
                        "template": "{q}" * 3000,
                    }
                )
            },
            id="langchain-fstring-x3000",
        ),
    ],
)
def test_sk_and_langchain_renders_are_capped(
    files: dict[str, str], run_bounded: RunBounded, make_project: MakeProject
) -> None:
    root = make_project({"budgets.yaml": MANIFEST, "prompts/ok.j2": HEALTHY, **files})
    run = run_bounded("check", "--format", "json", cwd=root, timeout=60)
    run.assert_clean(0, 1)
    _checked_the_rest(run)
    data = json.loads(run.stdout)
    big = next(iter(files))
    assert any(
        f["rule"] == "PB001" and f["path"] == big and "larger than" in f["message"]
        for f in data["findings"]
    ), run.stdout[-3000:]


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("ifs.j2", "{% if a %}" * 3000 + "x" + "{% endif %}" * 3000),
        ("fors.j2", "{% for a in b %}" * 3000 + "x" + "{% endfor %}" * 3000),
        ("ifs-120.j2", "{% if a %}" * 120 + "x" + "{% endif %}" * 120),
        ("filters.j2", "{{ a" + "|upper" * 20000 + " }}"),
        ("filters-250.j2", "{{ a" + "|upper" * 250 + " }}"),
        ("parens.j2", "{{ " + "(" * 3000 + "a" + ")" * 3000 + " }}"),
        ("lists.j2", "{{ " + "[" * 3000 + "]" * 3000 + " }}"),
        ("plus.j2", "{{ a" + " + 1" * 20000 + " }}"),
        ("dots.j2", "{{ a" + ".b" * 20000 + " }}"),
        (
            "blocks.prompt",
            "---\nmodel: gpt-4.1-mini\n---\n" + "{{#if a}}" * 3000 + "{{/if}}" * 3000,
        ),
        (
            "subexpr.prompt",
            "---\nmodel: gpt-4.1-mini\n---\n{{x " + "(y " * 3000 + ")" * 3000 + "}}",
        ),
        ("deep.prompty", "---\nname: d\n---\nuser:\n" + "{% if a %}" * 3000 + "{% endif %}" * 3000),
    ],
)
def test_deep_templates_are_pb001_and_the_rest_is_checked(
    name: str, body: str, run_bounded: RunBounded, make_project: MakeProject
) -> None:
    root = make_project(
        {"budgets.yaml": MANIFEST, "prompts/ok.j2": HEALTHY, f"prompts/{name}": body},
        dedent=False,
    )
    run = run_bounded("check", "--format", "json", cwd=root)
    run.assert_clean(0, 1)
    _checked_the_rest(run)
    found = _pb001_for(run, f"prompts/{name}")
    assert found, run.stdout[-2000:]
    assert all(isinstance(f["line"], int) for f in found)


def test_str_format_render_is_capped(run_bounded: RunBounded, make_project: MakeProject) -> None:
    manifest = (
        MANIFEST
        + 'engines:\n  "prompts/py/*.txt": format\n'
        + "variables:\n  q:\n    sample: "
        + "y" * 1_000_000
        + "\n"
    )
    root = make_project(
        {"budgets.yaml": manifest, "prompts/ok.j2": HEALTHY, "prompts/py/big.txt": "{q}" * 3000},
        dedent=False,
    )
    run = run_bounded("check", "--format", "json", cwd=root, timeout=60)
    run.assert_clean(0, 1, 2)
    assert "larger than 8,000,000" in run.stdout + run.stderr, (run.stdout[-2000:], run.stderr)


# Include names no file system accepts (found by the fuzz campaign: a NUL in an include name
# crashed the cycle check; the same resolve was in "what does this path affect").
BAD_INCLUDE_NAMES = {
    "nul.j2": '{% include "a\\x00b.j2" %}',
    "nul-extends.j2": '{% extends "\\x00" %}',
    "nul-import.j2": '{% import "x\\x00.j2" as m %}{{ m }}',
    "nul-from.j2": '{% from "sub/\\x00/y.j2" import m %}',
    "nul-in-list.j2": '{% include ["missing.j2", "b\\x00.j2"] %}x',
    "long.j2": '{% include "' + "x" * 300 + '.j2" %}',
    "long-dir.j2": '{% include "' + "d" * 256 + '/a.j2" %}',
    "loop.j2": '{% include "link/a.j2" %}',
    "surrogate.j2": '{% include "\\udc80.j2" %}',
}


@pytest.mark.parametrize("command", [["check"], ["check", "prompts/nul.j2", "prompts/ok.j2"]])
def test_include_names_no_file_system_accepts_are_not_found(
    command: list[str], run_bounded: RunBounded, make_project: MakeProject
) -> None:
    files = {f"prompts/{name}": text for name, text in BAD_INCLUDE_NAMES.items()}
    root = make_project({"budgets.yaml": MANIFEST, "prompts/ok.j2": HEALTHY, **files}, dedent=False)
    (root / "prompts" / "link").symlink_to("link")  # a symlink loop
    run = run_bounded(*command, "--format", "json", cwd=root, timeout=60)
    run.assert_clean(0, 1)
    _checked_the_rest(run)
    if len(command) == 1:
        for name in BAD_INCLUDE_NAMES:
            found = _pb001_for(run, f"prompts/{name}")
            assert found, (name, run.stdout[-3000:])


# Python converts at most 4,300 decimal digits (int <-> str) and raises ValueError past it:
# Jinja2's lexer and the Handlebars parser int() every number literal, and a hex literal
# converts but fails when shown. Found by the fuzz campaign (a 11,845-digit literal in a block).
@pytest.mark.parametrize(
    ("name", "body", "pb001"),
    [
        ("decimal.j2", "Hi {{ " + "1" * 5000 + " }}", True),
        ("in-block.j2", "Base {% block body %}{% " + "1" * 11845 + " %}{% endblock %}", True),
        ("statement.j2", "{% set n = " + "7" * 5000 + " %}{{ n }}", True),
        ("hex.j2", "{{ 0x" + "f" * 5000 + " }}", True),
        ("underscores.j2", "{{ 1" + "_1" * 3000 + " }}", True),
        (
            "literal.prompt",
            "---\nmodel: gpt-4.1-mini\n---\n{{#if " + "1" * 5000 + "}}x{{/if}}",
            True,
        ),
        ("generic.txt", "Hi {{ " + "1" * 5000 + " }}", False),  # detection tries Jinja2
        ("long-text.j2", "An ID: " + "1" * 5000 + " (text, not a tag)", False),
    ],
)
def test_number_literals_python_will_not_convert_are_pb001(
    name: str, body: str, pb001: bool, run_bounded: RunBounded, make_project: MakeProject
) -> None:
    root = make_project(
        {"budgets.yaml": MANIFEST, "prompts/ok.j2": HEALTHY, f"prompts/{name}": body},
        dedent=False,
    )
    for fmt in ("json", "github"):
        run = run_bounded("check", "--format", fmt, cwd=root)
        run.assert_clean(0, 1)
    run = run_bounded("check", "--format", "json", cwd=root)
    _checked_the_rest(run)
    assert bool(_pb001_for(run, f"prompts/{name}")) is pb001, run.stdout[-2000:]


def test_a_number_literal_in_an_imported_or_included_file_is_pb001(
    run_bounded: RunBounded, make_project: MakeProject
) -> None:
    # The loader measures what it loads as the parser measures a template (a second crash the
    # campaign found: a macro file imported by another, parsed while looking for cycles).
    root = make_project(
        {
            "budgets.yaml": MANIFEST,
            "prompts/ok.j2": HEALTHY,
            "prompts/macros.j2": "{% macro m(n=" + "9" * 10017 + ") %}{{ n }}{% endmacro %}",
            "prompts/child.j2": '{% from "macros.j2" import m %}{{ m(3) }}{% include "inc.j2" %}',
            "prompts/inc.j2": "x {{ " + "8" * 6000 + " }}\n",
        },
        dedent=False,
    )
    run = run_bounded("check", "--format", "json", cwd=root)
    run.assert_clean(0, 1)
    _checked_the_rest(run)
    for name in ("child.j2", "macros.j2", "inc.j2"):
        assert _pb001_for(run, f"prompts/{name}"), (name, run.stdout[-2000:])
