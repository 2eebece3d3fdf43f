"""Compression passes: named, deterministic, idempotent rewrites of a template's static text.

Safe passes change no meaning and run by default; lossy passes run only when named. No pass
touches template syntax, variable names, code (beyond minifying JSON in fences), numbers,
URLs, quoted strings, tags or role markers: those are protected (``protect.py``) before a
pass sees the text. Passes run in a fixed order, repeated until the text stops changing,
so ``compress(compress(x)) == compress(x)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from promptbudget.compression.duplicates import remove_duplicates, remove_repeated_paragraphs
from promptbudget.compression.examples import trim_examples
from promptbudget.compression.filler import remove_filler
from promptbudget.compression.indentation import flatten_indentation
from promptbudget.compression.json_blocks import minify_json_fences
from promptbudget.compression.markdown import strip_decoration
from promptbudget.compression.protect import Protected, protect
from promptbudget.compression.stopwords import remove_articles
from promptbudget.compression.whitespace import squeeze_whitespace
from promptbudget.tokenizers import Tokenizer

DEFAULT_KEEP_EXAMPLES = 2
MAX_ROUNDS = 4


@dataclass(frozen=True)
class PassOptions:
    keep_examples: int = DEFAULT_KEEP_EXAMPLES


Transform = Callable[[str, Protected, PassOptions], str]


@dataclass(frozen=True)
class Pass:
    name: str
    is_safe: bool
    summary: str
    transform: Transform
    on_raw_text: bool = False  # works on the text itself (fences), not on placeholders


PASSES: dict[str, Pass] = {
    p.name: p
    for p in (
        Pass(
            "json",
            True,
            "minify pretty-printed JSON in code fences (strings and numbers kept as written)",
            lambda text, _p, _o: minify_json_fences(text),
            on_raw_text=True,
        ),
        Pass(
            "markdown",
            True,
            "drop decoration: horizontal rules, closing heading hashes, emphasis around whole "
            "lines",
            lambda text, _p, _o: strip_decoration(text),
        ),
        Pass(
            "examples",
            False,
            "keep the first N few-shot examples (--keep-examples, default 2)",
            lambda text, p, o: trim_examples(text, p, o.keep_examples),
        ),
        Pass(
            "filler",
            False,
            "drop filler phrases ('please note that', 'it is important to', 'in order to')",
            lambda text, _p, _o: remove_filler(text),
        ),
        Pass(
            "indentation",
            False,
            "drop the indentation of prose lines (lists, code and data keep theirs)",
            lambda text, _p, _o: flatten_indentation(text),
        ),
        Pass(
            "stopwords",
            False,
            "drop the articles 'the', 'a' and 'an'",
            lambda text, _p, _o: remove_articles(text),
        ),
        Pass(
            "duplicates",
            True,
            "drop a prose line or a paragraph repeated right after itself (list items, table "
            "rows and short lines stay)",
            lambda text, p, _o: remove_duplicates(text, p),
        ),
        Pass(
            "paragraphs",
            False,
            "drop a paragraph (8+ words) repeated anywhere later in the same message",
            lambda text, p, _o: remove_repeated_paragraphs(text, p),
        ),
        Pass(
            "whitespace",
            True,
            "drop trailing spaces, runs of spaces inside lines and runs of blank lines",
            lambda text, _p, _o: squeeze_whitespace(text),
        ),
    )
}

SAFE_PASSES = tuple(name for name, p in PASSES.items() if p.is_safe)
LOSSY_PASSES = tuple(name for name, p in PASSES.items() if not p.is_safe)


@dataclass(frozen=True)
class PassSaving:
    name: str
    tokens_saved: int


@dataclass(frozen=True)
class CompressionResult:
    original: str
    text: str
    tokens_before: int
    tokens_after: int
    passes: tuple[PassSaving, ...]

    @property
    def tokens_saved(self) -> int:
        return self.tokens_before - self.tokens_after

    @property
    def changed(self) -> bool:
        return self.text != self.original


@dataclass(frozen=True)
class FileCompression:
    """One template compressed: what it saves, where that money goes, what happened."""

    path: str
    tokenizer: str
    result: CompressionResult | None
    monthly_savings_usd: Decimal | None = None
    workflows: tuple[str, ...] = ()
    written: bool = False
    error: str | None = None  # could not be written (the run exits 2)
    diff: str | None = None
    skipped: str | None = None  # not compressed, and why (unreadable, does not parse)


def unified_diff(path: str, before: str, after: str) -> str:
    """A unified diff of ``before`` and ``after``, marking a missing final newline."""
    import difflib

    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"a/{path}",
        tofile=f"b/{path}",
    )
    marker = "\n\\ No newline at end of file\n"
    return "".join(line if line.endswith("\n") else line + marker for line in lines)


def first_changed_line(before: str, after: str) -> int:
    """The 1-based line where ``after`` first differs from ``before``."""
    for number, (old, new) in enumerate(
        zip(before.split("\n"), after.split("\n"), strict=False), 1
    ):
        if old != new:
            return number
    return min(before.count("\n"), after.count("\n")) + 1


def first_change_kept(before: str, after: str) -> tuple[str, str]:
    """``before`` and ``after`` cut after the line that follows their first changed line,
    the lines before it (the same in both) left empty: ``first_changed_line`` and ``!=`` of
    the cut texts are those of the whole texts (all ``check`` reads of a compressed template
    once it is done with it)."""
    keep = first_changed_line(before, after) + 1
    common = keep - 2

    def cut(text: str) -> str:
        lines = text.split("\n", keep)[:keep]
        return "\n" * common + "\n".join(lines[common:])

    return cut(before), cut(after)


_NOTHING_PROTECTED = Protected("", ())


def apply_pass(
    text: str, chosen: Pass, options: PassOptions, protected: Protected | None = None
) -> str:
    """One pass over ``text``, with protected spans kept out of its reach (``protected``:
    ``protect(text)`` if the caller has it already)."""
    if chosen.on_raw_text:
        return chosen.transform(text, _NOTHING_PROTECTED, options)
    if protected is None:
        protected = protect(text)
    transformed = chosen.transform(protected.text, protected, options)
    return text if transformed == protected.text else protected.restore(transformed)


def compress_text(
    text: str,
    names: Sequence[str],
    tokenizer: Tokenizer,
    options: PassOptions | None = None,
) -> CompressionResult:
    """Run the named passes (in registry order) until the text stops changing."""
    options = options or PassOptions()
    chosen = [p for name, p in PASSES.items() if name in set(names)]
    saved = dict.fromkeys((p.name for p in chosen), 0)
    before = tokenizer.count(text)
    current, current_tokens = text, before
    protected = protect(current)  # the current text's, reused until a pass changes it
    for _ in range(MAX_ROUNDS):
        start = current
        for step in chosen:
            updated = apply_pass(current, step, options, protected)
            if updated != current:
                protected = protect(updated)
                tokens = tokenizer.count(updated)
                saved[step.name] += current_tokens - tokens
                current, current_tokens = updated, tokens
        if current == start:
            break
    return CompressionResult(
        original=text,
        text=current,
        tokens_before=before,
        tokens_after=current_tokens,
        passes=tuple(PassSaving(name, tokens) for name, tokens in saved.items()),
    )


__all__ = [
    "LOSSY_PASSES",
    "PASSES",
    "SAFE_PASSES",
    "CompressionResult",
    "FileCompression",
    "Pass",
    "PassOptions",
    "PassSaving",
    "compress_text",
]
