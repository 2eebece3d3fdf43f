"""The README's replay snippets that the generic runner does not run."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from test_replay_sql import calls_table

from conftest import EXAMPLES, readme_snippet
from promptbudget.manifest.loader import load_manifest
from promptbudget.replay import otel
from promptbudget.replay.mapping import Mapper
from promptbudget.replay.records import Record

pytest.importorskip("duckdb", reason="replay needs duckdb (pip install -e '.[dev]')")


def test_the_attribute_convention_is_what_the_reader_reads() -> None:
    snippet = readme_snippet("replay-convention")
    attributes = dict(re.findall(r'set_attribute\("([\w.]+)", "([\w-]+)"\)', snippet))
    assert set(attributes) == {otel.WORKFLOW, otel.STEP, otel.OUTCOME}
    span = {
        "traceId": "0af7651916cd43dd8448eb211c80319c",
        "spanId": "b7ad6b7169203331",
        "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attributes.items()],
    }
    record = otel.span_record(span, "x:1")
    assert record is not None
    assert (record.kind, record.workflow, record.step, record.outcome) == (
        "context",
        "support-reply",
        "answer",
        1,
    )


def test_the_match_rules_load_and_map(tmp_path: Path) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    manifest_path = tmp_path / "examples" / "budgets.yaml"
    manifest_path.write_text(
        manifest_path.read_text(encoding="utf-8") + readme_snippet("replay-match"),
        encoding="utf-8",
    )
    manifest = load_manifest(manifest_path)
    assert (
        manifest.replay.columns
        == yaml.safe_load(readme_snippet("replay-match"))["replay"]["columns"]
    )
    mapper = Mapper(manifest)
    assert mapper.assign(Record("x:1", model="gpt-4.1-nano-2025-04-14")) == (
        "support-reply",
        "classify",
    )
    agent = Record("x:2", model="gpt-4.1-mini", attributes={"gen_ai.agent.name": "support"})
    assert mapper.assign(agent) == ("support-reply", "answer")
    assert mapper.assign(Record("x:3", model="gpt-4.1-mini")) == (None, None)


def test_emit_sql_then_aggregates(tmp_path: Path, run_cli: Callable[..., object]) -> None:
    project = tmp_path / "examples"
    shutil.copytree(EXAMPLES, project)
    first, second = [
        line.split("  #")[0].split(" > ")[0]
        for line in readme_snippet("replay-emit-sql").splitlines()
    ]
    emitted = run_cli(*first.split()[1:], cwd=project)
    assert emitted.exit_code == 0, emitted.stderr  # type: ignore[attr-defined]
    assert "PERCENTILE(" in emitted.stdout  # type: ignore[attr-defined]
    duck = run_cli("replay", "--emit-sql", cwd=project).stdout  # type: ignore[attr-defined]
    connection = calls_table(project, project / "logs" / "otel-spans.jsonl")
    connection.execute(f"COPY ({duck.strip().rstrip(';')}) TO '{project / 'result.csv'}' (HEADER)")
    judged = run_cli(*second.split()[1:], cwd=project)
    assert judged.exit_code == 1, judged.stderr  # type: ignore[attr-defined]
    assert "PB101" in judged.stdout  # type: ignore[attr-defined]
    assert "aggregates from --emit-sql" in judged.stdout  # type: ignore[attr-defined]
