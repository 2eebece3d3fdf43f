"""``promptbudget baseline``: limits at today's values plus headroom, written into
budgets.yaml without disturbing the rest of it."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import EXAMPLES, Run
from promptbudget.baseline import format_limit, round_up

RunCli = Callable[..., Run]


@pytest.mark.parametrize(
    ("value", "integer", "expected"),
    [
        ("5326.25", True, "5400"),
        ("7", True, "7"),
        ("1.25", True, "2"),
        ("99.2", True, "100"),
        ("100", True, "100"),
        ("101", True, "110"),
        ("0", True, "0"),
        ("0.0136375", False, "0.014"),
        ("0.014", False, "0.014"),
        ("6157.38", False, "6200"),
        ("20995.73", False, "21000"),
    ],
)
def test_round_up_to_two_significant_digits(value: str, integer: bool, expected: str) -> None:
    rounded = round_up(Decimal(value), integer=integer)
    assert rounded == Decimal(expected)
    assert rounded >= Decimal(value)


@pytest.mark.parametrize(
    ("key", "value", "flow", "expected"),
    [
        ("max_input_tokens", "5400", False, "5.4k"),
        ("max_input_tokens", "12000", False, "12k"),
        ("max_input_tokens", "430", False, "430"),
        ("max_input_tokens", "1050", False, "1050"),
        ("max_cost_per_request", "0.014", False, "$0.014"),
        ("max_monthly_spend", "21000", False, "$21,000"),
        ("max_monthly_spend", "21000", True, "'$21,000'"),
        ("max_monthly_spend", "6200", False, "$6,200"),
        ("max_monthly_spend", "45", False, "$45"),
        ("max_monthly_spend", "6.3", False, "$6.30"),
        ("max_cost_per_request", "0.00003", False, "$0.00003"),
    ],
)
def test_format_limit(key: str, value: str, flow: bool, expected: str) -> None:
    assert format_limit(key, Decimal(value), flow=flow) == expected


@pytest.fixture
def over_budget(tmp_path: Path) -> Path:
    root = tmp_path / "over"
    shutil.copytree(EXAMPLES / "over-budget", root)
    return root


def test_over_budget_project_passes_after_baseline(run_cli: RunCli, over_budget: Path) -> None:
    manifest = over_budget / "budgets.yaml"
    before = manifest.read_text(encoding="utf-8")
    failing = run_cli("check", "--format", "json", cwd=over_budget).json()
    measured = {
        (f["workflow"], f["rule"]): f["measured"]
        for f in failing["findings"]
        if f["severity"] == "error"
    }
    assert len(measured) == 4
    run = run_cli("baseline", "--raise", cwd=over_budget)
    assert run.exit_code == 0, run.stderr
    assert "support-reply: max_input_tokens 8k -> 12k (raised; measured 8,951)" in run.stdout
    assert "4 raised" in run.stderr
    after = manifest.read_text(encoding="utf-8")
    # Only limit lines changed: every comment and every other line is where it was.
    removed = set(before.splitlines()) - set(after.splitlines())
    assert removed and all(line.strip().startswith("max_") for line in removed)
    assert [line for line in before.splitlines() if "#" in line] == [
        line for line in after.splitlines() if "#" in line
    ]
    check = run_cli("check", "--format", "json", cwd=over_budget)
    assert check.exit_code == 0, check.stdout
    assert not [f for f in check.json()["findings"] if f["severity"] == "error"]
    again = run_cli("baseline", "--raise", cwd=over_budget)
    assert again.stdout == ""
    assert "every limit already holds; nothing to change" in again.stderr
    assert manifest.read_text(encoding="utf-8") == after


def test_limits_that_hold_are_never_lowered(run_cli: RunCli, tmp_path: Path) -> None:
    root = tmp_path / "p"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("over-budget"))
    manifest = root / "budgets.yaml"
    before = manifest.read_text(encoding="utf-8")
    run = run_cli("baseline", "--headroom", "0%", cwd=root)
    assert run.exit_code == 0, run.stderr
    assert "raised" not in run.stdout
    after = manifest.read_text(encoding="utf-8")
    assert set(before.splitlines()) <= set(after.splitlines())  # only additions


def test_diff_writes_nothing(run_cli: RunCli, over_budget: Path) -> None:
    manifest = over_budget / "budgets.yaml"
    before = manifest.read_bytes()
    run = run_cli("baseline", "--diff", "--raise", cwd=over_budget)
    assert run.exit_code == 0
    assert run.stdout.startswith("--- a/budgets.yaml\n+++ b/budgets.yaml\n")
    assert "-      max_input_tokens: 8k\n+      max_input_tokens: 12k\n" in run.stdout
    assert manifest.read_bytes() == before


def _project(make_project: Callable[..., Path], manifest: str | bytes) -> Path:
    return make_project(
        {
            "budgets.yaml": manifest,
            "prompts/a.j2": "You answer questions about Acme's products in two sentences.\n",
        },
        dedent=False,
    )


def test_a_workflow_without_limits_gets_a_limits_block(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    # a.j2 is 19 request tokens at gpt-4.1-mini ($0.40 in, $1.60 out per MTok). faq: 19 x 0.40
    # + 100 x 1.60 = $0.0001676 a request, x 30,000 a month = $5.028; + 25%, rounded up to
    # two significant digits: 24 tokens, 130 output, $0.00021, $6.30.
    root = _project(
        make_project,
        "version: 1\n"
        "defaults: {model: gpt-4.1-mini}\n"
        "workflows:\n"
        "  faq:   # the FAQ bot\n"
        "    traffic: {requests_per_day: 1000}\n"
        "    steps:\n"
        "      - prompt: a.j2\n"
        "        output_tokens: 100\n"
        "  other:\n"
        "    steps:\n"
        "      - prompt: a.j2\n"
        "        output_tokens: 10",  # no final newline
    )
    run = run_cli("baseline", cwd=root)
    assert run.exit_code == 0, run.stderr
    assert (root / "budgets.yaml").read_text(encoding="utf-8") == (
        "version: 1\n"
        "defaults: {model: gpt-4.1-mini}\n"
        "workflows:\n"
        "  faq:   # the FAQ bot\n"
        "    traffic: {requests_per_day: 1000}\n"
        "    steps:\n"
        "      - prompt: a.j2\n"
        "        output_tokens: 100\n"
        "    limits:  # promptbudget baseline\n"
        "      max_input_tokens: 24\n"
        "      max_output_tokens: 130\n"
        "      max_turns: 2\n"
        "      max_cost_per_request: $0.00021\n"
        "      max_monthly_spend: $6.30\n"
        "  other:\n"
        "    steps:\n"
        "      - prompt: a.j2\n"
        "        output_tokens: 10\n"
        "    limits:  # promptbudget baseline\n"
        "      max_input_tokens: 24\n"
        "      max_output_tokens: 13\n"
        "      max_turns: 2\n"
        "      max_cost_per_request: $0.00003\n"
    )
    assert "faq: max_monthly_spend absent -> $6.30 (added; measured $5.03)" in run.stdout
    check = run_cli("check", "--format", "json", cwd=root)
    assert check.exit_code == 0
    assert check.json()["findings"] == []


def test_flow_style_limits_are_edited_in_place(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    root = _project(
        make_project,
        "version: 1\n"
        "defaults: {model: gpt-4.1-mini}\n"
        "workflows:\n"
        "  faq:\n"
        "    traffic: {requests_per_day: 1000000}\n"
        "    steps: [{prompt: a.j2, output_tokens: 100}]\n"
        "    limits: {max_input_tokens: 10, max_monthly_spend: $1}  # too tight\n",
    )
    run = run_cli("baseline", "--raise", cwd=root)
    assert run.exit_code == 0, run.stderr
    assert (root / "budgets.yaml").read_text(encoding="utf-8").splitlines()[-1] == (
        "    limits: {max_input_tokens: 24, max_monthly_spend: '$6,300', max_output_tokens: 130, "
        "max_turns: 2, max_cost_per_request: $0.00021}  # too tight"
    )
    assert run_cli("check", cwd=root).exit_code == 0


def test_anchored_limits_are_skipped_and_left_alone(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    manifest = (
        "version: 1\n"
        "defaults: {model: gpt-4.1-mini}\n"
        "workflows:\n"
        "  faq:\n"
        "    steps: [{prompt: a.j2, output_tokens: 100}]\n"
        "    limits: &tight {max_input_tokens: 10}\n"
        "  other:\n"
        "    steps: [{prompt: a.j2, output_tokens: 100}]\n"
        "    limits: *tight\n"
    )
    root = _project(make_project, manifest)
    run = run_cli("baseline", cwd=root)
    assert run.exit_code == 0, run.stderr
    assert "skipped workflow 'faq': its limits come from a YAML anchor" in run.stderr
    assert "skipped workflow 'other'" in run.stderr
    assert (root / "budgets.yaml").read_text(encoding="utf-8") == manifest


def test_crlf_and_bom_are_kept(run_cli: RunCli, make_project: Callable[..., Path]) -> None:
    manifest = (
        "\ufeffversion: 1\r\n"
        "defaults: {model: gpt-4.1-mini}\r\n"
        "workflows:\r\n"
        "  faq:\r\n"
        "    steps:\r\n"
        "      - prompt: a.j2\r\n"
        "        output_tokens: 100\r\n"
        "    limits:\r\n"
        "      max_input_tokens: 10\r\n"
    ).encode("utf-8")
    root = _project(make_project, manifest)
    assert run_cli("baseline", "--raise", cwd=root).exit_code == 0
    data = (root / "budgets.yaml").read_bytes()
    assert data.startswith(b"\xef\xbb\xbfversion: 1\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"      max_input_tokens: 24\r\n      max_output_tokens: 130\r\n" in data
    assert run_cli("check", cwd=root).exit_code == 0


@pytest.mark.parametrize("headroom", ["25", "abc%", "-5%", "nan%"])
def test_bad_headroom(run_cli: RunCli, over_budget: Path, headroom: str) -> None:
    run = run_cli("baseline", "--headroom", headroom, cwd=over_budget)
    assert run.exit_code == 2
    assert "write a percentage such as 25%" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_only_one_workflow(run_cli: RunCli, over_budget: Path) -> None:
    run = run_cli("baseline", "--workflow", "ticket-summary", cwd=over_budget)
    assert run.exit_code == 0
    assert run.stdout.splitlines() == ["ticket-summary: max_turns absent -> 2 (added; measured 1)"]


def test_the_edit_is_verified_in_memory_not_through_a_fixed_scratch_file(
    run_cli: RunCli, over_budget: Path
) -> None:
    """Two baselines at once once read each other's probe file (``.budgets.yaml.baseline``);
    a directory squatting on that name shows none is used any more."""
    (over_budget / ".budgets.yaml.baseline").mkdir()
    before = {p.name for p in over_budget.iterdir()}
    run = run_cli("baseline", "--raise", cwd=over_budget)
    assert run.exit_code == 0, run.stderr
    assert "max_input_tokens 8k -> 12k" in run.stdout
    assert {p.name for p in over_budget.iterdir()} == before


def test_limits_you_wrote_are_kept_and_listed_without_raise(
    run_cli: RunCli, over_budget: Path
) -> None:
    """The issue's case: a $6,000 monthly limit is a decision, not a measurement."""
    manifest = over_budget / "budgets.yaml"
    before = manifest.read_text(encoding="utf-8")
    run = run_cli("baseline", cwd=over_budget)
    assert run.exit_code == 0, run.stderr
    assert (
        "promptbudget: support-reply: max_monthly_spend $6,000 kept; measured $16,754.55 "
        "(--raise would write $21,000)"
    ) in run.stderr
    assert "4 limits you wrote break today and were kept" in run.stderr
    assert "raised" not in run.stdout
    after = manifest.read_text(encoding="utf-8")
    assert "max_monthly_spend: $6,000" in after and "max_input_tokens: 8k" in after
    assert set(before.splitlines()) <= set(after.splitlines())  # only additions
    assert run_cli("check", cwd=over_budget).exit_code == 1  # still over: the user decides


