"""``diff``'s two tables in text, fitted to the terminal: side by side when they fit, else
each quantity on its own row under its workflow (base, head, change), never a number broken."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from promptbudget.diffing import Change, TemplateDiff, WorkflowDiff
from promptbudget.reporters.check_text import fitted
from promptbudget.reporters.diff_format import Kind, delta_text, span_text, value_text


def _table(*columns: str) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for number, column in enumerate(columns):
        table.add_column(column, justify="left" if number == 0 else "right", no_wrap=number > 0)
    return table


def _has_monthly(workflow: WorkflowDiff) -> bool:
    spend = workflow.monthly_spend
    return spend.base is not None or spend.head is not None


def workflows_wide(workflows: Sequence[WorkflowDiff]) -> Table:
    latency = any(w.has_latency for w in workflows)
    columns = ["workflow", "$/request", "", "$/month", "", "tokens/request", ""]
    columns += ["latency p50", "", "latency p95", ""] if latency else []
    table = _table(*columns)
    for workflow in workflows:
        seconds = (
            [
                span_text(workflow.latency_p50, "ms"),
                delta_text(workflow.latency_p50, "ms"),
                span_text(workflow.latency_p95, "ms"),
                delta_text(workflow.latency_p95, "ms"),
            ]
            if latency
            else []
        )
        table.add_row(
            workflow.name,
            span_text(workflow.cost_per_request, "usd"),
            delta_text(workflow.cost_per_request, "usd"),
            span_text(workflow.monthly_spend, "usd"),
            delta_text(workflow.monthly_spend, "usd") if _has_monthly(workflow) else "",
            span_text(workflow.tokens_per_request, "tokens"),
            delta_text(workflow.tokens_per_request, "tokens"),
            *seconds,
        )
    return table


def _sides(change: Change, kind: Kind) -> tuple[str, str]:
    """(base, head) as cells: ``-`` on the side a new or removed entry does not exist."""
    base = value_text(change.base, kind) if change.in_base else "-"
    head = value_text(change.head, kind) if change.in_head else "-"
    return base, head


def workflows_stacked(workflows: Sequence[WorkflowDiff]) -> Table:
    table = _table("workflow", "base", "head", "change")
    for workflow in workflows:
        table.add_row(Text(workflow.name, style="bold"))
        rows: list[tuple[str, Change, Kind]] = [("$/request", workflow.cost_per_request, "usd")]
        if _has_monthly(workflow):
            rows.append(("$/month", workflow.monthly_spend, "usd"))
        rows.append(("tokens/request", workflow.tokens_per_request, "tokens"))
        if workflow.has_latency:
            rows.append(("latency p50", workflow.latency_p50, "ms"))
            rows.append(("latency p95", workflow.latency_p95, "ms"))
        for label, change, kind in rows:
            table.add_row(f"  {label}", *_sides(change, kind), delta_text(change, kind))
    return table


def templates_wide(templates: Sequence[TemplateDiff]) -> Table:
    table = _table("template", "model", "tokens", "")
    table.columns[1].justify = "left"
    for template in templates:
        table.add_row(
            template.path,
            template.model or "-",
            span_text(template.tokens, "tokens"),
            delta_text(template.tokens, "tokens"),
        )
    return table


def templates_stacked(templates: Sequence[TemplateDiff]) -> Table:
    table = _table("template / model", "base", "head", "change")
    for template in templates:
        table.add_row(Text(template.path, style="bold"))
        table.add_row(
            f"  {template.model or '-'}",
            *_sides(template.tokens, "tokens"),
            delta_text(template.tokens, "tokens"),
        )
    return table


def print_diff_tables(
    console: Console,
    workflows: Sequence[WorkflowDiff],
    templates: Sequence[TemplateDiff],
    show: Callable[[Table], None],
) -> None:
    """Each table side by side if it fits the terminal, else stacked (a workflow's or a
    template's values under its name); wider still, printed whole, never cut."""
    if workflows:
        show(
            fitted(
                console, [lambda: workflows_wide(workflows), lambda: workflows_stacked(workflows)]
            )
        )
        console.print()
    if templates:
        show(
            fitted(
                console, [lambda: templates_wide(templates), lambda: templates_stacked(templates)]
            )
        )
