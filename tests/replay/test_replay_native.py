"""DuckDB's native reader (OTel span JSON lines) and the Python readers give the same figures.

Every input kind the other tests use is scanned both ways and aggregated; the result rows
must agree figure by figure (sums of floats up to their summation order), and so must the
counts of lines, records and malformed records with their file:line. The hostile file mixes
every shape the native path must hand back to the Python reader (invalid JSON, values to
reject, escapes, numbers where strings are usual, the console exporter's flat spans, a
whole export on one line) with ordinary spans.
"""

from __future__ import annotations

import gzip
import json
import math
import tempfile
from pathlib import Path

import pytest
from replay_logs import StepTruth, WorkflowTruth, generate, write
from replay_project import project_fixture  # noqa: F401  (the "project" fixture)

from promptbudget.manifest.loader import load_manifest
from promptbudget.replay import engine
from promptbudget.replay.readers import ScanTally

pytest.importorskip("duckdb", reason="replay needs duckdb (pip install -e '.[dev]')")

TRUTH = (
    WorkflowTruth(
        "support",
        (
            StepTruth("classify", "gpt-4.1-nano", 300, 500, 3, 5),
            StepTruth(
                "answer", "gpt-4.1-mini", 2500, 9000, 200, 700, cache_hit=0.5, turns=2,
                tool_calls=1, escalate=0.1, escalate_model="gpt-5.4",
            ),
        ),
        requests=150,
        success=0.9,
    ),
)  # fmt: skip
CALLS = list(generate(TRUTH, seed=11))


def _scan(
    project: Path, log: Path, *, use_native: bool
) -> tuple[list[dict[str, object]], ScanTally, engine.Scan]:
    manifest = load_manifest(project / "budgets.yaml")
    tally = ScanTally()
    workdir = Path(tempfile.mkdtemp(prefix="native-" if use_native else "python-", dir=project))
    scan = engine.scan_logs(
        manifest, [(log, log.name)], tally, workdir / "calls.csv", use_native=use_native
    )
    (rows,) = engine.aggregate(manifest, scan, str(workdir))  # one window: all records
    return rows, tally, scan


def _same(a: list[dict[str, object]], b: list[dict[str, object]]) -> None:
    assert len(a) == len(b)
    for row_a, row_b in zip(a, b, strict=True):
        assert row_a.keys() == row_b.keys()
        for key, value in row_a.items():
            other = row_b[key]
            if isinstance(value, float) and isinstance(other, float):
                assert math.isclose(value, other, rel_tol=1e-12, abs_tol=1e-15), (key, row_a)
            else:
                assert value == other, (key, row_a["level"], row_a["workflow"], row_a["step"])


def _both(project: Path, log: Path) -> tuple[ScanTally, engine.Scan]:
    native_rows, native_tally, scan = _scan(project, log, use_native=True)
    python_rows, python_tally, _ = _scan(project, log, use_native=False)
    _same(native_rows, python_rows)
    assert native_tally == python_tally
    return native_tally, scan


@pytest.mark.parametrize(
    "fmt",
    ["otel", "otel-old", "otlp", "chat", "responses", "anthropic", "litellm-csv",
     "litellm-jsonl", "csv"],
)  # fmt: skip
def test_every_input_kind_gives_the_same_figures_both_ways(fmt: str, project: Path) -> None:
    tally, scan = _both(project, write(fmt, CALLS, project / f"usage.{fmt}"))
    assert tally.records == len(CALLS) if fmt.startswith("otel") else tally.records > 0
    assert bool(scan.native) == fmt.startswith("otel")  # only OTel span lines go native


@pytest.mark.parametrize("compression", ["gzip", "zstd"])
def test_compressed_span_logs_are_read_natively_with_the_same_figures(
    compression: str, project: Path
) -> None:
    raw = write("otel", CALLS, project / "plain.jsonl").read_bytes()
    if compression == "gzip":
        packed = gzip.compress(raw)
    else:
        zstandard = pytest.importorskip("zstandard", reason="zstd needs zstandard")
        packed = zstandard.ZstdCompressor().compress(raw)
    log = project / "usage.jsonl.packed"  # detected by content, not by the name
    log.write_bytes(packed)
    tally, scan = _both(project, log)
    assert scan.native and tally.records == len(CALLS)


def _attr(key: str, value: object) -> dict[str, object]:
    return {"key": key, "value": value}


