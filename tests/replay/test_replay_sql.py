"""One aggregation query for every engine: the emitted SQL run on DuckDB gives the same
judgement through ``--aggregates`` as replaying the logs; ``--calibrate`` edits budgets.yaml."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from replay_logs import StepTruth, WorkflowTruth, generate, write
from replay_project import project_fixture  # noqa: F401  (the "project" fixture)

from promptbudget.manifest.loader import load_manifest
from promptbudget.manifest.model import Distribution
from promptbudget.replay.engine import calls_sql, scan_logs
from promptbudget.replay.query import OUTPUT_COLUMNS, TABLE, TEXT_COLUMNS
from promptbudget.replay.readers import ScanTally
from promptbudget.replay.records import COLUMNS

duckdb = pytest.importorskip("duckdb", reason="replay needs duckdb (pip install -e '.[dev]')")

TRUTH = (
    WorkflowTruth(
        "support",
        (
            StepTruth("classify", "gpt-4.1-nano", 300, 500, 3, 5),
            StepTruth(
                "answer", "gpt-4.1-mini", 3000, 9000, 250, 700, cache_hit=0.5, turns=2,
                tool_calls=1, escalate=0.15, escalate_model="gpt-5.4",
            ),
        ),
        requests=200,
        success=0.8,
    ),
)  # fmt: skip


def calls_table(project: Path, log: Path) -> duckdb.DuckDBPyConnection:
    """The normalized records in a DuckDB table named as the emitted SQL expects."""
    manifest = load_manifest(project / "budgets.yaml")
    scan = scan_logs(manifest, [(log, log.name)], ScanTally(), project / "calls.csv")
    connection = duckdb.connect()
    connection.execute(f"CREATE TABLE promptbudget_calls AS {calls_sql(scan)}")
    return connection


def test_emitted_sql_on_duckdb_judges_the_same_as_replaying_the_logs(
    project: Path, run_cli: Callable[..., object]
) -> None:
    log = write("otel", list(generate(TRUTH, seed=8)), project / "spans.jsonl")
    emitted = run_cli("replay", "--emit-sql", "--dialect", "duckdb", cwd=project)
    assert emitted.exit_code == 0, emitted.stderr  # type: ignore[attr-defined]
    connection = calls_table(project, log)
    result = project / "aggregates.csv"
    query = emitted.stdout.strip().rstrip(";")  # type: ignore[attr-defined]
    connection.execute(f"COPY ({query}) TO '{result.as_posix()}' (HEADER)")

    direct = run_cli("replay", "spans.jsonl", "--format", "json", "--samples", "50", cwd=project)
    judged = run_cli(
        "replay", "--aggregates", "aggregates.csv", "--format", "json", "--samples", "50",
        cwd=project,
    )  # fmt: skip
    assert direct.exit_code == judged.exit_code == 1  # type: ignore[attr-defined]
    a, b = direct.json(), judged.json()  # type: ignore[attr-defined]
    assert a["findings"] == b["findings"]
    assert {f["rule"] for f in a["findings"]} >= {"PB101", "PB106"}
    assert _rounded(a["replay"]["workflows"]) == _rounded(b["replay"]["workflows"])
    assert _rounded(a["replay"]["drift"]) == _rounded(b["replay"]["drift"])


def _rounded(value: object) -> object:
    """Sums of doubles differ in the last bits with the order DuckDB's threads add them."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


@pytest.mark.parametrize(
    ("dialect", "marker"),
    [("spark", "PERCENTILE"), ("bigquery", "APPROX_QUANTILES"), ("snowflake", "WITHIN GROUP")],
)
def test_emitted_sql_transpiles_to_each_dialect(
    dialect: str, marker: str, project: Path, run_cli: Callable[..., object]
) -> None:
    sqlglot = pytest.importorskip("sqlglot")
    result = run_cli("replay", "--emit-sql", "--dialect", dialect, cwd=project)
    assert result.exit_code == 0, result.stderr  # type: ignore[attr-defined]
    assert marker in result.stdout  # type: ignore[attr-defined]
    assert "promptbudget_calls" in result.stdout  # type: ignore[attr-defined]
    sqlglot.parse_one(result.stdout, read=dialect)  # type: ignore[attr-defined]


def _validated(sql: str, dialect: str, columns: dict[str, str]) -> dict[str, str]:
    """``sql`` parsed in ``dialect`` and run through sqlglot's optimizer against the table's
    schema (every column qualified, every output typed): the output columns and the SQL type
    of each. The regenerated SQL must parse back to the same tree (a round trip)."""
    sqlglot = pytest.importorskip("sqlglot")
    from sqlglot.optimizer import optimize

    tree = sqlglot.parse_one(sql, read=dialect)
    assert sqlglot.parse_one(tree.sql(dialect=dialect), read=dialect) == tree
    optimized = optimize(tree, schema={TABLE: columns}, dialect=dialect)
    return {s.alias_or_name.lower(): s.type.sql(dialect) for s in optimized.selects}