STEP_AND_TEMPLATE = """\
version: 1
defaults:
  model: gpt-4.1-mini
templates:
  prompts/a.j2:
    max_tokens: 5               # deliberately tight
  "prompts/*.j2":
    max_tokens: {o200k_base: 6, gpt-4.1: 7}
workflows:
  faq:
    traffic: {requests_per_day: 100}
    steps:
      - prompt: a.j2
        output_tokens: 50
        limits:
          max_input_tokens: 10  # the step's own budget
    limits:
      max_monthly_spend: $1,500
"""


def test_step_and_template_limits_are_planned(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    root = _project(make_project, STEP_AND_TEMPLATE)
    counts = run_cli("count", "--format", "json", cwd=root).json()["templates"]
    tokens = counts[0]["text_tokens"]  # the same for gpt-4.1-mini, gpt-4.1 and o200k_base
    target = -(-tokens * 125 // 100)  # + 25%, rounded up (below 100: a whole number)
    kept = run_cli("baseline", cwd=root)
    assert "faq/a: max_input_tokens 10 kept; measured " in kept.stderr
    assert (
        f"prompts/a.j2 (gpt-4.1-mini): max_tokens 5 kept; measured {tokens} "
        f"(--raise would write {target})"
    ) in kept.stderr
    assert "prompts/a.j2 (o200k_base): max_tokens 6 kept" in kept.stderr
    assert "prompts/a.j2 (gpt-4.1): max_tokens 7 kept" in kept.stderr
    assert run_cli("check", cwd=root).exit_code == 1
    raised = run_cli("baseline", "--raise", cwd=root)
    assert raised.exit_code == 0, raised.stderr
    assert f"prompts/a.j2 (gpt-4.1-mini): max_tokens 5 -> {target} (raised; " in raised.stdout
    assert "faq/a: max_input_tokens 10 -> " in raised.stdout
    text = (root / "budgets.yaml").read_text(encoding="utf-8")
    assert f"    max_tokens: {target}               # deliberately tight\n" in text
    assert f"    max_tokens: {{o200k_base: {target}, gpt-4.1: {target}}}\n" in text
    assert "# the step's own budget" in text
    assert run_cli("check", cwd=root).exit_code == 0


def test_a_measured_value_budgets_yaml_cannot_hold_is_one_line(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    """p95 a billion times p50: the cost limit baseline would write is past the schema's
    maximum amount. One line naming the limit, exit 2, budgets.yaml untouched (it said
    ``budgets.yaml:12:``, a line of the edit that was never written, and "This is a bug")."""
    manifest = (
        "version: 1\ndefaults: {model: gpt-4.1-mini}\nworkflows:\n  w:\n"
        "    traffic: {requests_per_day: 100}\n    steps:\n"
        "      - {name: s, prompt: a.j2, output_tokens: {p50: 1, p95: 1000000000}}\n"
    )
    root = _project(make_project, manifest)
    for args in (("baseline", "--diff"), ("baseline",)):
        run = run_cli(*args, cwd=root)
        assert run.exit_code == 2, run.stderr
        assert run.stdout == ""
        (line,) = run.stderr.splitlines()
        assert line.startswith(
            "promptbudget: error: baseline cannot write the limits it measured for "
            "workflows.w.limits.max_cost_per_request: "
        ), line
        assert "budgets.yaml was not changed" in line and "budgets.yaml:" not in line
        assert (root / "budgets.yaml").read_text(encoding="utf-8") == manifest
