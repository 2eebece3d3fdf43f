"""``duplicates`` (safe): a line repeated right after itself, and a paragraph repeated
anywhere later in the same message, are removed.

Lines and paragraphs holding template syntax, code or a role marker are never removed (the
template's variables and blocks stay exactly as they are); short paragraphs (under eight
words) are kept, since few-shot examples legitimately repeat labels such as ``Output:``.
"""

from __future__ import annotations

import re

from promptbudget.compression.protect import PLACEHOLDER, Protected

_STICKY = {"template", "fence", "raw", "role"}
_SPACES = re.compile(r"\s+")


def _normal(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _is_sticky(text: str, protected: Protected) -> bool:
    return any(protected.kind(int(m.group(1))) in _STICKY for m in PLACEHOLDER.finditer(text))


def _is_role_line(line: str, protected: Protected) -> bool:
    matches = list(PLACEHOLDER.finditer(line.strip()))
    return (
        len(matches) == 1
        and matches[0].group(0) == line.strip()
        and protected.kind(int(matches[0].group(1))) == "role"
    )


def remove_duplicates(text: str, protected: Protected) -> str:
    lines = text.split("\n")
    kept: list[str] = []
    for line in lines:
        if (
            kept
            and _normal(line)
            and _normal(line) == _normal(kept[-1])
            and not _is_sticky(line, protected)
        ):
            continue
        kept.append(line)

    out: list[str] = []
    seen: set[str] = set()
    paragraph: list[str] = []

    def flush() -> None:
        if not paragraph:
            return
        block = _normal("\n".join(paragraph))
        removable = len(block.split()) >= 8 and not _is_sticky(block, protected)
        if removable and block in seen:
            if out and not out[-1].strip():
                out.pop()  # the blank line before the removed paragraph
        else:
            seen.add(block)
            out.extend(paragraph)
        paragraph.clear()

    for line in kept:
        if _is_role_line(line, protected):
            flush()
            seen.clear()  # a new message
            out.append(line)
        elif not line.strip():
            flush()
            out.append(line)
        else:
            paragraph.append(line)
    flush()
    return "\n".join(out)
