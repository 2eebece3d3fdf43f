"""The command line: argv -> Options -> run() -> report -> exit code. The only Typer importer.

Exit codes: 0 ran and nothing reached ``--fail-on``; 1 ran and something did; 2 could not
run (bad arguments, invalid manifest, internal error). stdout carries only the report.
"""

from __future__ import annotations

import enum
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from promptbudget import __version__
from promptbudget.errors import PromptBudgetError, UsageError
from promptbudget.findings import Severity
from promptbudget.options import Options, OutputFormat
from promptbudget.progress import set_sink
from promptbudget.report import Report
from promptbudget.reporters.base import ReportSettings

app = typer.Typer(
    name="promptbudget",
    help="size-limit for LLM prompts: count tokens offline, estimate what workflows cost, "
    "and fail CI when a change breaks a budget in budgets.yaml.",
    add_completion=True,  # --install-completion / --show-completion SHELL
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

FormatOption = Annotated[
    OutputFormat,
    typer.Option(
        "--format",
        "-f",
        case_sensitive=False,
        help="Report format: text, json, github (annotations), sarif (code scanning), junit, "
        "markdown (PR comment, job summary), or auto (github inside GitHub Actions, text "
        "elsewhere).",
    ),
]
OutputOption = Annotated[
    Path | None,
    typer.Option(
        "--output", "-o", metavar="FILE", help="Write the report to FILE instead of stdout."
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        metavar="FILE",
        help="Manifest to use (default: budgets.yaml here or in a parent).",
    ),
]
FailOnOption = Annotated[
    Severity | None,
    typer.Option(
        "--fail-on",
        case_sensitive=False,
        help="Exit 1 when a finding is at or above this severity: info, warning or error "
        "(default: fail_on in the manifest, else error).",
    ),
]
SelectOption = Annotated[
    list[str] | None,
    typer.Option(
        "--select",
        metavar="RULE",
        help="Only these rules report: a code (PB101), a prefix (PB1) or a slug; repeat or "
        "separate with commas. Replaces select in the manifest.",
    ),
]
IgnoreOption = Annotated[
    list[str] | None,
    typer.Option(
        "--ignore",
        metavar="RULE",
        help="These rules never report (code, prefix or slug; repeat or use commas). Adds to "
        "ignore in the manifest.",
    ),
]
ExitZeroOption = Annotated[
    bool, typer.Option("--exit-zero", help="Exit 0 even when findings reach --fail-on.")
]
NoColorOption = Annotated[
    bool, typer.Option("--no-color", help="No colours (also: NO_COLOR in the environment).")
]


class ColorMode(str, enum.Enum):
    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


ColorOption = Annotated[
    ColorMode,
    typer.Option(
        "--color",
        case_sensitive=False,
        help="auto (on a terminal, unless NO_COLOR is set; FORCE_COLOR forces it), always "
        "or never.",
    ),
]
QuietOption = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="Print only the findings that fail the run, and the summary line."
    ),
]
VerboseOption = Annotated[
    bool,
    typer.Option(
        "--verbose", "-v", help="Every finding on its own line (info findings are grouped)."
    ),
]
SamplesOption = Annotated[
    int,
    typer.Option(
        "--samples",
        metavar="N",
        min=1,
        max=1_000_000,
        help="Monte Carlo samples for declared {p50, p95} distributions.",
    ),
]
SeedOption = Annotated[
    int,
    typer.Option(
        "--seed", metavar="N", help="Monte Carlo seed: the same seed gives the same numbers."
    ),
]
NoCacheOption = Annotated[
    bool,
    typer.Option(
        "--no-cache",
        help="Neither read nor write .promptbudget_cache/ (the content-hash cache; "
        "PROMPTBUDGET_CACHE_DIR moves it).",
    ),
]
PricesOption = Annotated[
    Path | None,
    typer.Option(
        "--prices",
        metavar="FILE",
        help="A LiteLLM-format model_prices_and_context_window.json laid over the bundled "
        "catalog (refreshed prices, offline).",
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"promptbudget {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Token, turn, tool-call and spend budgets for LLM prompts."""


def _options(
    *,
    config: Path | None,
    fmt: OutputFormat,
    output: Path | None,
    fail_on: Severity | None = None,
    select: Sequence[str] | None = None,
    ignore: Sequence[str] | None = None,
    exit_zero: bool = False,
    no_color: bool = False,
    color: ColorMode = ColorMode.AUTO,
    quiet: bool = False,
    verbose: bool = False,
    paths: Sequence[Path] = (),
    models: Sequence[str] = (),
    provider: str | None = None,
    prices: Path | None = None,
    workflow: str | None = None,
    why: bool = False,
    sets: Sequence[str] = (),
    samples: int = 1000,
    seed: int = 1,
    no_cache: bool = False,
) -> Options:
    if quiet and verbose:
        raise UsageError("--quiet and --verbose cannot be used together")
    return Options(
        cwd=Path.cwd(),
        config=config,
        paths=tuple(paths),
        models=tuple(models),
        fail_on=fail_on or Severity.ERROR,
        fail_on_given=fail_on is not None,
        select=_rule_names(select),
        ignore=_rule_names(ignore),
        exit_zero=exit_zero,
        output_format=fmt,
        output=output,
        color=use_color(ColorMode.NEVER if no_color else color, output, dict(os.environ)),
        verbosity=-1 if quiet else (1 if verbose else 0),
        provider=provider,
        prices=prices,
        workflow=workflow,
        why=why,
        sets=tuple(sets),
        samples=samples,
        seed=seed,
        today=_today(),
        use_cache=not no_cache,
    )


def _today() -> date:
    """The run's date: ``PROMPTBUDGET_TODAY`` (YYYY-MM-DD, for reproducible runs), else the
    clock. Only deprecation warnings (PB116) depend on it."""
    value = os.environ.get("PROMPTBUDGET_TODAY", "").strip()
    if not value:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"PROMPTBUDGET_TODAY={value!r} is not a date; use YYYY-MM-DD") from None


def _rule_names(values: Sequence[str] | None) -> tuple[str, ...]:
    """``--select PB1,PB203 --select compressible`` -> (PB1, PB203, compressible)."""
    return tuple(
        part.strip() for value in values or () for part in value.split(",") if part.strip()
    )


def _columns() -> int | None:
    """``COLUMNS`` when set to a width (a terminal's, or a test's), else None."""
    value = os.environ.get("COLUMNS", "")
    return int(value) if value.isdigit() and 20 <= int(value) <= 1000 else None


def use_color(mode: ColorMode, output: Path | None, environ: dict[str, str]) -> bool:
    """``--color always|never`` (and ``--no-color``) decide; ``auto`` is off when ``NO_COLOR``
    is set (no-color.org), on when ``FORCE_COLOR`` is set to anything but ``0`` or ``false``
    (force-color.org), else on for a terminal when the report goes to stdout."""
    if mode is ColorMode.ALWAYS:
        return True
    if mode is ColorMode.NEVER:
        return False
    if environ.get("NO_COLOR"):
        return False
    force = environ.get("FORCE_COLOR")
    if force is not None and force.lower() not in {"0", "false"}:
        return True
    return output is None and sys.stdout.isatty()


def _emit(report: Report, options: Options) -> int:
    from promptbudget.reporters import get_reporter

    fmt = options.output_format.resolve()
    width = _columns() or (shutil.get_terminal_size((100, 24)).columns if options.color else 160)
    settings = ReportSettings(
        color=options.color,
        width=max(width, 60),
        workspace=os.environ.get("GITHUB_WORKSPACE") or str(options.cwd),
        root=report.root or str(options.cwd),
        verbosity=options.verbosity,
    )
    text = get_reporter(fmt)(report, settings)
    if options.output is not None:
        from promptbudget.confine import output_problem

        root = Path(report.root) if report.root else options.cwd
        problem = output_problem(options.output, cwd=options.cwd, root=root)
        if problem is not None:
            raise UsageError(f"--output {options.output}: {problem}")
    _write(text, options.output)
    _step_summary(report, settings, fmt, options.output)
    return report.exit_code


def _step_summary(
    report: Report, settings: ReportSettings, fmt: OutputFormat, output: Path | None
) -> None:
    """Inside GitHub Actions, ``check`` and ``diff`` also append their markdown report to the
    job summary (``$GITHUB_STEP_SUMMARY``). A summary that cannot be written is a warning."""
    if os.environ.get("GITHUB_ACTIONS") != "true" or report.command not in {"check", "diff"}:
        return
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if not summary:
        return
    target = Path(summary)
    if fmt is OutputFormat.MARKDOWN and output is not None and _same_file(output, target):
        return  # the report itself went there
    from promptbudget.reporters import get_reporter

    try:
        with target.open("a", encoding="utf-8") as handle:
            handle.write(get_reporter(OutputFormat.MARKDOWN)(report, settings) + "\n")
    except OSError as err:
        _stderr(
            f"promptbudget: warning: cannot append to GITHUB_STEP_SUMMARY {summary}: "
            f"{err.strerror or err}"
        )


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _write(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    if output.is_dir():
        raise UsageError(f"--output {output} is a directory; give a file path")
    from promptbudget.fileio import FileWriteError, write_output

    try:
        write_output(output, text.encode("utf-8"), shown=str(output))
    except FileWriteError as err:
        raise UsageError(f"cannot write --output {err}") from err


def _reject_format(
    fmt: OutputFormat, command: str, supported: str, *rejected: OutputFormat
) -> None:
    """A format this command cannot write is a one-line usage error."""
    if fmt in rejected:
        raise UsageError(f"{command} cannot write --format {fmt.value}; use --format {supported}")


@app.command()
def count(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="PATH",
            help="Template files or directories (default: the manifest's prompts/).",
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", "-m", metavar="MODEL", help="Count for this model (repeat for several)."
        ),
    ] = None,
    fmt: FormatOption = OutputFormat.AUTO,
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
) -> int:
    """Tokens per template (and per message), per model."""
    from promptbudget.commands import count as command

    options = _options(
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
    )
    return _emit(command.run(options), options)


