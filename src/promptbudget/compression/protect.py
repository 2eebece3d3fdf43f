"""Keep what no pass may touch out of the passes' reach.

A template is split into *protected* spans (template syntax, code, URLs, quoted strings,
inline code, HTML/XML tags, role-marker lines) and editable text. Each protected span is
replaced by an opaque placeholder (private-use characters around an index); passes edit the
text around placeholders and never see inside them, and ``restore`` puts the spans back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

OPEN = "\ue100"
CLOSE = "\ue101"
PLACEHOLDER = re.compile(f"{OPEN}(\\d+){CLOSE}")

ROLE_LINE = (
    r"^[ \t]*(?:#[ \t]*)?(?i:system|user|assistant|developer|function|tool|tools)"
    r"(?:\[[^\]\n]*\])?[ \t]*:[ \t]*$"
)

# Order matters: the first alternative that matches at a position wins.
_PROTECTED = re.compile(
    "|".join(
        [
            r"(?P<raw>\{%-?\s*raw\s*-?%\}.*?\{%-?\s*endraw\s*-?%\})",
            r"(?P<fence>^[ \t]*(?P<ticks>`{3,}|~{3,})[^\n]*\n.*?^[ \t]*(?P=ticks)[ \t]*$)",
            r"(?P<template>\{\{\{.*?\}\}\}|\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\})",
            r"(?P<role>" + ROLE_LINE + r")",
            r"(?P<code>`[^`\n]+`)",
            r"(?P<url>(?:https?|ftp)://[^\s<>\"')\]]+|www\.[^\s<>\"')\]]+)",
            r"(?P<quote>\"[^\"\n]*\"|\u201c[^\u201d\n]*\u201d|\u2018[^\u2019\n]*\u2019"
            r"|(?<![\w'])'[^'\n]*'(?![\w']))",
            r"(?P<tag></?[A-Za-z][\w:-]*(?:\s[^<>\n]*)?/?>)",
        ]
    ),
    re.DOTALL | re.MULTILINE,
)


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

    def replace(match: re.Match[str]) -> str:
        kind = match.lastgroup or "template"
        if kind == "ticks":
            kind = "fence"
        spans.append((kind, match.group(0)))
        return f"{OPEN}{len(spans) - 1}{CLOSE}"

    return Protected(_PROTECTED.sub(replace, text), tuple(spans))


def has_placeholder(text: str) -> bool:
    return OPEN in text


def placeholder_kinds(protected: Protected, text: str) -> set[str]:
    return {protected.kind(int(m.group(1))) for m in PLACEHOLDER.finditer(text)}
