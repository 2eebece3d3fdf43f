#!/usr/bin/env python3
"""Count the text-class sets with the reference tokenizers (dev-only; run by hand).

Writes ``tests/data/textclasses/counts.tsv``: per text its set (the class it was assembled
as), characters, and token counts with o200k_base (bundled), Gemma 3's tokenizer (Gemini 2.x
and 3 count with it, per google-genai's LocalTokenizer) and DeepSeek's (bundled). The tests
derive the estimate factors and bands from these counts; the tokenizers themselves are not
needed there.

Usage::

    python scripts/measure_tokenizers.py --sets ../shared/textsets \
        --gemma PATH/TO/gemma3/tokenizer.json [--out tests/data/textclasses/counts.tsv]

The Gemma 3 tokenizer.json needs the ``tokenizers`` package (dev extra); it is not bundled.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from promptbudget.tokenizers import get_tokenizer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sets", type=Path, required=True)
    parser.add_argument("--gemma", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "tests/data/textclasses/counts.tsv")
    args = parser.parse_args()
    import tokenizers

    gemma = tokenizers.Tokenizer.from_file(str(args.gemma))
    o200k = get_tokenizer("o200k_base")
    deepseek = get_tokenizer("deepseek")
    with (args.sets / "SOURCES.tsv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle, delimiter="\t", lineterminator="\n")
        out.writerow(["file", "set", "sha256", "chars", "o200k_base", "gemma3", "deepseek"])
        for row in rows:
            text = (args.sets / row["file"]).read_text(encoding="utf-8")
            out.writerow(
                [
                    row["file"],
                    row["class"],
                    hashlib.sha256(text.encode("utf-8")).hexdigest()[:16],
                    len(text),
                    o200k.count(text),
                    len(gemma.encode(text, add_special_tokens=False).ids),
                    deepseek.count(text),
                ]
            )
    print(f"{len(rows)} texts -> {args.out}")


if __name__ == "__main__":
    main()
