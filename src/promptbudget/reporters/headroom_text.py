"""The headroom table of the text reporter: every limit, what was measured, % used, a bar."""

from __future__ import annotations

from collections.abc import Sequence

from rich.table import Table
from rich.text import Text

from promptbudget.headroom import (
    LimitCheck,
    WhatIf,
    format_limit,
    format_measured,
    format_used,
)
from promptbudget.headroom import bar as bar_text

OVER = "bold red"


def limits_table(checks: Sequence[LimitCheck], *, stacked: bool = False, bar: bool = True) -> Table:
    """One row per limit, grouped by what it is on (workflow, step, template); the subject is
    named on the first row of its group, or, stacked (a narrow terminal), on a line of its
    own above its limits. An over-budget measurement is red, and its bar full."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    if not stacked:
        table.add_column("budget", overflow="fold")
    table.add_column("limit on" if not stacked else "budget / limit on", overflow="fold")
    table.add_column("measured", justify="right", no_wrap=True)
    table.add_column("limit", justify="right", no_wrap=True)
    table.add_column("used", justify="right", no_wrap=True)
    if bar:
        table.add_column("", no_wrap=True)
    previous = None
    for check in checks:
        subject = check.subject
        over = check.status == "over"
        style = OVER if over else ""
        head_style = "bold" if check.level == "workflow" else ""
        cells: list[str | Text] = [
            Text(format_measured(check), style=style),
            format_limit(check),
            Text(format_used(check), style=style),
        ]
        if bar:
            cells.append(Text(bar_text(check), style=OVER if over else "green"))
        if stacked:
            if subject != previous:
                table.add_row(Text(subject, style=head_style))
            table.add_row("  " + check.label, *cells)
        else:
            shown = "" if subject == previous else subject
            table.add_row(Text(shown, style=head_style), check.label, *cells)
        previous = subject
    return table


_VERDICT_STYLE = {
    "kept": "green",
    "broken": OVER,
    "fixed": "green",
    "still over": OVER,
    "unmeasured": "dim",
}


def what_if_table(pairs: Sequence[WhatIf]) -> Table:
    """A workflow's budgets as written and under the what-if: which it breaks or keeps."""
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("budget", overflow="fold")
    table.add_column("baseline", justify="right", no_wrap=True)
    table.add_column("what-if", justify="right", no_wrap=True)
    table.add_column("limit", justify="right", no_wrap=True)
    table.add_column("used", justify="right", no_wrap=True)
    table.add_column("", no_wrap=True)
    for pair in pairs:
        after = pair.after
        label = after.label if after.level == "workflow" else f"{after.step}: {after.label}"
        style = _VERDICT_STYLE[pair.verdict]
        table.add_row(
            label,
            format_measured(pair.before) if pair.before is not None else "-",
            Text(format_measured(after), style=OVER if after.status == "over" else ""),
            format_limit(after),
            format_used(after),
            Text(pair.verdict, style=style),
        )
    return table
