"""Tables on a Rich console, and the numbers in them."""

from __future__ import annotations

import re
from decimal import Decimal

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

_WORD = re.compile(r"\S+")


# Wider than any table: a table that does not expand is drawn at its natural width.
_UNBOUNDED_WIDTH = 1_000_000


def print_table(console: Console, table: Table) -> None:
    """Print at the table's natural width even if the console is narrower: a wrapped line is
    better than a truncated number. Without colour, the table is laid out here
    (``plain_table``: the same characters Rich draws, twenty times faster on a table of
    thousands of rows); with colour Rich draws it, on a console widened for the one print."""
    assert not table.expand
    lines = None if console.color_system is not None else plain_table(table)
    if lines is not None:
        for line in lines:
            console.print(Text(line), overflow="ignore", crop=False, soft_wrap=True)
        return
    width = console.width
    console.width = _UNBOUNDED_WIDTH
    try:
        console.print(table)
    finally:
        console.width = width


def plain_table(table: Table) -> list[str] | None:
    """The lines Rich draws for one of our tables (no box, no edge padding, one space of
    padding each side of an inner cell, each column as wide as its widest line, a cell of
    several lines top-aligned in its row) without colour, or None for a table this does not
    lay out (a cell that is not text or holds a blank line, a column of width 0, a setting
    ours do not use); trailing spaces are kept."""
    if table.box is not None or table.pad_edge or table.show_edge or not table.show_header:
        return None
    if (
        table.title
        or table.caption
        or table.show_lines
        or table.leading
        or table.padding
        != (
            0,
            1,
            0,
            1,
        )
    ):
        return None
    columns = table.columns
    if not columns:
        return None
    found = [[_plain(column.header), *map(_plain, column.cells)] for column in columns]
    if any(cell is None for cells in found for cell in cells):
        return None
    rows = [[cell.split("\n") for cell in cells] for cells in zip(*found, strict=True)]
    if not all(
        all(line.isprintable() for line in cell) and (len(cell) == 1 or all(cell))
        for cells in rows
        for cell in cells
    ):
        return None  # a tab, a blank line in a cell: Rich's rules for them are its own
    widths = [
        max(cell_len(line) for cells in rows for line in cells[index])
        for index in range(len(columns))
    ]
    if 0 in widths or any(
        column.width is not None or column.min_width is not None or column.max_width is not None
        for column in columns
    ):
        return None
    if any(column.justify not in ("right", "left", "default") for column in columns):
        return None
    lines = []
    for cells in rows:
        for row_line in range(max(len(cell) for cell in cells)):
            parts = []
            for column, width, cell in zip(columns, widths, cells, strict=True):
                text = cell[row_line] if row_line < len(cell) else ""
                room = " " * (width - cell_len(text))
                parts.append(room + text if column.justify == "right" else text + room)
            lines.append("  ".join(parts))
    return lines


def _plain(cell: object) -> str | None:
    if isinstance(cell, str):
        return cell
    if isinstance(cell, Text):
        return cell.plain
    return None


def format_count(value: Decimal) -> str:
    """Calls per request: ``4``, or ``4.32`` when routing and retries make it fractional."""
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value.quantize(Decimal('0.01')).normalize():f}"


def wrap_hanging(text: Text, width: int, indent: int = 2) -> list[Text]:
    """``text`` wrapped at spaces to ``width`` cells, each line after the first indented by
    ``indent`` (so the first line's start, a finding's location, stands out). A word longer
    than a line (a long path) is kept whole and overflows: no number or path is broken."""
    plain = text.plain
    offsets: list[int] = []
    line_start, room = 0, width
    for word in _WORD.finditer(plain):
        start, end = word.span()
        if start > line_start and cell_len(plain[line_start:end]) > room:
            offsets.append(start)
            line_start, room = start, max(width - indent, 1)
    lines = list(text.divide(offsets))
    for number, line in enumerate(lines):
        line.rstrip()
        if number:
            line.pad_left(indent)
    return lines
