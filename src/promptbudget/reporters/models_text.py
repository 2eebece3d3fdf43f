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

from promptbudget.pricing.catalog import LongContextTier, is_deprecated
from promptbudget.report import Report
from promptbudget.reporters.check_text import natural_width
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
)
# Dropped in this order when the terminal is narrow: model, input, output and context stay.
DROP_ORDER = ("long context", "batch in", "cache write", "tokenizer", "provider", "cache read")
MIN_NAME_WIDTH = 28  # narrower, a name would take more lines than it is worth


def rate_text(value: object) -> str:
    """A price per million tokens as the catalog means it: ``2.99999``, not the float's
    ``2.9999900000000004`` (to a millionth of a dollar per million tokens)."""
    if value is None:
        return "-"
    number = Decimal(str(value)).quantize(Decimal("1e-6")).normalize()
    return f"{number:f}"


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


def models_table(
    report: Report, dropped: frozenset[str] = frozenset(), name_width: int | None = None
) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    names = [(name, justify) for name, justify in COLUMNS if name not in dropped]
    for name, justify in names:
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for model in report.models:
        tier = model.long_context
        past = is_deprecated(model, report.today)
        cells = {
            "model": name_lines(
                model.name + (" *" if model.origin == "manifest" else ""),
                f" (deprecated {model.deprecation_date})" if past else "",
                name_width,
            ),
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
        }
        table.add_row(*(cells[name] for name, _ in names))
    return table


def print_models(console: Console, report: Report) -> None:
    """The widest layout that fits: columns dropped (``DROP_ORDER``) until the rest fit with
    long names stacked on two lines or more; a number is never broken. Names longer than any
    terminal (a Bedrock ARN-like id) may still overflow; nothing is cut."""
    dropped: frozenset[str] = frozenset()
    table = models_table(report)
    for count in range(len(DROP_ORDER) + 1):
        dropped = frozenset(DROP_ORDER[:count])
        table = models_table(report, dropped)
        if natural_width(console, table) <= console.width:
            break
        names = models_table(report, dropped | {name for name, _ in COLUMNS[1:]})
        room = console.width - (natural_width(console, table) - natural_width(console, names))
        if room >= MIN_NAME_WIDTH:
            table = models_table(report, dropped, name_width=room)
            if natural_width(console, table) <= console.width:
                break
    print_table(console, table)
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
            + (f"; {deprecated} past their deprecation date" if deprecated else ""),
            style="dim",
        )
    )
    if dropped:
        hidden = ", ".join(name for name in DROP_ORDER if name in dropped)
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
