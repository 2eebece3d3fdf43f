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
    better than a truncated number. (The console is widened for the one print instead of
    measuring the table first: measuring a table costs as much as drawing it.)"""
    assert not table.expand
    width = console.width
    console.width = _UNBOUNDED_WIDTH
    try:
        console.print(table)
    finally:
        console.width = width


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