@app.command()
def check(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="PATH",
            help="Report only on these files (and the workflows that use them), as pre-commit "
            "passes them; the manifest itself means everything. Default: the whole project.",
        ),
    ] = None,
    fmt: FormatOption = OutputFormat.AUTO,
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
) -> int:
    """Check every workflow and template against budgets.yaml; exit 1 on a broken budget."""
    from promptbudget.commands import check as command
    from promptbudget.project import split_projects

    options = _options(
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
    )
    runs = split_projects(options)
    if len(runs) > 1:
        fmt = options.output_format.resolve()
        if fmt not in (OutputFormat.TEXT, OutputFormat.GITHUB) or options.output is not None:
            raise UsageError(
                f"the files named belong to {len(runs)} projects; --format {fmt.value} "
                "and --output report on one: run once per project, with --config"
            )
    codes = []
    for run in runs:
        if len(runs) > 1 and run.output_format.resolve() is OutputFormat.TEXT:
            assert run.config is not None
            _write(
                f"{os.path.relpath(run.config, run.cwd)} (paths below are relative to it)\n", None
            )
        codes.append(_emit(command.run(run), run))
    return max(codes)


@app.command()
def replay(
    logs: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Usage logs: OTel GenAI spans (OTLP JSON or JSON lines), OpenAI/Anthropic "
            "responses (JSON lines), LiteLLM spend logs, CSV or Parquet; .gz and .zst too."
        ),
    ] = None,
    input_format: Annotated[
        str,
        typer.Option(
            "--input-format",
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
    emit_sql: Annotated[
        bool,
        typer.Option(
            "--emit-sql",
            help="Print the aggregation query for your warehouse (see --dialect) and exit.",
        ),
    ] = False,
    dialect: Annotated[
        str, typer.Option("--dialect", help="--emit-sql: duckdb, spark, bigquery or snowflake.")
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
            help="Judge the result of the --emit-sql query (CSV, JSON or Parquet) instead "
            "of reading logs.",
        ),
    ] = None,
    fmt: FormatOption = OutputFormat.AUTO,
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
    options = _options(
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
    )
    if emit_sql:
        _write(command.emit_sql(options, dialect), output)
        return 0
    report = command.run(options)
    calibration = report.replay.calibration if report.replay is not None else None
    if calibration is not None:
        shown = os.path.relpath(calibration.path, Path.cwd())
        for drift, reason in calibration.skipped:
            _stderr(f"promptbudget: not calibrated: {drift.override}: {reason}")
        if diff:
            _write(unified_diff(shown, calibration.before, calibration.after), None)
            return 0
        _stderr(f"{shown}: calibrated {len(calibration.applied)} assumptions")
    return _emit(report, options)


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
            help="What-if: PATH=VALUE, e.g. support-reply.steps.answer.model=gpt-5.4-mini or "
            "traffic.requests_per_day=50000 (repeatable); shown next to the baseline.",
        ),
    ] = None,
    fmt: FormatOption = OutputFormat.AUTO,
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

    options = _options(
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
    _reject_format(
        fmt, "estimate", "text, json or markdown", OutputFormat.SARIF, OutputFormat.JUNIT
    )
    if options.output_format.resolve() is OutputFormat.GITHUB:
        options = replace(options, output_format=OutputFormat.TEXT)
    return _emit(command.run(options), options)


@app.command()
def diff(
    base: Annotated[
        str,
        typer.Option(
            "--base",
            metavar="REF",
            help="The git ref to compare with (a branch, tag or commit, e.g. origin/main or "
            "HEAD~1). The working tree is the head; the checkout is never touched.",
        ),
    ],
    fail_on_increase: Annotated[
        str | None,
        typer.Option(
            "--fail-on-increase",
            help="Exit 1 when a workflow's cost per request, monthly spend or tokens, or a "
            "template's tokens, rise by more than this share of the base, e.g. 10%.",
        ),
    ] = None,
    fmt: FormatOption = OutputFormat.AUTO,
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
    options = _options(
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
    return _emit(command.run(options), options)


@app.command()
def lock(
    check_only: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Write nothing; exit 1 if promptbudget.lock is missing or out of date.",
        ),
    ] = False,
    config: ConfigOption = None,
    prices: PricesOption = None,
) -> int:
    """Write promptbudget.lock: each template's version, content hash and tokens per model.

    'check' then reports PB206 when a versioned template changes but its version does not.
    """
    from promptbudget.commands import lock as command

    options = _options(config=config, fmt=OutputFormat.TEXT, output=None, prices=prices)
    result = command.run(replace(options, check_only=check_only))
    path, changes = result.path, result.changes
    shown = os.path.relpath(path, Path.cwd()) if path.is_relative_to(Path.cwd()) else str(path)
    if check_only:
        if not changes:
            _write(f"{shown} is up to date\n", None)
            return 0
        _write("".join(f"{line}\n" for line in changes), None)
        _stderr(f"{shown} is out of date; run 'promptbudget lock'")
        return 1
    if changes:
        _stderr(f"wrote {shown}: " + "; ".join(changes))
    else:
        _stderr(f"{shown} is up to date")
    return 0


@app.command()
def baseline(
    headroom: Annotated[
        str,
        typer.Option(
            "--headroom",
            help="Room above today's values, e.g. 25% (size-limit's advice); values are then "
            "rounded up to two significant digits.",
        ),
    ] = "25%",
    workflow: Annotated[
        str | None, typer.Option("--workflow", "-w", metavar="WORKFLOW", help="Only this workflow.")
    ] = None,
    diff: Annotated[
        bool, typer.Option("--diff", help="Print the change to budgets.yaml; write nothing.")
    ] = False,
    config: ConfigOption = None,
    prices: PricesOption = None,
    samples: SamplesOption = 1000,
    seed: SeedOption = 1,
) -> int:
    """Write limits at today's values plus headroom into budgets.yaml: enforce from day one.

    Adds the limits a workflow lacks and raises the ones it breaks today; a limit that holds
    is never lowered. Comments and formatting in budgets.yaml are kept.
    """
    from promptbudget.baseline import describe, parse_headroom
    from promptbudget.commands import baseline as command
    from promptbudget.compression import unified_diff

    share = parse_headroom(headroom)
    options = _options(
        config=config,
        fmt=OutputFormat.TEXT,
        output=None,
        prices=prices,
        workflow=workflow,
        samples=samples,
        seed=seed,
    )
    result = command.run(replace(options, headroom=share, diff=diff))
    shown = os.path.relpath(result.path, Path.cwd())
    for skipped in result.skipped:
        _stderr(f"promptbudget: skipped workflow {skipped.workflow!r}: {skipped.reason}")
    if diff:
        _write(unified_diff(shown, result.before, result.after), None)
    else:
        _write("".join(describe(change) + "\n" for change in result.changes), None)
    if not result.changes:
        _stderr(f"{shown}: every limit already holds; nothing to change")
    elif not diff:
        added = sum(1 for c in result.changes if c.before is None)
        _stderr(
            f"wrote {shown}: {added} limit{'s' if added != 1 else ''} added, "
            f"{len(result.changes) - added} raised, at today's values + {headroom.strip()}"
        )
    return 0


@app.command()
def compress(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="PATH",
            help="Template files or directories (default: the manifest's prompts/).",
        ),
    ] = None,
    pass_: Annotated[
        list[str] | None,
        typer.Option(
            "--pass",
            "-p",
            help="Run this pass (repeatable). Default: the safe passes json, markdown, "
            "duplicates, whitespace. Lossy passes run only when named: examples, filler, "
            "indentation, stopwords, paragraphs.",
        ),
    ] = None,
    keep_examples: Annotated[
        int | None,
        typer.Option("--keep-examples", min=0, help="Few-shot examples the examples pass keeps."),
    ] = None,
    diff: Annotated[
        bool, typer.Option("--diff", help="Print a unified diff of the changes.")
    ] = False,
    write: Annotated[
        bool,
        typer.Option("--write", help="Rewrite the files that change (atomically)."),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="With --write: also rewrite read-only files (they stay read-only)."
        ),
    ] = False,
    fmt: FormatOption = OutputFormat.AUTO,
    output: OutputOption = None,
    config: ConfigOption = None,
    no_color: NoColorOption = False,
    color: ColorOption = ColorMode.AUTO,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    no_cache: NoCacheOption = False,
) -> int:
    """Find the waste in templates, show it, and remove it: tokens and dollars saved."""
    from promptbudget.commands import compress as command

    if diff and write:
        raise UsageError("use --diff to look or --write to change, not both")
    if force and not write:
        raise UsageError("--force only applies to --write")
    options = _options(
        config=config,
        fmt=fmt,
        output=output,
        no_color=no_color,
        color=color,
        quiet=quiet,
        verbose=verbose,
        paths=paths or (),
        no_cache=no_cache,
    )
    options = replace(
        options,
        passes=tuple(pass_ or ()),
        keep_examples=keep_examples,
        diff=diff,
        write=write,
        force=force,
    )
    _reject_format(
        fmt,
        "compress",
        "text or json",
        OutputFormat.SARIF,
        OutputFormat.JUNIT,
        OutputFormat.MARKDOWN,
    )
    if options.output_format.resolve() is OutputFormat.GITHUB:
        options = replace(options, output_format=OutputFormat.TEXT)
    report = command.run(options)
    _emit(report, options)
    failures = [c.error for c in report.compressions if c.error]
    for failure in failures:
        _stderr(f"promptbudget: error: {failure}")
    return 2 if failures else 0


