"""Repeated text.

``duplicates`` (safe) removes only what the model would read twice in a row with nothing in
between: a prose line repeated right after itself, and a paragraph repeated right after
itself. List items and table rows are kept even then (an output-format template shows
``- Next entry`` three times on purpose), and so are short lines (under four words: ``...``,
``Output:``).

``paragraphs`` (lossy) removes a paragraph repeated anywhere later in the same message: a
worked example shown twice may be shown twice on purpose, so only when asked.

Lines and paragraphs holding template syntax, code or a role marker are never removed (the
template's variables and blocks stay exactly as they are); short paragraphs (under eight
words) are kept, since few-shot examples legitimately repeat labels such as ``Output:``.
"""

from __future__ import annotations

import re

from promptbudget.compression.protect import CLOSE, OPEN, PLACEHOLDER, Protected

_STICKY = {"template", "fence", "raw", "role"}
_LIST_OR_TABLE = re.compile(r"^\s*(?:[-*+\u2022]\s|\d+[.)]\s|\|)")


def _normal(text: str) -> str:
    """Runs of whitespace as one space, none at the ends (``str.split`` and ``\\s`` agree on
    what whitespace is, and splitting is ~5 times faster than the regex)."""
    return " ".join(text.split())


def _is_sticky(text: str, protected: Protected) -> bool:
    return any(protected.kind(int(m.group(1))) in _STICKY for m in PLACEHOLDER.finditer(text))


def _is_role_line(line: str, protected: Protected) -> bool:
    stripped = line.strip()
    if not (stripped.startswith(OPEN) and stripped.endswith(CLOSE)):
        return False  # not one placeholder alone (most lines: no regex needed)
    matches = list(PLACEHOLDER.finditer(stripped))
    return (
        len(matches) == 1
        and matches[0].group(0) == line.strip()
        and protected.kind(int(matches[0].group(1))) == "role"
    )


def remove_duplicates(text: str, protected: Protected) -> str:
    """The safe pass: exact adjacent repeats only."""
    kept: list[str] = []
    last = None  # the last line kept, normalised
    for line in text.split("\n"):
        normal = _normal(line)
        if (
            normal
            and normal == last
            and len(normal.split()) >= 4
            and not _LIST_OR_TABLE.match(line)
            and not _is_sticky(line, protected)
        ):
            continue
        kept.append(line)
        last = normal
    return _drop_paragraphs(kept, protected, adjacent_only=True)


def remove_repeated_paragraphs(text: str, protected: Protected) -> str:
    """The lossy pass: a paragraph repeated anywhere later in the same message."""
    return _drop_paragraphs(text.split("\n"), protected, adjacent_only=False)


def _drop_paragraphs(lines: list[str], protected: Protected, *, adjacent_only: bool) -> str:
    out: list[str] = []
    seen: set[str] = set()
    previous: list[str | None] = [None]  # the last paragraph kept, normalised
    paragraph: list[str] = []

    def flush() -> None:
        if not paragraph:
            return
        block = _normal("\n".join(paragraph))
        removable = len(block.split()) >= 8 and not _is_sticky(block, protected)
        repeated = block == previous[0] if adjacent_only else block in seen
        if removable and repeated:
            while out and not out[-1].strip():
                out.pop()  # the blank lines before the removed paragraph
        else:
            seen.add(block)
            out.extend(paragraph)
        previous[0] = block
        paragraph.clear()

    for line in lines:
        if _is_role_line(line, protected):
            flush()
            seen.clear()  # a new message
            previous[0] = None
            out.append(line)
        elif not line.strip():
            flush()
            out.append(line)
        else:
            paragraph.append(line)
    flush()
    return "\n".join(out)
