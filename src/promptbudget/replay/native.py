"""OTel span JSON lines read by DuckDB's own JSON reader: the bulk path for large logs.

DuckDB parses each line (``read_json``, newline-delimited, explicit columns, all cores) and
the SQL below extracts the record fields of :mod:`otel` from the attribute key/value list.
A line is *simple* when every field it reads has the one shape whose reading is certain
(``{"intValue":"442"}``, ``{"stringValue":"chat"}`` in printable ASCII, hex ids, digit
times); every other line (invalid JSON, another shape, a value to reject) is read again by
the Python reader, by line number, so both paths give the same records and the same
malformed ``file:line``. Which workflow and step a record belongs to is decided in Python,
once per distinct combination of the fields :class:`mapping.Mapper` reads.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptbudget.errors import UsageError
from promptbudget.replay import otel
from promptbudget.replay.readers import ScanTally, line_records, open_log
from promptbudget.replay.records import Record

_GZIP = b"\x1f\x8b"
_ZSTD = b"\x28\xb5\x2f\xfd"
# more lines than this share of the file needing the Python reader: read it all in Python
FALLBACK_SHARE = 0.25

_TEXT = r'\{"stringValue":"[!#-\[\]-~]([ !#-\[\]-~]{0,198}[!#-\[\]-~])?"\}'
_TOKENS = r'\{"intValue":("[0-9]{1,12}"|[0-9]{1,12})\}'
_HEX = r'"[0-9a-fA-F]{1,64}"'
_NS = r'("[0-9]{1,19}"|[0-9]{1,19})'
_LATEST_NS = 4_102_444_800 * 10**9  # as values.unix_ns
_SECONDS = (
    r'\{"(doubleValue":-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?'
    r'|intValue":("[0-9]{1,15}"|[0-9]{1,15}))\}'
)
_DAY_MS = 86_400_000  # as values.duration_ms
# time to the first chunk, in seconds (semconv v1.41), then Sentry's name (as otel.py reads)
TTFT_SECONDS = ("gen_ai.response.time_to_first_chunk", "gen_ai.response.time_to_first_token")
ERROR_TYPE = "error.type"  # GenAI spans of a failed call carry it
# the record columns native rows provide: a column records.COLUMNS gains that is not here
# turns the native path off (the Python reader reads everything) until it is added
PROVIDES = frozenset(
    {
        "source", "trace_id", "span_id", "request_id", "start_ns", "end_ns", "kind",
        "provider", "model", "workflow", "step", "input_tokens", "output_tokens",
        "cache_read_tokens", "cache_write_tokens", "reasoning_tokens", "tool_calls", "outcome",
        "is_batch", "ttft_ms", "failed",
    }
)  # fmt: skip

_JSON_COLUMNS = (
    "traceId",
    "spanId",
    "trace_id",
    "span_id",
    "context",
    "resourceSpans",
    "startTimeUnixNano",
    "endTimeUnixNano",
    "start_time",
    "end_time",
    "status",
)
# what one native row holds (rule_0.. follow: the attributes replay.match rules name)
ROW_COLUMNS = (
    "line",
    "simple",
    "trace_id",
    "span_id",
    "start_ns",
    "end_ns",
    "kind",
    "provider",
    "model",
    "workflow",
    "step",
    "prompt",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "outcome",
    "is_batch",
    "ttft_ms",
    "failed",
)
_SUCCESS = ("success", "succeeded", "ok", "true", "1", "resolved")
_FAILURE = ("failure", "failed", "error", "false", "0", "unresolved")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _kinds(rule_keys: Sequence[str]) -> dict[str, str]:
    """Every attribute the extraction reads, and how: text, tokens or rule (any string)."""
    wanted: dict[str, str] = {"gen_ai.operation.name": "text"}
    for keys in (otel.INPUT, otel.OUTPUT, otel.CACHE_READ, otel.CACHE_WRITE, otel.REASONING):
        wanted.update(dict.fromkeys(keys, "tokens"))
    for key in (*otel.PROVIDER, "gen_ai.response.model", "gen_ai.request.model"):
        wanted[key] = "text"
    for key in (otel.WORKFLOW, otel.STEP, otel.PROMPT, otel.OUTCOME, otel.BATCH):
        wanted[key] = "text"
    wanted.update(dict.fromkeys(TTFT_SECONDS, "seconds"))
    wanted[ERROR_TYPE] = "presence"
    for key in rule_keys:
        wanted.setdefault(key, "rule")
    return wanted


def _read(index: int, kind: str) -> tuple[str, str]:
    """(value, is simple) of attribute ``index`` (``h_N``: present, ``v_N``: its JSON)."""
    has, value = f"h_{index}", f"v_{index}"
    if kind == "text":
        return (
            f"CASE WHEN {has} THEN substr({value}, 17, length({value}) - 18) END",
            f"(NOT {has} OR regexp_full_match({value}, '{_TEXT}'))",
        )
    if kind == "tokens":
        return (
            f"CASE WHEN {has} THEN TRY_CAST(trim(substr({value}, 13), '\"}}') AS BIGINT) END",
            f"(NOT {has} OR regexp_full_match({value}, '{_TOKENS}'))",
        )
    if kind == "seconds":  # a duration in seconds, as milliseconds (values.duration_ms)
        ms = f'TRY_CAST(regexp_extract({value}, \':"?([^"}}]*)"?}}$\', 1) AS DOUBLE) * 1000'
        return (
            f"CASE WHEN {has} THEN {ms} END",
            f"(NOT {has} OR (regexp_full_match({value}, '{_SECONDS}') "
            f"AND {ms} >= 0 AND {ms} < {_DAY_MS}))",
        )
    if kind == "presence":
        return "NULL", "true"
    return (  # a match rule's attribute: any string, compared as text
        f"CASE WHEN {has} THEN {value} ->> '$.stringValue' END",
        f"(NOT {has} OR (json_type({value}) = 'OBJECT' "
        f"AND json_type({value}, '$.stringValue') = 'VARCHAR'))",
    )


def _time(column: str, other: str) -> tuple[str, str]:
    """A ``*TimeUnixNano`` (digits, quoted or not); when absent, the console exporter's
    ``start_time``/``end_time`` must be absent too (else the Python reader reads it)."""
    raw = f"TRY_CAST(trim({column}, '\"') AS HUGEINT)"
    return (
        f"TRY_CAST({raw} AS BIGINT)",
        f"(({column} IS NULL AND {other} IS NULL) OR "
        f"(regexp_full_match({column}, '{_NS}') AND {raw} < {_LATEST_NS}))",
    )


def extraction_sql(source: str, compression: str, rule_keys: Sequence[str]) -> str:
    """One row per non-blank line of ``source``, in order, with :data:`ROW_COLUMNS` and a
    ``rule_N`` column per name in ``rule_keys`` (that attribute as text, NULL when absent)."""
    columns = ", ".join(f"\"{name}\": 'JSON'" for name in _JSON_COLUMNS)
    columns += ", attributes: 'STRUCT(key VARCHAR, value JSON)[]'"
    wanted = _kinds(rule_keys)
    index = {key: i for i, key in enumerate(wanted)}
    positions = ",\n    ".join(
        f"list_position(rkeys, {_quote(key)}) AS p_{i}" for key, i in index.items()
    )
    found = ",\n    ".join(
        f"p_{i} IS NOT NULL AS h_{i}, attributes[n + 1 - p_{i}].value AS v_{i}"
        for i in index.values()
    )
    read = {key: _read(i, wanted[key]) for key, i in index.items()}
    reads = ",\n    ".join(f"{read[key][0]} AS r_{i}" for key, i in index.items())

    def value(key: str) -> str:
        return f"r_{index[key]}"

    def has(key: str) -> str:
        return f"h_{index[key]}"

    def first(keys: Sequence[str], otherwise: str = "NULL") -> str:
        cases = " ".join(f"WHEN {has(k)} THEN {value(k)}" for k in keys)
        return f"CASE {cases} ELSE {otherwise} END"

    def flag(key: str) -> str:
        success = ", ".join(_quote(s) for s in _SUCCESS)
        failure = ", ".join(_quote(s) for s in _FAILURE)
        text = f"lower({value(key)})"
        return f"CASE WHEN {text} IN ({success}) THEN 1 WHEN {text} IN ({failure}) THEN 0 END"

    start, start_ok = _time('"startTimeUnixNano"', '"start_time"')
    end, end_ok = _time('"endTimeUnixNano"', '"end_time"')
    has_usage = " OR ".join(has(k) for k in (*otel.INPUT, *otel.OUTPUT))
    model_calls = ", ".join(_quote(o) for o in sorted(otel.MODEL_CALLS))
    tool_calls = ", ".join(_quote(o) for o in sorted(otel.TOOL_CALLS))
    operation = value("gen_ai.operation.name")
    kind = (
        f"CASE WHEN {operation} IN ({tool_calls}) THEN 'tool' "
        f"WHEN ({has_usage}) OR {operation} IN ({model_calls}) THEN 'model' "
        "WHEN list_bool_or(list_transform(keys, lambda k: starts_with(k, 'promptbudget.'))) "
        "THEN 'context' END"
    )
    tokens = {
        "input_tokens": otel.INPUT,
        "output_tokens": otel.OUTPUT,
        "cache_read_tokens": otel.CACHE_READ,
        "cache_write_tokens": otel.CACHE_WRITE,
        "reasoning_tokens": otel.REASONING,
    }
    token_columns = ",\n    ".join(
        f"CASE WHEN kind = 'model' THEN {first(keys, '0')} ELSE 0 END AS {name}"
        for name, keys in tokens.items()
    )
    token_keys = [k for keys in tokens.values() for k in keys]
    model_keys = [*token_keys, *TTFT_SECONDS]  # read from model calls only
    # a match rule reads its attribute as text (str() of the value), whatever else reads it
    rule_reads = [_read(index[key], "rule") for key in rule_keys]
    simple = " AND ".join(
        [
            "attributes IS NOT NULL",
            '"resourceSpans" IS NULL',
            f"""regexp_full_match("traceId", '{_HEX}')""",
            f"""(regexp_full_match("spanId", '{_HEX}') OR ("spanId" IS NULL """
            """AND "span_id" IS NULL AND "context" IS NULL))""",
            start_ok,
            end_ok,
            *(read[key][1] for key in wanted if key not in model_keys),
            *(check for _, check in rule_reads),
            # a model span without usage is malformed (or a failed attempt): the Python
            # reader says which
            "(kind IS DISTINCT FROM 'model' OR (("
            + has_usage
            + ") AND "
            + " AND ".join(read[key][1] for key in model_keys)
            + "))",
            # the span's status (OTLP: {"code": 2} or "STATUS_CODE_ERROR")
            """("status" IS NULL OR (json_type("status") = 'OBJECT' AND """
            """COALESCE(json_type("status", '$.code'), 'NULL') """
            """IN ('NULL', 'UBIGINT', 'BIGINT', 'VARCHAR')))""",
        ]
    )
    rules = "".join(f",\n    {expr} AS rule_{i}" for i, (expr, _) in enumerate(rule_reads))
    return f"""
