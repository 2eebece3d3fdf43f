"""Linear scanners for delimited spans (comments, tags) in text a pull request controls.

``re.finditer(r"<!--(.*?)-->")`` over a file of unclosed openers is quadratic: each opener
scans to the end of the text looking for its closer (``<!--`` x 20,000 took 18.6 s, a 2 MB
file hours). Here every closer search remembers its answer: once the next closer after
position p is known, no later search re-reads the text before it, and once none is left, no
search runs at all. Line numbers come from one index of line starts, not a count per match.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterator


class NextFinder:
    """``text.find(needle, start)`` for non-decreasing starts, in linear total time."""

    def __init__(self, text: str, needle: str) -> None:
        self.text = text
        self.needle = needle
        self._found = -2  # the last answer (-1: none left); -2: not searched yet
        self._from = 0

    def find(self, start: int) -> int:
        if self._found == -1 and start >= self._from:
            return -1
        if self._found >= start and start >= self._from:
            return self._found
        self._from = start
        self._found = self.text.find(self.needle, start)
        return self._found


class RegexFinder:
    """``pattern.search(text, start)`` for non-decreasing starts, in linear total time."""

    def __init__(self, text: str, pattern: re.Pattern[str]) -> None:
        self.text = text
        self.pattern = pattern
        self._from = -1
        self._match: re.Match[str] | None = None
        self._searched = False

    def search(self, start: int) -> re.Match[str] | None:
        cached = self._searched and start >= self._from
        if cached and (self._match is None or self._match.start() >= start):
            return self._match
        self._searched = True
        self._from = start
        self._match = self.pattern.search(self.text, start)
        return self._match


def iter_delimited(
    text: str, opener: str, closer: str, start: int = 0
) -> Iterator[tuple[int, int, int]]:
    """``(start, body_start, end)`` of each non-overlapping ``opener ... closer`` span, leftmost
    first, as ``re.finditer(opener + "(.*?)" + closer, re.DOTALL)`` finds them; ``end`` is
    just past the closer. Linear in ``len(text)``."""
    closers = NextFinder(text, closer)
    position = start
    while True:
        found = text.find(opener, position)
        if found == -1:
            return
        body = found + len(opener)
        end = closers.find(body)
        if end == -1:
            return  # no closer after this opener, so none after any later one
        yield found, body, end
        position = end + len(closer)


class LineIndex:
    """Line numbers (1-based) of offsets in one text, each in O(log lines)."""

    def __init__(self, text: str) -> None:
        starts = [0]
        position = text.find("\n")
        while position != -1:
            starts.append(position + 1)
            position = text.find("\n", position + 1)
        self._starts = starts

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self._starts, offset)
