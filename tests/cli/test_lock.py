"""``promptbudget lock``: writes promptbudget.lock; ``--check`` says when it is out of date."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import EXAMPLES, Run

RunCli = Callable[..., Run]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("over-budget"))
    (root / "promptbudget.lock").unlink()  # the example ships one; start without
    return root


def test_lock_records_version_hash_and_tokens_per_model(run_cli: RunCli, project: Path) -> None:
    run = run_cli("lock", cwd=project)
    assert run.exit_code == 0, run.stderr
    assert "wrote promptbudget.lock: new lock: 5 templates" in run.stderr
    lock = json.loads((project / "promptbudget.lock").read_text(encoding="utf-8"))
    assert lock["lock_version"] == 1
    answer = lock["templates"]["prompts/support/answer.prompty"]
    assert answer["version"] == "7"
    assert len(answer["sha256"]) == 64
    # routed to gpt-4.1-mini (everyday) and gpt-5.4 (careful and the escalation)
    assert set(answer["tokens"]) == {"gpt-4.1-mini", "gpt-5.4"}
    count = run_cli("count", "prompts/support/answer.prompty", "--format", "json", cwd=project)
    assert answer["tokens"]["gpt-4.1-mini"] == count.json()["templates"][0]["request_tokens"]


def test_lock_is_deterministic_and_not_rewritten_when_current(
    run_cli: RunCli, project: Path
) -> None:
    run_cli("lock", cwd=project)
    lock = project / "promptbudget.lock"
    first = lock.read_bytes()
    stamp = lock.stat().st_mtime_ns
    run = run_cli("lock", cwd=project)
    assert run.exit_code == 0
    assert "is up to date" in run.stderr
    assert lock.read_bytes() == first
    assert lock.stat().st_mtime_ns == stamp


def test_check_option(run_cli: RunCli, project: Path) -> None:
    missing = run_cli("lock", "--check", cwd=project)
    assert missing.exit_code == 1
    assert not (project / "promptbudget.lock").exists()
    run_cli("lock", cwd=project)
    assert run_cli("lock", "--check", cwd=project).exit_code == 0
    classify = project / "prompts/support/classify.j2"
    classify.write_text(classify.read_text(encoding="utf-8") + "Be brief.\n", encoding="utf-8")
    stale = run_cli("lock", "--check", cwd=project)
    assert stale.exit_code == 1
    assert "changed prompts/support/classify.j2: content, tokens" in stale.stdout
    assert "out of date; run 'promptbudget lock'" in stale.stderr


def test_check_reports_pb206_until_the_version_is_bumped(run_cli: RunCli, project: Path) -> None:
    run_cli("lock", cwd=project)
    classify = project / "prompts/support/classify.j2"
    text = classify.read_text(encoding="utf-8")
    classify.write_text(text + "Be brief.\n", encoding="utf-8")
    run = run_cli("check", "--format", "json", cwd=project)
    assert run.exit_code == 1
    pb206 = [f for f in run.json()["findings"] if f["rule"] == "PB206"]
    assert [(f["path"], f["line"]) for f in pb206] == [("prompts/support/classify.j2", 2)]
    classify.write_text(text.replace("version: 3", "version: 4") + "Be brief.\n", encoding="utf-8")
    assert run_cli("check", cwd=project).exit_code == 0
    stale = run_cli("lock", "--check", cwd=project)
    assert "changed prompts/support/classify.j2: version 3 -> 4, content, tokens" in stale.stdout
    assert run_cli("lock", cwd=project).exit_code == 0
    assert run_cli("lock", "--check", cwd=project).exit_code == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{bad", "promptbudget.lock:1: not valid JSON"),
        ('{"lock_version": 9, "templates": {}}', "lock_version 9 is not supported"),
        ('{"lock_version": 1, "templates": {"a.j2": {}}}', "templates.a.j2 needs a sha256"),
        ("[]", "expected an object with a 'templates' object"),
    ],
)
def test_a_broken_lock_is_one_line_exit_2(
    run_cli: RunCli, project: Path, content: str, message: str
) -> None:
    (project / "promptbudget.lock").write_text(content, encoding="utf-8")
    run = run_cli("check", cwd=project)
    assert run.exit_code == 2
    assert message in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_lock_needs_a_manifest(run_cli: RunCli, tmp_path: Path) -> None:
    run = run_cli("lock", cwd=tmp_path)
    assert run.exit_code == 2
    assert "no budgets.yaml" in run.stderr


@pytest.mark.parametrize(
    "content", ["{broken", "[]", '{"lock_version": 99, "templates": {}}', "[" * 100_000]
)
def test_lock_rewrites_a_broken_lock_that_check_sends_it_to(
    run_cli: RunCli, project: Path, content: str
) -> None:
    """No dead end: check says to run lock, and lock then repairs the file."""
    (project / "promptbudget.lock").write_text(content, encoding="utf-8")
    check = run_cli("check", cwd=project)
    assert check.exit_code == 2
    assert "regenerate it with 'promptbudget lock'" in check.stderr
    assert run_cli("lock", "--check", cwd=project).exit_code == 1
    written = run_cli("lock", cwd=project)
    assert written.exit_code == 0, written.stderr
    assert "replaced a lock that cannot be read" in written.stderr
    assert json.loads((project / "promptbudget.lock").read_text())["lock_version"] == 1
    assert run_cli("lock", "--check", cwd=project).exit_code == 0
    assert run_cli("check", cwd=project).exit_code == 0


def test_a_model_and_its_alias_are_one_entry_under_the_canonical_name(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    manifest = (
        "version: 1\n"
        "defaults: {model: openai/gpt-4.1-mini}\n"  # an alias, as LiteLLM spells it
        "workflows:\n"
        "  ask:\n"
        "    traffic: {requests_per_day: 10}\n"
        "    steps:\n"
        "      - {name: a, prompt: a.j2, model: gpt-4.1-mini, output_tokens: 10}\n"
        "      - {name: b, prompt: a.j2, model: openai/gpt-4.1-mini, output_tokens: 10}\n"
        "      - {name: c, prompt: a.j2, model: gpt-4o, output_tokens: 10}\n"
    )
    root = make_project({"budgets.yaml": manifest, "prompts/a.j2": "Say hi.\n"})
    assert run_cli("lock", cwd=root).exit_code == 0
    locked = json.loads((root / "promptbudget.lock").read_text())["templates"]
    assert list(locked["prompts/a.j2"]["tokens"]) == ["gpt-4.1-mini", "gpt-4o"]
