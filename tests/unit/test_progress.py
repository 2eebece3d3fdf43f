"""Progress: core loops report through a sink; the terminal sink shows a Rich line on stderr
only past a delay, and only on a terminal outside CI."""

from __future__ import annotations

import io
import sys

import pytest
from rich.console import Console

from promptbudget.cli.output import TerminalProgress, shows_progress
from promptbudget.progress import set_sink, track


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def start(self, label: str, total: int) -> None:
        self.calls.append(("start", (label, total)))

    def advance(self) -> None:
        self.calls.append(("advance", None))

    def stop(self) -> None:
        self.calls.append(("stop", None))


def test_track_without_a_sink_is_the_plain_iteration() -> None:
    set_sink(None)
    assert list(track([1, 2, 3], "x")) == [1, 2, 3]


def test_track_reports_start_each_item_and_stop() -> None:
    recorder = Recorder()
    set_sink(recorder)
    try:
        assert list(track(["a", "b"], "counting")) == ["a", "b"]
    finally:
        set_sink(None)
    assert recorder.calls == [
        ("start", ("counting", 2)),
        ("advance", None),
        ("advance", None),
        ("stop", None),
    ]


def test_the_terminal_line_appears_only_after_the_delay() -> None:
    now = [0.0]
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80)
    progress = TerminalProgress(clock=lambda: now[0], console=console)
    progress.start("rendering and counting templates", 100)
    for _ in range(10):
        now[0] += 0.05
        progress.advance()
    assert out.getvalue() == ""  # 0.5 s: a short run shows nothing
    now[0] += 1.0
    progress.advance()
    progress.stop()
    assert "rendering and counting templates" in out.getvalue()


@pytest.mark.parametrize(
    ("is_tty", "environ", "expected"),
    [
        (True, {}, True),
        (False, {}, False),
        (True, {"CI": "true"}, False),
        (True, {"TERM": "dumb"}, False),
    ],
)
def test_progress_is_shown_on_a_terminal_outside_ci_only(
    monkeypatch: pytest.MonkeyPatch, is_tty: bool, environ: dict[str, str], expected: bool
) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: is_tty)
    assert shows_progress() is expected
