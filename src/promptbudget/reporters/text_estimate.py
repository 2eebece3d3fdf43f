"""The text of ``estimate``: each workflow's costs, the what-if next to the baseline, and
``--why``'s breakdown of where the money goes."""

from __future__ import annotations

from decimal import Decimal

from rich.console import Console
from rich.table import Table
from rich.text import Text

from promptbudget.estimates import (
    TimeOfDaySplit,
    WorkflowEstimate,
    time_of_day_splits,
    unmodelled_pricing,
)
from promptbudget.headroom import (
    WhatIf,
    band_footnote,
    format_spread,
    spread_footnote,
    what_if,
)
from promptbudget.report import Report
from promptbudget.reporters.latency_text import (
    latency_notes,
    latency_rows,
    ms_cell,
    ms_delta,
    seconds_table,
    shows_latency,
)
from promptbudget.reporters.tables import format_count, print_table
from promptbudget.units import format_share, format_tokens, format_usd

COMPONENT_LABELS = {
    "static": "static text",
    "tools": "tool definitions",
    "history": "history (earlier turns)",
    "tool_results": "tool results",
    "output": "output",
}


SECONDS_NOTE = (
    "milliseconds per request: time to first token + output tokens / output tokens per second "
    "per call, tool and retrieval times, retry backoff; escalations, retries and semantic-cache "
    "hits drawn per simulated request; the parts are means"
)


def component_label(name: str) -> str:
    if name.startswith("var:"):
        return f"{{{{ {name[4:]} }}}}"
    return COMPONENT_LABELS.get(name, name)


def _share(part: Decimal, total: Decimal) -> str:
    return f"{part / total * 100:.1f}%" if total else "-"


def _metrics(workflow: WorkflowEstimate) -> list[tuple[str, Decimal | None]]:
    calls = workflow.calls_per_request
    outcome = workflow.outcome
    return [
        ("cost per call", workflow.cost.mean / calls if calls else None),
        (
            "cost per request (mean, sampled)"
            if workflow.mean_is_sampled
            else "cost per request (mean)",
            workflow.cost.mean,
        ),
        ("cost per request (p50)", workflow.cost.p50),
        ("cost per request (p95)", workflow.cost.p95),
        ("cost per successful outcome", outcome.mean),
        ("spend per month", workflow.monthly_spend_usd),
    ]


def print_estimates(console: Console, report: Report) -> None:
    baseline = {w.name: w for w in report.baseline}
    pairs = _what_if(report)
    for workflow in report.workflows:
        _print_estimate(console, workflow, baseline.get(workflow.name))
        mine = [pair for pair in pairs if pair.after.workflow == workflow.name]
        if mine:
            from promptbudget.reporters.headroom_text import what_if_table

            console.print()
            print_table(console, what_if_table(mine))
            checks = [p.after for p in mine] + [p.before for p in mine if p.before is not None]
            footnote = band_footnote(checks)
            if footnote is not None:
                console.print(Text(footnote, style="dim"))
        if report.why:
            _print_why(console, workflow)
        console.print()
    if report.sets:
        console.print(Text("what-if: " + "; ".join(report.sets), style="dim"))
        if pairs:
            console.print(_what_if_summary(pairs))
    if not report.workflows:
        console.print("no workflows in the manifest, so there is nothing to estimate")


def _what_if(report: Report) -> tuple[WhatIf, ...]:
    if not report.sets:
        return ()
    return what_if(report.baseline_limits, report.limits)


def _what_if_summary(pairs: tuple[WhatIf, ...]) -> Text:
    """``✗ the what-if breaks 3 budgets: docs-answer $/month, ...; keeps 12``."""
    broken = [p for p in pairs if p.verdict in {"broken", "still over"}]
    kept = [p for p in pairs if p.verdict in {"kept", "fixed"}]
    text = Text()
    if broken:
        names = ", ".join(f"{p.after.subject} {p.after.label}" for p in broken)
        text.append("✗ ", style="bold red")
        text.append(f"the what-if breaks {len(broken)} budget{'s' if len(broken) != 1 else ''}")
        text.append(f": {names}; ")
        text.append(f"keeps {len(kept)}")
    else:
        text.append("✓ ", style="bold green")
        text.append(f"the what-if keeps every budget ({len(kept)})")
    fixed = sum(1 for p in pairs if p.verdict == "fixed")
    if fixed:
        text.append(f"; fixes {fixed}")
    text.append(" (check --set gates on it)", style="dim")
    return text


