"""Opening usage logs (plain, gzip, zstd; JSON lines, JSON documents, CSV, Parquet) and
reading them into records. A record that cannot be read is counted with its ``file:line``
and skipped; the run never stops for one."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from promptbudget.errors import UsageError
from promptbudget.replay import providers
from promptbudget.replay.records import MalformedRecordError, Record

INPUT_FORMATS = ("auto", "otel", "openai", "anthropic", "litellm", "csv", "parquet")
SHOWN_MALFORMED = 10  # the first N malformed records are listed

_GZIP = b"\x1f\x8b"
_ZSTD = b"\x28\xb5\x2f\xfd"
_PARQUET = b"PAR1"
_MAX_DOCUMENT_BYTES = 512 * 1024 * 1024  # a single (non-line) JSON document read whole


@dataclass(frozen=True)
class Malformed:
    source: str  # file:line
    reason: str


@dataclass
class ScanTally:
    """What reading the logs found besides records."""

    files: list[str] = field(default_factory=list)
    lines: int = 0
    records: int = 0
    malformed: int = 0
    examples: list[Malformed] = field(default_factory=list)

    def bad(self, source: str, reason: str) -> None:
        self.malformed += 1
        if len(self.examples) < SHOWN_MALFORMED:
            self.examples.append(Malformed(source, reason))


def install_hint(module: str) -> str:
    return f"replay needs the optional package {module!r}: pip install 'promptbudget-cli[replay]'"


def open_log(path: Path, shown: str) -> tuple[IO[bytes], bool]:
    """The file's decompressed bytes, and whether it is Parquet."""
    try:
        handle: IO[bytes] = path.open("rb")
    except OSError as err:
        raise UsageError(f"cannot read {shown}: {err.strerror or err}") from err
    magic = handle.read(4)
    handle.seek(0)
    if magic.startswith(_GZIP):
        handle.close()
        return gzip.open(path, "rb"), False  # type: ignore[return-value]
    if magic == _ZSTD:
        try:
            import zstandard
        except ImportError:
            handle.close()
            raise UsageError(f"{shown} is zstd-compressed; {install_hint('zstandard')}") from None
        reader = zstandard.ZstdDecompressor().stream_reader(handle, closefd=True)
        return io.BufferedReader(reader), False
    return handle, magic == _PARQUET


def _wanted(record: Record, input_format: str) -> bool:
    """Whether a record matches a forced ``--input-format``."""
    return input_format in {"auto", record.origin}


def read_log(
    path: Path,
    shown: str,
    tally: ScanTally,
    *,
    input_format: str = "auto",
    columns: Mapping[str, str] | None = None,
) -> Iterator[Record]:
    """Every record of one log file."""
    tally.files.append(shown)
    stream, is_parquet = open_log(path, shown)
    with stream:
        if is_parquet or input_format == "parquet":
            yield from _parquet(path, shown, tally, columns or {})
            return
        try:
            head = stream.peek(4096)[:4096] if hasattr(stream, "peek") else b""
        except (OSError, EOFError) as err:
            raise UsageError(f"cannot read {shown}: {err}") from err
        first = head.lstrip()[:1]
        if input_format == "csv" or (input_format in {"auto", "litellm"} and _is_csv(head)):
            yield from _csv(stream, shown, tally, columns or {})
            return
        if first == b"[" or (first == b"{" and not _first_line_is_json(head)):
            yield from _document(stream, shown, tally, input_format)
            return
        yield from _json_lines(stream, shown, tally, input_format)


def json_line_ranges(path: Path, parts: int, *, input_format: str) -> list[tuple[int, int]] | None:
    """Byte ranges, split at line ends, that ``parts`` processes can read in parallel; ``None``
    unless the file is plain (uncompressed) JSON lines."""
    if input_format in {"csv", "parquet"}:
        return None
    with path.open("rb") as handle:
        head = handle.read(4096)
        if head.startswith(_GZIP) or head[:4] in (_ZSTD, _PARQUET):
            return None
        first = head.lstrip()[:1]
        if _is_csv(head) or first == b"[" or (first == b"{" and not _first_line_is_json(head)):
            return None
        size = path.stat().st_size
        cuts = [0]
        for index in range(1, parts):
            handle.seek(size * index // parts)
            handle.readline()  # to the end of the line the cut falls in
            cuts.append(max(handle.tell(), cuts[-1]))
        cuts.append(size)
    return [(a, b) for a, b in itertools.pairwise(cuts) if b > a]


def lines_before(path: Path, offset: int) -> int:
    """How many line ends precede byte ``offset``."""
    count = 0
    with path.open("rb") as handle:
        remaining = offset
        while remaining > 0:
            block = handle.read(min(remaining, 1 << 24))
            if not block:
                break
            count += block.count(b"\n")
            remaining -= len(block)
    return count


def read_json_line_range(
    path: Path,
    shown: str,
    tally: ScanTally,
    start: int,
    end: int,
    *,
    input_format: str = "auto",
) -> Iterator[Record]:
    """The records of the JSON lines between byte ``start`` (a line start) and ``end``."""
    number = lines_before(path, start)
    with path.open("rb") as handle:
        handle.seek(start)
        position = start
        while position < end:
            raw = handle.readline()
            if not raw:
                break
            position += len(raw)
            number += 1
            yield from line_records(raw, f"{shown}:{number}", tally, input_format)


def _first_line_is_json(head: bytes) -> bool:
    line = head.lstrip().split(b"\n", 1)[0]
    if len(line) >= 4096 or b"\n" not in head.lstrip():
        return True  # a long first line: JSON lines (a document would not fit either way)
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _is_csv(head: bytes) -> bool:
    text = head.lstrip()
    if not text or text[:1] in (b"{", b"["):
        return False
    header = text.split(b"\n", 1)[0]
    return b"," in header or b"\t" in header


def line_records(raw: bytes, source: str, tally: ScanTally, input_format: str) -> Iterator[Record]:
    """The records of one JSON line (a blank line holds none; a bad one is counted)."""
    tally.lines += 1
    if not raw.strip():
        return
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError) as err:
        tally.bad(source, f"not valid JSON ({_short(err)})")
        return
    yield from _records_of(obj, source, tally, input_format)


