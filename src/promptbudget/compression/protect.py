"""Keep what no pass may touch out of the passes' reach.

A template is split into *protected* spans (template syntax, code, URLs, quoted strings,
inline code, HTML/XML tags, role-marker lines) and editable text. Each protected span is
replaced by an opaque placeholder (private-use characters around an index); passes edit the
text around placeholders and never see inside them, and ``restore`` puts the spans back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from promptbudget.scanning import RegexFinder

OPEN = "\ue100"
CLOSE = "\ue101"
PLACEHOLDER = re.compile(f"{OPEN}(\\d+){CLOSE}")

ROLE_LINE = (
    r"^[ \t]*(?:#[ \t]*)?(?i:system|user|assistant|developer|function|tool|tools)"
    r"(?:\[[^\]\n]*\])?[ \t]*:[ \t]*$"
)

# Order matters: the first alternative that matches at a position wins. Spans that run to a
# closer (raw blocks, fences, template tags) are found with cached closer searches, not with
# a lazy ``.*?`` (quadratic on a file of unclosed openers: 10 KB of ``{#`` took 2.4 s).
_RAW_CLOSE = re.compile(r"\{%-?\s*endraw\s*-?%\}")
_TEMPLATE_CLOSERS = {"{{{": "}}}", "{{": "}}", "{%": "%}", "{#": "#}"}
_LOCAL = [
    ("role", re.compile(ROLE_LINE, re.MULTILINE)),
    ("code", re.compile(r"`[^`\n]+`")),
    ("url", re.compile(r"(?:https?|ftp)://[^\s<>\"')\]]+|www\.[^\s<>\"')\]]+")),
    (
        "quote",
        re.compile(
            r"\"[^\"\n]*\"|\u201c[^\u201d\n]*\u201d|\u2018[^\u2019\n]*\u2019"
            r"|(?<![\w'])'[^'\n]*'(?![\w'])"
        ),
    ),
    ("tag", re.compile(r"</?[A-Za-z][\w:-]*(?:\s[^<>\n]*)?/?>")),
]
_RAW_OPEN = re.compile(r"\{%-?\s*raw\s*-?%\}")
_FENCE_OPEN = re.compile(r"^[ \t]*(?P<ticks>`{3,}|~{3,})[^\n]*\n", re.MULTILINE)
# Where any alternative can start (a superset; each candidate is then tried in order).
_CANDIDATE = re.compile(
    r"\{|^[ \t]*(?:`{3,}|~{3,})|"
    + ROLE_LINE
    + r"|`|https?://|ftp://|www\.|[\"\u201c\u2018']|</?[A-Za-z]",
    re.MULTILINE,
)


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.raw = RegexFinder(text, _RAW_CLOSE)
        self.templates = {
            opener: RegexFinder(text, re.compile(re.escape(closer)))
            for opener, closer in _TEMPLATE_CLOSERS.items()
        }
        self.fences: dict[str, RegexFinder] = {}

    def span_at(self, start: int) -> tuple[str, int] | None:
        """The kind and end of the protected span starting at ``start``, if one does."""
        text = self.text
        opened = _RAW_OPEN.match(text, start)
        if opened is not None and (close := self.raw.search(opened.end())) is not None:
            return "raw", close.end()
        fence = _FENCE_OPEN.match(text, start)
        if fence is not None:
            ticks = fence.group("ticks")
            closer = self.fences.get(ticks)
            if closer is None:
                pattern = re.compile(rf"^[ \t]*{re.escape(ticks)}[ \t]*$", re.MULTILINE)
                closer = self.fences[ticks] = RegexFinder(text, pattern)
            if (close := closer.search(fence.end())) is not None:
                return "fence", close.end()
        for opener, closer_search in self.templates.items():
            if text.startswith(opener, start):
                close = closer_search.search(start + len(opener))
                if close is not None:
                    return "template", close.end()
        for kind, pattern in _LOCAL:
            local = pattern.match(text, start)
            if local is not None:
                return kind, local.end()
        return None


@dataclass(frozen=True)
class Protected:
    """Text with placeholders, and the spans they stand for."""

    text: str
    spans: tuple[tuple[str, str], ...]  # (kind, original text)

    def restore(self, text: str) -> str:
        return PLACEHOLDER.sub(lambda m: self.spans[int(m.group(1))][1], text)

    def kind(self, index: int) -> str:
        return self.spans[index][0]


def protect(text: str) -> Protected:
    """Replace every protected span of ``text`` with a placeholder."""
    spans: list[tuple[str, str]] = []
    out: list[str] = []
    scanner = _Scanner(text)
    position = copied = 0
    while (candidate := _CANDIDATE.search(text, position)) is not None:
        start = candidate.start()
        found = scanner.span_at(start)
        if found is None:
            position = start + 1
            continue
        kind, end = found
        if end == start:  # an empty match (cannot happen for these patterns): step over it
            position = start + 1
            continue
        out.append(text[copied:start])
        spans.append((kind, text[start:end]))
        out.append(f"{OPEN}{len(spans) - 1}{CLOSE}")
        position = copied = end
    out.append(text[copied:])
    return Protected("".join(out), tuple(spans))


def has_placeholder(text: str) -> bool:
    return OPEN in text


def placeholder_kinds(protected: Protected, text: str) -> set[str]:
    return {protected.kind(int(m.group(1))) for m in PLACEHOLDER.finditer(text)}
