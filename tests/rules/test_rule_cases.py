"""Rule cases are data: ``cases/PB101.yaml`` holds passing and failing projects for PB101.

Each case is a mapping:

``name``
    Short kebab-case name; the test id is ``PB101-<name>``.
``files``
    Relative path -> file text (``!!binary`` for bytes that are not UTF-8). Written as is, so
    line numbers in the case are line numbers in the project. ``budgets.yaml`` is required
    unless the case runs ``count``.
``before`` / ``edits`` (optional)
    Commands run first (e.g. ``[lock]``; each must exit 0), then files rewritten (path ->
    text): for rules about what changed since a command ran.
``command`` / ``args``
    ``check`` (default), ``count`` or ``replay``, and extra arguments (``count``: paths,
    ``--model``; ``replay``: the log files of ``files``, ``--since``, ``--compare-to``).
``expect``
    Every finding of the file's rule, as ``RULE@path:line`` (``:line`` only when the finding
    has a line, ``@path`` only when it has a path). Compared as a multiset with the findings
    of that rule only: ``[]`` is a passing case.
``messages`` (optional)
    Substrings that must each appear in the message of one of those findings.
``severity`` (optional)
    The severity every one of those findings must have.

The run must end with exit code 0 or 1 (2 is a failure of the test), and the exit code must be
1 exactly when some finding, of any rule, is an error (the default ``--fail-on``).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

import promptbudget.rules as rules_package
from conftest import Run
from promptbudget.rules import RULES, Rule

CASES_DIR = Path(__file__).resolve().parent / "cases"
CASE_KEYS = {
    "name",
    "files",
    "before",
    "edits",
    "command",
    "args",
    "expect",
    "messages",
    "severity",
}
EXPECT_PATTERN = re.compile(r"^(?P<rule>PB\d{3})(?:@(?P<path>[^:@]+)(?::(?P<line>\d+))?)?$")
NAME_PATTERN = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def load_case_file(path: Path) -> list[dict[str, Any]]:
    cases = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(cases, list), f"{path.name}: a case file is a list of cases"
    return cases


def collect_cases() -> list[Any]:
    return [
        pytest.param(path.stem, case, id=f"{path.stem}-{case.get('name')}")
        for path in sorted(CASES_DIR.glob("*.yaml"))
        for case in load_case_file(path)
    ]


def location(finding: dict[str, Any]) -> str:
    """``PB101@prompts/answer.j2:1`` for a finding of the JSON report."""
    text = finding["rule"]
    if finding["path"] is not None:
        text += f"@{finding['path']}"
    if finding["line"] is not None:
        text += f":{finding['line']}"
    return text


def check_case_shape(code: str, case: dict[str, Any]) -> None:
    """A malformed case is a mistake in the case file, reported as such."""
    assert isinstance(case, dict), f"{code}: a case is a mapping"
    unknown = set(case) - CASE_KEYS
    assert not unknown, f"{code}: unknown case keys {sorted(unknown)}"
    assert NAME_PATTERN.match(str(case.get("name"))), f"{code}: bad case name {case.get('name')!r}"
    assert case.get("command", "check") in {"check", "count", "replay"}
    assert isinstance(case.get("files"), dict) and case["files"], "a case needs files"
    if case.get("command", "check") in {"check", "replay"}:
        assert "budgets.yaml" in case["files"], "a check or replay case needs budgets.yaml"
    assert isinstance(case.get("expect"), list), "expect is a list (empty for a passing case)"
    for expected in case["expect"]:
        match = EXPECT_PATTERN.match(expected)
        assert match, f"{expected!r} is not RULE@path:line"
        assert match["rule"] == code, f"{expected!r} belongs in {match['rule']}.yaml"


@pytest.mark.parametrize(("code", "case"), collect_cases())
def test_rule_case(
    code: str,
    case: dict[str, Any],
    make_project: Callable[..., Path],
    run_cli: Callable[..., Run],
) -> None:
    check_case_shape(code, case)
    root = make_project(case["files"], dedent=False)
    for before in case.get("before", ()):
        done = run_cli(*before.split(), cwd=root)
        assert done.exit_code == 0, f"{before}: exit {done.exit_code}\n{done.stderr}"
    for name, text in case.get("edits", {}).items():
        (root / name).write_text(text, encoding="utf-8")
    command = case.get("command", "check")
    result = run_cli(command, *case.get("args", ()), "--format", "json", cwd=root)

    assert result.exit_code in {0, 1}, f"exit {result.exit_code}\n{result.stderr}"
    report = result.json()
    findings = report["findings"]
    has_error = any(f["severity"] == "error" for f in findings)
    assert result.exit_code == int(has_error), findings
    assert report["summary"]["exit_code"] == result.exit_code

    mine = [f for f in findings if f["rule"] == code]
    assert sorted(location(f) for f in mine) == sorted(case["expect"]), [
        f"{location(f)} [{f['severity']}] {f['message']}" for f in mine
    ]
    for fragment in case.get("messages", ()):
        assert any(fragment in f["message"] for f in mine), (
            fragment,
            [f["message"] for f in mine],
        )
    if "severity" in case:
        assert {f["severity"] for f in mine} == {case["severity"]}


# -- meta-tests: every rule is declared, documented and covered by cases ----------------------


def declared_rules() -> list[Rule]:
    """Every Rule object in the rule modules (every module of the package), registered or
    not."""
    modules = [
        importlib.import_module(f"promptbudget.rules.{info.name}")
        for info in pkgutil.iter_modules(rules_package.__path__)
    ]
    return [obj for module in modules for obj in vars(module).values() if isinstance(obj, Rule)]


def test_every_declared_rule_is_registered_once() -> None:
    codes = [r.code for r in declared_rules()]
    assert len(codes) == len(set(codes)), "a rule code is declared twice"
    assert set(codes) == set(RULES)
    assert all(RULES[r.code] is r for r in declared_rules())


@pytest.mark.parametrize("code", list(RULES))
def test_rule_code_slug_and_docstring(code: str) -> None:
    rule = RULES[code]
    assert rule.code == code
    assert re.fullmatch(r"PB\d{3}", code)
    assert re.fullmatch(r"[a-z]+(?:-[a-z]+)*", rule.slug), rule.slug
    assert rule.summary.strip()
    for section in ("Why", "Fails", "Passes"):
        assert section in rule.doc, f"{code}'s docstring has no {section} section"


def test_slugs_are_unique() -> None:
    slugs = [r.slug for r in RULES.values()]
    assert len(slugs) == len(set(slugs))


@pytest.mark.parametrize("code", list(RULES))
def test_every_rule_has_failing_and_passing_cases(code: str) -> None:
    path = CASES_DIR / f"{code}.yaml"
    assert path.is_file(), f"no case file {path.name}"
    cases = load_case_file(path)
    names = [case.get("name") for case in cases]
    assert len(names) == len(set(names)), f"{path.name}: duplicate case names"
    assert any(case.get("expect") for case in cases), f"{path.name}: no failing case"
    assert any(case.get("expect") == [] for case in cases), f"{path.name}: no passing case"


def test_no_case_file_for_an_unknown_rule() -> None:
    assert {p.stem for p in CASES_DIR.glob("*.yaml")} <= set(RULES)


@pytest.mark.parametrize("code", list(RULES))
def test_explain_prints_the_docstring_by_code_and_slug(
    code: str, run_cli: Callable[..., Run]
) -> None:
    rule = RULES[code]
    for name in (code, rule.slug):
        result = run_cli("explain", name)
        assert result.exit_code == 0, result.stderr
        assert result.stderr == ""
        assert result.stdout.startswith(f"{code} {rule.slug}")
        assert rule.plain_doc in result.stdout  # the docstring, ``x`` shown as `x`


def test_explain_unknown_rule_is_a_one_line_usage_error(run_cli: Callable[..., Run]) -> None:
    result = run_cli("explain", "PB999")
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("promptbudget: error: ")
    assert "PB999" in lines[0]
