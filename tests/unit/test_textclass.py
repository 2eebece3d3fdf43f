"""Estimates by kind of text: the classifier, and the factors and bands per text class.

The measured figures (Gemini) are re-derived here from ``tests/data/textclasses/counts.tsv``:
per text of the prose, code, CJK and mixed sets, its o200k_base count and its count with
Gemma 3's tokenizer (made by ``scripts/measure_tokenizers.py``; the tokenizer is not bundled).
Where the texts themselves are present (``shared/textsets``, see ``tests/textsets.py``), the
o200k_base counts are recounted and the classifier is checked against the sets' labels.
"""

from __future__ import annotations

import csv
import hashlib
import math
import re
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from promptbudget.tokenizers import get_tokenizer
from promptbudget.tokenizers.textclass import CLASSES, ESTIMATES, classify, estimate_for, profile
from textsets import TEXTSETS

ROOT = Path(__file__).resolve().parents[2]
COUNTS = ROOT / "tests" / "data" / "textclasses" / "counts.tsv"
README = ROOT / "README.md"
MIN_TOKENS = 50  # shorter texts are rounding noise (a 2-token file is off by 50% at one token)


def _rows() -> list[dict[str, str]]:
    with COUNTS.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _band_policy(worst: float) -> int:
    """The stated band: the worst error on the set, rounded up to the next 5%."""
    return max(5, math.ceil(round(worst * 100, 6) / 5) * 5)


@pytest.mark.parametrize("text_class", CLASSES)
def test_gemini_factor_and_band_are_the_measured_ones(text_class: str) -> None:
    rows = [r for r in _rows() if r["set"] == text_class and int(r["o200k_base"]) >= MIN_TOKENS]
    assert len(rows) >= 20
    o200k = sum(int(r["o200k_base"]) for r in rows)
    gemma = sum(int(r["gemma3"]) for r in rows)
    factor = Decimal(gemma / o200k).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    estimate = ESTIMATES["gemini"][text_class]
    assert estimate.factor == factor
    assert estimate.basis == "measured"
    # Every text of the class: o200k_base x factor is within the band of Gemma's count.
    errors = [float(factor) * int(r["o200k_base"]) / int(r["gemma3"]) - 1 for r in rows]
    worst = max(abs(e) for e in errors)
    band = int(estimate.band.strip("±%"))
    assert worst <= band / 100, (text_class, worst)
    assert band == _band_policy(worst)


def test_one_band_would_not_hold_on_every_class() -> None:
    """Why per-class factors: with the prose factor alone, code and CJK fall outside the
    prose band (the issue's finding, reproduced on the sets)."""
    prose = ESTIMATES["gemini"]["prose"]
    band = int(prose.band.strip("±%")) / 100
    for text_class in ("code", "cjk"):
        rows = [r for r in _rows() if r["set"] == text_class and int(r["o200k_base"]) >= 50]
        errors = [float(prose.factor) * int(r["o200k_base"]) / int(r["gemma3"]) - 1 for r in rows]
        assert max(abs(e) for e in errors) > band, text_class


def test_every_published_figure_is_dated_and_linked() -> None:
    for family, table in ESTIMATES.items():
        assert set(table) == set(CLASSES), family
        for text_class, estimate in table.items():
            assert estimate.basis in {"measured", "published", "unsourced"}
            assert re.fullmatch(r"±\d+%", estimate.band)
            if estimate.basis == "published" and "ingest#65" not in estimate.source:
                assert re.search(r"20\d\d-\d\d", estimate.source), (family, text_class)
                assert "https://" in estimate.source or "sol.ava.dev" in estimate.source