def _records_of(obj: Any, source: str, tally: ScanTally, input_format: str) -> Iterator[Record]:
    try:
        found = providers.json_record(obj, source)
    except MalformedRecordError as err:
        tally.bad(source, str(err))
        return
    for record in found:
        if input_format != "auto" and not _wanted(record, input_format):
            tally.bad(source, f"not a {input_format} record")
            continue
        tally.records += 1
        yield record


def _json_lines(
    stream: IO[bytes], shown: str, tally: ScanTally, input_format: str
) -> Iterator[Record]:
    number = 0
    try:
        for raw in stream:
            number += 1
            yield from line_records(raw, f"{shown}:{number}", tally, input_format)
    except (OSError, EOFError) as err:  # a truncated gzip or zstd stream
        tally.bad(f"{shown}:{number + 1}", f"the file ends early or is corrupt ({_short(err)})")


def _document(
    stream: IO[bytes], shown: str, tally: ScanTally, input_format: str
) -> Iterator[Record]:
    """A whole JSON document: an OTLP export, or an array of records."""
    try:
        raw = stream.read(_MAX_DOCUMENT_BYTES + 1)
    except (OSError, EOFError) as err:
        tally.bad(f"{shown}:1", f"the file ends early or is corrupt ({_short(err)})")
        return
    if len(raw) > _MAX_DOCUMENT_BYTES:
        raise UsageError(
            f"{shown} is a single JSON document over 512 MB; export it as JSON lines "
            "(one record per line) so it can be read out of core"
        )
    tally.lines += raw.count(b"\n") + 1
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError) as err:
        line = getattr(err, "lineno", 1)
        tally.bad(f"{shown}:{line}", f"not valid JSON ({_short(err)})")
        return
    items = obj if isinstance(obj, list) else [obj]
    for index, item in enumerate(items, start=1):
        source = f"{shown}#{index}" if isinstance(obj, list) else f"{shown}:1"
        yield from _records_of(item, source, tally, input_format)


def _csv(
    stream: IO[bytes], shown: str, tally: ScanTally, columns: Mapping[str, str]
) -> Iterator[Record]:
    with io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="") as text:
        yield from _csv_rows(text, shown, tally, columns)


def _csv_rows(
    text: IO[str], shown: str, tally: ScanTally, columns: Mapping[str, str]
) -> Iterator[Record]:
    sample = text.read(8192)
    header_line = sample.split("\n", 1)[0]
    is_tabs = header_line.count("\t") > header_line.count(",")
    dialect: type[csv.Dialect] = csv.excel_tab if is_tabs else csv.excel
    reader = csv.DictReader(_chain(sample, text), dialect=dialect)
    header = set(reader.fieldnames or ())
    is_litellm = {"request_id", "prompt_tokens", "completion_tokens"} <= header
    previous = 1
    try:
        for row in reader:
            tally.lines += 1
            source = f"{shown}:{previous + 1}"
            previous = reader.line_num
            if None in row:
                tally.bad(source, "the row has more fields than the header")
                continue
            try:
                if is_litellm:
                    record = providers.litellm_record(row, source)
                else:
                    record = providers.csv_record(row, source, columns)
            except MalformedRecordError as err:
                tally.bad(source, str(err))
                continue
            tally.records += 1
            yield record
    except csv.Error as err:
        tally.bad(f"{shown}:{reader.line_num}", f"not valid CSV ({err})")


def _chain(first: str, rest: IO[str]) -> Iterator[str]:
    yield from io.StringIO(first + rest.readline())
    yield from rest


def _parquet(
    path: Path, shown: str, tally: ScanTally, columns: Mapping[str, str]
) -> Iterator[Record]:
    try:
        import duckdb
    except ImportError:
        raise UsageError(f"{shown} is Parquet; {install_hint('duckdb')}") from None
    with tempfile.TemporaryDirectory(prefix="promptbudget-parquet-") as scratch:
        target = path.resolve()
        if any(c in str(target) for c in "*?[]{}"):  # DuckDB would read the name as a glob
            target = Path(scratch) / "log.parquet"
            target.symlink_to(path.resolve())
        try:
            cursor = duckdb.connect().execute("SELECT * FROM read_parquet(?)", [str(target)])
            names = [d[0] for d in cursor.description or ()]
        except duckdb.Error as err:
            raise UsageError(f"cannot read {shown} as Parquet: {_short(err)}") from err
        yield from _parquet_rows(cursor, names, shown, tally, columns)


def _parquet_rows(
    cursor: Any, names: list[str], shown: str, tally: ScanTally, columns: Mapping[str, str]
) -> Iterator[Record]:
    number = 0
    while batch := cursor.fetchmany(10_000):
        for values in batch:
            number += 1
            tally.lines += 1
            source = f"{shown}#{number}"
            row = dict(zip(names, values, strict=True))
            try:
                if {"request_id", "prompt_tokens", "completion_tokens"} <= row.keys():
                    record = providers.litellm_record(row, source)
                else:
                    record = providers.csv_record(row, source, columns)
            except MalformedRecordError as err:
                tally.bad(source, str(err))
                continue
            tally.records += 1
            yield record


def _short(err: BaseException) -> str:
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return text[:160]
