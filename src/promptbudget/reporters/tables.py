"""Tables on a Rich console, and the numbers in them."""

from __future__ import annotations

from decimal import Decimal

from rich.console import Console
from rich.table import Table


def print_table(console: Console, table: Table) -> None:
    """Print at the table's natural width if the console is narrower: a wrapped line is
    better than a truncated number."""
    natural = console.measure(table, options=console.options.update_width(10_000)).maximum
    width = console.width
    console.width = max(width, natural)
    try:
        console.print(table)
    finally:
        console.width = width


def format_count(value: Decimal) -> str:
    """Calls per request: ``4``, or ``4.32`` when routing and retries make it fractional."""
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value.quantize(Decimal('0.01')).normalize():f}"
