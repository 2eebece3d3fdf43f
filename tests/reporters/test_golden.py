"""Golden files: the exact output of each reporter for a few real runs of the public CLI.

A change to any reporter, rule message or number shows up here as a diff. When the change is
intended, rewrite the files with ``pytest tests/reporters --update-golden`` and review the diff.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden"
PROJECTS = Path(__file__).resolve().parent / "projects"


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    project: str  # "examples", "over-budget", "empty" or a directory under projects/
    exit_code: int
    formats: tuple[str, ...] = ("text", "json", "github", "markdown")
    columns: int | None = None  # the terminal width (COLUMNS) the text is laid out for


CASES = {
    "examples-check": Case(("check",), "examples", 0),
    "over-budget-check": Case(("check",), "over-budget", 1),
    "examples-count": Case(("count",), "examples", 0),
    "empty-check": Case(("check",), "empty", 0),
    "models": Case(
        ("models", "gpt-4.1", "--provider", "openai"), "examples", 0, formats=("text", "json")
    ),
    # limits on a workflow, its steps and its templates, some holding and some broken
    # tables fit the terminal: steps stacked under workflows, columns dropped, never a
    # number broken; finding lines wrap under their location
    "over-budget-check-80": Case(("check",), "over-budget", 1, formats=("text",), columns=80),
    "over-budget-check-120": Case(("check",), "over-budget", 1, formats=("text",), columns=120),
    "three-levels-check-80": Case(("check",), "three-levels", 1, formats=("text",), columns=80),
    # diff and models fit too: stacked under each workflow and template, columns dropped
    "models-80": Case(
        ("models", "gpt-4.1", "--provider", "openai"), "examples", 0, ("text",), columns=80
    ),
    "models-120": Case(
        ("models", "gpt-4.1", "--provider", "openai"), "examples", 0, ("text",), columns=120
    ),
    "diff-80": Case(("diff", "--base", "main"), "examples-changed", 1, ("text",), columns=80),
    "diff-120": Case(("diff", "--base", "main"), "examples-changed", 1, ("text",), columns=120),
    "three-levels-check": Case(
        ("check",), "three-levels", 1, formats=("text", "json", "markdown", "junit")
    ),
}
PARAMS = [
    pytest.param(name, fmt, id=f"{name}.{fmt}")
    for name, case in CASES.items()
    for fmt in case.formats
]


def golden_path(name: str, fmt: str) -> Path:
    return GOLDEN / f"{name}.{fmt}"


def read_exact(path: Path) -> str:
    with path.open(encoding="utf-8", newline="") as file:
        return file.read()


def write_exact(path: Path, text: str) -> None:
    with path.open("w", encoding="utf-8", newline="") as file:
        file.write(text)


def machine_paths(*extra: Path) -> list[str]:
    """Substrings that would make a golden file depend on the machine that wrote it."""
    candidates = [Path(tempfile.gettempdir()), Path.home(), REPO, *extra]
    found = {"/work/", "/tmp/"}
    found.update(str(path) for path in candidates)
    found.update(str(path.resolve()) for path in candidates)
    return sorted(f for f in found if len(f) > 4)  # never "/" or "/tmp" as a bare prefix


@pytest.fixture
def empty_project(make_project: Callable[..., Path]) -> Path:
    root = make_project({"budgets.yaml": "version: 1\n"})
    (root / "prompts").mkdir()
    return root


GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_AUTHOR_DATE": "2026-12-01T12:00:00Z",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_COMMITTER_DATE": "2026-12-01T12:00:00Z",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "GIT_CONFIG_NOSYSTEM": "1",
    "PATH": "/usr/bin:/bin:/usr/local/bin",
}


@pytest.fixture
def examples_changed(tmp_path: Path) -> Path:
    """The examples committed on main (a fixed date: the same commit id on every machine),
    then changed as a pull request might: a longer versioned prompt, more traffic."""
    if shutil.which("git") is None:
        pytest.skip("diff needs git")
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("over-budget"))
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-q", "-m", "base")):
        subprocess.run(["git", *args], cwd=root, env=GIT_ENV, check=True, capture_output=True)
    classify = root / "prompts/support/classify.j2"
    text = classify.read_text(encoding="utf-8").replace("version: 3\n", "version: 4\n")
    classify.write_text(text + "\nCheck the ticket history before you classify it.\n")
    manifest = root / "budgets.yaml"
    manifest.write_text(
        re.sub(r"requests_per_day: \d+", "requests_per_day: 20000", manifest.read_text())
    )
    return root


def project_dir(project: str, empty_project: Path, request: pytest.FixtureRequest) -> Path:
    if project == "empty":
        return empty_project
    if project == "examples-changed":
        return Path(request.getfixturevalue("examples_changed"))
    if (PROJECTS / project).is_dir():
        return PROJECTS / project
    return EXAMPLES if project == "examples" else EXAMPLES / project


@pytest.mark.parametrize(("name", "fmt"), PARAMS)
def test_output_matches_golden_file(
    name: str,
    fmt: str,
    run_cli: Callable[..., Any],
    empty_project: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    case = CASES[name]
    cwd = project_dir(case.project, empty_project, request)
    if case.columns is not None:
        monkeypatch.setenv("COLUMNS", str(case.columns))
    result = run_cli(*case.args, "--format", fmt, cwd=cwd)
    if case.columns is not None:
        for line in result.stdout.splitlines():  # tables and finding lines fit
            assert len(line) <= case.columns, line

    assert result.exit_code == case.exit_code, result.stderr
    assert result.stderr == ""
    for fragment in machine_paths(cwd):
        assert fragment not in result.stdout, f"machine-specific {fragment!r} in the output"

    path = golden_path(name, fmt)
    if request.config.getoption("--update-golden"):
        write_exact(path, result.stdout)
        return
    if not path.exists():
        pytest.fail(f"no golden file {path.name}; run pytest --update-golden and review it")
    assert result.stdout == read_exact(path)


def test_every_golden_file_belongs_to_a_case() -> None:
    expected = {golden_path(name, fmt).name for name, case in CASES.items() for fmt in case.formats}
    assert {path.name for path in GOLDEN.iterdir()} == expected


@pytest.mark.parametrize(("name", "fmt"), PARAMS)
def test_golden_file_has_no_machine_paths(name: str, fmt: str) -> None:
    path = golden_path(name, fmt)
    if not path.exists():
        pytest.fail(f"no golden file {path.name}; run pytest --update-golden and review it")
    text = read_exact(path)
    for fragment in machine_paths():
        assert fragment not in text, f"machine-specific {fragment!r} in {path.name}"
    assert "\x1b[" not in text, "colour escapes in a NO_COLOR run"
    assert text.endswith("\n")


def test_findings_do_not_embed_the_absolute_project_root(
    run_cli: Callable[..., Any], make_project: Callable[..., Path]
) -> None:
    root = make_project(
        {"budgets.yaml": "version: 1\n", "prompts/up.j2": '{% include "../../x.j2" %}\n'}
    )
    for fmt in ("text", "json", "github"):
        result = run_cli("check", "--format", fmt, cwd=root)
        assert result.exit_code == 1
        assert str(root) not in result.stdout
        assert str(root.resolve()) not in result.stdout
