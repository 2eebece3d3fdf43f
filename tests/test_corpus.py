"""The real-prompt corpus (tests/corpus, 109 files from six projects; see its SOURCES.md)."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import CORPUS, Run

ROWS = list(
    csv.DictReader(
        (CORPUS / "token_counts.tsv").read_text(encoding="utf-8").splitlines(), delimiter="\t"
    )
)
TEMPLATE_SYNTAX = re.compile(r"\{\{|\{%|\{#")


def _has_template_syntax(path: Path) -> bool:
    text = path.read_text(encoding="utf-8-sig")
    # Prompty front matter is template syntax too: it is metadata, not prompt text.
    return bool(TEMPLATE_SYNTAX.search(text)) or path.suffix == ".prompty"


PLAIN = [row for row in ROWS if not _has_template_syntax(CORPUS / row["path"])]


def test_corpus_is_complete() -> None:
    assert len(ROWS) == 109
    assert len(PLAIN) >= 30


@pytest.mark.parametrize(("model", "column"), [("gpt-4o", "o200k_text"), ("gpt-4", "cl100k_text")])
def test_plain_files_count_exactly_like_tiktoken(
    run_cli: Callable[..., Run], model: str, column: str
) -> None:
    """text_tokens == len(encoding.encode_ordinary(text)) with the file read as text."""
    paths = [str(CORPUS / row["path"]) for row in PLAIN]
    result = run_cli("count", *paths, "--model", model, "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    templates = result.json()["templates"]
    assert len(templates) == len(PLAIN)
    counted = {t["path"].split("corpus/", 1)[1]: t for t in templates}
    mismatches = {
        row["path"]: (counted[row["path"]]["text_tokens"], int(row[column]))
        for row in PLAIN
        if counted[row["path"]]["text_tokens"] != int(row[column])
    }
    assert mismatches == {}
    assert all(t["exact"] for t in templates)
    assert {t["encoding"] for t in templates} == {column.replace("_text", "_base")}


def test_the_whole_corpus_counts_without_a_crash(run_cli: Callable[..., Run]) -> None:
    result = run_cli("count", str(CORPUS), "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    payload = result.json()
    counted = {t["path"].split("corpus/", 1)[1] for t in payload["templates"]}
    assert {row["path"] for row in ROWS} <= counted
    assert all(t["text_tokens"] is not None for t in payload["templates"])
    # A file that could not be fully parsed has a PB001 that says why, with a line, and its
    # count is marked approximate.
    exact = {t["path"]: t["exact"] for t in payload["templates"]}
    pb001 = [f for f in payload["findings"] if f["rule"] == "PB001"]
    assert pb001
    for finding in pb001:
        assert finding["line"] is not None and finding["message"]
        assert exact[finding["path"]] is False


def test_prompty_samples_are_rendered(run_cli: Callable[..., Run]) -> None:
    path = CORPUS / "microsoft__prompty/web/src/content/docs/assets/code/basic.prompty"
    result = run_cli("count", str(path), "--model", "gpt-4o", "--format", "json")
    template = result.json()["templates"][0]
    assert [m["role"] for m in template["messages"]] == ["system", "user"]
    assert {v["name"]: v["source"] for v in template["variables"]} == {
        "context": "sample",
        "firstName": "sample",
        "question": "sample",
    }
    assert result.exit_code == 0
