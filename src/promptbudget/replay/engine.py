"""Running the aggregation: records streamed to a temporary file, scanned by DuckDB out of
core (bounded memory, all cores); or a result file produced elsewhere read back."""

from __future__ import annotations

import csv
import multiprocessing
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptbudget.errors import PromptBudgetError, UsageError
from promptbudget.manifest.model import Manifest
from promptbudget.replay import native
from promptbudget.replay.mapping import Mapper
from promptbudget.replay.query import TABLE, build_query, parameters, resolve_model
from promptbudget.replay.readers import (
    ScanTally,
    install_hint,
    json_line_ranges,
    read_json_line_range,
    read_log,
)
from promptbudget.replay.records import COLUMN_NAMES, COLUMNS, Record
from promptbudget.replay.stats import required_columns

MEMORY_LIMIT = os.environ.get("PROMPTBUDGET_REPLAY_MEMORY", "512MB")
THREADS = os.cpu_count() or 1


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError:
        raise UsageError(install_hint("duckdb")) from None
    return duckdb


def _connect(workdir: str, *, ordered: bool = False) -> Any:
    """A DuckDB connection with bounded memory, spilling to ``workdir`` (a fresh temporary
    directory, never the project). ``ordered``: rows keep their file order (line numbers)."""
    duckdb = _duckdb()
    connection = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "threads": THREADS})
    connection.execute("SET temp_directory = ?", [workdir])
    connection.execute(f"SET preserve_insertion_order = {'true' if ordered else 'false'}")
    return connection


class _Canonical:
    """Logged model names as the catalog names them (``openai/gpt-4.1-2025-04-14`` ->
    ``gpt-4.1``), so escalation targets and prices line up; unknown names stay as logged."""

    def __init__(self, manifest: Manifest) -> None:
        self.catalog = manifest.catalog
        self.names: dict[str, str] = {}

    def __call__(self, name: str | None) -> str | None:
        if name is None:
            return None
        found = self.names.get(name)
        if found is None:
            price = resolve_model(self.catalog, name)
            found = self.names[name] = price.name if price is not None else name
        return found


PARALLEL_MIN_BYTES = 64 * 1024 * 1024  # a plain JSON-lines file this large is split
# Exact quantiles hold every value in memory; above this many records DuckDB's approximate
# (t-digest) quantiles keep memory bounded
EXACT_QUANTILES_UP_TO = 2_000_000


@dataclass(frozen=True)
class Scan:
    """The scanned records: CSV files of :data:`records.COLUMNS` (the Python reader),
    Parquet files of the native reader with the workflow, step and model of each distinct
    combination of the fields mapping reads (``mapped``), and the models seen."""

    parts: tuple[Path, ...]
    models: frozenset[str]
    native: tuple[native.NativePart, ...] = ()
    mapped: Path | None = None
    rule_keys: tuple[str, ...] = ()


def scan_logs(
    manifest: Manifest,
    logs: Iterable[tuple[Path, str]],
    tally: ScanTally,
    out: Path,
    *,
    input_format: str = "auto",
    processes: int | None = None,
    use_native: bool = True,
) -> Scan:
    """Every record of ``logs``, mapped to its workflow and step: OTel span JSON lines read by
    DuckDB (:mod:`native`) into Parquet beside ``out``, everything else (and the lines DuckDB
    cannot read with certainty) by the Python readers, written as CSV to ``out`` (and, for
    large plain JSON-lines files read by several processes, next to it)."""
    mapper = Mapper(manifest)
    canonical = _Canonical(manifest)
    models: set[str] = set()
    parts = [out]
    natives: list[native.NativePart] = []
    rule_keys = tuple(dict.fromkeys(k for rule in manifest.replay.match for k in rule.attributes))
    workers = processes or os.cpu_count() or 1
    connection = None
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        for path, shown in logs:
            if (
                use_native
                and input_format in {"auto", "otel"}
                and set(COLUMN_NAMES) <= native.PROVIDES
                and path.is_file()
                and native.looks_like_spans(path, shown)
            ):
                if connection is None:
                    connection = _connect(str(out.parent), ordered=True)
                part = native.NativePart(out.with_name(f"native-{len(natives)}.parquet"), shown)
                found = native.extract(connection, path, shown, part.path, rule_keys)
                if found is not None:
                    natives.append(part)
                    tally.files.append(shown)
                    tally.lines += found[0]
                    for record in native.reread(connection, part, path, tally, input_format):
                        _write(writer, record, mapper, canonical, models)
                    continue
            ranges = None
            if workers > 1 and path.is_file() and path.stat().st_size >= PARALLEL_MIN_BYTES:
                ranges = json_line_ranges(path, workers, input_format=input_format)
            if ranges and len(ranges) > 1:
                parts += _scan_parallel(manifest, path, shown, ranges, tally, out, models,
                                        input_format, len(parts))  # fmt: skip
                continue
            for record in read_log(
                path, shown, tally, input_format=input_format, columns=manifest.replay.columns
            ):
                _write(writer, record, mapper, canonical, models)
    mapped = None
    if natives:
        mapped = out.with_name("native-mapping.parquet")
        tally.records += _map_native(connection, natives, rule_keys, mapped, mapper, canonical,
                                     models)  # fmt: skip
    if connection is not None:
        connection.close()  # its temporary files go before the aggregation starts
    return Scan(tuple(parts), frozenset(models), tuple(natives), mapped, rule_keys)


