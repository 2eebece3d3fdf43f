"""Markdown for a pull-request comment or a GitHub job summary: the verdict in the first line,
one table, then the findings (folded away when there are many).

Text from the project (names, paths, messages) is escaped so that it renders as written:
``|`` cannot split a table cell, ``$`` cannot start GitHub math, ``<`` cannot open HTML, and
``owner/repo#12`` or ``@name`` gets a zero-width space so that a PR comment does not link or
notify someone else's issue or user on every run (as Renovate does).
"""

from __future__ import annotations

import re
from decimal import Decimal

from promptbudget.counting import count_totals
from promptbudget.estimates import WorkflowEstimate
from promptbudget.findings import Finding, Severity, assert_never
from promptbudget.report import Report
from promptbudget.reporters.base import ReportSettings
from promptbudget.reporters.locations import workspace_path
from promptbudget.units import format_tokens, format_usd

FOLD_OVER = 10  # more findings than this: each severity group is a collapsed <details>

_SPECIAL = re.compile(r"([\\`*\[\]<>|$~&])")
_LONE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_REFERENCE = re.compile(r"([#@])(?=\w)")  # issue references and mentions


def md_text(text: str) -> str:
    """Plain text as Markdown that renders as written, on one line (safe in a table cell)."""
    text = " ".join(text.splitlines())
    text = _SPECIAL.sub(r"\\\1", text)
    text = _REFERENCE.sub("\\1&#8203;", text)
    return _LONE_UNDERSCORE.sub(r"\\_", text)  # snake_case inside a word stays readable


def md_code(text: str, *, in_table: bool = False) -> str:
    """Inline code; a cell's ``|`` is escaped even inside code (GFM splits cells first)."""
    text = " ".join(text.splitlines())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    padded = f" {text} " if longest or text.startswith(" ") else text
    if in_table:
        padded = padded.replace("|", "\\|")
    return f"{fence}{padded}{fence}"


def _icon(severity: Severity) -> str:
    match severity:
        case Severity.ERROR:
            return "❌"
        case Severity.WARNING:
            return "⚠️"
        case Severity.INFO:
            return "\u2139\ufe0f"  # information source
        case _:
            assert_never(severity)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _fails(report: Report, findings: tuple[Finding, ...] | list[Finding]) -> bool:
    return any(f.severity >= report.fail_on for f in findings)


def title(report: Report) -> str:
    errors = report.count(Severity.ERROR)
    warnings = report.count(Severity.WARNING)
    infos = report.count(Severity.INFO)
    counts = [_plural(errors, "error"), _plural(warnings, "warning")]
    if infos:
        counts.append(f"{infos} info")
    failing = _fails(report, report.findings)
    line = f"## {'❌' if failing else '✅'} promptbudget {report.command}: {', '.join(counts)}"
    if failing and report.command in {"check", "count"}:
        line += f" (failing on {report.fail_on.value} and above"
        line += ", exit code 0: --exit-zero)" if report.exit_zero else ")"
    return line


def format_count(value: Decimal) -> str:
    """Calls per request: ``4``, or ``4.38`` when routing and retries make it fractional."""
    if value == value.to_integral_value():
        return f"{int(value):,}"
    return f"{value.quantize(Decimal('0.01')).normalize():f}"


def _status(report: Report, workflow: str) -> str:
    """``❌ PB101, PB106`` (what fails) then what fired below ``--fail-on``: ``⚠️ PB203``."""
    mine = [f for f in report.findings if f.workflow == workflow]
    failing = sorted({f.rule for f in mine if f.severity >= report.fail_on})
    parts = ["❌ " + ", ".join(failing) if failing else "✅"]
    for severity in sorted(Severity, reverse=True):
        if severity >= report.fail_on:
            continue
        codes = sorted({f.rule for f in mine if f.severity is severity})
        if codes:
            parts.append(f"{_icon(severity)} {', '.join(codes)}")
    return " ".join(parts)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def workflows_table(report: Report, workflows: tuple[WorkflowEstimate, ...]) -> list[str]:
    lines = [
        _row(["workflow", "$/request", "$/outcome", "$/month", "calls", "status"]),
        "|:--|--:|--:|--:|--:|:--|",
    ]
    for workflow in workflows:
        at_least = "" if workflow.is_complete else "≥"
        monthly = workflow.monthly_spend_usd
        lines.append(
            _row(
                [
                    md_text(workflow.name),
                    md_text(at_least + format_usd(workflow.cost_per_request_usd)),
                    md_text(at_least + format_usd(workflow.outcome.mean)),
                    md_text(at_least + format_usd(monthly)) if monthly is not None else "-",
                    format_count(workflow.calls_per_request),
                    _status(report, workflow.name),
                ]
            )
        )
    return lines


