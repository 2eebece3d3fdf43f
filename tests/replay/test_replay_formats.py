"""Every input format, with records shaped exactly as their sources document them.

Sources (field names and nesting):
* OTel GenAI spans: https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/ and the
  attribute registry (gen_ai.usage.input_tokens, gen_ai.usage.output_tokens,
  gen_ai.usage.cache_read.input_tokens, gen_ai.usage.cache_creation.input_tokens,
  gen_ai.provider.name; deprecated gen_ai.system, gen_ai.usage.prompt_tokens,
  gen_ai.usage.completion_tokens); OTLP JSON encoding:
  https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding (resourceSpans >
  scopeSpans > spans, hex trace ids, int64 as JSON strings, AnyValue {"intValue": ...}).
* OpenAI Chat Completions object and Responses object:
  https://platform.openai.com/docs/api-reference/chat/object,
  https://platform.openai.com/docs/api-reference/responses/object (usage.prompt_tokens_details.
  cached_tokens; usage.input_tokens_details.cached_tokens; output_tokens_details.reasoning_tokens).
* Anthropic Messages: https://docs.anthropic.com/en/api/messages (usage.input_tokens excludes
  cache_creation_input_tokens and cache_read_input_tokens).
* LiteLLM SpendLogs: BerriAI/litellm schema.prisma (model LiteLLM_SpendLogs) and
  litellm/types/utils.py SpendLogsMetadata (additional_usage_values, spend_logs_metadata).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from replay_logs import StepTruth, WorkflowTruth, generate, write
from replay_project import project_fixture  # noqa: F401  (the "project" fixture)

from promptbudget.replay.readers import ScanTally, read_log

pytest.importorskip("duckdb", reason="replay needs duckdb (pip install -e '.[dev]')")

TRUTH = (
    WorkflowTruth(
        "support",
        (
            StepTruth("classify", "gpt-4.1-nano", 300, 500, 3, 5),
            StepTruth(
                "answer", "gpt-4.1-mini", 2500, 6000, 200, 500, cache_hit=0.5, turns=2,
                tool_calls=1, escalate=0.1, escalate_model="gpt-5.4",
            ),
        ),
        requests=120,
        success=0.9,
    ),
)  # fmt: skip
CALLS = list(generate(TRUTH, seed=3))
MODEL_CALLS = [c for c in CALLS if c.kind == "model"]


def _replay(run_cli: Callable[..., object], project: Path, *args: str) -> dict[str, object]:
    result = run_cli("replay", *args, "--format", "json", "--samples", "50", cwd=project)
    assert result.exit_code in (0, 1), result.stderr  # type: ignore[attr-defined]
    return result.json()["replay"]  # type: ignore[attr-defined,no-any-return]


def _steps(replayed: dict[str, object]) -> dict[str, dict[str, object]]:
    workflows = replayed["workflows"]
    assert isinstance(workflows, list)
    assert [w["name"] for w in workflows] == ["support"]
    return {s["name"]: s for s in workflows[0]["steps"]}


@pytest.mark.parametrize(
    "fmt", ["otel", "otel-old", "otlp", "chat", "responses", "anthropic", "litellm-csv",
            "litellm-jsonl", "csv"]
)  # fmt: skip
def test_every_format_reads_the_same_calls(
    fmt: str, project: Path, run_cli: Callable[..., object]
) -> None:
    log = write(fmt, CALLS, project / f"usage.{fmt}")
    replayed = _replay(run_cli, project, str(log))
    steps = _steps(replayed)
    answer = [c for c in MODEL_CALLS if c.step == "answer"]
    assert steps["answer"]["calls"] == len(answer)
    assert steps["classify"]["calls"] == 120
    assert steps["answer"]["input_tokens"]["max"] == max(c.input_tokens for c in answer)
    assert steps["answer"]["output_tokens"]["max"] == max(c.output_tokens for c in answer)
    hits = sum(1 for c in answer if c.cache_read_tokens)
    assert steps["answer"]["cache_hit_rate"] == pytest.approx(hits / len(answer))
    assert replayed["malformed"]["count"] == 0
    if fmt.startswith("litellm"):
        return  # spend logs record neither tool calls nor outcomes
    assert steps["answer"]["tool_calls"]["mean"] == 2  # one per turn, two turns
    assert steps["answer"]["turns"]["mean"] == 2


def test_otlp_export_as_one_pretty_printed_document(
    project: Path, run_cli: Callable[..., object]
) -> None:
    """A file holding one ExportTraceServiceRequest, indented, as exporters write it."""
    lines = write("otlp", CALLS[:40], project / "lines.json").read_text().splitlines()
    spans = [
        s for line in lines for s in json.loads(line)["resourceSpans"][0]["scopeSpans"][0]["spans"]
    ]
    document = {"resourceSpans": [{"resource": {}, "scopeSpans": [{"scope": {}, "spans": spans}]}]}
    path = project / "export.json"
    path.write_text(json.dumps(document, indent=2))
    replayed = _replay(run_cli, project, str(path))
    assert replayed["records"] == 40
    assert replayed["malformed"]["count"] == 0


def test_gzip_and_zstd_are_read_transparently(
    project: Path, run_cli: Callable[..., object]
) -> None:
    zstandard = pytest.importorskip("zstandard")
    plain = write("otel", CALLS, project / "spans.jsonl").read_bytes()
    (project / "spans.jsonl.gz").write_bytes(gzip.compress(plain))
    (project / "spans.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(plain))
    counts = [
        _replay(run_cli, project, name)["records"]
        for name in ("spans.jsonl", "spans.jsonl.gz", "spans.jsonl.zst")
    ]
    assert counts == [len(CALLS)] * 3


def test_malformed_records_are_counted_with_file_and_line(
    project: Path, run_cli: Callable[..., object]
) -> None:
    good = write("chat", CALLS[:30], project / "log.jsonl").read_text().splitlines()
    bad = [
        "{not json",
        json.dumps({"response": {"object": "chat.completion", "model": "gpt-4.1-mini"}}),
        json.dumps({"usage": {"prompt_tokens": "many", "completion_tokens": 3}}),
        "[1, 2]",
        json.dumps({"hello": "world"}),
    ]
    lines = good[:5] + bad + good[5:]
    (project / "log.jsonl").write_text("\n".join(lines) + "\n")
    replayed = _replay(run_cli, project, "log.jsonl")
    malformed = replayed["malformed"]
    assert malformed["count"] == 5
    assert [m["source"] for m in malformed["examples"]] == [f"log.jsonl:{n}" for n in range(6, 11)]
    assert "not valid JSON" in malformed["examples"][0]["reason"]
    assert "no usage object" in malformed["examples"][1]["reason"]
    assert "usage.prompt_tokens is 'many'" in malformed["examples"][2]["reason"]
    assert replayed["records"] == len([c for c in CALLS[:30] if c.kind == "model"])


def test_only_the_first_ten_malformed_records_are_listed(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("not json\n" * 25)
    tally = ScanTally()
    assert list(read_log(path, "bad.jsonl", tally)) == []
    assert tally.malformed == 25
    assert len(tally.examples) == 10


def test_a_truncated_gzip_file_is_a_malformed_record_not_a_crash(tmp_path: Path) -> None:
    data = gzip.compress(
        (
            "\n".join(
                json.dumps({"usage": {"prompt_tokens": 5, "completion_tokens": 1}})
                for _ in range(2000)
            )
            + "\n"
        ).encode()
    )
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    tally = ScanTally()
    records = list(read_log(path, "cut.jsonl.gz", tally))
    assert tally.malformed == 1
    assert "ends early" in tally.examples[0].reason
    assert 0 < len(records) < 2000


def test_an_empty_log_reports_no_records_and_exits_0(
    project: Path, run_cli: Callable[..., object]
) -> None:
    (project / "empty.jsonl").write_text("")
    result = run_cli("replay", "empty.jsonl", cwd=project)
    assert result.exit_code == 0, result.stderr  # type: ignore[attr-defined]
    assert "0 records" in result.stdout  # type: ignore[attr-defined]
    assert "No usage records" in result.stdout  # type: ignore[attr-defined]


def test_unmatched_records_are_reported_with_volume_and_cost(
    project: Path, run_cli: Callable[..., object]
) -> None:
    stray = WorkflowTruth(
        "stray", (StepTruth("x", "gpt-4.1-nano", 1000, 1000, 100, 100),), requests=5, tagged=False
    )
    other = WorkflowTruth(
        "renamed", (StepTruth("y", "gpt-4.1-nano", 1000, 1000, 100, 100),), requests=2
    )
    write("otel", [*CALLS, *generate([stray, other], seed=5)], project / "all.jsonl")
    replayed = _replay(run_cli, project, "all.jsonl")
    unmatched = {w["name"]: w for w in replayed["unmatched"]}
    assert unmatched[None]["calls"] == 5
    # 5 calls x (1,000 x $0.10 + 100 x $0.40) per million tokens (gpt-4.1-nano)
    assert unmatched[None]["cost_usd"] == pytest.approx(5 * (1000 * 0.10 + 100 * 0.40) / 1e6)
    assert unmatched["renamed"]["in_manifest"] is False
    assert unmatched["renamed"]["calls"] == 2
    text = run_cli("replay", "all.jsonl", cwd=project).stdout  # type: ignore[attr-defined]
    assert "(no workflow): 5 calls in 5 requests, $0.0007" in text
    assert "renamed (not in budgets.yaml): 2 calls" in text


def test_prompt_and_completion_contents_never_reach_a_report(
    project: Path, run_cli: Callable[..., object]
) -> None:
    """The generated logs carry "SECRET" in message contents, tool arguments and LiteLLM's
    messages/response columns; no output format may show it."""
    logs = [
        str(write(f, CALLS, project / f"l.{f}"))
        for f in ("otel", "chat", "anthropic", "litellm-csv")
    ]
    for fmt in ("text", "json", "markdown", "sarif", "junit", "github"):
        result = run_cli("replay", *logs, "--format", fmt, cwd=project)
        assert result.exit_code in (0, 1)  # type: ignore[attr-defined]
        assert "SECRET" not in result.stdout  # type: ignore[attr-defined]


def test_mapping_by_match_rules_in_budgets_yaml(
    project: Path, run_cli: Callable[..., object]
) -> None:
    untagged = (
        WorkflowTruth(
            "support",
            (StepTruth("classify", "gpt-4.1-nano", 300, 500, 3, 5),
             StepTruth("answer", "gpt-4.1-mini", 2500, 6000, 200, 500)),
            requests=10,
            tagged=False,
        ),
    )  # fmt: skip
    text = (project / "budgets.yaml").read_text()
    (project / "budgets.yaml").write_text(
        text
        + "replay:\n  match:\n"
        + "    - {workflow: support, step: classify, model: gpt-4.1-nano*}\n"
        + "    - {workflow: support, step: answer, model: 'gpt-4.1-mini'}\n"
    )
    write("chat", list(generate(untagged, seed=9)), project / "u.jsonl")
    steps = _steps(_replay(run_cli, project, "u.jsonl"))
    assert steps["classify"]["calls"] == 10
    assert steps["answer"]["calls"] == 10


def test_a_match_rule_naming_an_unknown_workflow_is_a_manifest_error(
    project: Path, run_cli: Callable[..., object]
) -> None:
    text = (project / "budgets.yaml").read_text()
    (project / "budgets.yaml").write_text(text + "replay:\n  match:\n    - {workflow: nope}\n")
    (project / "x.jsonl").write_text("")
    result = run_cli("replay", "x.jsonl", cwd=project)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "budgets.yaml:" in result.stderr  # type: ignore[attr-defined]
    assert "workflow 'nope'" in result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in result.stderr  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("missing.jsonl",), "no such log file"),
        (("*.nothing",), "no log file matches"),
        ((), "name the usage logs"),
        (("x.jsonl", "--input-format", "xml"), "--input-format 'xml'"),
        (("x.jsonl", "--diff"), "--diff previews --calibrate"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    args: tuple[str, ...], message: str, project: Path, run_cli: Callable[..., object]
) -> None:
    (project / "x.jsonl").write_text("")
    result = run_cli("replay", *args, cwd=project)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert message in result.stderr  # type: ignore[attr-defined]
    assert len(result.stderr.strip().splitlines()) == 1  # type: ignore[attr-defined]


def test_forced_input_format_counts_other_records_as_malformed(
    project: Path, run_cli: Callable[..., object]
) -> None:
    write("chat", CALLS[:20], project / "a.jsonl")
    replayed = _replay(run_cli, project, "a.jsonl", "--input-format", "anthropic")
    assert replayed["records"] == 0
    assert replayed["malformed"]["examples"][0]["reason"] == "not a anthropic record"


def test_a_large_file_read_by_several_processes_gives_the_same_records(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Split at line ends into two ranges, each read by its own process: the same rows,
    the same file:line of each malformed record (the Python reader, which reads the large
    JSON lines DuckDB does not: provider responses, the console exporter's spans)."""
    from promptbudget.manifest.loader import load_manifest
    from promptbudget.replay import engine

    lines = write("otel", CALLS, project / "big.jsonl").read_text().splitlines()
    lines[100] = "{broken"
    negative = {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "-1"}}
    lines[-3] = json.dumps({"traceId": "ab", "attributes": [negative]})
    (project / "big.jsonl").write_text("\n".join(lines) + "\n")
    manifest = load_manifest(project / "budgets.yaml")

    def scan(processes: int, name: str) -> tuple[list[str], ScanTally]:
        tally = ScanTally()
        result = engine.scan_logs(
            manifest, [(project / "big.jsonl", "big.jsonl")], tally, project / name,
            processes=processes, use_native=False,
        )  # fmt: skip
        rows = [line for part in result.parts for line in part.read_text().splitlines()]
        return sorted(rows), tally

    serial_rows, serial = scan(1, "serial.csv")
    monkeypatch.setattr(engine, "PARALLEL_MIN_BYTES", 1)
    parallel_rows, parallel = scan(2, "parallel.csv")
    assert parallel_rows == serial_rows
    assert len(serial_rows) == len(CALLS) - 2
    assert (parallel.records, parallel.lines, parallel.malformed) == (
        serial.records,
        serial.lines,
        serial.malformed,
    )
    assert sorted(m.source for m in parallel.examples) == [
        "big.jsonl:101",
        f"big.jsonl:{len(lines) - 2}",
    ]


