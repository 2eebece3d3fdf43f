"""What kind of text a prompt is, and the estimate factor and band for each kind.

A tokenizer that is not published (Claude, Gemini) is estimated as ``o200k_base`` times a
factor, and the right factor depends on the text: Gemini's tokenizer needs ~15% more tokens
than o200k_base on code but 10-25% fewer on Chinese and Japanese; Claude's needs ~30% more
than o200k_base on Python, ~16-18% more on English. ``classify`` sorts a text into
``prose``, ``code``, ``cjk`` or ``mixed`` from its characters alone, with a few anchored
regular expressions per line (linear in the text's length), and ``ESTIMATES`` gives each
(tokenizer family, class) its factor, band and source. How each figure was measured or
where it was published is in the README ("Estimates by kind of text");
``tests/unit/test_textclass.py`` re-derives the measured ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

CLASSES = ("prose", "code", "cjk", "mixed")

# Han (with extension A and compatibility ideographs), kana (with half-width katakana) and
# Hangul (syllables and jamo).
_CJK = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
    "\uac00-\ud7af\u1100-\u11ff\u3130-\u318f]"
)
_NON_SPACE = re.compile(r"\S")
# Characters frequent in code and rare in prose.
_CODE_SYMBOLS = re.compile(r"[{}()\[\];=<>|&*/\\+$^~`]")
_FENCE = re.compile(r"^[ \t]*(?:```|~~~)", re.MULTILINE)
# A line of code in most languages, matched at the line's start (after its indentation): an
# assignment, a call, a keyword that opens a block or a statement, a closing bracket, a
# command in backticks, or a line that ends like a statement.
_CODE_LINE = re.compile(
    r"(?:[\w.\[\]'\"]+\s*(?:[-+*/%|&]?=|:=)\s*\S"
    r"|[\w.]+\("
    r"|(?:if|elif|else|while|for|with|try|except|finally|switch|case|def|class|func|package"
    r"|import|from|return|raise|yield|const|let|var|function|public|private|static|async"
    r"|await|type|struct|interface|defer|go|throw|new)\b"
    r"|[)\]}@]|//|/\*|\*/|#include|#!)"
    r"|`[^`]*`$"
    r"|.*(?:[;{}(\[,]|=>)$"
)
# A text shorter than this (non-space characters) is too short to tell: prose.
_MIN_CHARS = 12


@dataclass(frozen=True)
class TextProfile:
    """The measurements ``classify`` decides on (shares of non-space characters)."""

    chars: int  # non-space characters
    cjk_share: float  # Han, kana and Hangul
    code_share: float  # characters on lines that look like code, or inside code fences
    text_class: str


def profile(text: str) -> TextProfile:
    """Measure ``text`` and classify it.

    ``cjk`` when at least 30% of the non-space characters are CJK and under 25% is on code
    lines; ``code`` when under 10% is CJK and at least 40% is on code lines (or in code
    fences); ``prose`` when under 10% is CJK and under 25% is code; anything else ``mixed``.
    """
    chars = len(_NON_SPACE.findall(text))
    if chars < _MIN_CHARS:
        return TextProfile(chars, 0.0, 0.0, "prose")
    cjk_share = len(_CJK.findall(text)) / chars
    code_share = _code_chars(text) / chars
    if cjk_share >= 0.3 and code_share < 0.25:
        text_class = "cjk"
    elif cjk_share < 0.1 and code_share >= 0.4:
        text_class = "code"
    elif cjk_share < 0.1 and code_share < 0.25:
        text_class = "prose"
    else:
        text_class = "mixed"
    return TextProfile(chars, cjk_share, code_share, text_class)


def classify(text: str) -> str:
    """``prose``, ``code``, ``cjk`` or ``mixed``."""
    return profile(text).text_class


def _code_chars(text: str) -> int:
    """Non-space characters on code lines: inside a fenced block, a line that opens or ends
    like code (``_CODE_LINE``), or one whose characters are at least 15% code symbols."""
    total = 0
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        stripped = line.strip()
        if not stripped:
            continue
        size = len(stripped) - stripped.count(" ")
        if (
            fenced
            or _CODE_LINE.match(stripped)
            or len(_CODE_SYMBOLS.findall(stripped)) >= 0.15 * size
        ):
            total += size
    return total


@dataclass(frozen=True)
class Estimate:
    """The factor over ``o200k_base`` for one (tokenizer family, text class), its band and
    where both come from (``measured``: derived here from reference counts; ``published``:
    a dated public measurement, not measured here; ``unsourced``: the family's prose figure,
    not verified on this kind of text)."""

    factor: Decimal
    band: str
    basis: str
    source: str


_GEMMA = (
    "measured here with Gemma 3's tokenizer.json (google-genai's LocalTokenizer counts "
    "Gemini 2.x and 3 with it) on the text-class sets"
)
_CLAUDE_PROSE = "count_tokens calibration, sammcj/ingest#65"
_S11 = (
    "Claude 3.5 Sonnet vs GPT-4o, Python +30% (English +16%), quarkybyte.com 2025-05-01 "
    "(https://news.quarkybyte.com/understanding-tokenizer-differences-impacting-ai-model-"
    "costs-and-efficiency-2025-05-01)"
)
_OPUS47_CODE = (
    "Opus 4.7 / 4.6 on code 1.13-1.33x (sol.ava.dev 2026-04-17, https://sol.ava.dev/writings/"
    "2026-04-17-opus-4-7-tokenizer.html; pithwire.com 2026-04, 1.29-1.36x, https://pithwire."
    "com/en/articles/measuring-claude-47s-tokenizer-costs/), times the Claude code factor"
)
_OPUS47_CJK = (
    "Opus 4.7 / 4.6 on Chinese, Japanese, Korean 1.00-1.07x (sol.ava.dev 2026-04-17; "
    "pithwire.com 2026-04), so the Claude figure; that one is not sourced for CJK"
)

ESTIMATES: dict[str, dict[str, Estimate]] = {
    "gemini": {
        "prose": Estimate(Decimal("1.08"), "±10%", "measured", _GEMMA),
        "code": Estimate(Decimal("1.15"), "±10%", "measured", _GEMMA),
        "cjk": Estimate(Decimal("0.90"), "±25%", "measured", _GEMMA),
        "mixed": Estimate(Decimal("1.01"), "±20%", "measured", _GEMMA),
    },
    "claude": {
        "prose": Estimate(Decimal("1.18"), "±20%", "published", _CLAUDE_PROSE),
        "code": Estimate(Decimal("1.30"), "±20%", "published", _S11),
        "cjk": Estimate(Decimal("1.18"), "±20%", "unsourced", _CLAUDE_PROSE),
        "mixed": Estimate(Decimal("1.18"), "±20%", "unsourced", _CLAUDE_PROSE),
    },
    "claude-4.7": {
        "prose": Estimate(
            Decimal("1.53"),
            "±20%",
            "published",
            "sammcj/ingest#65; Anthropic: 1.0-1.35x the earlier tokenizer, by content",
        ),
        "code": Estimate(Decimal("1.60"), "±20%", "published", _OPUS47_CODE),
        "cjk": Estimate(Decimal("1.18"), "±20%", "unsourced", _OPUS47_CJK),
        "mixed": Estimate(Decimal("1.53"), "±20%", "unsourced", "the Claude 4.7 prose figure"),
    },
}


def estimate_for(family: str, text_class: str) -> Estimate | None:
    """The factor for ``family`` on ``text_class`` texts; None for a family without
    per-class figures (``approximate``), which keeps its one factor."""
    table = ESTIMATES.get(family)
    return table.get(text_class) if table is not None else None