def test_readme_table_shows_every_factor_and_band() -> None:
    text = README.read_text(encoding="utf-8")
    for family, table in ESTIMATES.items():
        for text_class, estimate in table.items():
            row = f"| `{family}` | {text_class} | x{estimate.factor} | {estimate.band} |"
            assert row in text, row


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("You are a helpful assistant. Answer the question in two sentences.", "prose"),
        ("def add(a, b):\n    return a + b\n\nresult = add(1, 2)\nprint(result)\n", "code"),
        ("```python\nimport os\nx = os.getcwd()\n```\n", "code"),
        ("你是一个乐于助人的助手。请用两句话回答问题。", "cjk"),
        ("あなたは親切なアシスタントです。質問に二文で答えてください。", "cjk"),
        ("당신은 친절한 도우미입니다. 두 문장으로 답하세요.", "cjk"),
        ("次のコードを説明してください:\n```js\nconst x = f(1);\nconsole.log(x);\n```\n", "mixed"),
        ("hi", "prose"),  # too short to tell
        ("", "prose"),
    ],
)
def test_classify_examples(text: str, expected: str) -> None:
    assert classify(text) == expected


def test_profile_shares() -> None:
    shown = profile("日本語 text")
    assert shown.chars == 7
    assert shown.text_class == "prose"  # under the 12 characters it takes to tell
    long = profile("日本語の文章です。" * 3 + " and some English words here")
    # 8 CJK characters a sentence (the full stop 。 is punctuation, not CJK), 27 in all,
    # and 23 Latin letters
    assert long.cjk_share == pytest.approx(24 / 50)
    assert long.text_class == "cjk"


def test_estimates_use_the_factor_of_the_text_class() -> None:
    """Hand computation: o200k_base count times the class factor, rounded half up."""
    o200k = get_tokenizer("o200k_base")
    gemini = get_tokenizer("gemini")
    claude = get_tokenizer("claude")
    code = "def add(a, b):\n    return a + b\n\nresult = add(1, 2)\nprint(result)\n"
    base = o200k.count(code)
    assert gemini.count(code) == int(
        (base * Decimal("1.15")).to_integral_value(rounding=ROUND_HALF_UP)
    )
    assert claude.count(code) == int(
        (base * Decimal("1.30")).to_integral_value(rounding=ROUND_HALF_UP)
    )
    cjk = "你是一个乐于助人的助手。请用两句话回答问题。" * 5
    base = o200k.count(cjk)
    assert gemini.count(cjk) == int(
        (base * Decimal("0.90")).to_integral_value(rounding=ROUND_HALF_UP)
    )
    # A message's class can be given (a variable's slot splits a message into pieces).
    assert gemini.count("hello world", "code") == int(
        (o200k.count("hello world") * Decimal("1.15")).to_integral_value(rounding=ROUND_HALF_UP)
    )
    assert gemini.error_band("cjk") == "±25%"
    assert o200k.error_band("cjk") == "exact"
    assert get_tokenizer("approximate").error_band("code") == "±25%"
    assert estimate_for("approximate", "code") is None


needs_sets = pytest.mark.skipif(TEXTSETS is None, reason="the text-class sets are not here")


@needs_sets
def test_sets_match_the_recorded_counts() -> None:
    assert TEXTSETS is not None
    o200k = get_tokenizer("o200k_base")
    deepseek = get_tokenizer("deepseek")
    for row in _rows():
        text = (TEXTSETS / row["file"]).read_text(encoding="utf-8")
        assert hashlib.sha256(text.encode()).hexdigest()[:16] == row["sha256"], row["file"]
        assert len(text) == int(row["chars"])
        assert o200k.count(text) == int(row["o200k_base"]), row["file"]
        assert deepseek.count(text) == int(row["deepseek"]), row["file"]


@needs_sets
def test_the_classifier_labels_the_sets() -> None:
    assert TEXTSETS is not None
    rows = _rows()
    right = sum(
        classify((TEXTSETS / row["file"]).read_text(encoding="utf-8")) == row["set"] for row in rows
    )
    assert right / len(rows) >= 0.95, f"{right} of {len(rows)}"