def limits_table(report: Report, settings: ReportSettings) -> list[str]:
    """Every limit with what was measured, the limit and the share used; over budget first
    in its cell (❌), passing entries too."""
    from promptbudget.headroom import band_footnote, format_limit, format_measured, format_used

    lines = [
        _row(["budget", "limit on", "measured", "limit", "used", ""]),
        "|:--|:--|--:|--:|--:|:--|",
    ]
    previous = None
    for check in report.limits:
        subject = check.subject
        if subject == previous:
            shown = ""
        elif check.level == "template":
            shown = md_code(workspace_path(subject, settings), in_table=True)
        else:
            shown = md_text(subject)
        previous = subject
        status = {"over": "❌ over", "ok": "✅", "unmeasured": "⚪ not measured"}[check.status]
        lines.append(
            _row(
                [
                    shown,
                    md_text(check.label),
                    (
                        f"**{md_text(format_measured(check))}**"
                        if check.status == "over"
                        else md_text(format_measured(check))
                    ),
                    md_text(format_limit(check)),
                    md_text(format_used(check)),
                    status,
                ]
            )
        )
    footnote = band_footnote(report.limits)
    if footnote is not None:
        lines += ["", f"<sub>{md_text(footnote)}</sub>"]
    return lines


def templates_table(report: Report, settings: ReportSettings) -> list[str]:
    lines = [_row(["template", "model", "tokens", "request"]), "|:--|:--|--:|--:|"]
    for count in report.templates:
        approx = "" if count.exact else "~"
        text, request = count.text_tokens, count.request_tokens
        lines.append(
            _row(
                [
                    md_code(
                        workspace_path(count.path, settings)
                        + (f" [{count.variant}]" if count.variant else ""),
                        in_table=True,
                    ),
                    md_text(count.model or f"({count.encoding})"),
                    md_text(f"{approx}{format_tokens(text)}") if text is not None else "-",
                    md_text(f"{approx}{format_tokens(request)}") if request is not None else "-",
                ]
            )
        )
    if len(report.templates) > 1:
        for total in count_totals(report.templates):
            approx = "" if total.exact else "~"
            lines.append(
                _row(
                    [
                        f"**total** ({total.templates})",
                        md_text(total.model or f"({total.encoding})"),
                        "**" + md_text(f"{approx}{format_tokens(total.text_tokens)}") + "**",
                        "**" + md_text(f"{approx}{format_tokens(total.request_tokens)}") + "**",
                    ]
                )
            )
    return lines


def finding_item(finding: Finding, settings: ReportSettings) -> str:
    where = ""
    if finding.path:
        place = workspace_path(finding.path, settings)
        if finding.line:
            place = f"{place}:{finding.line}"
        where = md_code(place) + " "
    return f"- {where}**{finding.rule}** {finding.slug}: {md_text(finding.message)}"


def findings_section(report: Report, settings: ReportSettings) -> list[str]:
    fold = len(report.findings) > FOLD_OVER
    lines: list[str] = []
    for severity in sorted(Severity, reverse=True):
        group = [f for f in report.findings if f.severity is severity]
        if not group:
            continue
        noun = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "info"}
        heading = f"{_icon(severity)} {len(group)} {noun[severity]}"
        if severity is not Severity.INFO and len(group) != 1:
            heading += "s"
        items = [finding_item(f, settings) for f in group]
        if fold:
            lines += [f"<details><summary>{heading}</summary>", "", *items, "", "</details>", ""]
        else:
            lines += [f"**{heading}**", "", *items, ""]
    return lines


MARKER = "<!-- promptbudget -->"  # first line: lets a CI step find and update its comment
DIFF_MARKER = "<!-- promptbudget:diff -->"