def test_hostile_values_are_malformed_records_or_cleaned_never_a_crash(
    project: Path, run_cli: Callable[..., object]
) -> None:
    def span(trace: str, **usage: object) -> str:
        attributes = [{"key": "promptbudget.workflow", "value": {"stringValue": "support"}}]
        attributes += [
            {"key": f"gen_ai.usage.{k}", "value": {"intValue": v}} for k, v in usage.items()
        ]
        return json.dumps({"traceId": trace, "startTimeUnixNano": "1764547200000000000",
                           "attributes": attributes})  # fmt: skip

    lines = [
        span("a", input_tokens=str(10**30), output_tokens="1"),
        span("b\n,'\"", input_tokens="10", output_tokens="1"),  # a newline, quotes in an id
        json.dumps({"traceId": "c", "startTimeUnixNano": "9" * 30, "attributes": []}),
        '{"usage": ' * 5000 + "1" + "}" * 5000,  # nesting deeper than the parser allows
        span("d", input_tokens="10", output_tokens="1", cache_read=5),
    ]
    (project / "hostile.jsonl").write_text("\n".join(lines) + "\n")
    result = run_cli("replay", "hostile.jsonl", "--format", "json", "--samples", "50", cwd=project)
    assert result.exit_code in (0, 1), result.stderr  # type: ignore[attr-defined]
    replayed = result.json()["replay"]  # type: ignore[attr-defined]
    reasons = {m["source"]: m["reason"] for m in replayed["malformed"]["examples"]}
    assert "no call has that many tokens" in reasons["hostile.jsonl:1"]
    assert "hostile.jsonl:4" in reasons
    assert replayed["records"] == 2  # b and d (c is a span with nothing to read)
    assert replayed["workflows"][0]["calls"] == 2


def test_logs_of_another_project_say_which_manifest_was_used(
    project: Path, run_cli: Callable[..., object]
) -> None:
    other = WorkflowTruth("billing", (StepTruth("x", "gpt-4.1-nano", 100, 100, 1, 1),), requests=2)
    write("otel", list(generate([other])), project / "other.jsonl")
    result = run_cli("replay", "other.jsonl", "--samples", "50", cwd=project)
    assert "No record belongs to a workflow of budgets.yaml" in result.stdout  # type: ignore[attr-defined]
    assert "--config" in result.stdout  # type: ignore[attr-defined]
