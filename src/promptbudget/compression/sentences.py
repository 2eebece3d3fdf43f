"""Where a sentence starts, for passes that remove its first word and restore the capital."""

from __future__ import annotations

import re

_LIST_MARKER = re.compile(r"(?:^|\n)[ \t]*(?:[-*+]|\d+[.)])[ \t]*$")


def starts_sentence(text: str, index: int) -> bool:
    """True if ``text[index:]`` begins a sentence: the start of the text or of a line (list
    markers allowed), or after ``.``, ``!``, ``?`` or ``:`` and spaces."""
    position = index
    while position > 0 and text[position - 1] in " \t":
        position -= 1
    if position == 0 or text[position - 1] == "\n":
        return True
    if text[position - 1] in ".!?:" and position < index:
        return True
    return _LIST_MARKER.search(text[max(0, index - 12) : index]) is not None
