"""Shared fixtures: run the CLI in-process, and write small projects into ``tmp_path``."""

from __future__ import annotations

import json
import os
import re
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from promptbudget.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
CORPUS = Path(__file__).resolve().parent / "corpus"


TODAY = "2026-12-05"  # the date every CLI run in the tests sees


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="Rewrite golden files under tests/reporters/golden from the current output.",
    )


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@pytest.fixture
def run_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Run]:
    """Run ``promptbudget ARGS`` in-process from ``cwd``; stdout and stderr captured apart."""
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    # The run's date is injected, never read from the clock (PB111 deprecations).
    monkeypatch.setenv("PROMPTBUDGET_TODAY", TODAY)

    def run(*args: str, cwd: Path | None = None) -> Run:
        capsys.readouterr()
        previous = Path.cwd()
        if cwd is not None:
            os.chdir(cwd)
        try:
            code = main(list(args))
        finally:
            os.chdir(previous)
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """Write ``files`` (path -> text, dedented) under a fresh directory and return it.

    ``make_project({"budgets.yaml": "...", "prompts/a.j2": "..."})``.
    """
    counter = iter(range(1_000_000))

    def make(files: dict[str, str | bytes], *, dedent: bool = True) -> Path:
        root = tmp_path / f"project{next(counter)}"
        root.mkdir()
        for name, content in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(textwrap.dedent(content) if dedent else content, encoding="utf-8")
        return root

    return make


@pytest.fixture
def chdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    def change(path: Path) -> None:
        monkeypatch.chdir(path)

    yield change


_SNIPPET = re.compile(
    r"^<!-- snippet: (?P<name>[\w.-]+) -->\n```[^\n]*\n(?P<body>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)


def readme_snippets() -> dict[str, str]:
    """Every README code block marked ``<!-- snippet: NAME -->`` on the line above it."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return {m.group("name"): m.group("body") for m in _SNIPPET.finditer(text)}


def readme_snippet(name: str) -> str:
    """The README's snippet ``name``, exactly as a user would copy it."""
    snippets = readme_snippets()
    if name not in snippets:
        raise KeyError(f"README.md has no block marked <!-- snippet: {name} -->")
    return snippets[name]