WITH spans AS (
  SELECT
    row_number() OVER () AS line, *,
    list_transform(attributes, lambda a: a.key) AS keys
  FROM read_json({_quote(source)}, format = 'newline_delimited',
                 compression = {_quote(compression)}, columns = {{{columns}}},
                 ignore_errors = true)
), positioned AS (
  SELECT *, len(keys) AS n, {positions}
  FROM (SELECT *, list_reverse(keys) AS rkeys FROM spans)
), located AS (
  SELECT *, {found} FROM positioned
), valued AS (
  SELECT *, {reads} FROM located
), typed AS (
  SELECT *, {kind} AS kind FROM valued
), extracted AS (
  SELECT
    line, kind,
    lower(trim("traceId", '"')) AS trace_id,
    lower(trim("spanId", '"')) AS span_id,
    {start} AS start_ns,
    {end} AS end_ns,
    {first(otel.PROVIDER)} AS provider,
    COALESCE({value("gen_ai.response.model")}, {value("gen_ai.request.model")}) AS model,
    {value(otel.WORKFLOW)} AS workflow,
    {value(otel.STEP)} AS step,
    {value(otel.PROMPT)} AS prompt,
    {flag(otel.OUTCOME)} AS outcome,
    {flag(otel.BATCH)} AS is_batch,
    {token_columns}{rules},
    CASE WHEN kind = 'model' THEN {first(TTFT_SECONDS)} END AS ttft_ms,
    CASE WHEN kind IN ('model', 'tool') THEN
      CASE WHEN (json_type("status", '$.code') IN ('UBIGINT', 'BIGINT')
                 AND ("status" ->> '$.code') = '2')
        OR (json_type("status", '$.code') = 'VARCHAR'
            AND ("status" ->> '$.code') IN ('2', 'STATUS_CODE_ERROR', 'ERROR'))
        OR {has(ERROR_TYPE)} THEN 1 ELSE 0 END
    END AS failed,
    COALESCE({simple}, false) AS simple
  FROM typed
)
SELECT
  line, simple, trace_id, span_id, start_ns, end_ns, kind, provider, model, workflow, step,
  prompt,
  CASE WHEN cache_read_tokens + cache_write_tokens > input_tokens
    THEN input_tokens + cache_read_tokens + cache_write_tokens
    ELSE input_tokens END AS input_tokens,
  output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, outcome,
  is_batch, ttft_ms, failed{"".join(f", rule_{i}" for i in range(len(rule_keys)))}
