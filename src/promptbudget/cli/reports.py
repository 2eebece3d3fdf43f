"""The commands that evaluate a project and print a report: count, check, replay, estimate,
diff."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from promptbudget.cli.app import (
    ColorOption,
    ConfigOption,
    EstimateFormatOption,
    ExitZeroOption,
    FailOnOption,
    FormatOption,
    IgnoreOption,
    NoCacheOption,
    NoColorOption,
    OutputOption,
    PricesOption,
    QuietOption,
    SamplesOption,
    SeedOption,
    SelectOption,
    StdinFilenameOption,
    VerboseOption,
    app,
    make_options,
)
from promptbudget.cli.output import (
    ColorMode,
    emit_report,
    stderr_line,
    write_text,
)
from promptbudget.errors import UsageError
from promptbudget.options import OutputFormat


@app.command()
def count(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="PATH",
            help="Template files or directories (default: the manifest's prompts/); - reads "
            "a template from stdin.",
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", "-m", metavar="MODEL", help="Count for this model (repeat for several)."
        ),
    ] = None,
    fmt: FormatOption = "auto",
    output: OutputOption = None,
    config: ConfigOption = None,
    fail_on: FailOnOption = None,
    select: SelectOption = None,
    ignore: IgnoreOption = None,
    exit_zero: ExitZeroOption = False,
    no_color: NoColorOption = False,
    color: ColorOption = ColorMode.AUTO,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    prices: PricesOption = None,
    no_cache: NoCacheOption = False,
    stdin_filename: StdinFilenameOption = None,
) -> int:
    """Tokens per template (and per message), per model."""
    from promptbudget.commands import count as command

    options = make_options(
        no_cache=no_cache,
        config=config,
        fmt=fmt,
        output=output,
        fail_on=fail_on,
        select=select,
        ignore=ignore,
        exit_zero=exit_zero,
        no_color=no_color,
        color=color,
        quiet=quiet,
        verbose=verbose,
        paths=paths or (),
        models=model or (),
        prices=prices,
        stdin_filename=stdin_filename,
    )
    return emit_report(command.run(options), options)


@app.command()
def check(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="PATH",
            help="Report only on these files (and the workflows that use them), as pre-commit "
            "passes them; the manifest itself means everything; - reads a template from stdin. "
            "Default: the whole project.",
        ),
    ] = None,
    fmt: FormatOption = "auto",
    output: OutputOption = None,
    config: ConfigOption = None,
    fail_on: FailOnOption = None,
    select: SelectOption = None,
    ignore: IgnoreOption = None,
    exit_zero: ExitZeroOption = False,
    no_color: NoColorOption = False,
    color: ColorOption = ColorMode.AUTO,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    prices: PricesOption = None,
    no_cache: NoCacheOption = False,
    samples: SamplesOption = 1000,
    seed: SeedOption = 1,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="PATH=VALUE",
            help="Check a what-if instead of the manifest as written (same PATH=VALUE as "
            "estimate --set, repeatable): exit 1 if it breaks a budget.",
        ),
    ] = None,
    workflow: Annotated[
        str | None,
        typer.Option("--workflow", "-w", metavar="WORKFLOW", help="Only this workflow's budgets."),
    ] = None,
    stdin_filename: StdinFilenameOption = None,
) -> int:
    """Check every workflow and template against budgets.yaml; exit 1 on a broken budget."""
    from promptbudget.commands import check as command
    from promptbudget.project import split_projects

    options = make_options(
        no_cache=no_cache,
        config=config,
        fmt=fmt,
        output=output,
        fail_on=fail_on,
        select=select,
        ignore=ignore,
        exit_zero=exit_zero,
        no_color=no_color,
        color=color,
        quiet=quiet,
        verbose=verbose,
        prices=prices,
        samples=samples,
        seed=seed,
        paths=paths or (),
        sets=set_ or (),
        workflow=workflow,
        stdin_filename=stdin_filename,
    )
    runs = split_projects(options)
    if len(runs) > 1:
        resolved = options.output_format.resolve()
        if resolved not in (OutputFormat.TEXT, OutputFormat.GITHUB) or options.output is not None:
            raise UsageError(
                f"the files named belong to {len(runs)} projects; --format {resolved.value} "
                "and --output report on one: run once per project, with --config"
            )
    codes = []
    for run in runs:
        if len(runs) > 1 and run.output_format.resolve() is OutputFormat.TEXT:
            assert run.config is not None
            write_text(
                f"{os.path.relpath(run.config, run.cwd)} (paths below are relative to it)\n", None
            )
        codes.append(emit_report(command.run(run), run))
    return max(codes)


@app.command()
def replay(
    logs: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="LOG...",
            help="Usage logs: OTel GenAI spans (OTLP JSON or JSON lines), OpenAI/Anthropic "
            "responses (JSON lines), LiteLLM spend logs, CSV or Parquet; .gz and .zst too.",
        ),
    ] = None,
    input_format: Annotated[
        str,
        typer.Option(
            "--input-format",
            metavar="FORMAT",
            help="auto (by content), otel, openai, anthropic, litellm, csv or parquet.",
        ),
    ] = "auto",
    workflow: Annotated[
        str | None, typer.Option("--workflow", "-w", metavar="WORKFLOW", help="Only this workflow.")
    ] = None,
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate",
            help="Write the observed values (output tokens, cache hit rates, turns, tool "
            "calls, escalation rates, traffic, success rate) into budgets.yaml.",
        ),
    ] = False,
    diff: Annotated[
        bool, typer.Option("--diff", help="With --calibrate: print the change; write nothing.")
    ] = False,
    since: Annotated[
        str | None,
        typer.Option(
            "--since", metavar="TIME", help="Only requests starting at or after (ISO 8601, UTC)."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until", metavar="TIME", help="Only requests starting before (a date: its end)."
        ),
    ] = None,
    compare_to: Annotated[
        str | None,
        typer.Option(
            "--compare-to",
            metavar="SINCE..UNTIL",
            help="Compare with this earlier window: flags sudden changes (PB119).",
        ),
    ] = None,
    emit_sql: Annotated[
        bool,
        typer.Option(
            "--emit-sql",
            help="Print the aggregation query for your warehouse (see --dialect) and exit.",
        ),
    ] = False,
    dialect: Annotated[
        str,
        typer.Option(
            "--dialect", metavar="DIALECT", help="--emit-sql: duckdb, spark, bigquery or snowflake."
        ),
    ] = "duckdb",
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", "-m", metavar="MODEL", help="--emit-sql: also price this model (repeatable)."
        ),
    ] = None,
    aggregates: Annotated[
        Path | None,
        typer.Option(
            "--aggregates",
            metavar="FILE",
            help="Judge the result of the --emit-sql query (CSV, JSON or Parquet) instead "
            "of reading logs.",
        ),
    ] = None,
    fmt: FormatOption = "auto",
    output: OutputOption = None,
    config: ConfigOption = None,
    fail_on: FailOnOption = None,
    select: SelectOption = None,
    ignore: IgnoreOption = None,
    exit_zero: ExitZeroOption = False,
    no_color: NoColorOption = False,
    color: ColorOption = ColorMode.AUTO,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    prices: PricesOption = None,
    samples: SamplesOption = 1000,
    seed: SeedOption = 1,
) -> int:
    """Measure production usage logs against budgets.yaml: breaches, drift, calibration.

    Judges what production did with the same rules and exit codes as check, shows each
    assumption next to what was observed and what the gap costs, and with --calibrate writes
    the observed values back into budgets.yaml (comments kept).
    """
    from promptbudget.commands import replay as command
    from promptbudget.compression import unified_diff
    from promptbudget.replay.readers import INPUT_FORMATS

    if input_format not in INPUT_FORMATS:
        raise UsageError(
            f"--input-format {input_format!r}: expected one of {', '.join(INPUT_FORMATS)}"
        )
    if diff and not calibrate:
        raise UsageError("--diff previews --calibrate; add --calibrate")
    options = make_options(
        config=config,
        fmt=fmt,
        output=output,
        fail_on=fail_on,
        select=select,
        ignore=ignore,
        exit_zero=exit_zero,
        no_color=no_color,
        color=color,
        quiet=quiet,
        verbose=verbose,
        prices=prices,
        workflow=workflow,
        samples=samples,
        seed=seed,
        paths=logs or (),
        models=model or (),
    )
    options = replace(
        options,
        input_format=input_format,
        aggregates=aggregates,
        calibrate=calibrate,
        diff=diff,
        since=since,
        until=until,
        compare_to=compare_to,
    )
    if emit_sql:
        write_text(command.emit_sql(options, dialect), output)
        return 0
    report = command.run(options)
    calibration = report.replay.calibration if report.replay is not None else None
    if calibration is not None:
        shown = os.path.relpath(calibration.path, Path.cwd())
        for drift, reason in calibration.skipped:
            stderr_line(f"promptbudget: not calibrated: {drift.override}: {reason}")
        if diff:
            write_text(unified_diff(shown, calibration.before, calibration.after), None)
            return 0
        stderr_line(f"{shown}: calibrated {len(calibration.applied)} assumptions")
    return emit_report(report, options)


@app.command()
def estimate(
    workflow: Annotated[
        str | None, typer.Option("--workflow", "-w", metavar="WORKFLOW", help="Only this workflow.")
    ] = None,
    why: Annotated[
        bool,
        typer.Option("--why", help="Break the cost down: workflow > step > model > component."),
    ] = False,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="PATH=VALUE",
            help="What-if: PATH=VALUE, e.g. support-reply.steps.answer.model=gpt-5.4-mini or "
            "traffic.requests_per_day=50000 (repeatable); shown next to the baseline.",
        ),
    ] = None,
    fmt: EstimateFormatOption = "text",
    output: OutputOption = None,
    config: ConfigOption = None,
    no_color: NoColorOption = False,
    color: ColorOption = ColorMode.AUTO,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    prices: PricesOption = None,
    no_cache: NoCacheOption = False,
    samples: SamplesOption = 1000,
    seed: SeedOption = 1,
) -> int:
    """Cost per call, per request (mean, p50, p95), per successful outcome and per month."""
    from promptbudget.commands import estimate as command

    options = make_options(
        no_cache=no_cache,
        config=config,
        fmt=fmt,
        output=output,
        no_color=no_color,
        color=color,
        quiet=quiet,
        verbose=verbose,
        prices=prices,
        workflow=workflow,
        why=why,
        sets=set_ or (),
        samples=samples,
        seed=seed,
    )
    return emit_report(command.run(options), options)


@app.command()
def diff(
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            metavar="REF",
            help="The git ref to compare with (a branch, tag or commit, e.g. origin/main or "
            "HEAD~1). The working tree is the head; the checkout is never touched. Without "
            "it: origin/$GITHUB_BASE_REF, else the merge-base with GitLab's "
            "$CI_MERGE_REQUEST_TARGET_BRANCH_NAME or with the remote's default branch.",
        ),
    ] = None,
    fail_on_increase: Annotated[
        str | None,
        typer.Option(
            "--fail-on-increase",
            metavar="PERCENT",
            help="Exit 1 when a workflow's cost per request, monthly spend or tokens, or a "
            "template's tokens, rise by more than this share of the base, e.g. 10%.",
        ),
    ] = None,
    fmt: FormatOption = "auto",
    output: OutputOption = None,
    config: ConfigOption = None,
    fail_on: FailOnOption = None,
    select: SelectOption = None,
    ignore: IgnoreOption = None,
    exit_zero: ExitZeroOption = False,
    no_color: NoColorOption = False,
    color: ColorOption = ColorMode.AUTO,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    prices: PricesOption = None,
    samples: SamplesOption = 1000,
    seed: SeedOption = 1,
) -> int:
    """Tokens and cost per workflow and template at a git ref and now: the PR comment.

    Exits 1 on findings that are new since the base (at or above --fail-on) and on rises
    above --fail-on-increase; findings the base already had do not fail a diff.
    """
    from promptbudget.commands import diff as command
    from promptbudget.diffing import parse_increase

    # A bad value fails before any work is done.
    threshold = parse_increase(fail_on_increase) if fail_on_increase is not None else None
    options = make_options(
        config=config,
        fmt=fmt,
        output=output,
        fail_on=fail_on,
        select=select,
        ignore=ignore,
        exit_zero=exit_zero,
        no_color=no_color,
        color=color,
        quiet=quiet,
        verbose=verbose,
        prices=prices,
        samples=samples,
        seed=seed,
    )
    options = replace(options, base_ref=base, fail_on_increase=threshold)
    report = command.run(options)
    found = report.diff.base_found if report.diff else None
    if report.diff is not None and found is not None and options.verbosity >= 0:
        stderr_line(
            f"promptbudget: diff base: {report.diff.base_ref} "
            f"({report.diff.base_commit[:7]}, {found})"
        )
    code = emit_report(report, options)
    if report.diff is not None and options.output is not None:
        from promptbudget.reporters.diff_format import summary_line

        stderr_line(summary_line(report, str(options.output)))
    return code
