"""The human reporter (Rich). Findings first, ruff-style, then the numbers, then one summary."""

from __future__ import annotations

import io
from decimal import Decimal

from rich.console import Console
from rich.table import Table
from rich.text import Text

from promptbudget.counting import count_totals
from promptbudget.findings import Finding, Severity
from promptbudget.report import Report
from promptbudget.reporters.base import ReportSettings
from promptbudget.reporters.models_text import print_models, print_models_diff
from promptbudget.reporters.tables import print_table, wrap_hanging
from promptbudget.reporters.text_estimate import print_estimates
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
        markup=False,  # user strings are text: '[/x]' and 'prompts/[i]tal.j2' print as written
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
    new = "new " if report.command == "diff" else ""
    parts = [
        f"{errors} {new}error{'s' if errors != 1 else ''}",
        f"{warnings} {new}warning{'s' if warnings != 1 else ''}",
    ]
    if infos:
        parts.append(f"{infos} {new}info")
    breaches = len(report.diff.breaches) if report.diff is not None else 0
    if breaches:
        parts.append(f"{breaches} rise{'s' if breaches != 1 else ''} above --fail-on-increase")
    reaches_fail_on = breaches > 0 or any(f.severity >= report.fail_on for f in report.findings)
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
        if report.workflows or report.limits:
            text.append(" — all budgets hold")
        elif report.scoped:
            text.append(" — no workflow uses the files named")
        else:
            text.append(" — no workflows in the manifest, so no budgets were checked")
    elif report.command == "count" and not report.templates:
        text.append(" — no prompt templates found")
    return text


def shown_findings(
    findings: tuple[Finding, ...], verbosity: int, fail_on: Severity = Severity.ERROR
) -> list[tuple[Finding, int]]:
    """The findings to print, each with how many more it stands for. ``--quiet``: only what
    fails the run (errors, or what reaches ``--fail-on``). By default an info finding is
    printed once per cause (rule and message: PB301 says the same for every template of a
    model) and stands for the others; ``--verbose``: all."""
    if verbosity < 0:
        return [(f, 0) for f in findings if f.severity >= min(fail_on, Severity.ERROR)]
    if verbosity > 0:
        return [(f, 0) for f in findings]
    first: dict[tuple[str, str], int] = {}
    shown: list[tuple[Finding, int]] = []
    for finding in findings:
        if finding.severity is not Severity.INFO:
            shown.append((finding, 0))
            continue
        key = (finding.rule, finding.message)
        if key in first:
            index = first[key]
            shown[index] = (shown[index][0], shown[index][1] + 1)
            continue
        first[key] = len(shown)
        shown.append((finding, 0))
    return shown


def _print_findings(
    console: Console, report: Report, verbosity: int = 0, *, wrap: bool = False
) -> None:
    shown = shown_findings(report.findings, verbosity, report.fail_on)
    for finding, more in shown:
        line = finding_line(finding)
        if more:
            line.append(f" (and {more} more like it; -v lists each)", style="dim")
        _print_finding(console, line, wrap=wrap)
    if shown:
        console.print()


def _print_finding(console: Console, line: Text, *, wrap: bool) -> None:
    """One finding: on a terminal, wrapped at its width under the location; else one line
    (what grep and editors read). Without colour and wrapping, a line with no tab (which
    Rich expands) is written as it is: what Rich would write, ~20 times faster (a report
    of 6,000 findings)."""
    if not wrap and console.no_color and "\t" not in line.plain:
        console.file.write(line.plain + "\n")
        return
    for part in wrap_hanging(line, console.width) if wrap else [line]:
        console.print(part, soft_wrap=True)


