"""``whitespace`` (safe): trailing spaces, runs of spaces inside lines, runs of blank lines.

Indentation is kept (it can carry structure), and so is one blank line between blocks.
"""

from __future__ import annotations

import re

# Tried only where a run of blanks starts (the lookbehind), so that a long run not at a line's
# end is scanned once, not once per blank (which was quadratic).
_TRAILING = re.compile(r"(?<![ \t])[ \t]+$", re.MULTILINE)
_INNER_SPACES = re.compile(r"(?<=\S)[ \t]{2,}(?=\S)")
_BLANK_RUNS = re.compile(r"\n{3,}")


def squeeze_whitespace(text: str) -> str:
    ends_with_newline = text.endswith("\n")
    text = _TRAILING.sub("", text)
    text = _INNER_SPACES.sub(" ", text)
    text = _BLANK_RUNS.sub("\n\n", text)
    text = text.strip("\n")
    return text + "\n" if ends_with_newline and text else text
