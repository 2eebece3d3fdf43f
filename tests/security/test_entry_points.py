"""File names parsed as options, and ``--output`` aimed at the project (issue 11 item 1)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from conftest import EXAMPLES, REPO, Run, readme_snippet

RunCli = Callable[..., Run]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    shutil.copytree(EXAMPLES / "over-budget", root)
    return root


def _entries() -> list[str]:
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    (local,) = yaml.safe_load(readme_snippet("pre-commit-local"))["repos"]
    return [hook["entry"] for hook in hooks] + [hook["entry"] for hook in local["hooks"]]


def test_every_hook_that_receives_file_names_ends_options() -> None:
    for entry in _entries():
        assert entry.split()[-1] == "--", entry


def test_a_committed_config_option_is_a_file_name_after_the_hook_entry(
    run_cli: RunCli, project: Path
) -> None:
    """A directory named ``--config=evil`` holding a manifest whose budgets always hold: with
    the hook's ``--``, the real project is still checked and still fails."""
    evil = project / "--config=evil"
    evil.mkdir()
    (evil / "budgets.yaml").write_text("version: 1\n", encoding="utf-8")
    changed = ["--config=evil/budgets.yaml", "prompts/support/answer.prompty"]
    entry = _entries()[0].split()[1:]  # check --
    run = run_cli(*entry, *changed, cwd=project)
    assert run.exit_code == 1, run.stderr  # the real budgets are checked, and broken


@pytest.mark.parametrize(
    "target",
    [
        "prompts/support/classify.j2",
        "prompts/support/answer.prompty",
        "budgets.yaml",
        "promptbudget.lock",
        "../outside.txt",
        "../../x",
    ],
)
def test_output_onto_a_read_file_or_outside_is_refused(
    target: str, run_cli: RunCli, project: Path
) -> None:
    before = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
    run = run_cli("check", "--output", target, cwd=project)
    assert run.exit_code == 2
    assert run.stderr.startswith(f"promptbudget: error: --output {target}: ")
    assert len(run.stderr.splitlines()) == 1
    assert {p: p.read_bytes() for p in project.rglob("*") if p.is_file()} == before
    assert not (project.parent / "outside.txt").exists()


def test_output_through_a_symlink_out_of_the_project_is_refused(
    run_cli: RunCli, project: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n", encoding="utf-8")
    (project / "report.txt").symlink_to(victim)
    run = run_cli("check", "--output", "report.txt", cwd=project)
    assert run.exit_code == 2
    assert "points outside the project" in run.stderr
    assert victim.read_text(encoding="utf-8") == "keep me\n"


def test_output_onto_a_fifo_is_refused(run_cli: RunCli, project: Path) -> None:
    os.mkfifo(project / "pipe.txt")
    run = run_cli("check", "--output", "pipe.txt", cwd=project)
    assert run.exit_code == 2
    assert "not a regular file" in run.stderr


@pytest.mark.parametrize("target", ["report.txt", "reports/out.sarif"])
def test_output_inside_the_project_and_absolute_outside_still_work(
    target: str, run_cli: RunCli, project: Path, tmp_path: Path
) -> None:
    (project / "reports").mkdir()
    run = run_cli("check", "--output", target, cwd=project)
    assert run.exit_code == 1, run.stderr
    assert (project / target).read_text(encoding="utf-8")
    absolute = tmp_path / "ci-temp" / "diff.md"
    absolute.parent.mkdir()
    run = run_cli("check", "--format", "markdown", "--output", str(absolute), cwd=project)
    assert run.exit_code == 1, run.stderr
    assert absolute.read_text(encoding="utf-8").strip()


@pytest.mark.parametrize("module", ["yaml.py", "jinja2/__init__.py"])
def test_python_m_never_imports_a_module_the_project_holds(project: Path, module: str) -> None:
    """``python -m`` puts the working directory first on ``sys.path``: a ``yaml.py`` (or a
    ``jinja2`` package) at a stranger's repository root would run in place of the real one.
    ``__main__`` takes that entry out first."""
    import subprocess
    import sys

    marker = project / "IMPORTED"
    hostile = project / module
    hostile.parent.mkdir(parents=True, exist_ok=True)
    hostile.write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('x')\nraise SystemExit(99)\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "promptbudget", "check", "--no-cache"],
        cwd=project,
        capture_output=True,
        text=True,
        env={k: v for k, v in os.environ.items() if k not in ("PYTHONSAFEPATH", "PYTHONPATH")},
        check=False,
    )
    assert not marker.exists(), done.stderr
    assert done.returncode == 1, done.stderr  # the over-budget example, checked as usual