def render_text(report: Report, settings: ReportSettings) -> str:
    console, buffer = _console(settings)
    wrap = settings.wrap
    if report.command == "models":
        print_models(console, report)
    elif report.command == "models-diff":
        print_models_diff(console, report)
    elif report.command == "compress":
        _print_compressions(console, report)
    elif report.command == "estimate":
        _print_findings(console, report, wrap=wrap)
        print_estimates(console, report)
    elif report.command == "diff":
        _print_diff(console, report, wrap=wrap)
    elif report.command == "replay":
        _print_replay(console, report)
        _print_findings(console, report, wrap=wrap)
        console.print(_summary(report))
    elif settings.verbosity < 0 and report.command in {"count", "check"}:
        _print_findings(console, report, settings.verbosity, wrap=wrap)
        console.print(_summary(report))
    elif report.command == "count":
        if report.templates:
            _print_counts(console, report)
            console.print()
        _print_findings(console, report, settings.verbosity, wrap=wrap)
        console.print(_summary(report))
    else:
        _print_findings(console, report, settings.verbosity, wrap=wrap)
        from promptbudget.reporters.check_text import print_limits, print_workflows

        def show(table: Table) -> None:
            print_table(console, table)

        print_workflows(console, report.workflows, show)
        print_limits(console, report.limits, show)
        if report.sets:
            console.print(Text("what-if: " + "; ".join(report.sets), style="dim"))
        console.print(_summary(report))
    # Rich pads table cells; trailing spaces would end up in pasted PR comments.
    text = "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())
    if report.command == "compress":  # diffs go out byte for byte: spaces are the point
        diffs = "".join(item.diff + "\n" for item in report.compressions if item.diff)
        return diffs + text
    return text


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
            table.add_row(count.label, count.format, count.model or "-", "-", "-", "not counted")
            continue
        approx = "" if count.exact else "~"
        messages = ", ".join(f"{m.role} {format_tokens(m.tokens)}" for m in count.prompt.messages)
        table.add_row(
            count.label,
            count.format,
            count.model or f"({count.encoding})",
            f"{approx}{format_tokens(count.prompt.text_tokens)}",
            f"{approx}{format_tokens(count.prompt.request_tokens)}",
            messages,
        )
    totals = count_totals(report.templates)
    if len(report.templates) > 1 and totals:
        table.add_section()
        for total in totals:
            approx = "" if total.exact else "~"
            table.add_row(
                Text("total", style="bold"),
                "",
                total.model or f"({total.encoding})",
                f"{approx}{format_tokens(total.text_tokens)}",
                f"{approx}{format_tokens(total.request_tokens)}",
                f"{total.templates} template{'s' if total.templates != 1 else ''}",
            )
    print_table(console, table)
    if any(not c.exact for c in report.templates):
        console.print(
            Text(
                "~ estimate: no exact tokenizer for this model, tool definitions (an "
                "approximation everywhere), or a template counted as raw text (see findings)",
                style="dim",
            )
        )