@pytest.mark.parametrize(
    ("dialect", "text", "number"),
    [
        ("duckdb", "TEXT", "DOUBLE"),
        ("spark", "STRING", "DOUBLE"),
        ("bigquery", "STRING", "FLOAT64"),
        ("snowflake", "VARCHAR", "DOUBLE"),
    ],
)
def test_emitted_sql_qualifies_and_types_in_each_dialect(
    dialect: str, text: str, number: str, project: Path, run_cli: Callable[..., object]
) -> None:
    """The dialect's parser and sqlglot's optimizer accept the SQL against the table's schema
    (records.COLUMNS): a column the table lacks, a function the dialect cannot type, or an
    output in another order would fail here (the SQL is not run on BigQuery or Snowflake)."""
    result = run_cli("replay", "--emit-sql", "--dialect", dialect, cwd=project)
    assert result.exit_code == 0, result.stderr  # type: ignore[attr-defined]
    sql = result.stdout  # type: ignore[attr-defined]
    types = _validated(sql, dialect, dict(COLUMNS))
    assert list(types) == list(OUTPUT_COLUMNS)
    assert {types[c] for c in TEXT_COLUMNS} == {text}
    assert {t for c, t in types.items() if c not in TEXT_COLUMNS} == {number}
    from sqlglot.errors import OptimizeError

    without = {n: t for n, t in COLUMNS if n != "outcome"}  # a table missing a column
    with pytest.raises(OptimizeError, match=r"(?i)unknown column: outcome"):
        _validated(sql, dialect, without)


def test_emitted_sql_carries_the_limits_and_prices(
    project: Path, run_cli: Callable[..., object]
) -> None:
    sql = run_cli("replay", "--emit-sql", cwd=project).stdout  # type: ignore[attr-defined]
    assert "'support' AS workflow, 8000 AS max_input_tokens" in sql
    assert "'gpt-4.1-mini' AS model" in sql
    assert "'gpt-5.4' AS escalation_model" in sql


def test_an_unknown_dialect_or_a_foreign_file_exits_2(
    project: Path, run_cli: Callable[..., object]
) -> None:
    result = run_cli("replay", "--emit-sql", "--dialect", "oracle", cwd=project)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "--dialect 'oracle'" in result.stderr  # type: ignore[attr-defined]
    (project / "other.csv").write_text("a,b\n1,2\n")
    result = run_cli("replay", "--aggregates", "other.csv", cwd=project)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "must be the result of 'promptbudget replay --emit-sql'" in result.stderr  # type: ignore[attr-defined]


def test_calibrate_diff_previews_and_calibrate_writes_the_observed_values(
    project: Path, run_cli: Callable[..., object]
) -> None:
    calls = list(generate(TRUTH, seed=8))
    write("otel", calls, project / "spans.jsonl")
    before = (project / "budgets.yaml").read_text()
    preview = run_cli(
        "replay", "spans.jsonl", "--calibrate", "--diff", "--samples", "50", cwd=project
    )
    assert preview.exit_code == 0, preview.stderr  # type: ignore[attr-defined]
    diff = preview.stdout  # type: ignore[attr-defined]
    assert "-        output_tokens: {p50: 180, p95: 450}   # from the design review" in diff
    assert "-        prompt_cache_hit_rate: 80%" in diff
    assert "-    escalation: {to: gpt-5.4, rate: 8%}" in diff
    assert (project / "budgets.yaml").read_text() == before  # --diff writes nothing

    written = run_cli("replay", "spans.jsonl", "--calibrate", "--samples", "50", cwd=project)
    assert written.exit_code == 1  # type: ignore[attr-defined]
    assert "calibrated" in written.stderr  # type: ignore[attr-defined]
    text = (project / "budgets.yaml").read_text()
    assert "# from the design review" in text  # comments kept
    manifest = load_manifest(project / "budgets.yaml")
    workflow = manifest.workflows[0]
    answer = workflow.steps[1]
    observed = json.loads(
        run_cli("replay", "spans.jsonl", "--format", "json", "--samples", "50", cwd=project).stdout  # type: ignore[attr-defined]
    )["replay"]["workflows"][0]["steps"]
    stats = {s["name"]: s for s in observed}["answer"]
    assert answer.output_tokens == Distribution(
        round(stats["output_tokens"]["p50"]), round(stats["output_tokens"]["p95"])
    )
    assert float(answer.prompt_cache_hit_rate or 0) == pytest.approx(
        stats["cache_hit_rate"], abs=0.001
    )
    assert manifest.routes["everyday"].escalation is not None
    assert float(manifest.routes["everyday"].escalation.rate) == pytest.approx(
        stats["escalation_rate"], abs=0.001
    )
    assert workflow.success_rate != 0.9  # the observed success rate was written


def test_calibrate_adds_a_missing_assumption_with_the_indentation_around_it(
    project: Path, run_cli: Callable[..., object]
) -> None:
    text = (
        (project / "budgets.yaml").read_text().replace("        prompt_cache_hit_rate: 80%\n", "")
    )
    (project / "budgets.yaml").write_text(text)
    write("otel", list(generate(TRUTH, seed=8)), project / "spans.jsonl")
    result = run_cli(
        "replay", "spans.jsonl", "--calibrate", "--diff", "--samples", "50", cwd=project
    )
    assert "+        prompt_cache_hit_rate: " in result.stdout  # type: ignore[attr-defined]
