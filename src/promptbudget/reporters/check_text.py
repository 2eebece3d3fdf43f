"""The two tables of ``check`` in text: workflows and headroom, each fitted to the terminal.

A table too wide for the terminal is laid out again, narrower (steps under their workflow,
then the least needed columns dropped), never cut: a number is never broken across lines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal

from rich.console import Console
from rich.table import Table
from rich.text import Text

from promptbudget.estimates import WorkflowEstimate
from promptbudget.headroom import LimitCheck, band_footnote
from promptbudget.reporters.headroom_text import limits_table
from promptbudget.units import format_tokens, format_usd, quantize


def natural_width(console: Console, table: Table) -> int:
    return console.measure(table, options=console.options.update_width(10_000)).maximum


def fitted(console: Console, layouts: Sequence[Callable[[], Table]]) -> Table:
    """The first layout that fits the console's width, else the narrowest (the last)."""
    table = layouts[-1]()
    for layout in layouts:
        candidate = layout()
        if natural_width(console, candidate) <= console.width:
            return candidate
    return table


def format_count(value: Decimal) -> str:
    """Calls per request: ``4``, or ``4.32`` when routing and retries make it fractional."""
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{quantize(value, Decimal('0.01')).normalize():f}"


# Columns of the workflows table, dropped in this order when the terminal is narrow.
DROP_ORDER = ("$/outcome", "calls", "model")


def workflows_table(
    workflows: Sequence[WorkflowEstimate], *, stacked: bool = False, drop: int = 0
) -> Table:
    """Per workflow its totals, per step its model, calls, largest input and cost. Stacked:
    one first column, steps indented under their workflow."""
    dropped = set(DROP_ORDER[:drop])
    names = ["workflow", "step", "model", "calls", "max input", "$/request", "$/outcome", "$/month"]
    if stacked:
        names.remove("step")
    names = [name for name in names if name not in dropped]
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for name in names:
        left = name in {"workflow", "step", "model"}
        table.add_column(
            "workflow / step" if stacked and name == "workflow" else name,
            justify="left" if left else "right",
            no_wrap=not left,
            overflow="fold",
        )

    def row(cells: dict[str, str | Text]) -> None:
        table.add_row(*(cells.get(name, "") for name in names))

    for workflow in workflows:
        monthly = workflow.monthly_spend_usd
        partial = "" if workflow.is_complete else "≥"
        row(
            {
                "workflow": Text(workflow.name, style="bold"),
                "calls": format_count(workflow.calls_per_request),
                "$/request": partial + format_usd(workflow.cost_per_request_usd),
                "$/outcome": partial + format_usd(workflow.cost_per_outcome_usd),
                "$/month": partial + format_usd(monthly) if monthly is not None else "-",
            }
        )
        for step in workflow.steps:
            approx = "" if step.exact else "~"
            calls = sum((lane.weight * lane.calls_per_request for lane in step.lanes), Decimal(0))
            cells: dict[str, str | Text] = {
                "step": step.name,
                "model": step.model or "?",
                "calls": format_count(calls),
                "max input": f"{approx}{format_tokens(step.max_input_tokens)}",
                "$/request": format_usd(step.cost_usd) if step.is_priced else "unpriced",
            }
            if stacked:
                cells["workflow"] = "  " + step.name
            row(cells)
    return table


def print_workflows(
    console: Console, workflows: Sequence[WorkflowEstimate], show: Callable[[Table], None]
) -> None:
    if not workflows:
        return

    def layout(stacked: bool, drop: int) -> Callable[[], Table]:
        return lambda: workflows_table(workflows, stacked=stacked, drop=drop)

    layouts = [layout(False, 0)] + [layout(True, n) for n in range(len(DROP_ORDER) + 1)]
    show(fitted(console, layouts))
    console.print()


def print_limits(
    console: Console, checks: Sequence[LimitCheck], show: Callable[[Table], None]
) -> None:
    if not checks:
        return
    layouts: list[Callable[[], Table]] = [
        lambda: limits_table(checks),
        lambda: limits_table(checks, stacked=True),
        lambda: limits_table(checks, stacked=True, bar=False),
    ]
    show(fitted(console, layouts))
    footnote = band_footnote(checks)
    if footnote is not None:
        console.print(Text(footnote, style="dim"))
    console.print()
