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
from promptbudget.replay.mapping import Mapper
from promptbudget.replay.query import TABLE, build_query, parameters, resolve_model
from promptbudget.replay.readers import (
    ScanTally,
    install_hint,
    json_line_ranges,
    read_json_line_range,
    read_log,
)
from promptbudget.replay.records import COLUMNS, Record
from promptbudget.replay.stats import required_columns

MEMORY_LIMIT = os.environ.get("PROMPTBUDGET_REPLAY_MEMORY", "512MB")


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError:
        raise UsageError(install_hint("duckdb")) from None
    return duckdb


def _connect(workdir: str) -> Any:
    duckdb = _duckdb()
    connection = duckdb.connect(config={"memory_limit": MEMORY_LIMIT})
    connection.execute("SET temp_directory = ?", [workdir])
    connection.execute("SET preserve_insertion_order = false")
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
    """The scanned records: CSV files of :data:`records.COLUMNS`, and the models seen."""

    parts: tuple[Path, ...]
    models: frozenset[str]


def scan_logs(
    manifest: Manifest,
    logs: Iterable[tuple[Path, str]],
    tally: ScanTally,
    out: Path,
    *,
    input_format: str = "auto",
    processes: int | None = None,
) -> Scan:
    """Every record of ``logs``, mapped to its workflow and step, written as CSV to ``out``
    (and, for large plain JSON-lines files read by several processes, next to it)."""
    mapper = Mapper(manifest)
    canonical = _Canonical(manifest)
    models: set[str] = set()
    parts = [out]
    workers = processes or os.cpu_count() or 1
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        for path, shown in logs:
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
    return Scan(tuple(parts), frozenset(models))


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
    columns = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in COLUMNS) + "}"
    files = (
        "[" + ", ".join("'" + part.as_posix().replace("'", "''") + "'" for part in scan.parts) + "]"
    )
    connection.execute(
        f"CREATE VIEW {TABLE} AS SELECT * FROM read_csv("
        f"{files}, header = false, columns = {columns}, "
        "delim = ',', quote = '\"', escape = '\"', nullstr = '', auto_detect = false)"
    )
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