_MAPPING_KEYS = ("workflow", "step", "prompt", "model")


def _map_native(
    connection: Any,
    parts: Iterable[native.NativePart],
    rule_keys: tuple[str, ...],
    out: Path,
    mapper: Mapper,
    canonical: _Canonical,
    models: set[str],
) -> int:
    """The workflow, step and catalog model name of each distinct combination of what mapping
    reads in the native rows, written to ``out``; the number of native records."""
    files = _list(part.path for part in parts)
    keys = [*_MAPPING_KEYS, *(f"rule_{i}" for i in range(len(rule_keys)))]
    records = connection.execute(
        f"SELECT count(*) FROM read_parquet({files}) WHERE simple AND kind IS NOT NULL"
    ).fetchone()[0]
    types = ", ".join(f"{k} VARCHAR" for k in (*keys, "to_workflow", "to_step", "to_model"))
    connection.execute(f"CREATE OR REPLACE TABLE pb_mapping ({types})")
    cursor = connection.cursor()  # its own result, read while the mapping is inserted
    cursor.execute(
        f"SELECT DISTINCT {', '.join(keys)} FROM read_parquet({files}) "
        "WHERE simple AND kind IS NOT NULL"
    )
    insert = f"INSERT INTO pb_mapping VALUES ({', '.join('?' * (len(keys) + 3))})"
    while batch := cursor.fetchmany(10_000):
        rows = []
        for values in batch:
            workflow, step, prompt, model, *rules = values
            record = Record(source="", origin="otel", workflow=workflow, step=step,
                            prompt=prompt, model=model,
                            attributes={k: v for k, v in zip(rule_keys, rules, strict=True)
                                        if v is not None})  # fmt: skip
            to_workflow, to_step = mapper.assign(record)
            to_model = canonical(model)
            if to_model is not None:
                models.add(to_model)
            rows.append((*values, to_workflow, to_step, to_model))
        connection.executemany(insert, rows)
    connection.execute(f"COPY pb_mapping TO {_text(out.as_posix())} (FORMAT parquet)")
    return int(records)


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _list(paths: Iterable[Path]) -> str:
    return "[" + ", ".join(_text(path.as_posix()) for path in paths) + "]"


def _scan_range(
    job: tuple[Manifest, Path, str, int, int, str, Path],
) -> tuple[ScanTally, set[str]]:
    """One process's share of a large file (run in a worker process)."""
    manifest, path, shown, start, end, input_format, out = job
    mapper = Mapper(manifest)
    canonical = _Canonical(manifest)
    models: set[str] = set()
    tally = ScanTally()
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        for record in read_json_line_range(
            path, shown, tally, start, end, input_format=input_format
        ):
            _write(writer, record, mapper, canonical, models)
    return tally, models


def _scan_parallel(
    manifest: Manifest,
    path: Path,
    shown: str,
    ranges: list[tuple[int, int]],
    tally: ScanTally,
    out: Path,
    models: set[str],
    input_format: str,
    first_part: int,
) -> list[Path]:
    outs = [out.with_name(f"{out.stem}-{first_part + i}{out.suffix}") for i in range(len(ranges))]
    jobs = [
        (manifest, path, shown, start, end, input_format, part)
        for (start, end), part in zip(ranges, outs, strict=True)
    ]
    context = multiprocessing.get_context("spawn")  # no fork of a threaded process
    with context.Pool(len(jobs)) as pool:
        results = pool.map(_scan_range, jobs)
    tally.files.append(shown)
    for part_tally, part_models in results:
        tally.lines += part_tally.lines
        tally.records += part_tally.records
        for example in part_tally.examples:
            tally.bad(example.source, example.reason)
        tally.malformed += part_tally.malformed - len(part_tally.examples)
        models |= part_models
    return outs