def _span(trace: str, *extra: dict[str, object], **fields: object) -> str:
    attributes = [
        _attr("gen_ai.operation.name", {"stringValue": "chat"}),
        _attr("gen_ai.request.model", {"stringValue": "gpt-4.1-mini"}),
        _attr("promptbudget.workflow", {"stringValue": "support"}),
        _attr("promptbudget.step", {"stringValue": "answer"}),
        _attr("gen_ai.usage.input_tokens", {"intValue": "1200"}),
        _attr("gen_ai.usage.output_tokens", {"intValue": "80"}),
        *extra,
    ]
    span = {
        "traceId": trace,
        "spanId": "00f067aa0ba902b7",
        "startTimeUnixNano": "1764547200000000000",
        "endTimeUnixNano": "1764547201000000000",
        "attributes": attributes,
        **fields,
    }
    return json.dumps(span)


HOSTILE = [
    _span("4bf92f3577b34da6a3ce929d0e0e4736"),
    "{broken",
    _span("AB12", _attr("gen_ai.usage.input_tokens", {"intValue": 900})),  # a later one wins
    _span("ab13", _attr("gen_ai.usage.output_tokens", {"intValue": "-1"})),
    _span("ab14", _attr("gen_ai.usage.input_tokens", {"intValue": str(10**13)})),
    _span("ab15", _attr("gen_ai.usage.input_tokens", {"stringValue": " 77 "})),
    _span("ab16", _attr("gen_ai.usage.input_tokens", {"doubleValue": 77.0})),
    _span("0xAB17"),
    _span("ab18", spanId=None),
    _span("ab19", spanId="", span_id="1234"),
    _span("ab1a", startTimeUnixNano=1764547300000000000),
    _span("ab1b", startTimeUnixNano="9" * 30),
    _span("ab1c", startTimeUnixNano=None, start_time="2025-12-01T00:00:00Z"),
    _span("ab1d", _attr("promptbudget.step", {"stringValue": "  answer "})),
    _span("ab1e", _attr("promptbudget.workflow", {"stringValue": "caf\u00e9"})),
    _span("ab1f", _attr("promptbudget.workflow", {"stringValue": "x" * 201})),
    _span("ab20", _attr("promptbudget.outcome", {"stringValue": "Success"})),
    _span("ab21", _attr("promptbudget.outcome", {"boolValue": False})),
    _span("ab22", _attr("promptbudget.batch", {"stringValue": "true"})),
    _span("ab23", _attr("gen_ai.response.model", {"stringValue": "gpt-5.4-2026-03-05"})),
    _span("ab24", _attr("gen_ai.response.model", {"stringValue": ""})),
    _span("ab25", _attr("gen_ai.usage.cache_read.input_tokens", {"intValue": "5000"})),
    _span("ab26", _attr("gen_ai.usage.cache_creation_input_tokens", {"intValue": "300"})),
    _span("ab27", _attr("service.name", {"stringValue": "billing-api"})),
    _span("ab28", _attr("service.name", {"intValue": "7"})),
    _span("ab29", _attr("promptbudget.workflow", 5)),
    _span("ab2a", _attr("gen_ai.usage.input_tokens", {"intValue": "12", "stringValue": "13"})),
    json.dumps(
        {
            "traceId": "ab2b",
            "attributes": [
                _attr("gen_ai.operation.name", {"stringValue": "execute_tool"}),
                _attr("promptbudget.workflow", {"stringValue": "support"}),
            ],
        }
    ),
    json.dumps(
        {"traceId": "ab2c", "attributes": [_attr("gen_ai.operation.name", {"stringValue": "chat"})]}
    ),  # a model call without usage: malformed
    json.dumps(
        {
            "traceId": "ab2d",
            "attributes": [_attr("promptbudget.outcome", {"stringValue": "failure"})],
        }
    ),
    json.dumps({"traceId": "ab2e", "attributes": []}),  # nothing to read
    json.dumps({"traceId": "ab2f", "attributes": None}),
    json.dumps(
        {
            "context": {"trace_id": "0xab30", "span_id": "0x01"},
            "attributes": {
                "gen_ai.usage.input_tokens": 40,
                "gen_ai.usage.output_tokens": 2,
                "promptbudget.workflow": "support",
            },
        }
    ),
    json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [json.loads(_span("ab31"))]}]}]}),
    json.dumps([1, 2]),
    '{"usage": ' * 5000 + "1" + "}" * 5000,
    _span("ab32", _attr("promptbudget.prompt", {"stringValue": "classify.j2"})).replace(
        '"promptbudget.step"', '"other.step"'
    ),
    _span("ab33").replace('"gen_ai.request.model"', '"gen_ai.request.\\u006dodel"'),
    _span("ab34").replace('{"intValue": "80"}', '{ "intValue" : "80" }'),
    _span("ab35", _attr(7, {"stringValue": "x"})),  # type: ignore[arg-type]
    # time to first chunk and failed calls (read where records carry ttft_ms and failed)
    _span("ab37", _attr("gen_ai.response.time_to_first_chunk", {"doubleValue": 0.1234567})).replace(
        '"attributes"', '"status": {"code": 2}, "attributes"'
    ),
    _span("ab38", _attr("gen_ai.response.time_to_first_token", {"intValue": "2"})),
    _span("ab39", _attr("gen_ai.response.time_to_first_chunk", {"doubleValue": -1.5})),
    _span("ab3a", _attr("error.type", {"stringValue": "timeout"}), status={"code": 1}),
    _span("ab3b", status={"code": "STATUS_CODE_ERROR"}),
    _span("ab3c", status={"code": 2.0}),
    json.dumps(
        {
            "traceId": "ab3d",
            "status": {"code": 2},
            "attributes": [
                _attr("gen_ai.operation.name", {"stringValue": "chat"}),
                _attr("promptbudget.workflow", {"stringValue": "support"}),
            ],
        }
    ),
    # mapped by the match rules, on attributes other fields read too
    _span("ab3e", _attr("error.type", {"stringValue": "timeout"}))
    .replace('"promptbudget.workflow"', '"app.workflow"')
    .replace('"promptbudget.step"', '"app.step"'),
    _span("ab3f", _attr("gen_ai.usage.input_tokens", {"intValue": "0420"}))
    .replace('"promptbudget.workflow"', '"app.workflow"')
    .replace('"promptbudget.step"', '"app.step"'),
    _span("ab40", _attr("gen_ai.system", {"stringValue": "openai"}))
    .replace('"promptbudget.workflow"', '"app.workflow"')
    .replace('"promptbudget.step"', '"app.step"'),
    _span("ab36", _attr("service.name", {"stringValue": "billing-api"}))  # by the match rule
    .replace('"promptbudget.workflow"', '"app.workflow"')
    .replace('"promptbudget.step"', '"app.step"'),
]

