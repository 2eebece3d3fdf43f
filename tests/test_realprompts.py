"""Real prompt files from public repositories, read the way their applications read them.

``tests/realprompts/SOURCES.tsv`` lists 542 files (repository, commit, path, license, the
engine the application loads each with and where its code says so, and whether that engine
accepts the file, checked with the engine itself). The files are not in this repository: set
``PROMPTBUDGET_REALPROMPTS`` to a folder holding them as ``<owner>__<repo>/<path>`` (or keep
them in ``shared/realprompts`` beside the checkout); without them these tests skip.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import CORPUS, Run
from promptbudget.templates.parse import parse_template
from promptbudget.templates.render import TemplateRenderer
from promptbudget.templates.source import TemplateFormat, detect_format, read_prompt_text

SOURCES = Path(__file__).resolve().parent / "realprompts" / "SOURCES.tsv"
# The files are kept outside the repository, in the shared/ folder next to the checkout.
_CANDIDATES = [
    Path(os.environ["PROMPTBUDGET_REALPROMPTS"])
    if "PROMPTBUDGET_REALPROMPTS" in os.environ
    else None,
    Path(__file__).resolve().parents[2] / "shared" / "realprompts",
    Path("/work/shared/realprompts"),
]
FOLDER = next((p for p in _CANDIDATES if p is not None and p.is_dir()), Path("shared/realprompts"))


def _rows() -> list[dict[str, str]]:
    with SOURCES.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _local(row: dict[str, str]) -> str:
    owner, name = row["repo"].split("/")
    return f"{owner}__{name}/{row['path']}"


needs_files = pytest.mark.skipif(
    not FOLDER.is_dir(),
    reason=f"real prompt files not found at {FOLDER} (set PROMPTBUDGET_REALPROMPTS)",
)


def test_the_list_is_complete_and_licensed() -> None:
    rows = _rows()
    assert len(rows) >= 300
    assert len({row["repo"] for row in rows}) >= 10
    assert {row["license"].split()[0] for row in rows} <= {"MIT", "Apache-2.0"}
    assert all(re.fullmatch(r"[0-9a-f]{40}", row["commit"]) for row in rows)
    assert {row["engine_accepts"] for row in rows} <= {"yes", "no"}
    assert not any(row["repo"].split("/")[1] in _corpus_repos() for row in rows)


def _corpus_repos() -> set[str]:
    return {path.name.split("__", 1)[1] for path in CORPUS.iterdir() if "__" in path.name}


@needs_files
def test_pb001_only_where_the_applications_own_engine_rejects_the_file(
    tmp_path: Path, run_cli: Callable[..., Run]
) -> None:
    rows = _rows()
    files = [FOLDER / _local(row) for row in rows]
    missing = [str(path) for path in files if not path.is_file()]
    assert not missing, missing[:5]
    result = run_cli("count", *map(str, files), "--format", "json", cwd=tmp_path)
    assert result.exit_code in (0, 1), result.stderr
    payload = result.json()
    assert len(payload["templates"]) == len(rows)
    broken = {
        finding["path"].split("realprompts/", 1)[-1]
        for finding in payload["findings"]
        if finding["rule"] == "PB001"
    }
    rejected = {_local(row) for row in rows if row["engine_accepts"] == "no"}
    assert broken == rejected


@needs_files
def test_each_engine_is_named_for_the_files_that_use_it(
    tmp_path: Path, run_cli: Callable[..., Run]
) -> None:
    """Go and str.format prompts are found as such (files whose syntax is used: a prompt
    with no field at all is plain text to any engine)."""
    rows = [row for row in _rows() if row["engine"] in ("go", "format", "semantic-kernel")]
    files = {str(FOLDER / _local(row)): row["engine"] for row in rows}
    payload = run_cli("count", *files, "--format", "json", cwd=tmp_path).json()
    expected = {"go": "go-template", "format": "format", "semantic-kernel": "semantic-kernel"}
    for template in payload["templates"]:
        path = str(FOLDER / template["path"].split("realprompts/", 1)[-1])
        text = Path(path).read_text(encoding="utf-8-sig")
        uses_syntax = re.search(r"\{\{[.$\w]|\{[A-Za-z_]\w*[}.\[!:]", text) is not None
        if uses_syntax and not path.endswith(".json"):
            assert template["format"] == expected[files[path]], path


# -- compress --write with the safe passes keeps what the model is told ---------------------

NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")
URL = re.compile(r"https?://[^\s)\]>\"'`]+|www\.[^\s)\]>\"'`]+")
FENCE = re.compile(r"```.*?```", re.DOTALL)
SENTENCE = re.compile(r"[^.!?\n]+[.!?]")


def _words(text: str) -> str:
    return " ".join(re.findall(r"\w+", text))


def _variables(path: Path) -> tuple[str | None, tuple[str, ...]]:
    parsed = parse_template(path, path.name, detect_format(path), read_prompt_text(path))
    rendered = TemplateRenderer(path.parent).render(parsed, {})
    return rendered.problem, rendered.variables


def _compressible(root: Path) -> list[Path]:
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and path.suffix != ".tsv"
        and path.name not in {"README.md", "SOURCES.md", "DONE"}
        and detect_format(path) is not TemplateFormat.TEXT
    )


def _copy_set(tmp_path: Path) -> list[Path]:
    targets = []
    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    targets.extend(_compressible(corpus))
    if FOLDER.is_dir():
        for row in _rows():
            source = FOLDER / _local(row)
            target = tmp_path / "real" / _local(row)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        targets.extend(_compressible(tmp_path / "real"))
    return targets


def test_compress_write_with_safe_passes_keeps_the_instructions(
    tmp_path: Path, run_cli: Callable[..., Run]
) -> None:
    variables = {path: _variables(path) for path in _copy_set(tmp_path)}
    files = [path for path, (problem, _) in variables.items() if problem is None]  # parses
    before = {path: path.read_text(encoding="utf-8-sig", errors="replace") for path in files}
    result = run_cli("compress", "--write", *map(str, files), cwd=tmp_path)
    assert result.exit_code in (0, 1), result.stderr
    changed = 0
    for path in files:
        after = path.read_text(encoding="utf-8-sig", errors="replace")
        if after == before[path]:
            continue
        changed += 1
        original = before[path]
        assert _variables(path) == variables[path], path  # still parses, same variables
        for pattern in (NUMBER, URL):
            assert set(pattern.findall(after)) == set(pattern.findall(original)), path
        for fence in FENCE.findall(original):
            assert _words(fence) in _words(after), (path, fence[:80])
        kept = _words(after)
        for sentence in SENTENCE.findall(original):
            if len(sentence.split()) >= 3:
                assert _words(sentence) in kept, (path, sentence)
    assert changed > 0  # the passes did something to check
