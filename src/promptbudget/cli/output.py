"""Where a report goes: stdout or --output, the GitHub job summary, colour and width, progress
on a terminal, and one-line diagnostics on stderr with control characters escaped."""

from __future__ import annotations

import enum
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from promptbudget.errors import UsageError
from promptbudget.options import Options, OutputFormat
from promptbudget.report import Report
from promptbudget.reporters.base import ReportSettings
from promptbudget.reporters.locations import in_workspace, relative_to_cwd
from promptbudget.runmemo import note_output, note_unrepeatable


def terminal_columns() -> int | None:
    """``COLUMNS`` when set to a width (a terminal's, or a test's), else None."""
    value = os.environ.get("COLUMNS", "")
    return int(value) if value.isdigit() and 20 <= int(value) <= 1000 else None


class ColorMode(str, enum.Enum):
    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


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


def emit_report(report: Report, options: Options) -> int:
    from promptbudget.reporters import get_reporter

    fmt = options.output_format.resolve()
    columns = terminal_columns()
    width = columns or (shutil.get_terminal_size((100, 24)).columns if options.color else 160)
    project = report.root or str(options.cwd)
    if fmt in (OutputFormat.GITHUB, OutputFormat.SARIF):
        # GitHub resolves annotation and code-scanning paths from the repository's root (the
        # workspace); elsewhere they stay relative to the project root (SARIF's %SRCROOT%).
        workspace = os.environ.get("GITHUB_WORKSPACE")
    else:  # read by a person (or an editor) where the command ran
        report, workspace = relative_to_cwd(report, options.cwd), None
    settings = ReportSettings(
        color=options.color,
        width=max(width, 60),
        workspace=workspace,
        root=project,
        verbosity=options.verbosity,
        # finding lines wrap at a terminal's width; piped, each stays one line for grep
        wrap=columns is not None or (options.output is None and sys.stdout.isatty()),
    )
    if workspace is not None:
        report = in_workspace(report, settings)
    text = get_reporter(fmt)(report, settings)
    if options.output is not None:
        from promptbudget.confine import output_problem

        root = Path(report.root) if report.root else options.cwd
        problem = output_problem(options.output, cwd=options.cwd, root=root)
        if problem is not None:
            raise UsageError(f"--output {options.output}: {problem}")
    write_text(text, options.output)
    append_step_summary(report, settings, fmt, options.output)
    return report.exit_code


def append_step_summary(
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
    if fmt is OutputFormat.MARKDOWN and output is not None and same_file(output, target):
        return  # the report itself went there
    from promptbudget.reporters import get_reporter

    note_unrepeatable()
    try:
        with target.open("a", encoding="utf-8") as handle:
            handle.write(get_reporter(OutputFormat.MARKDOWN)(report, settings) + "\n")
    except OSError as err:
        stderr_line(
            f"promptbudget: warning: cannot append to GITHUB_STEP_SUMMARY {summary}: "
            f"{err.strerror or err}"
        )


def same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def write_text(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        note_output("stdout", text)
        return
    note_unrepeatable()
    if output.is_dir():
        raise UsageError(f"--output {output} is a directory; give a file path")
    from promptbudget.fileio import FileWriteError, write_output

    try:
        write_output(output, text.encode("utf-8"), shown=str(output))
    except FileWriteError as err:
        raise UsageError(f"cannot write --output {err}") from err


def shows_progress() -> bool:
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


_MEMO_STORE: list[Any] = []


def memo_store() -> Any:
    """The cache the last run used (where its run memo goes), or None."""
    return _MEMO_STORE.pop() if _MEMO_STORE else None


def close_cache() -> None:
    """Write what this run added to the cache, and say why a cache was not used."""
    _MEMO_STORE.clear()
    if "promptbudget.cache" not in sys.modules:
        return  # nothing opened one
    from promptbudget.cache import active_store, flush_caches, take_warnings

    store = active_store()
    if store is not None:
        _MEMO_STORE.append(store)
    flush_caches()
    for warning in take_warnings():
        stderr_line(f"promptbudget: warning: {warning}")


def usage_message(err: Exception) -> str:
    """Click's usage error as one line, with where to look for the right usage."""
    format_message = getattr(err, "format_message", None)
    message = format_message() if callable(format_message) else str(err)
    message = " ".join(str(message).split()).replace(": Value error, ", ": ")  # typer's choices
    context = getattr(err, "ctx", None)
    command = getattr(context, "command_path", None) or "promptbudget"
    return f"{message} (see '{command} --help')"


def is_usage_error(err: Exception) -> bool:
    """Click's usage errors (bad option, bad value), whether typer vendors click or not."""
    module = type(err).__module__
    return module.startswith(("typer", "click")) and callable(getattr(err, "show", None))


def stderr_traceback() -> None:
    """The current exception's traceback; its lines are ours, its message may hold user
    strings, so control characters (but line feeds) are escaped and no line starts ``::``."""
    from promptbudget.reporters.escape import escape_control_keep_lines, guard_line_starts

    sys.stderr.write(guard_line_starts(escape_control_keep_lines(traceback.format_exc())))


def stderr_line(message: str) -> None:
    """One diagnostic line: control characters from user strings (a file name, a ref, an
    exception message) escaped, so none starts an Actions command or a terminal sequence."""
    from promptbudget.reporters.escape import escape_control, guard_line_starts

    line = guard_line_starts(escape_control(message)) + "\n"
    sys.stderr.write(line)
    sys.stderr.flush()
    note_output("stderr", line)
