"""``markdown`` (safe): decoration that carries no instruction.

* horizontal rules (``***``, ``___``, ``====``, ``----`` and longer; a bare ``---`` is kept,
  since prompt files use it to separate prompts);
* closing hashes of headings (``## Title ##``);
* bold or italic markers around a whole heading or a whole line (``**Example 1**``,
  ``## **Steps**``); emphasis inside a sentence is kept, it may be an instruction.
"""

from __future__ import annotations

import re

_RULE = re.compile(
    r"^[ \t]*(?:(?:\*[ \t]*){3,}|(?:_[ \t]*){3,}|={4,}|-{4,}|~{4,})[ \t]*\n?", re.MULTILINE
)
# Words and the blanks between them alternate, so no two parts compete for the same blanks
# (``[^\n#]*?[ \t]+`` did, quadratic in a long run of them).
_CLOSING_HASHES = re.compile(r"^([ \t]*#{1,6}(?:[ \t]+[^\n# \t]+)+)[ \t]+#+[ \t]*$", re.MULTILINE)
_WHOLE_LINE_EMPHASIS = re.compile(
    r"^([ \t]*(?:#{1,6}[ \t]+|[-*+][ \t]+|\d+[.)][ \t]+)?)"  # heading or list marker
    r"(\*\*|__)(?=\S)([^*_\n]+?)(?<=\S)\2"  # the emphasised text
    r"([ \t]*:?[ \t]*)$",
    re.MULTILINE,
)


def strip_decoration(text: str) -> str:
    text = _RULE.sub("", text)
    text = _CLOSING_HASHES.sub(r"\1", text)
    return _WHOLE_LINE_EMPHASIS.sub(r"\1\3\4", text)
