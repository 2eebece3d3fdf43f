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


@pytest.fixture
def tight_monorepo(monorepo: Path) -> Path:
    """The service with answer.prompty's templates: limit at 5k (it has 6,256 tokens)."""
    manifest = monorepo / "services" / "bot" / "budgets.yaml"
    text = manifest.read_text(encoding="utf-8")
    assert "support/answer.prompty: {max_tokens: 7k}" in text
    manifest.write_text(
        text.replace(
            "support/answer.prompty: {max_tokens: 7k}", "support/answer.prompty: {max_tokens: 5k}"
        ),
        encoding="utf-8",
    )
    return monorepo


def _message(stdout: str, rule: str) -> str:
    (line,) = [line for line in stdout.splitlines() if f" {rule} " in line or f"={rule} " in line]
    return line


def test_paths_inside_messages_move_with_the_location(
    run_cli: RunCli, tight_monorepo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``(budgets.yaml:104)`` in PB111 and the include chain read as the location does:
    from the current directory in text/JSON, from the repository in github/SARIF."""
    root = tight_monorepo
    text = run_cli("check", "--config", "services/bot/budgets.yaml", cwd=root).stdout
    pb111 = _message(text, "PB111")
    assert pb111.startswith("services/bot/prompts/support/answer.prompty:1: PB111")
    assert "(services/bot/budgets.yaml:104)" in pb111
    assert "for services/bot/prompts/support/answer.prompty by 1,256" in pb111
    here = root / "services" / "bot" / "prompts" / "support"
    findings = json.loads(run_cli("check", "--format", "json", cwd=here).stdout)["findings"]
    (found,) = [f for f in findings if f["rule"] == "PB111"]
    assert found["path"] == "answer.prompty"
    assert "(../../budgets.yaml:104)" in found["message"]
    assert "largest include: answer.prompty → ../partials/policy.j2" in found["message"]
    # github: the project's paths without a workspace, the repository's inside one
    outside = _message(run_cli("check", "--format", "github", cwd=here).stdout, "PB111")
    assert "(budgets.yaml:104)" in outside
    assert "prompts/support/answer.prompty → prompts/partials/policy.j2" in outside
    monkeypatch.setenv("GITHUB_WORKSPACE", str(root))
    inside = _message(run_cli("check", "--format", "github", cwd=here).stdout, "PB111")
    assert "(services/bot/budgets.yaml:104)" in inside
    assert "services/bot/prompts/support/answer.prompty → services/bot/prompts/partials" in inside
    sarif = json.loads(run_cli("check", "--format", "sarif", cwd=here).stdout)
    messages = [r["message"]["text"] for r in sarif["runs"][0]["results"]]
    assert any("(services/bot/budgets.yaml:104)" in m for m in messages), messages


def test_a_template_over_its_limit_names_its_largest_include(
    run_cli: RunCli, tight_monorepo: Path
) -> None:
    """PB111 and PB101 on answer.prompty, which includes partials/policy.j2: the chain and
    the partial's tokens (counted here with tiktoken's o200k_base, gpt-4.1's encoding, on the
    bundled rank file)."""
    from promptbudget.tokenizers import load_encoding

    bot = tight_monorepo / "services" / "bot"
    policy = (bot / "prompts" / "partials" / "policy.j2").read_text(encoding="utf-8")
    tokens = len(load_encoding("o200k_base").encode_ordinary(policy))
    stdout = run_cli("check", cwd=bot).stdout
    chain = (
        "; largest include: prompts/support/answer.prompty → prompts/partials/policy.j2 "
        f"({tokens:,} tokens)"
    )
    assert _message(stdout, "PB111").endswith(chain)
    assert _message(stdout, "PB101").endswith(chain)
    # a finding that is not about the template's size says nothing more
    assert "largest include" not in _message(stdout, "PB203")


def test_only_whole_paths_in_a_message_move() -> None:
    from promptbudget.findings import Finding, Severity
    from promptbudget.reporters.locations import move_message_paths

    finding = Finding(
        "PB111",
        "template-over-budget",
        Severity.ERROR,
        "over (budgets.yaml:4); see old/budgets.yaml and budgets.yaml.bak, not budgets.yaml",
        message_paths=("budgets.yaml",),
    )
    moved = move_message_paths(finding, lambda path: f"../{path}")
    assert moved.message == (
        "over (../budgets.yaml:4); see old/budgets.yaml and budgets.yaml.bak, not ../budgets.yaml"
    )
    assert moved.message_paths == ("../budgets.yaml",)