def _print_estimate(
    console: Console, workflow: WorkflowEstimate, baseline: WorkflowEstimate | None
) -> None:
    title = Text(workflow.name, style="bold")
    details = []
    per_day = workflow.workflow.requests_per_day
    if per_day is not None:
        details.append(f"{format_count(per_day)} requests/day")
    if workflow.workflow.success_rate != 1:
        details.append(f"{format_share(workflow.workflow.success_rate)} success")
    if workflow.workflow.semantic_cache_hit_rate:
        details.append(f"{format_share(workflow.workflow.semantic_cache_hit_rate)} semantic cache")
    if workflow.samples > 1:
        details.append(f"Monte Carlo: {workflow.samples:,} samples, seed {workflow.seed}")
    if not workflow.is_complete:
        details.append("at least: a model is not priced, see PB110")
    if details:
        title.append("  (" + ", ".join(details) + ")", style="dim")
    console.print(title)
    table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
    table.add_column("")
    if baseline is not None:
        table.add_column("baseline", justify="right")
        table.add_column("what-if", justify="right")
        table.add_column("delta", justify="right")
        for (name, after), (_, before) in zip(_metrics(workflow), _metrics(baseline), strict=True):
            table.add_row(name, _usd(before), _usd(after), _delta(before, after))
    else:
        table.add_column("", justify="right")
        spreads = _spreads(workflow)
        if spreads:
            table.add_column("", justify="left")
        for name, amount in _metrics(workflow):
            table.add_row(name, _usd(amount), *([spreads.get(name, "")] if spreads else []))
    if baseline is not None:  # baseline, what-if, delta: the order of the columns
        table.add_row(
            "calls per request",
            format_count(baseline.calls_per_request),
            format_count(workflow.calls_per_request),
            _count_delta(baseline.calls_per_request, workflow.calls_per_request),
        )
    else:
        table.add_row("calls per request", format_count(workflow.calls_per_request))
    if shows_latency(workflow) or (baseline is not None and shows_latency(baseline)):
        if baseline is not None:
            for (label, ms_after), (_, ms_before) in zip(
                latency_rows(workflow), latency_rows(baseline), strict=True
            ):
                table.add_row(
                    label, ms_cell(ms_before), ms_cell(ms_after), ms_delta(ms_before, ms_after)
                )
        else:
            for name, value in latency_rows(workflow):
                table.add_row(name, ms_cell(value), *([spreads.get(name, "")] if spreads else []))
    print_table(console, table)
    if baseline is None and spreads:
        console.print(Text(spread_footnote(workflow.samples), style="dim"))
    if shows_latency(workflow):
        for note in latency_notes(workflow):
            console.print(note)
    mix = ", ".join(
        f"{model or '?'} {format_share_rounded(calls)} of calls / {format_share_rounded(cost)} "
        "of cost"
        for model, calls, cost in workflow.model_mix()
    )
    console.print(Text(f"model mix: {mix}", style="dim"))
    for model, dimensions in unmodelled_pricing(workflow).items():
        console.print(Text(f"not modelled for {model}: {', '.join(dimensions)}", style="dim"))
    for step in workflow.steps:
        if step.break_even_escalation is not None:
            rate = step.break_even_escalation
            verdict = (
                f"cheaper than sending every call to the escalation model while escalations "
                f"stay below {format_share_rounded(rate)}"
                if rate > 0
                else "never cheaper than sending every call to the escalation model"
            )
            console.print(Text(f"step {step.name}: the cascade is {verdict}", style="dim"))


