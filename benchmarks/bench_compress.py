#!/usr/bin/env python3
"""Tokens the compression passes save on the real-prompt corpus (tests/corpus).

    python benchmarks/bench_compress.py

Prints a Markdown table for the README: per pass (alone) and per template format, the
safe passes together and all passes together, with o200k_base counts of each template's
body (front matter is never compressed). Deterministic: the same corpus gives the same table.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from promptbudget.compression import LOSSY_PASSES, PASSES, SAFE_PASSES, compress_text
from promptbudget.compression.rewrite import split_head
from promptbudget.templates.source import TemplateFormat, detect_format, read_prompt_text
from promptbudget.tokenizers import get_tokenizer

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus"
SETS = {
    **{name: (name,) for name in PASSES},
    "all safe": SAFE_PASSES,
    "safe + lossy": SAFE_PASSES + LOSSY_PASSES,
}


def main() -> None:
    tokenizer = get_tokenizer("o200k_base")
    before: dict[str, int] = defaultdict(int)
    saved: dict[tuple[str, str], int] = defaultdict(int)
    files: dict[str, int] = defaultdict(int)
    for path in sorted(CORPUS.rglob("*")):
        if not path.is_file() or path.name in {"README.md", "SOURCES.md"}:
            continue
        fmt = detect_format(path)
        if fmt is TemplateFormat.TEXT:
            continue
        _, body = split_head(read_prompt_text(path).text, fmt)
        tokens = tokenizer.count(body)
        for group in (fmt.value, "all formats"):
            before[group] += tokens
            files[group] += 1
        for label, names in SETS.items():
            result = compress_text(body, names, tokenizer)
            for group in (fmt.value, "all formats"):
                saved[(label, group)] += result.tokens_saved
    groups = [*sorted(g for g in before if g != "all formats"), "all formats"]
    header = (
        "| pass | kind | "
        + " | ".join(f"{g} ({files[g]} files, {before[g]:,} tokens)" for g in groups)
        + " |"
    )
    print(header)
    print("|---|---|" + "---|" * len(groups))
    for label, names in SETS.items():
        if len(names) == 1:
            kind = "safe" if PASSES[label].is_safe else "lossy"
        else:
            kind = "safe" if label == "all safe" else "safe + lossy"
        cells = [
            f"{saved[(label, g)]:,} ({saved[(label, g)] / before[g] * 100:.1f}%)" for g in groups
        ]
        print(f"| {label} | {kind} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
