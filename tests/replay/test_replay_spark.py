"""The emitted Spark SQL on Spark local mode gives the statistics DuckDB gives.

Runs where pyspark (``pip install -e '.[dev,spark]'``) and Java 17+ are installed; the GitHub
workflow's ``spark`` job runs it. Elsewhere it is skipped, with the reason.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from replay_logs import StepTruth, WorkflowTruth, generate, write
from replay_project import project_fixture  # noqa: F401  (the "project" fixture)
from test_replay_sql import calls_table

from promptbudget.replay.query import OUTPUT_COLUMNS, TEXT_COLUMNS

pytest.importorskip("duckdb", reason="replay needs duckdb (pip install -e '.[dev]')")
pyspark = pytest.importorskip("pyspark", reason="needs pyspark: pip install -e '.[dev,spark]'")
if shutil.which("java") is None:
    pytest.skip("Spark local mode needs Java 17+ on PATH", allow_module_level=True)

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
        requests=60,
        success=0.8,
    ),
)  # fmt: skip


def test_spark_local_mode_agrees_with_duckdb(project: Path, run_cli: Callable[..., object]) -> None:
    from pyspark.sql import SparkSession

    log = write("otel", list(generate(TRUTH, seed=8)), project / "spans.jsonl")
    connection = calls_table(project, log)
    duck_sql = run_cli("replay", "--emit-sql", cwd=project).stdout  # type: ignore[attr-defined]
    spark_sql = run_cli("replay", "--emit-sql", "--dialect", "spark", cwd=project).stdout  # type: ignore[attr-defined]
    expected = connection.execute(duck_sql).fetchall()
    rows = connection.execute("SELECT * FROM promptbudget_calls").fetchall()
    names = [d[0] for d in connection.description]

    spark = (
        SparkSession.builder.master("local[1]")
        .appName("promptbudget-replay-test")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .getOrCreate()
    )
    try:
        schema = ", ".join(
            f"{n} {'STRING' if t == 'VARCHAR' else t}"
            for n, t in (
                (d[0], str(d[1]))
                for d in connection.execute("DESCRIBE promptbudget_calls").fetchall()
            )
        )
        spark.createDataFrame(rows, schema=schema).createOrReplaceTempView("promptbudget_calls")
        got = [tuple(r) for r in spark.sql(spark_sql.strip().rstrip(";")).collect()]
    finally:
        spark.stop()
    assert len(got) == len(expected)
    key = OUTPUT_COLUMNS.index
    for mine, theirs in zip(sorted(expected, key=str), sorted(got, key=str), strict=True):
        for name in OUTPUT_COLUMNS:
            a, b = mine[key(name)], theirs[key(name)]
            if name in TEXT_COLUMNS or a is None or b is None:
                assert a == b, name
            else:
                assert float(a) == pytest.approx(float(b), rel=1e-9), name
    assert names[0] == "source"