def render_markdown(report: Report, settings: ReportSettings) -> str:
    if report.diff is not None:
        return render_diff_markdown(report, settings)
    lines = [MARKER, title(report), ""]
    notes: list[str] = []
    if report.command in {"check", "estimate"} and report.workflows:
        lines += [*workflows_table(report, report.workflows), ""]
        if report.catalog_as_of:
            notes.append(f"prices as of {report.catalog_as_of}")
        if not all(w.is_complete for w in report.workflows):
            notes.append("≥ at least: a model is not priced")
    elif report.command == "check" and not report.limits:
        lines += ["No workflows in the manifest, so no budgets were checked.", ""]
    elif report.command == "estimate":
        lines += ["No workflows in the manifest, so there is nothing to estimate.", ""]
    if report.limits:
        lines += [*limits_table(report, settings), ""]
    if report.command == "count":
        if report.templates:
            lines += [*templates_table(report, settings), ""]
            if not all(t.exact for t in report.templates):
                notes.append("~ estimated count")
        else:
            lines += ["No prompt templates found.", ""]
    if report.command == "replay" and report.replay is not None:
        lines += replay_markdown(report)
    if report.sets:
        notes.append("what-if: " + "; ".join(report.sets))
    if notes:
        lines += ["<sub>" + md_text(" · ".join(notes)) + "</sub>", ""]
    lines += findings_section(report, settings)
    return "\n".join(lines).rstrip("\n") + "\n"


# -- diff: the pull-request comment ----------------------------------------------------------


def _diff_title(report: Report) -> str:
    from promptbudget.reporters.diff_format import delta_text

    diff = report.diff
    assert diff is not None
    total = diff.monthly_total
    base = f"vs {md_code(diff.base_ref)} ({md_code(diff.base_commit[:7])})"
    if report.exit_code:
        icon = "❌"
    elif total.delta is not None and total.delta > 0:
        icon = "📈"
    elif total.delta is not None and total.delta < 0:
        icon = "📉"
    else:
        icon = "✅"
    if total.delta is not None and total.delta != 0:
        what = f"monthly spend {md_text(delta_text(total, 'usd'))}"
    elif diff.changed_workflows or diff.changed_templates:
        what = "prompts changed, monthly spend unchanged"
    else:
        what = "no change in tokens or cost"
    return f"## {icon} promptbudget: {what} {base}"


def _diff_workflows(report: Report) -> list[str]:
    from promptbudget.reporters.diff_format import delta_text, span_text

    diff = report.diff
    assert diff is not None
    changed = diff.changed_workflows
    if not changed:
        return (
            [f"All {_plural(len(diff.workflows), 'workflow')} unchanged.", ""]
            if diff.workflows
            else []
        )
    latency = any(w.has_latency for w in changed)
    header = ["workflow", "$/request", "Δ", "$/month", "Δ", "tokens/request", "Δ"]
    header += ["latency p50", "Δ", "latency p95", "Δ"] if latency else []
    lines = [_row(header), "|:--" + "|--:" * (len(header) - 1) + "|"]
    for workflow in changed:
        monthly = workflow.monthly_spend
        has_monthly = monthly.base is not None or monthly.head is not None
        seconds = [
            md_text(text(change, "ms"))
            for change in (workflow.latency_p50, workflow.latency_p95)
            for text in (span_text, delta_text)
            if latency
        ]
        lines.append(
            _row(
                [
                    md_text(workflow.name),
                    md_text(span_text(workflow.cost_per_request, "usd")),
                    md_text(delta_text(workflow.cost_per_request, "usd")),
                    md_text(span_text(monthly, "usd")) if has_monthly else "-",
                    md_text(delta_text(monthly, "usd")) if has_monthly else "-",
                    md_text(span_text(workflow.tokens_per_request, "tokens")),
                    md_text(delta_text(workflow.tokens_per_request, "tokens")),
                    *seconds,
                ]
            )
        )
    unchanged = len(diff.workflows) - len(changed)
    lines.append("")
    if unchanged:
        lines += [f"<sub>{_plural(unchanged, 'workflow')} unchanged</sub>", ""]
    return lines