def _write(
    writer: Any, record: Record, mapper: Mapper, canonical: _Canonical, models: set[str]
) -> None:
    workflow, step = mapper.assign(record)
    record.model = canonical(record.model)
    if record.model is not None:
        models.add(record.model)
    writer.writerow(["" if v is None else v for v in record.row(workflow, step)])


def _native_view(scan: Scan) -> str:
    """The native rows as :data:`records.COLUMNS`, with the mapped workflow, step and model."""
    if scan.mapped is None:
        return ""
    same = " AND ".join(
        f"n.{k} IS NOT DISTINCT FROM m.{k}"
        for k in (*_MAPPING_KEYS, *(f"rule_{i}" for i in range(len(scan.rule_keys))))
    )
    kinds = dict(COLUMNS)
    values = {
        "source": "n.file || ':' || CAST(n.line AS VARCHAR)",
        "request_id": "n.trace_id",
        "model": "m.to_model",
        "workflow": "m.to_workflow",
        "step": "m.to_step",
        "tool_calls": "0",
    }
    select = ", ".join(
        f"CAST({values.get(name, 'n.' + name)} AS {kinds[name]}) AS {name}" for name in COLUMN_NAMES
    )
    return (
        f"\nUNION ALL\nSELECT {select}\n"
        f"FROM read_parquet({_list(p.path for p in scan.native)}) AS n\n"
        f"JOIN read_parquet({_list([scan.mapped])}) AS m ON {same}\n"
        "WHERE n.simple AND n.kind IS NOT NULL"
    )


def calls_sql(scan: Scan) -> str:
    """A SELECT of every scanned record as :data:`records.COLUMNS` (the table the
    aggregation query reads)."""
    columns = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in COLUMNS) + "}"
    return (
        f"SELECT * FROM read_csv({_list(scan.parts)}, header = false, columns = {columns}, "
        "delim = ',', quote = '\"', escape = '\"', nullstr = '', auto_detect = false)"
        + _native_view(scan)
    )


def aggregate(
    manifest: Manifest,
    scan: Scan,
    workdir: str,
    *,
    approximate: bool = False,
    windows: tuple[tuple[int | None, int | None] | None, ...] = (None,),
) -> list[list[dict[str, object]]]:
    """Run the aggregation over the scanned records, once per time window (``None``: all)."""
    duckdb = _duckdb()
    connection = _connect(workdir)
    connection.execute(f"CREATE VIEW {TABLE} AS {calls_sql(scan)}")
    params = parameters(manifest, scan.models)
    try:
        return [
            _rows(connection.execute(build_query(params, approximate=approximate, window=window)))
            for window in windows
        ]
    except duckdb.OutOfMemoryException as err:
        raise PromptBudgetError(
            f"DuckDB ran out of its {MEMORY_LIMIT} memory limit aggregating the logs; set "
            "PROMPTBUDGET_REPLAY_MEMORY=2GB (or more) and run again"
        ) from err


def _rows(cursor: Any) -> list[dict[str, object]]:
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def read_aggregates(path: Path, shown: str) -> list[dict[str, object]]:
    """A result of the emitted SQL, saved as CSV, JSON (lines or array) or Parquet."""
    if not path.is_file():
        raise UsageError(f"--aggregates: {shown} does not exist or is not a file")
    duckdb = _duckdb()
    with tempfile.TemporaryDirectory(prefix="promptbudget-replay-") as workdir:
        connection = _connect(workdir)
        with path.open("rb") as handle:
            head = handle.read(4).lstrip()
        if head == b"PAR1":
            reader = "read_parquet(?)"
        elif head[:1] in (b"{", b"["):
            reader = "read_json_auto(?)"
        else:
            reader = "read_csv_auto(?, header = true, all_varchar = true)"
        try:
            rows = _rows(connection.execute(f"SELECT * FROM {reader}", [str(path)]))
        except duckdb.Error as err:
            raise UsageError(f"--aggregates: cannot read {shown}: {_first_line(err)}") from err
    if rows:
        missing = [c for c in required_columns() if c not in rows[0]]
        if missing:
            raise UsageError(
                f"--aggregates: {shown} lacks the columns {', '.join(missing[:5])}"
                f"{'...' if len(missing) > 5 else ''}; it must be the result of "
                "'promptbudget replay --emit-sql'"
            )
    return rows


def _first_line(err: BaseException) -> str:
    return str(err).splitlines()[0][:200] if str(err) else type(err).__name__