def _spreads(workflow: WorkflowEstimate) -> dict[str, str]:
    """``±2%`` by row label, for the sampled percentiles (cost and latency) of an estimate."""
    spreads = {}
    for statistic in ("p50", "p95"):
        band = workflow.cost.band(statistic)
        if band is not None:
            value = workflow.cost.get(statistic)
            spreads[f"cost per request ({statistic})"] = format_spread(value, band)
        stats = workflow.latency.stats if workflow.latency is not None else None
        ms_band = stats.band(statistic) if stats is not None else None
        if stats is not None and ms_band is not None:
            value_ms = Decimal(repr(stats.get(statistic)))
            shown = format_spread(value_ms, (Decimal(repr(ms_band[0])), Decimal(repr(ms_band[1]))))
            spreads[f"latency per request ({statistic})"] = shown
    return spreads


def _count_delta(before: Decimal, after: Decimal) -> str:
    change = after - before
    if not change:
        return ""
    return ("+" if change > 0 else "-") + format_count(abs(change))


def _usd(amount: Decimal | None) -> str:
    return "-" if amount is None else format_usd(amount)


def _delta(before: Decimal | None, after: Decimal | None) -> str:
    if before is None or after is None:
        return "-"
    change = after - before
    sign = "+" if change > 0 else ("-" if change < 0 else "")
    percent = f" ({sign}{abs(change) / before * 100:.1f}%)" if before else ""
    return f"{sign}{format_usd(abs(change))}{percent}"


def format_share_rounded(share: Decimal) -> str:
    return f"{share * 100:.1f}%".replace(".0%", "%")


def time_of_day_line(split: TimeOfDaySplit) -> str:
    """``--why``: how a time-of-day price was blended for one step's model."""
    tod = split.time_of_day
    spread = "traffic spread evenly over the week" if tod.is_even_spread else "traffic profile"
    money = (
        f": peak {format_usd(split.peak_usd)} + off-peak {format_usd(split.off_peak_usd)} = "
        f"{format_usd(split.cost_usd)} per request"
        if split.peak_usd is not None and split.off_peak_usd is not None
        else ""
    )
    share = format_share(tod.off_peak_share.quantize(Decimal("0.001")))
    return (
        f"{split.step} on {split.model}: {share} of requests off-peak ({spread}; input "
        f"{tod.off_peak.input_per_mtok}/{tod.peak.input_per_mtok}, "
        f"output {tod.off_peak.output_per_mtok}/{tod.peak.output_per_mtok} $/M off-peak/peak)"
        f"{money}"
    )


def _print_why(console: Console, workflow: WorkflowEstimate) -> None:
    from rich.tree import Tree

    total = workflow.cost.mean
    root = Tree(Text.assemble((workflow.name, "bold"), f"  {format_usd(total)}  100%"))
    for step in workflow.steps:
        step_components = [c for c in workflow.components if c.step == step.name]
        step_cost = sum((c.cost_usd for c in step_components), Decimal(0))
        branch = root.add(
            Text.assemble(
                (step.name, "bold"), f"  {format_usd(step_cost)}  {_share(step_cost, total)}"
            )
        )
        for model in dict.fromkeys(c.model for c in step_components):
            parts = [c for c in step_components if c.model == model]
            model_cost = sum((c.cost_usd for c in parts), Decimal(0))
            leaf = branch.add(
                f"{model or '?'}  {format_usd(model_cost)}  {_share(model_cost, total)}"
            )
            shown = [c for c in parts if c.cost_usd or c.tokens]
            for part in sorted(shown, key=lambda c: c.cost_usd, reverse=True):
                leaf.add(
                    f"{component_label(part.name)}: {format_tokens(round(part.tokens))} tokens  "
                    f"{format_usd(part.cost_usd)}  {_share(part.cost_usd, total)}"
                )
    console.print(root)
    if shows_latency(workflow):
        console.print()
        console.print(Text("where the seconds go (milliseconds per request)", style="bold"))
        print_table(console, seconds_table(workflow))
        sampled = workflow.latency is not None and workflow.latency.samples > 1
        note = SECONDS_NOTE + ("; ±: 95% band of a sampled percentile" if sampled else "")
        console.print(Text(note, style="dim"))
    for split in time_of_day_splits(workflow):
        console.print(Text(time_of_day_line(split)))
    console.print(
        Text(
            "tokens and dollars are per request, averaged over traffic classes, routing, "
            "escalations, retries and the Monte Carlo samples; dollars include prompt "
            "caching, batch and the semantic cache",
            style="dim",
        )
    )
