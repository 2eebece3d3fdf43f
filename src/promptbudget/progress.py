"""Progress of long loops, for whoever shows it.

Core modules wrap their long loops in ``track``; nothing is shown unless the command line
installed a ``ProgressSink`` (cli.py does, with Rich, only when stderr is a terminal and not
in CI). Without one, ``track`` is the plain iteration.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")


class ProgressSink(Protocol):
    def start(self, label: str, total: int) -> None: ...

    def advance(self) -> None: ...

    def stop(self) -> None: ...


_SINK: ProgressSink | None = None


def set_sink(sink: ProgressSink | None) -> None:
    """Show progress through ``sink`` from now on (None: show nothing)."""
    global _SINK
    _SINK = sink


def track(items: Sequence[T], label: str) -> Iterator[T]:
    """Iterate over ``items``, telling the sink (if any) how far along it is."""
    return tally(items, len(items), label)


def tally(items: Iterable[T], total: int, label: str) -> Iterator[T]:
    """``track`` for ``total`` items that come one at a time (from worker processes)."""
    sink = _SINK
    if sink is None:
        yield from items
        return
    sink.start(label, total)
    try:
        for item in items:
            yield item
            sink.advance()
    finally:
        sink.stop()
