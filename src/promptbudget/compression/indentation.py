"""``indentation`` (lossy, opt-in): leading spaces of prose lines.

Template authors indent for readability (inside ``{% for %}`` blocks, in YAML-embedded
prompts), and every indented line sends the spaces to the model. Lines that start a list
item, look like code or structured data (``key: value``, braces, brackets), or sit in a
code fence keep their indentation, since there it can carry meaning.
"""

from __future__ import annotations

import re

_KEEP = re.compile(r"^[ \t]+(?:[-*+•]|\d+[.)]|[\w.\"'-]+:\s|[{}\[\]<>|#])")
_INDENT = re.compile(r"^[ \t]+(?=\S)")


def flatten_indentation(text: str) -> str:
    lines = text.split("\n")
    return "\n".join(line if _KEEP.match(line) else _INDENT.sub("", line) for line in lines)
