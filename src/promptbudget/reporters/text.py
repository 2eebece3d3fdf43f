"""The human reporter (Rich). Findings first, ruff-style, then the numbers, then one summary."""

from __future__ import annotations

import io

from rich.console import Console
from rich.table import Table
from rich.text import Text

from promptbudget.estimates import WorkflowEstimate
from promptbudget.findings import Finding, Report, Severity
from promptbudget.reporters.base import ReportSettings
from promptbudget.units import format_tokens, format_usd

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def _console(settings: ReportSettings) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=settings.width,
        color_system="standard" if settings.color else None,
        force_terminal=settings.color,
        no_color=not settings.color,
        highlight=False,
        emoji=False,
        legacy_windows=False,
    )
    return console, buffer


def finding_line(finding: Finding) -> Text:
    where = finding.path or "-"
    if finding.line:
        where = f"{where}:{finding.line}"
    text = Text()
    text.append(where, style="bold")
    text.append(": ")
    text.append(f"{finding.rule}", style=_STYLE[finding.severity])
    text.append(f" {finding.slug} ", style="dim")
    text.append(f"[{finding.severity.value}] ", style=_STYLE[finding.severity])
    text.append(finding.message)
    return text


def _summary(report: Report) -> Text:
    errors = report.count(Severity.ERROR)
    warnings = report.count(Severity.WARNING)
    infos = report.count(Severity.INFO)
    parts = [
        f"{errors} error{'s' if errors != 1 else ''}",
        f"{warnings} warning{'s' if warnings != 1 else ''}",
    ]
    if infos:
        parts.append(f"{infos} info")
    reaches_fail_on = any(f.severity >= report.fail_on for f in report.findings)
    text = Text()
    if reaches_fail_on:
        text.append("✗ ", style="bold red")
    else:
        text.append("✓ ", style="bold green")
    text.append(", ".join(parts))
    if reaches_fail_on:
        if report.exit_zero:
            text.append(f" at or above {report.fail_on.value} (exit code 0: --exit-zero)")
        else:
            text.append(f" (failing on {report.fail_on.value} and above)")
    elif report.command == "check":
        if report.workflows:
            text.append(" — all budgets hold")
        else:
            text.append(" — no workflows in the manifest, so no budgets were checked")
    elif report.command == "count" and not report.templates:
        text.append(" — no prompt templates found")
    return text


def _print_findings(console: Console, report: Report) -> None:
    for finding in report.findings:
        console.print(finding_line(finding), soft_wrap=True)
    if report.findings:
        console.print()


def render_text(report: Report, settings: ReportSettings) -> str:
    console, buffer = _console(settings)
    if report.command == "models":
        _print_models(console, report)
    elif report.command == "count":
        if report.templates:
            _print_counts(console, report)
            console.print()
        _print_findings(console, report)
        console.print(_summary(report))
    else:
        _print_findings(console, report)
        _print_workflows(console, report.workflows)
        console.print(_summary(report))
    # Rich pads table cells; trailing spaces would end up in pasted PR comments.
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())


def _print_table(console: Console, table: Table) -> None:
    """Print at the table's natural width if the console is narrower: a wrapped line is
    better than a truncated number."""
    natural = console.measure(table, options=console.options.update_width(10_000)).maximum
    width = console.width
    console.width = max(width, natural)
    try:
        console.print(table)
    finally:
        console.width = width


def _print_counts(console: Console, report: Report) -> None:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("template", overflow="fold")
    table.add_column("format")
    table.add_column("model")
    table.add_column("tokens", justify="right")
    table.add_column("request", justify="right")
    table.add_column("messages", overflow="fold")
    for count in report.templates:
        if count.prompt is None:
            table.add_row(count.path, count.format, count.model or "-", "-", "-", "not counted")
            continue
        approx = "" if count.exact else "~"
        messages = ", ".join(f"{m.role} {format_tokens(m.tokens)}" for m in count.prompt.messages)
        table.add_row(
            count.path,
            count.format,
            count.model or f"({count.encoding})",
            f"{approx}{format_tokens(count.prompt.text_tokens)}",
            f"{approx}{format_tokens(count.prompt.request_tokens)}",
            messages,
        )
    _print_table(console, table)
    if any(not c.exact for c in report.templates):
        console.print(
            Text(
                "~ estimate: no exact tokenizer for this model, or the template was counted as "
                "raw text (see findings)",
                style="dim",
            )
        )


def _print_workflows(console: Console, workflows: tuple[WorkflowEstimate, ...]) -> None:
    if not workflows:
        return
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("workflow")
    table.add_column("step")
    table.add_column("model")
    table.add_column("calls", justify="right")
    table.add_column("max input", justify="right")
    table.add_column("$/request", justify="right")
    table.add_column("$/outcome", justify="right")
    table.add_column("$/month", justify="right")
    for workflow in workflows:
        monthly = workflow.monthly_spend_usd
        partial = "" if workflow.is_complete else "≥"
        table.add_row(
            Text(workflow.name, style="bold"),
            "",
            "",
            str(workflow.calls_per_request),
            "",
            partial + format_usd(workflow.cost_per_request_usd),
            partial + format_usd(workflow.cost_per_outcome_usd),
            partial + format_usd(monthly) if monthly is not None else "-",
        )
        for step in workflow.steps:
            approx = "" if step.exact else "~"
            table.add_row(
                "",
                step.name,
                step.model or "?",
                str(len(step.calls)),
                f"{approx}{format_tokens(step.max_input_tokens)}",
                format_usd(step.cost_per_request_usd) if step.is_priced else "unpriced",
                "",
                "",
            )
    _print_table(console, table)
    console.print()


def _rate(value: object) -> str:
    return "-" if value is None else f"{value}"


def _print_models(console: Console, report: Report) -> None:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for name, justify in (
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
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for model in report.models:
        tier = model.long_context
        table.add_row(
            model.name + (" *" if model.origin == "manifest" else ""),
            model.provider,
            _rate(model.input_per_mtok),
            _rate(model.output_per_mtok),
            _rate(model.cache_read_per_mtok),
            _rate(model.cache_write_per_mtok),
            _rate(model.batch_input_per_mtok),
            format_tokens(model.context_window) if model.context_window else "-",
            f">{format_tokens(tier.threshold_tokens)}: {tier.input_per_mtok}/{tier.output_per_mtok}"
            if tier
            else "-",
            model.tokenizer,
        )
    _print_table(console, table)
    console.print(
        Text(
            f"{len(report.models)} models, prices in USD per million tokens as of "
            f"{report.catalog_as_of}"
            + (
                "; * = from budgets.yaml"
                if any(m.origin == "manifest" for m in report.models)
                else ""
            ),
            style="dim",
        )
    )
