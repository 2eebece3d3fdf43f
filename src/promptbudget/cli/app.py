"""The command line: argv -> Options -> run() -> report -> exit code. The only Typer importer.

Exit codes: 0 ran and nothing reached ``--fail-on``; 1 ran and something did; 2 could not
run (bad arguments, invalid manifest, internal error). stdout carries only the report.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

import typer

from promptbudget import __version__
from promptbudget.cli.output import (
    ColorMode,
    TerminalProgress,
    close_cache,
    is_usage_error,
    memo_store,
    shows_progress,
    stderr_line,
    stderr_traceback,
    usage_message,
    use_color,
)
from promptbudget.errors import ManifestErrors, PromptBudgetError, UsageError
from promptbudget.findings import Severity
from promptbudget.options import Options, OutputFormat
from promptbudget.pathnames import forget_real
from promptbudget.progress import set_sink
from promptbudget.runmemo import keep, recording

app = typer.Typer(
    name="promptbudget",
    help="size-limit for LLM prompts: count tokens offline, estimate what workflows cost, "
    "and fail CI when a change breaks a budget in budgets.yaml.",
    add_completion=True,  # --install-completion / --show-completion SHELL
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# Each command's --format lists only what it writes: count, check, replay and diff write
# every format; estimate text, json or markdown; compress, models and rules text or json. Help,
# completion and validation all come from the one Literal, so they cannot disagree.
_AUTO_HELP = "auto (github inside GitHub Actions, text elsewhere; the default)"
FormatOption = Annotated[
    Literal["auto", "text", "json", "github", "sarif", "junit", "markdown"],
    typer.Option(
        "--format",
        "-f",
        case_sensitive=False,
        help="Report format: text, json, github (annotations), sarif (code scanning), junit, "
        f"markdown (PR comment, job summary), or {_AUTO_HELP}.",
    ),
]
EstimateFormatOption = Annotated[
    Literal["text", "json", "markdown"],
    typer.Option(
        "--format",
        "-f",
        case_sensitive=False,
        help="Report format: text, json or markdown (PR comment, job summary).",
    ),
]
TextJsonFormatOption = Annotated[
    Literal["text", "json"],
    typer.Option("--format", "-f", case_sensitive=False, help="Report format: text or json."),
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
StdinFilenameOption = Annotated[
    Path | None,
    typer.Option(
        "--stdin-filename",
        metavar="PATH",
        help="The path the template read from stdin (-) stands for: its format, and the "
        "project's rules for that path (default: <stdin>).",
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


def make_options(
    *,
    config: Path | None,
    fmt: OutputFormat | str,
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
    stdin_filename: Path | None = None,
) -> Options:
    if quiet and verbose:
        raise UsageError("--quiet and --verbose cannot be used together")
    stdin_data = read_stdin_template(paths, stdin_filename)
    return Options(
        cwd=Path.cwd(),
        config=config,
        paths=tuple(paths),
        models=tuple(models),
        fail_on=fail_on or Severity.ERROR,
        fail_on_given=fail_on is not None,
        select=rule_names(select),
        ignore=rule_names(ignore),
        exit_zero=exit_zero,
        output_format=OutputFormat(fmt),
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
        today=run_date(),
        use_cache=not no_cache,
        stdin_data=stdin_data,
        stdin_filename=stdin_filename,
    )


def read_stdin_template(paths: Sequence[Path], stdin_filename: Path | None) -> bytes | None:
    """``-`` among the paths: the template piped in, read as far as the size limit allows."""
    from promptbudget.templates.source import STDIN_ARGUMENT, read_prompt_stream

    if STDIN_ARGUMENT not in paths:
        if stdin_filename is not None:
            raise UsageError("--stdin-filename names the template read from stdin; pass - too")
        return None
    return read_prompt_stream(sys.stdin.buffer)


def run_date() -> date:
    """The run's date: ``PROMPTBUDGET_TODAY`` (YYYY-MM-DD, for reproducible runs), else the
    clock. Only deprecation warnings (PB116) depend on it."""
    value = os.environ.get("PROMPTBUDGET_TODAY", "").strip()
    if not value:
        return date.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"PROMPTBUDGET_TODAY={value!r} is not a date; use YYYY-MM-DD") from None


def rule_names(values: Sequence[str] | None) -> tuple[str, ...]:
    """``--select PB1,PB203 --select compressible`` -> (PB1, PB203, compressible)."""
    return tuple(
        part.strip() for value in values or () for part in value.split(",") if part.strip()
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The command line (the console script, ``launcher.main``, tries run memos first); tests
    call it directly: returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    forget_real()  # a new run: every path is resolved again (tests run many in one process)
    if not args:  # as ruff does: the help on stdout, exit 2 (nothing was asked)
        app(args=["--help"], prog_name="promptbudget", standalone_mode=False)
        return 2
    with recording(args) as recorder:
        code = _run(args)
    if recorder is not None:
        keep(args, recorder, code, memo_store())
    return code


def _run(args: list[str]) -> int:
    try:
        try:
            if shows_progress():
                set_sink(TerminalProgress())
            result = app(args=args, prog_name="promptbudget", standalone_mode=False)
        finally:
            set_sink(None)
            close_cache()
    except PromptBudgetError as err:
        for problem in err.errors if isinstance(err, ManifestErrors) else (err,):
            stderr_line(f"promptbudget: error: {problem}")
        return 2
    except typer.Exit as err:
        return int(err.exit_code)
    except typer.Abort:
        stderr_line("promptbudget: aborted")
        return 2
    except KeyboardInterrupt:
        stderr_line("promptbudget: interrupted")
        return 130
    except Exception as err:
        if not is_usage_error(err):
            stderr_traceback()
            stderr_line(
                "promptbudget: internal error (this is a bug; please report it with the "
                "traceback above and the command you ran)"
            )
            return 2
        stderr_line(f"promptbudget: error: {usage_message(err)}")
        return 2
    return result if isinstance(result, int) else 0
