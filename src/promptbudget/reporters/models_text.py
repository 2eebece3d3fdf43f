"""``models`` in text: the price catalog as a table fitted to the terminal (the least needed
columns dropped, and named, when it is narrow; a number is never broken), and ``models
--diff``."""

from __future__ import annotations

import re
from decimal import Decimal

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from promptbudget.pricing.catalog import LongContextTier, ModelPrice, is_deprecated
from promptbudget.report import Report
from promptbudget.reporters.tables import print_table
from promptbudget.units import format_tokens

COLUMNS = (
    ("model", "left"),
    ("provider", "left"),
    ("in $/M", "right"),
    ("out $/M", "right"),
    ("cache read", "right"),
    ("cache write", "right"),
    ("batch in", "right"),
    ("context", "right"),
    ("long context", "left"),
    ("tokenizer", "left"),
    ("TTFT ms", "right"),  # only when a listed model has a speed
    ("out tok/s", "right"),
)
SPEEDS = ("TTFT ms", "out tok/s")
# Dropped in this order when the terminal is narrow: model, input, output and context stay.
DROP_ORDER = (
    "long context",
    "batch in",
    "cache write",
    "tokenizer",
    "out tok/s",
    "TTFT ms",
    "provider",
    "cache read",
)
MIN_NAME_WIDTH = 28  # narrower, a name would take more lines than it is worth


def rate_text(value: object) -> str:
    """A price per million tokens as the catalog means it: ``2.99999``, not the float's
    ``2.9999900000000004`` (to a millionth of a dollar per million tokens)."""
    if value is None:
        return "-"
    number = Decimal(str(value))
    if not number.is_finite() or abs(number) >= 10**9:  # a hostile price file's 1e300
        return str(value)
    return f"{number.quantize(Decimal('1e-6')).normalize():f}"


def name_lines(name: str, note: str, width: int | None) -> str:
    """A model's name and its note (``(deprecated DATE)``), within ``width`` cells when given:
    the note on its own line, then the name broken after a ``/`` (a host or region prefix);
    a part longer than ``width`` stays whole."""
    if width is None or cell_len(name + note) <= width:
        return name + note
    lines = [""]
    for part in re.findall(r"[^/]+/?|/", name):
        if lines[-1] and cell_len(lines[-1] + part) > width:
            lines.append("")
        lines[-1] += part
    return "\n".join(lines + ([note.strip()] if note else []))


Row = dict[str, str]  # column -> cell; "model" without its note, "note" apart


def model_rows(report: Report) -> list[Row]:
    rows = []
    for model in report.models:
        tier = model.long_context
        past = is_deprecated(model, report.today)
        rows.append(
            {
                "model": model.name + (" *" if model.origin == "manifest" else ""),
                "note": f" (deprecated {model.deprecation_date})" if past else "",
                "provider": model.provider,
                "in $/M": rate_text(model.input_per_mtok),
                "out $/M": rate_text(model.output_per_mtok),
                "cache read": rate_text(model.cache_read_per_mtok),
                "cache write": rate_text(model.cache_write_per_mtok),
                "batch in": rate_text(model.batch_input_per_mtok),
                "context": format_tokens(model.context_window) if model.context_window else "-",
                "long context": (
                    f">{format_tokens(tier.threshold_tokens)}: "
                    f"{rate_text(tier.input_per_mtok)}/{rate_text(tier.output_per_mtok)}"
                    if tier
                    else "-"
                ),
                "tokenizer": model.tokenizer,
                **dict(zip(SPEEDS, _speed(model), strict=True)),
            }
        )
    return rows


def _speed(model: ModelPrice) -> tuple[str, str]:
    """``930`` / ``930-2,400`` (p50-p95) and ``77.2``; ``-`` without a speed."""
    ttft = "-"
    if model.ttft_ms is not None:
        ttft = f"{model.ttft_ms:,g}"
        if model.ttft_p95_ms is not None:
            ttft += f"-{model.ttft_p95_ms:,g}"
    rate = model.output_tokens_per_second
    return ttft, f"{rate:,g}" if rate is not None else "-"