FROM extracted
"""


@dataclass(frozen=True)
class NativePart:
    """A log read by DuckDB: a Parquet file of :data:`ROW_COLUMNS` (plus ``file`` and the
    ``rule_N`` columns), one row per non-blank line; rows not ``simple`` were read again by
    the Python reader."""

    path: Path
    shown: str


def compression_of(path: Path) -> str:
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic.startswith(_GZIP):
        return "gzip"
    return "zstd" if magic == _ZSTD else "none"


def has_glob(path: Path) -> bool:
    """DuckDB reads a file name as a glob: ``a[1].jsonl`` would read ``a1.jsonl``."""
    return any(c in str(path) for c in "*?[]{}")


def looks_like_spans(path: Path, shown: str) -> bool:
    """Whether the log's first line is a single OTLP-shaped span (``traceId`` and an
    ``attributes`` list): the shape the native path reads. A name DuckDB would read as a glob
    is left to the Python reader."""
    if has_glob(path.resolve()):
        return False
    try:
        stream, is_parquet = open_log(path, shown)
    except (UsageError, OSError):  # the Python reader reports it
        return False
    with stream:
        if is_parquet:
            return False
        try:
            first = stream.readline(1 << 20).lstrip()
        except (OSError, EOFError, ValueError):
            return False
    return (
        first.startswith(b"{")
        and b'"traceId"' in first
        and b'"attributes":[' in first.replace(b" ", b"")
        and b'"resourceSpans"' not in first
    )


def count_lines(path: Path, shown: str) -> int | None:
    """Lines as the Python reader counts them (a last line without a newline counts);
    ``None`` when the file cannot be read to its end (the Python reader reports that)."""
    try:
        stream, _ = open_log(path, shown)
        with stream:
            count = 0
            last = b"\n"
            while block := stream.read(1 << 24):
                count += block.count(b"\n")
                last = block[-1:]
    except (OSError, EOFError, ValueError):
        return None
    return count + (last != b"\n")


def extract(
    connection: Any,
    path: Path,
    shown: str,
    out: Path,
    rule_keys: Sequence[str],
) -> tuple[int, int] | None:
    """Write ``path``'s rows to ``out``; (lines, lines the Python reader must read again),
    or ``None`` when this file is better read by the Python reader alone (DuckDB cannot read
    it, its rows and lines do not line up, or most lines need the Python reader)."""
    import duckdb

    sql = extraction_sql(str(path.resolve()), compression_of(path), rule_keys)
    with ThreadPoolExecutor(1) as pool:  # counting lines (no GIL held by DuckDB) alongside
        counted = pool.submit(count_lines, path, shown)
        try:
            connection.execute(
                f"COPY (SELECT {_quote(shown)} AS file, * FROM ({sql})) TO {_quote(str(out))} "
                "(FORMAT parquet)"
            )
            rows, again = connection.execute(
                "SELECT count(*), count(*) FILTER (WHERE NOT simple) FROM read_parquet(?)",
                [str(out)],
            ).fetchone()
        except duckdb.Error:
            rows = again = -1
        lines = counted.result()
    if lines is None or rows != lines or (again > 1000 and again > rows * FALLBACK_SHARE):
        out.unlink(missing_ok=True)
        return None
    return lines, again


def reread(
    connection: Any, part: NativePart, path: Path, tally: ScanTally, input_format: str
) -> Iterator[Record]:
    """The records of the lines DuckDB could not read with certainty, read by the Python
    reader (malformed ones counted with their file:line, as in a Python-only run)."""
    cursor = connection.execute(
        "SELECT line FROM read_parquet(?) WHERE NOT simple ORDER BY line", [str(part.path)]
    )
    wanted = iter(row[0] for batch in iter(lambda: cursor.fetchmany(10_000), []) for row in batch)
    target = next(wanted, None)
    if target is None:
        return
    stream, _ = open_log(path, part.shown)
    number = 0
    with stream:
        try:
            for number, raw in enumerate(stream, start=1):
                if number != target:
                    continue
                yield from line_records(raw, f"{part.shown}:{number}", tally, input_format)
                tally.lines -= 1  # counted once for the whole file
                target = next(wanted, None)
                if target is None:
                    return
        except (OSError, EOFError) as err:  # changed since DuckDB read it
            tally.bad(f"{part.shown}:{number + 1}", f"the file ends early or is corrupt ({err})")