@app.command()
def models(
    query: Annotated[
        list[str] | None,
        typer.Argument(help="Search words: every word must be part of a name or alias."),
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option("--provider", help="Only this vendor (openai) or host (bedrock, azure)."),
    ] = None,
    family: Annotated[
        str | None,
        typer.Option("--family", help="Only this tokenizer family (o200k_base, claude, ...)."),
    ] = None,
    diff: Annotated[
        Path | None,
        typer.Option(
            "--diff",
            help="Compare the bundled catalog with a LiteLLM-format price file: what changed.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    fmt: FormatOption = OutputFormat.AUTO,
    output: OutputOption = None,
    config: ConfigOption = None,
    no_color: NoColorOption = False,
    color: ColorOption = ColorMode.AUTO,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    prices: PricesOption = None,
) -> int:
    """The price catalog (USD per million tokens), with the manifest's models: merged in;
    search it by name, filter by provider or tokenizer family. Deprecated models are marked."""
    from promptbudget.commands import models as command

    if as_json:
        fmt = OutputFormat.JSON
    if fmt is OutputFormat.GITHUB:
        raise UsageError("models has no findings to annotate; use --format text or json")
    _reject_format(
        fmt, "models", "text or json", OutputFormat.SARIF, OutputFormat.JUNIT, OutputFormat.MARKDOWN
    )
    options = _options(
        config=config,
        fmt=fmt,
        output=output,
        no_color=no_color,
        color=color,
        quiet=quiet,
        verbose=verbose,
        provider=provider,
        prices=prices,
    )
    if options.output_format.resolve() is OutputFormat.GITHUB:  # auto inside GitHub Actions
        options = replace(options, output_format=OutputFormat.TEXT)
    report = command.run(replace(options, price_diff=diff, query=tuple(query or ()), family=family))
    _emit(report, options)
    return 0


@app.command()
def rules(
    fmt: FormatOption = OutputFormat.AUTO,
    output: OutputOption = None,
) -> int:
    """List every rule: code, slug, default severity, what it checks."""
    import json

    from promptbudget.rules import RULES

    if fmt.resolve() is OutputFormat.JSON:
        payload = [
            {
                "code": r.code,
                "slug": r.slug,
                "default_severity": r.default_severity.value,
                "summary": r.summary,
            }
            for r in RULES.values()
        ]
        _write(json.dumps({"schema_version": 1, "rules": payload}, indent=2) + "\n", output)
        return 0
    lines = [
        f"{r.code}  {r.slug:<30} {r.default_severity.value:<8} {r.summary}" for r in RULES.values()
    ]
    _write("\n".join(lines) + "\n", output)
    return 0


@app.command()
def explain(
    rule: Annotated[str, typer.Argument(help="A rule code (PB101) or slug (input-over-budget).")],
) -> int:
    """Explain a rule: why it matters, failing and passing examples."""
    from promptbudget.rules import RULES, find_rule

    found = find_rule(rule)
    if found is None:
        raise UsageError(
            f"unknown rule {rule!r}; known rules: {', '.join(RULES)} (see 'promptbudget rules')"
        )
    header = f"{found.code} {found.slug} (default severity: {found.default_severity.value})"
    _write(f"{header}\n{'=' * len(header)}\n\n{found.doc}\n", None)
    return 0


@app.command()
def schema(output: OutputOption = None) -> int:
    """Print the JSON Schema of budgets.yaml (for editors and validators)."""
    import json

    from promptbudget.manifest.loader import load_schema

    _write(json.dumps(load_schema(), indent=2) + "\n", output)
    return 0


@app.command()
def init(
    directory: Annotated[
        Path, typer.Argument(help="Where to create budgets.yaml and prompts/ (default: here).")
    ] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> int:
    """Create a budgets.yaml and an example prompt that pass 'promptbudget check'."""
    from promptbudget.scaffold import write_scaffold

    for written in write_scaffold(directory, force=force):
        sys.stderr.write(f"created {written}\n")
    sys.stderr.write("next: edit budgets.yaml, then run 'promptbudget check'\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point for the console script and for tests: returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:  # as ruff does: the help on stdout, exit 2 (nothing was asked)
        app(args=["--help"], prog_name="promptbudget", standalone_mode=False)
        return 2
    try:
        try:
            if _shows_progress():
                set_sink(TerminalProgress())
            result = app(args=args, prog_name="promptbudget", standalone_mode=False)
        finally:
            set_sink(None)
            _close_cache()
    except PromptBudgetError as err:
        _stderr(f"promptbudget: error: {err}")
        return 2
    except typer.Exit as err:
        return int(err.exit_code)
    except typer.Abort:
        _stderr("promptbudget: aborted")
        return 2
    except KeyboardInterrupt:
        _stderr("promptbudget: interrupted")
        return 130
    except Exception as err:
        if not _is_usage_error(err):
            _stderr_traceback()
            _stderr(
                "promptbudget: internal error (this is a bug; please report it with the "
                "traceback above and the command you ran)"
            )
            return 2
        _stderr(f"promptbudget: error: {_usage_message(err)}")
        return 2
    return result if isinstance(result, int) else 0


def _shows_progress() -> bool:
    """Progress goes to stderr on a terminal only: never when piped, in CI or on a dumb
    terminal, so logs and stdout stay clean."""
    return sys.stderr.isatty() and not os.environ.get("CI") and os.environ.get("TERM", "") != "dumb"


class TerminalProgress:
    """A Rich progress line on stderr, shown only once a loop has run for ``delay_s``
    (short runs show nothing) and removed when it ends."""

    def __init__(
        self,
        *,
        delay_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        console: Any = None,
    ) -> None:
        self.delay_s = delay_s
        self._clock = clock
        self._console = console
        self._bar: Any = None
        self._task: Any = None
        self._label = ""
        self._total = self._done = 0
        self._began = 0.0

    def start(self, label: str, total: int) -> None:
        self._label, self._total, self._done = label, total, 0
        self._began = self._clock()

    def advance(self) -> None:
        self._done += 1
        if self._bar is None:
            if self._clock() - self._began < self.delay_s:
                return
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            console = self._console or Console(stderr=True)
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                console=console,
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task(self._label, total=self._total)
        self._bar.update(self._task, completed=self._done)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def _close_cache() -> None:
    """Write what this run added to the cache, and say why a cache was not used."""
    if "promptbudget.cache" not in sys.modules:
        return  # nothing opened one
    from promptbudget.cache import flush_caches, take_warnings

    flush_caches()
    for warning in take_warnings():
        _stderr(f"promptbudget: warning: {warning}")


def _usage_message(err: Exception) -> str:
    """Click's usage error as one line, with where to look for the right usage."""
    format_message = getattr(err, "format_message", None)
    message = format_message() if callable(format_message) else str(err)
    message = " ".join(str(message).split())
    context = getattr(err, "ctx", None)
    command = getattr(context, "command_path", None) or "promptbudget"
    return f"{message} (see '{command} --help')"


def _is_usage_error(err: Exception) -> bool:
    """Click's usage errors (bad option, bad value), whether typer vendors click or not."""
    module = type(err).__module__
    return module.startswith(("typer", "click")) and callable(getattr(err, "show", None))


def _stderr_traceback() -> None:
    """The current exception's traceback; its lines are ours, its message may hold user
    strings, so control characters (but line feeds) are escaped and no line starts ``::``."""
    from promptbudget.reporters.escape import escape_control_keep_lines, guard_line_starts

    sys.stderr.write(guard_line_starts(escape_control_keep_lines(traceback.format_exc())))


def _stderr(message: str) -> None:
    """One diagnostic line: control characters from user strings (a file name, a ref, an
    exception message) escaped, so none starts an Actions command or a terminal sequence."""
    from promptbudget.reporters.escape import escape_control, guard_line_starts

    sys.stderr.write(guard_line_starts(escape_control(message)) + "\n")
    sys.stderr.flush()
