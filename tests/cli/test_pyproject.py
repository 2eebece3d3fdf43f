"""``[tool.promptbudget]`` in pyproject.toml as the manifest."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Run
from promptbudget.manifest.pyproject import load_tool_table

RunCli = Callable[..., Run]

PROMPT = "You answer questions about Acme's products in two sentences.\n"

PYPROJECT = """\
[project]
name = "acme-support"

[tool.ruff]
line-length = 100

[tool.promptbudget]
version = 1
defaults = { model = "gpt-4.1-mini" }
rules = { PB201 = "off" }

[tool.promptbudget.workflows.faq]
traffic = { requests_per_day = 100000 }

[[tool.promptbudget.workflows.faq.steps]]
prompt = "a.j2"
output_tokens = 100

[tool.promptbudget.workflows.faq.limits]
max_input_tokens = "1k"
max_monthly_spend = "$400"
"""


def test_check_reads_the_tool_table(run_cli: RunCli, make_project: Callable[..., Path]) -> None:
    root = make_project({"pyproject.toml": PYPROJECT, "prompts/a.j2": PROMPT})
    run = run_cli("check", "--format", "json", cwd=root)
    assert run.exit_code == 1, run.stderr
    (finding,) = run.json()["findings"]
    # $0.0001676 a request x 3,000,000 a month = $502.80, over $400; the line of the limit
    assert (finding["rule"], finding["path"], finding["line"]) == ("PB107", "pyproject.toml", 21)
    assert finding["measured"] == pytest.approx(502.8)


def test_budgets_yaml_next_to_it_wins(run_cli: RunCli, make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "pyproject.toml": PYPROJECT,
            "budgets.yaml": "version: 1\ndefaults: {model: gpt-4.1-mini}\n",
            "prompts/a.j2": PROMPT,
        }
    )
    run = run_cli("check", "--format", "json", cwd=root)
    assert run.exit_code == 0
    assert run.json()["workflows"] == []


def test_the_nearest_manifest_wins(run_cli: RunCli, make_project: Callable[..., Path]) -> None:
    root = make_project(
        {
            "budgets.yaml": "version: 1\ndefaults: {model: gpt-4.1-mini}\n",
            "service/pyproject.toml": PYPROJECT,
            "service/prompts/a.j2": PROMPT,
        }
    )
    run = run_cli("check", "--format", "json", cwd=root / "service/prompts")
    assert [w["name"] for w in run.json()["workflows"]] == ["faq"]


def test_a_pyproject_without_the_table_is_passed_over(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    root = make_project(
        {
            "budgets.yaml": "version: 1\ndefaults: {model: gpt-4.1-mini}\n",
            "service/pyproject.toml": '[project]\nname = "promptbudget-fan"\n',
        }
    )
    run = run_cli("check", "--format", "json", cwd=root / "service")
    assert run.exit_code == 0, run.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            PYPROJECT.replace('max_input_tokens = "1k"', 'max_input_tokens = "lots"'),
            "pyproject.toml:20: 'lots' is not valid here",
        ),
        (PYPROJECT.replace("version = 1", "version = 2"), "pyproject.toml:8:"),
        (PYPROJECT.replace('"$400"', '"$400'), "pyproject.toml:21: is not valid TOML"),
        (
            PYPROJECT.replace(
                "[tool.promptbudget.workflows.faq.limits]",
                "[tool.promptbudget.workflows.faq.limit]",
            ),
            "pyproject.toml:19:",
        ),
    ],
)
def test_errors_name_the_pyproject_line(
    run_cli: RunCli, make_project: Callable[..., Path], text: str, message: str
) -> None:
    root = make_project({"pyproject.toml": text, "prompts/a.j2": PROMPT})
    run = run_cli("check", cwd=root)
    assert run.exit_code == 2
    assert message in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_every_error_of_the_tool_table_in_one_run(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    text = PYPROJECT.replace("defaults = {", "default = {").replace(
        'max_input_tokens = "1k"', 'max_input_tokens = "lots"'
    )
    root = make_project({"pyproject.toml": text, "prompts/a.j2": PROMPT})
    run = run_cli("check", cwd=root)
    assert run.exit_code == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 2, run.stderr
    assert lines[0].startswith("promptbudget: error: pyproject.toml:9: unknown key 'default'")
    assert lines[1].startswith("promptbudget: error: pyproject.toml:20: 'lots' is not valid")


def test_config_option_with_a_pyproject_without_the_table(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    root = make_project({"pyproject.toml": '[project]\nname = "x"\n'})
    run = run_cli("check", "--config", "pyproject.toml", cwd=root)
    assert run.exit_code == 2
    assert "has no [tool.promptbudget] table" in run.stderr


def test_line_map_of_tables_arrays_and_dotted_keys() -> None:
    _, lines = load_tool_table(PYPROJECT, "pyproject.toml")
    assert lines["$"] == 7
    assert lines["$.defaults"] == 9
    assert lines["$.workflows.faq"] == 12
    assert lines["$.workflows.faq.traffic"] == 13
    assert lines["$.workflows.faq.steps[0]"] == 15
    assert lines["$.workflows.faq.steps[0].prompt"] == 16
    assert lines["$.workflows.faq.limits.max_monthly_spend"] == 21
    assert not any(path.startswith("$.line-length") for path in lines)  # [tool.ruff] is not ours
