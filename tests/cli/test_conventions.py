"""CLI conventions (ruff and eslint as the reference): bare invocation, -V, -q/-v, grouped
info findings, colour control, --select/--ignore, fail_on in the config, check -w."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import EXAMPLES, Run
from promptbudget import __version__
from promptbudget.cli import ColorMode
from promptbudget.cli.output import use_color

RunCli = Callable[..., Run]
OVER_BUDGET = EXAMPLES / "over-budget"


def test_bare_invocation_prints_the_formatted_help(run_cli: RunCli) -> None:
    result = run_cli()
    assert result.exit_code == 2  # as ruff: nothing was asked
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0] == "Usage: promptbudget [OPTIONS] COMMAND [ARGS]..."
    assert "Commands:" in lines  # a heading on its own line, not a squashed paragraph
    assert any(line.split()[:1] == ["check"] for line in lines)
    assert "error" not in result.stdout.lower().split("commands:")[0]


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version(flag: str, run_cli: RunCli) -> None:
    result = run_cli(flag)
    assert (result.exit_code, result.stdout) == (0, f"promptbudget {__version__}\n")


def test_completion_is_offered(run_cli: RunCli) -> None:
    help_text = run_cli("--help").stdout
    assert "--install-completion" in help_text
    assert "--show-completion" in help_text


def test_quiet_prints_only_what_fails(run_cli: RunCli) -> None:
    result = run_cli("check", "-q", cwd=OVER_BUDGET)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    # examples/over-budget: 4 errors (PB101, PB106, PB107, PB108), warnings and an info
    assert [line for line in lines if "[error]" in line] == lines[:4]
    assert "[warning]" not in result.stdout and "[info]" not in result.stdout
    assert not any(line.startswith(("workflow ", "budget ")) for line in lines)  # no tables
    assert len(lines) == 4 + 2  # the errors, a blank line, the summary
    assert lines[-1].startswith("✗ 4 errors, 4 warnings, 1 info")


def test_quiet_and_verbose_exclude_each_other(run_cli: RunCli) -> None:
    result = run_cli("check", "-q", "-v", cwd=EXAMPLES)
    assert result.exit_code == 2
    assert "--quiet and --verbose" in result.stderr


@pytest.fixture
def four_claude_templates(make_project: Callable[..., Path]) -> Path:
    files = {"budgets.yaml": "version: 1\ndefaults: {model: claude-sonnet-4-6}\n"}
    files |= {f"prompts/p{i}.txt": f"Say hello number {i}.\n" for i in range(1, 5)}
    return make_project(files)


def test_info_findings_are_one_line_per_cause_unless_verbose(
    run_cli: RunCli, four_claude_templates: Path
) -> None:
    grouped = run_cli("check", cwd=four_claude_templates).stdout
    assert grouped.count("PB301") == 1
    assert "(and 3 more like it; -v lists each)" in grouped
    assert "4 info" in grouped  # the summary still counts every one
    verbose = run_cli("check", "-v", cwd=four_claude_templates).stdout
    assert verbose.count("PB301") == 4
    assert "more like it" not in verbose


@pytest.mark.parametrize(
    ("mode", "environ", "tty", "expected"),
    [
        (ColorMode.AUTO, {}, True, True),
        (ColorMode.AUTO, {}, False, False),
        (ColorMode.AUTO, {"NO_COLOR": "1"}, True, False),
        (ColorMode.AUTO, {"NO_COLOR": ""}, True, True),  # no-color.org: empty means unset
        (ColorMode.AUTO, {"FORCE_COLOR": "1"}, False, True),
        (ColorMode.AUTO, {"FORCE_COLOR": "0"}, False, False),
        (ColorMode.AUTO, {"FORCE_COLOR": "1", "NO_COLOR": "1"}, False, False),
        (ColorMode.ALWAYS, {"NO_COLOR": "1"}, False, True),
        (ColorMode.NEVER, {"FORCE_COLOR": "1"}, True, False),
    ],
)
def test_color_decision(
    mode: ColorMode,
    environ: dict[str, str],
    tty: bool,
    expected: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdout.isatty", lambda: tty)
    assert use_color(mode, None, environ) is expected


def test_force_color_and_color_flag_through_the_cli(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert "\x1b[" in run_cli("check", cwd=OVER_BUDGET).stdout
    assert "\x1b[" not in run_cli("check", "--color", "never", cwd=OVER_BUDGET).stdout
    monkeypatch.delenv("FORCE_COLOR")
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" in run_cli("check", "--color", "always", cwd=OVER_BUDGET).stdout


def _rules(result: Run) -> set[str]:
    return {f["rule"] for f in result.json()["findings"]}


def test_select_and_ignore_on_the_command_line(run_cli: RunCli) -> None:
    args = ("check", "--format", "json")
    assert _rules(run_cli(*args, cwd=OVER_BUDGET)) == {
        "PB101", "PB106", "PB107", "PB108", "PB113", "PB115", "PB116", "PB203", "PB301",
    }  # fmt: skip
    selected = run_cli(*args, "--select", "PB1", "--ignore", "PB106,monthly-spend-over-budget",
                       cwd=OVER_BUDGET)  # fmt: skip
    assert _rules(selected) == {"PB101", "PB108", "PB113", "PB115", "PB116"}
    assert selected.exit_code == 1
    only_warning = run_cli(*args, "--select", "cache-unfriendly-prefix", cwd=OVER_BUDGET)
    assert _rules(only_warning) == {"PB203"}
    assert only_warning.exit_code == 0  # a warning, below the default --fail-on
    bad = run_cli("check", "--ignore", "PB9999", cwd=OVER_BUDGET)
    assert bad.exit_code == 2
    assert "unknown rule 'PB9999'" in bad.stderr


def test_select_ignore_and_fail_on_in_budgets_yaml(
    run_cli: RunCli, four_claude_templates: Path
) -> None:
    manifest = four_claude_templates / "budgets.yaml"
    manifest.write_text(
        "version: 1\ndefaults: {model: claude-sonnet-4-6}\nfail_on: info\n", encoding="utf-8"
    )
    assert run_cli("check", cwd=four_claude_templates).exit_code == 1  # 4 PB301 infos
    assert run_cli("check", "--fail-on", "error", cwd=four_claude_templates).exit_code == 0
    manifest.write_text(manifest.read_text(encoding="utf-8") + "ignore: [estimated-count]\n")
    result = run_cli("check", "--format", "json", cwd=four_claude_templates)
    assert (result.exit_code, result.json()["findings"]) == (0, [])


def test_fail_on_in_pyproject(run_cli: RunCli, make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "pyproject.toml": """\
                [tool.promptbudget]
                version = 1
                defaults = { model = "claude-sonnet-4-6" }
                fail_on = "info"
                select = ["PB3"]
            """,
            "prompts/a.txt": "Say hello.\n",
        }
    )
    result = run_cli("check", "--format", "json", cwd=root)
    assert result.exit_code == 1
    assert _rules(result) == {"PB301"}


def test_fail_on_increase_in_budgets_yaml_is_validated(
    run_cli: RunCli, four_claude_templates: Path
) -> None:
    manifest = four_claude_templates / "budgets.yaml"
    manifest.write_text("version: 1\nfail_on_increase: lots\n", encoding="utf-8")
    result = run_cli("check", cwd=four_claude_templates)
    assert result.exit_code == 2
    assert "budgets.yaml:2" in result.stderr
    assert "a percentage such as 10%" in result.stderr


def test_check_one_workflow(run_cli: RunCli) -> None:
    data = run_cli("check", "-w", "ticket-summary", "--format", "json", cwd=OVER_BUDGET).json()
    assert [w["name"] for w in data["workflows"]] == ["ticket-summary"]
    assert data["summary"]["exit_code"] == 0  # support-reply's broken budgets are not checked
    unknown = run_cli("check", "-w", "nope", cwd=OVER_BUDGET)
    assert unknown.exit_code == 2
    assert "no workflow named 'nope'" in unknown.stderr


@pytest.mark.parametrize(
    "command",
    [
        "count",
        "check",
        "estimate",
        "compress",
        "lock",
        "baseline",
        "diff",
        "models",
        "replay",
        "init",
        "explain",
        "rules",
    ],
)
def test_help_names_what_to_type_never_a_python_type(
    run_cli: RunCli, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Typer's default would print the annotation next to an argument or option: <list[Path]>,
    # <str>, <int range>, <path>. Every value is named by a metavar a user can type instead.
    monkeypatch.setenv("COLUMNS", "200")
    help_text = run_cli(command, "--help").stdout
    assert "Usage:" in help_text
    python_types = re.findall(
        r"<(?:list\[\w+\]|str|int|float|path|int range|float range)>", help_text
    )
    assert python_types == [], python_types