MATCH = """\
replay:
  match:
    - attributes: {service.name: "billing*"}
      workflow: support
      step: classify
    - {attributes: {error.type: "time*"}, workflow: support, step: answer}
    - {attributes: {gen_ai.usage.input_tokens: "04*"}, workflow: support, step: answer}
    - {attributes: {gen_ai.system: "open*"}, workflow: support, step: classify}
"""


def test_hostile_span_lines_give_the_same_figures_and_file_lines(project: Path) -> None:
    manifest = project / "budgets.yaml"
    manifest.write_text(manifest.read_text() + MATCH)
    log = project / "hostile.jsonl"
    log.write_text("\n".join(HOSTILE * 3) + "\n")
    tally, scan = _both(project, log)
    assert scan.native  # read by DuckDB, the odd lines again by Python
    assert tally.lines == 3 * len(HOSTILE)
    assert tally.malformed > 0 and tally.examples[0].source == "hostile.jsonl:2"


def test_a_blank_line_sends_the_whole_file_to_the_python_reader(project: Path) -> None:
    log = project / "blank.jsonl"
    lines = write("otel", CALLS, project / "spans.jsonl").read_text().splitlines()
    log.write_text("\n".join([*lines[:10], "   ", *lines[10:]]) + "\n")
    tally, scan = _both(project, log)
    assert not scan.native  # DuckDB skips blank lines: its rows would not be file lines
    assert tally.records == len(CALLS)


def test_a_log_named_like_a_glob_is_read_itself_not_its_match(project: Path) -> None:
    """DuckDB reads ``spans[1].jsonl`` as a glob that matches ``spans1.jsonl``: such a name
    goes to the Python reader (JSON lines) or through a plain-named link (Parquet)."""
    import duckdb

    write("otel", CALLS[:40], project / "spans1.jsonl")  # what a glob would read instead
    log = write("otel", CALLS, project / "spans[1].jsonl")
    tally, scan = _both(project, log)
    assert not scan.native and tally.records == len(CALLS)

    csv_log = write("csv", CALLS, project / "calls.csv")
    for name in ("calls1.parquet", "calls[1].parquet"):
        rows = CALLS[:40] if name == "calls1.parquet" else CALLS
        source = write("csv", rows, project / "part.csv") if rows is not CALLS else csv_log
        duckdb.sql(
            f"COPY (SELECT * FROM read_csv('{source.as_posix()}')) "
            f"TO '{(project / name).as_posix()}' (FORMAT parquet)"
        )
    tally, _ = _both(project, project / "calls[1].parquet")
    assert tally.records == len(CALLS)
    # its start_time column is a Parquet TIMESTAMP (DuckDB typed the CSV's ISO times): the
    # same figures, first and last times included, as the CSV it came from
    _same(
        _scan(project, project / "calls[1].parquet", use_native=False)[0],
        _scan(project, csv_log, use_native=False)[0],
    )
