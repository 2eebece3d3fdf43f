"""Where findings are shown: relative to the current directory in what a person reads (text,
JSON, Markdown, JUnit), relative to the repository (or the project) in what GitHub resolves
(annotations, SARIF)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import EXAMPLES, Run

RunCli = Callable[..., Run]


@pytest.fixture
def monorepo(tmp_path: Path) -> Path:
    """The over-budget example as one service of a monorepo: services/bot/."""
    shutil.copytree(EXAMPLES / "over-budget", tmp_path / "services" / "bot")
    return tmp_path


def _locations(stdout: str) -> list[str]:
    return [line.split(": ", 1)[0] for line in stdout.splitlines() if ": PB" in line]


def test_from_the_monorepo_root_paths_name_the_service(run_cli: RunCli, monorepo: Path) -> None:
    run = run_cli(
        "check", "--format", "text", "--config", "services/bot/budgets.yaml", cwd=monorepo
    )
    assert run.exit_code == 1
    found = _locations(run.stdout)
    assert "services/bot/budgets.yaml:69" in found  # PB107 at its limit's line
    assert "services/bot/prompts/support/answer.prompty:25" in found  # PB203
    assert all(place.startswith("services/bot/") for place in found), found


def test_from_a_subfolder_paths_climb_out(run_cli: RunCli, monorepo: Path) -> None:
    here = monorepo / "services" / "bot" / "prompts" / "support"
    run = run_cli("check", "--format", "json", cwd=here)
    findings = json.loads(run.stdout)["findings"]
    paths = {(f["rule"], f["path"], f["line"]) for f in findings}
    assert ("PB107", "../../budgets.yaml", 69) in paths
    assert ("PB203", "answer.prompty", 25) in paths
    templates = {t["path"] for t in json.loads(run.stdout)["templates"]}
    assert "answer.prompty" in templates and "../partials/policy.j2" in templates
    text = run_cli("check", "--format", "text", cwd=here)
    assert "../../budgets.yaml:69" in _locations(text.stdout)
    junit = run_cli("check", "--format", "junit", cwd=here)
    assert 'file="../../budgets.yaml"' in junit.stdout


def test_github_and_sarif_paths_are_the_repository_s(
    run_cli: RunCli, monorepo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here = monorepo / "services" / "bot" / "prompts"
    outside = run_cli("check", "--format", "github", cwd=here)
    assert "::error file=budgets.yaml,line=69," in outside.stdout  # no workspace: the project's
    monkeypatch.setenv("GITHUB_WORKSPACE", str(monorepo))
    inside = run_cli("check", "--format", "github", cwd=here)
    assert "::error file=services/bot/budgets.yaml,line=69," in inside.stdout
    sarif = json.loads(run_cli("check", "--format", "sarif", cwd=here).stdout)
    uris = {
        location["physicalLocation"]["artifactLocation"]["uri"]
        for result in sarif["runs"][0]["results"]
        for location in result["locations"]
    }
    assert "services/bot/budgets.yaml" in uris
    assert "services/bot/prompts/support/answer.prompty" in uris