def _print_compressions(console: Console, report: Report) -> None:
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    for name, justify in (
        ("template", "left"),
        ("tokens", "right"),
        ("after", "right"),
        ("saved", "right"),
        ("", "right"),
        ("$/month", "right"),
        ("", "left"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    saved_by_pass: dict[str, int] = {}
    before = after = 0
    money = Decimal(0)
    for item in report.compressions:
        result = item.result
        if result is None:
            table.add_row(item.path, "-", "-", "-", "", "", item.skipped or item.error or "")
            continue
        before += result.tokens_before
        after += result.tokens_after
        for saving in result.passes:
            saved_by_pass[saving.name] = saved_by_pass.get(saving.name, 0) + saving.tokens_saved
        share = (
            f"{result.tokens_saved / result.tokens_before * 100:.1f}%"
            if result.tokens_before
            else ""
        )
        if item.monthly_savings_usd is not None:
            money += item.monthly_savings_usd
        status = "written" if item.written else (item.error or "")
        table.add_row(
            item.path,
            format_tokens(result.tokens_before),
            format_tokens(result.tokens_after),
            format_tokens(result.tokens_saved),
            share,
            format_usd(item.monthly_savings_usd) if item.monthly_savings_usd else "-",
            status,
        )
    if report.compressions:
        print_table(console, table)
    saved = before - after
    total = f"{saved / before * 100:.1f}%" if before else "0%"
    passes = ", ".join(f"{name} {format_tokens(count)}" for name, count in saved_by_pass.items())
    summary = Text(
        f"{len(report.compressions)} template(s): {format_tokens(saved)} of "
        f"{format_tokens(before)} tokens saved ({total})"
    )
    if money:
        summary.append(f", {format_usd(money)} a month")
    console.print()
    console.print(summary)
    console.print(Text(f"by pass: {passes or 'nothing to save'}", style="dim"))
    written = sum(1 for item in report.compressions if item.written)
    if written:
        console.print(Text(f"rewrote {written} file(s)", style="dim"))
    elif any(item.result and item.result.changed for item in report.compressions):
        console.print(
            Text("nothing written: --diff shows the changes, --write applies them", style="dim")
        )


def _print_diff(console: Console, report: Report, *, wrap: bool) -> None:
    from promptbudget.reporters.diff_format import breach_text, delta_text, span_text, via_text
    from promptbudget.reporters.diff_text import print_diff_tables

    diff = report.diff
    assert diff is not None
    console.print(
        Text(
            f"promptbudget diff: {diff.base_ref} ({diff.base_commit[:7]}) → working tree",
            style="bold",
        )
    )
    if diff.base_problem:
        console.print(Text(f"base not evaluated: {diff.base_problem}", style="yellow"))
    console.print()
    changed = diff.changed_templates
    print_diff_tables(console, diff.workflows, changed, lambda table: print_table(console, table))
    for template in changed:
        via = via_text(template)
        if via is not None:
            console.print(Text(f"{template.path} grew through an include: {via}"))
    unchanged = len(diff.templates) - len(changed)
    if unchanged:
        console.print(
            Text(f"{unchanged} template{'s' if unchanged != 1 else ''} unchanged", style="dim")
        )
    console.print()
    if report.findings:
        console.print(Text("new in the working tree:", style="bold"))
        _print_findings(console, report, wrap=wrap)
    if diff.fixed_findings:
        console.print(Text("fixed:", style="bold green"))
        for finding in diff.fixed_findings:
            _print_finding(console, finding_line(finding), wrap=wrap)
        console.print()
    for breach in diff.breaches:
        assert diff.threshold is not None
        console.print(
            Text("✗ " + breach_text(breach, diff.threshold), style="bold red"), soft_wrap=True
        )
    total = diff.monthly_total
    if total.base is not None or total.head is not None:
        moved = delta_text(total, "usd") if total.status != "unchanged" else "unchanged"
        console.print(f"monthly spend {span_text(total, 'usd')}, {moved}")
    console.print(_summary(report))


def _print_replay(console: Console, report: Report) -> None:
    from promptbudget.reporters import replay_format as shared

    result = report.replay
    assert result is not None
    console.print(shared.header_line(result, report.catalog_as_of), soft_wrap=True)
    hint = shared.hint_line(result)
    if hint:
        console.print(Text(hint, style="bold"), soft_wrap=True)
    console.print()
    for stats in result.matched:
        console.print(Text(shared.workflow_line(stats, result.known_workflows)), soft_wrap=True)
    rows = shared.step_rows(result)
    if rows:
        console.print()
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        for name in shared.STEP_HEADER:
            table.add_column(
                name, justify="left" if name in {"workflow", "step", "models"} else "right"
            )
        for row in rows:
            table.add_row(*row)
        print_table(console, table)
    else:
        console.print("No usage records in the logs.")
    unmatched = shared.unmatched_lines(result)
    if unmatched:
        console.print()
        console.print(Text("Unmatched records", style="bold"))
        for line in unmatched:
            console.print("  " + line, soft_wrap=True, markup=False)
    malformed = shared.malformed_lines(result)
    if malformed:
        console.print()
        console.print(Text(f"Malformed records ({result.malformed:,}, skipped)", style="bold"))
        for line in malformed:
            console.print("  " + line, soft_wrap=True, markup=False)
    drift = shared.drift_rows(result)
    if drift:
        console.print()
        console.print(Text("Assumptions against production", style="bold"))
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        for name in shared.DRIFT_HEADER:
            table.add_column(name, justify="right" if name == "cost of the gap" else "left")
        for row in drift:
            table.add_row(*row)
        print_table(console, table)
    changed = shared.comparison_line(result)
    if changed:
        console.print()
        console.print(Text(changed, style="bold"), soft_wrap=True)
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        for name in shared.CHANGE_HEADER:
            table.add_column(name)
        for row in shared.change_rows(result):
            table.add_row(*row)
        print_table(console, table)
    speeds = shared.speed_rows(result)
    if speeds:
        console.print()
        console.print(Text("Model speeds against production", style="bold"))
        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        for name in shared.SPEED_HEADER:
            table.add_column(name, justify="right" if name in {"gap", "calls"} else "left")
        for row in speeds:
            table.add_row(*row)
        print_table(console, table)
    console.print()