def _diff_templates(report: Report, settings: ReportSettings) -> list[str]:
    from promptbudget.reporters.diff_format import delta_text, span_text, via_text

    diff = report.diff
    assert diff is not None
    changed = diff.changed_templates
    if not changed:
        return []
    table = [
        _row(["template", "model", "tokens", "Δ"]),
        "|:--|:--|--:|--:|",
        *(
            _row(
                [
                    md_code(workspace_path(template.path, settings), in_table=True),
                    md_text(template.model or "-"),
                    md_text(span_text(template.tokens, "tokens")),
                    md_text(delta_text(template.tokens, "tokens")),
                ]
            )
            for template in changed
        ),
    ]
    grew = [
        f"- {md_code(workspace_path(t.path, settings))} grew through an include: " + md_code(via)
        for t in changed
        if (via := via_text(t)) is not None
    ]
    if grew:  # a list after a blank line: not read as a row of the table
        table += ["", *grew]
    unchanged = len(diff.templates) - len(changed)
    summary = f"{_plural(len(changed), 'template')} changed"
    if unchanged:
        summary += f", {unchanged} unchanged"
    if len(changed) > FOLD_OVER:
        return [f"<details><summary>{summary}</summary>", "", *table, "", "</details>", ""]
    return [f"**{summary}**", "", *table, ""]


def render_diff_markdown(report: Report, settings: ReportSettings) -> str:
    from promptbudget.reporters.diff_format import breach_text

    diff = report.diff
    assert diff is not None
    lines = [DIFF_MARKER, _diff_title(report), ""]
    if diff.base_problem:
        lines += [f"> base not evaluated: {md_text(diff.base_problem)}", ""]
    lines += _diff_workflows(report)
    lines += _diff_templates(report, settings)
    if diff.breaches:
        assert diff.threshold is not None
        lines += [f"**❌ {_plural(len(diff.breaches), 'rise')} above --fail-on-increase**", ""]
        lines += [f"- {md_text(breach_text(b, diff.threshold))}" for b in diff.breaches]
        lines.append("")
    if report.findings:
        lines += ["**New findings**", ""]
        lines += findings_section(report, settings)
    if diff.fixed_findings:
        lines += [f"**✅ Fixed: {_plural(len(diff.fixed_findings), 'finding')}**", ""]
        lines += [finding_item(f, settings) for f in diff.fixed_findings]
        lines.append("")
    notes = ["head: the working tree"]
    if report.catalog_as_of:
        notes.append(f"prices as of {report.catalog_as_of}")
    lines += ["<sub>" + md_text(" · ".join(notes)) + "</sub>"]
    return "\n".join(lines).rstrip("\n") + "\n"


def replay_markdown(report: Report) -> list[str]:
    from promptbudget.reporters import replay_format as shared

    result = report.replay
    assert result is not None
    lines = [md_text(shared.header_line(result, report.catalog_as_of)), ""]
    hint = shared.hint_line(result)
    if hint:
        lines += [f"**{md_text(hint)}**", ""]
    lines += [
        "- " + md_text(shared.workflow_line(w, result.known_workflows)) for w in result.matched
    ]
    if result.matched:
        lines.append("")
    rows = shared.step_rows(result)
    if rows:
        lines += [_row(list(shared.STEP_HEADER)), _row(["---"] * len(shared.STEP_HEADER))]
        lines += [_row([md_text(cell) for cell in row]) for row in rows]
        lines.append("")
    else:
        lines += ["No usage records in the logs.", ""]
    unmatched = shared.unmatched_lines(result)
    if unmatched:
        lines += ["**Unmatched records**", ""]
        lines += ["- " + md_text(line) for line in unmatched]
        lines.append("")
    malformed = shared.malformed_lines(result)
    if malformed:
        lines += [f"**Malformed records** ({result.malformed:,}, skipped)", ""]
        lines += ["- " + md_text(line) for line in malformed]
        lines.append("")
    drift = shared.drift_rows(result)
    if drift:
        lines += ["**Assumptions against production**", ""]
        lines += [_row(list(shared.DRIFT_HEADER)), _row(["---"] * len(shared.DRIFT_HEADER))]
        lines += [_row([md_text(cell) for cell in row]) for row in drift]
        lines.append("")
    changed = shared.comparison_line(result)
    if changed:
        lines += [f"**{md_text(changed)}**", ""]
        changes = shared.change_rows(result)
        if changes:
            lines += [_row(list(shared.CHANGE_HEADER)), _row(["---"] * len(shared.CHANGE_HEADER))]
            lines += [_row([md_text(cell) for cell in row]) for row in changes]
            lines.append("")
    speeds = shared.speed_rows(result)
    if speeds:
        lines += ["**Model speeds against production**", ""]
        lines += [_row(list(shared.SPEED_HEADER)), _row(["---"] * len(shared.SPEED_HEADER))]
        lines += [_row([md_text(cell) for cell in row]) for row in speeds]
        lines.append("")
    return lines
