"""The headroom table of the text reporter: every limit, what was measured, % used, a bar."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from promptbudget.headroom import LimitCheck, bar, format_limit, format_measured, format_used

OVER = "bold red"


def limits_table(checks: Sequence[LimitCheck]) -> Table:
    """One row per limit, grouped by what it is on (workflow, step, template); the subject is
    named on the first row of its group. An over-budget measurement is red, and its bar full."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("budget", overflow="fold")
    table.add_column("limit on", overflow="fold")
    table.add_column("measured", justify="right", no_wrap=True)
    table.add_column("limit", justify="right", no_wrap=True)
    table.add_column("used", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    previous = None
    for check in checks:
        subject = check.subject
        shown = "" if subject == previous else subject
        previous = subject
        over = check.status == "over"
        style = OVER if over else ""
        table.add_row(
            Text(shown, style="bold" if check.level == "workflow" else ""),
            check.label,
            Text(format_measured(check), style=style),
            format_limit(check),
            Text(format_used(check), style=style),
            Text(bar(check), style=OVER if over else "green"),
        )
    return table
