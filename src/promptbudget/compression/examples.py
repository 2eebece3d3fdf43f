"""``examples`` (lossy, opt-in): few-shot examples beyond the first N (``--keep-examples``).

An example starts at a line that names it ("Example 2", "## Example Task #3 Input:",
"**Example 1**") and runs to the next example, the next heading of its level or above, a
role marker, or the end. Template syntax inside an example keeps the example: removing
it would change what the template reads.
"""

from __future__ import annotations

import re

from promptbudget.compression.duplicates import _is_role_line, _is_sticky
from promptbudget.compression.protect import Protected

_EXAMPLE = re.compile(
    r"^[ \t]*(?P<hashes>#{1,6}[ \t]+)?(?:\*\*|__)?(?:example|sample|shot)\b[^\n]*?(?P<number>\d+)",
    re.IGNORECASE,
)
_HEADING = re.compile(r"^[ \t]*(#{1,6})[ \t]+")


def trim_examples(text: str, protected: Protected, keep: int) -> str:
    lines = text.split("\n")
    blocks: list[tuple[int, int, str]] = []  # (start, end, number)
    start: int | None = None
    number = ""
    level = 7
    for index, line in enumerate(lines):
        example = _EXAMPLE.match(line)
        heading = _HEADING.match(line)
        ends = _is_role_line(line, protected) or (
            heading is not None and len(heading.group(1)) <= level and not example
        )
        closes = not example or example.group("number") != number
        if start is not None and (example or ends) and closes:
            blocks.append((start, index, number))
            start = None
        if example and start is None:
            start, number = index, example.group("number")
            level = len(example.group("hashes").strip()) if example.group("hashes") else 7
    if start is not None:
        blocks.append((start, len(lines), number))
    numbers: list[str] = []
    drop: set[int] = set()
    for begin, end, label in blocks:
        if label not in numbers:
            numbers.append(label)
        if numbers.index(label) < keep:
            continue
        if _is_sticky("\n".join(lines[begin:end]), protected):
            continue
        drop.update(range(begin, end))
    return "\n".join(line for index, line in enumerate(lines) if index not in drop)