def models_table(rows: list[Row], columns: list[str], name_width: int | None = None) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    justify = dict(COLUMNS)
    for name in columns:
        table.add_column(name, justify=justify[name], no_wrap=True)  # type: ignore[arg-type]
    for row in rows:
        cells = {**row, "model": name_lines(row["model"], row["note"], name_width)}
        table.add_row(*(cells[name] for name in columns))
    return table


def _name_width(rows: list[Row], width: int | None) -> int:
    """The model column's width with names stacked within ``width`` (None: on one line)."""
    return max(
        [len("model")]
        + [
            cell_len(line)
            for row in rows
            for line in name_lines(row["model"], row["note"], width).split("\n")
        ]
    )


def fit_models(
    rows: list[Row], width: int, *, speeds: bool = False
) -> tuple[list[str], int | None]:
    """The columns and the name width of the widest layout that fits ``width``: columns
    dropped (``DROP_ORDER``) until the rest fit, with long names stacked if need be. Measured
    from the cells (every column but the name is never wrapped), not by laying tables out."""
    cell_widths = {
        name: max([cell_len(name)] + [cell_len(row[name]) for row in rows])
        for name, _ in COLUMNS[1:]
    }
    natural = _name_width(rows, None)
    shown = [name for name, _ in COLUMNS if speeds or name not in SPEEDS]
    columns = shown
    for count in range(len(DROP_ORDER) + 1):
        columns = [name for name in shown if name not in DROP_ORDER[:count]]
        others = sum(cell_widths[name] for name in columns[1:]) + 2 * (len(columns) - 1)
        if others + natural <= width:
            return columns, None
        room = width - others
        if room >= MIN_NAME_WIDTH and others + _name_width(rows, room) <= width:
            return columns, room
    return columns, None  # names longer than the terminal: printed whole, overflowing


def print_models(console: Console, report: Report) -> None:
    """The widest layout that fits the terminal; a number is never broken. Names longer than
    any terminal (a Bedrock ARN-like id) may still overflow; nothing is cut."""
    rows = model_rows(report)
    speeds = any(m.ttft_ms is not None or m.output_tokens_per_second for m in report.models)
    columns, name_width = fit_models(rows, console.width, speeds=speeds)
    dropped = [
        name for name in DROP_ORDER if name not in columns and (speeds or name not in SPEEDS)
    ]
    print_table(console, models_table(rows, columns, name_width))
    deprecated = sum(is_deprecated(model, report.today) for model in report.models)
    console.print(
        Text(
            f"{len(report.models)} models, prices in USD per million tokens as of "
            f"{report.catalog_as_of}"
            + (
                "; * = from budgets.yaml"
                if any(m.origin == "manifest" for m in report.models)
                else ""
            )
            + (f"; {deprecated} past their deprecation date" if deprecated else "")
            + ("; TTFT: time to first token, median (-p95)" if speeds else ""),
            style="dim",
        )
    )
    if dropped:
        hidden = ", ".join(dropped)
        console.print(
            Text(f"not shown at this width: {hidden} (--format json has every field)", style="dim")
        )


def print_models_diff(console: Console, report: Report) -> None:
    changes = report.price_changes
    missing = report.missing_models
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for name in ("model", "field", "bundled", "file"):
        table.add_column(name)
    for change in changes:
        table.add_row(
            change.model, change.field, _diff_value(change.bundled), _diff_value(change.other)
        )
    if changes:
        print_table(console, table)
    console.print(
        Text(
            f"{len(changes)} changed value(s) against the bundled catalog of "
            f"{report.catalog_as_of} ({report.price_file})",
            style="dim",
        )
    )
    if missing:
        shown = ", ".join(missing[:20])
        more = (
            f" and {len(missing) - 20:,} more (--format json lists all)"
            if len(missing) > 20
            else ""
        )
        console.print(Text(f"not in the file: {shown}{more}", style="dim"))


def _diff_value(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, LongContextTier):
        return (
            f">{format_tokens(value.threshold_tokens)}: "
            f"{value.input_per_mtok}/{value.output_per_mtok}"
        )
    return str(value)
