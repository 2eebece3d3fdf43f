# ruff: noqa: RUF001  (full-width and CJK punctuation are the point of these strings)
"""DeepSeek's bundled tokenizer gives the same tokens as its tokenizer.json.

The reference is DeepSeek's own ``tokenizer.json`` (MIT) as LiteLLM ships it
(``litellm/litellm_core_utils/tokenizers/deepseek_tokenizer.json``, in the ``dev`` extra), run
by the Hugging Face ``tokenizers`` library; without both, the comparisons skip. The texts are
the prompt corpus, the text-class sets when present (``shared/textsets``: prose, code, CJK,
mixed), hand-picked edge cases and generated strings over the characters where a
three-split pre-tokenizer and one pattern could part ways.
"""

from __future__ import annotations

import base64
import importlib.util
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import CORPUS
from promptbudget.pricing.catalog import load_catalog
from promptbudget.tokenizers import ENCODINGS, _read_rank_file, get_tokenizer, guess_tokenizer
from textsets import textset_files


def _reference_path() -> Path | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "litellm_core_utils" / "tokenizers" / "deepseek_tokenizer.json"
        if path.is_file():
            return path
    return None


REFERENCE = _reference_path()
needs_reference = pytest.mark.skipif(
    REFERENCE is None or importlib.util.find_spec("tokenizers") is None,
    reason="needs litellm's deepseek_tokenizer.json and the tokenizers package (dev extra)",
)


@cache
def _hf() -> Any:
    import tokenizers

    assert REFERENCE is not None
    return tokenizers.Tokenizer.from_file(str(REFERENCE))


def _reference_ids(text: str) -> list[int]:
    ids: list[int] = _hf().encode(text, add_special_tokens=False).ids
    return ids


EDGE_CASES = [
    "Hello world, this is a test.",
    "a\x01\x01 b",
    "\u200b\u200bhello",
    "x  12345 y",
    "日本語123テスト  漢字",
    "  \n\n  ",
    "<think>reasoning</think> then <｜User｜> text",
    "e\u0301t\u00e9 cafe\u0301",
    "Ｆｕｌｌ　ｗｉｄｔｈ",
    "٣٤٥ عربي",
    "tab\t\tx",
    "한국어 텍스트",
    "a・b゠c゛゜x",
    "ok\u00a0\u00a0ok\r\n",
    "def f(x):\n    return {'a': [1, 2, 3]}  # ok\n",
    "😀🙂 emoji, Ⅻ ½ 〇",
    "</dsml:tag> <dsml:x",
]


@needs_reference
def test_the_rank_file_is_the_tokenizer_json_vocabulary() -> None:
    """Ranks are the tokenizer.json ids of the byte strings its byte-level alphabet spells."""
    assert REFERENCE is not None
    data = json.loads(REFERENCE.read_text(encoding="utf-8"))
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    alphabet = {chr(b): b for b in printable}
    alphabet.update(
        {chr(256 + n): b for n, b in enumerate(b for b in range(256) if b not in printable)}
    )
    expected = {}
    for token, rank in data["model"]["vocab"].items():
        if all(ch in alphabet for ch in token):
            expected[bytes(alphabet[ch] for ch in token)] = rank
    ours = {
        base64.b64decode(token): int(rank)
        for token, rank in (
            line.split() for line in _read_rank_file(ENCODINGS["deepseek"]).split(b"\n") if line
        )
    }
    assert ours == expected
    assert len(ours) == 127_997  # 128,000 less the three special tokens kept as added tokens
    added = {token["content"]: token["id"] for token in data["added_tokens"]}
    encoding = get_tokenizer("deepseek").loaded_encoding()
    assert encoding.special_tokens_set == set(added)


@needs_reference
@pytest.mark.parametrize("text", EDGE_CASES)
def test_edge_cases_give_the_same_tokens(text: str) -> None:
    assert get_tokenizer("deepseek").encode(text) == _reference_ids(text)


@needs_reference
def test_corpus_and_text_sets_give_the_same_tokens() -> None:
    paths = sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.suffix != ".tsv")
    paths += textset_files()
    tokenizer = get_tokenizer("deepseek")
    checked = differ = 0
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        checked += 1
        if tokenizer.encode(text) != _reference_ids(text):
            differ += 1
    assert checked >= 100
    assert differ == 0, f"{differ} of {checked} files differ"


_PALETTE = [
    *"aZé\u0301 \t\n\r\x01\u200b\ufeff12٣.,;!?-_'\"()[]{}<>/\\|`~@#$%^&*+=日本語漢字ひらがな"
    "カタカナ・゠ー゛한국어中文，。！？「」\u3000\u00a0€😀Ⅻ½\u2028\u3007",
    *["<think>", "</think>", "<｜User｜>", "  ", "\n\n", "don't", "I'M", "0x1F"],
]


@needs_reference
@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PALETTE), min_size=1, max_size=40))
def test_generated_strings_give_the_same_tokens(parts: list[str]) -> None:
    text = "".join(parts)
    assert get_tokenizer("deepseek").encode(text) == _reference_ids(text)


def test_counts_are_exact_and_offline() -> None:
    """Counted from the bundled file alone (no tokenizers package needed); the ids of
    "Hello 世界" are DeepSeek's: 'Hello', ' ', '世界'."""
    tokenizer = get_tokenizer("deepseek")
    assert tokenizer.exact
    assert tokenizer.count("") == 0
    assert len(tokenizer.encode("Hello 世界")) == 3
    # An added token is one token, as the model sees it; OpenAI's encodings count it as text.
    assert tokenizer.count("<think>") == 1
    assert get_tokenizer("o200k_base").count("<|endoftext|>") == 7


@pytest.mark.parametrize(
    ("name", "tokenizer"),
    [
        ("deepseek-chat", "deepseek"),
        ("deepseek-reasoner", "deepseek"),
        ("deepseek-flash", "deepseek"),
        ("deepseek-v4-pro", "deepseek"),
        ("us.deepseek.v3.2", "deepseek"),
        ("deepseek.r1-v1:0", "deepseek"),
        ("fireworks_ai/accounts/fireworks/models/deepseek-v3p1", "deepseek"),
        ("novita/deepseek/deepseek-v3/community", "deepseek"),
        # Qwen and Llama models distilled from R1, and the older vocabularies: not this BPE.
        ("deepinfra/deepseek-ai/DeepSeek-R1-Distill-Llama-70B", "approximate"),
        ("fireworks_ai/accounts/fireworks/models/deepseek-coder-v2-instruct", "approximate"),
        ("fireworks_ai/accounts/fireworks/models/deepseek-v2p5", "approximate"),
        ("fireworks_ai/accounts/fireworks/models/deepseek-prover-v2", "approximate"),
    ],
)
def test_catalog_deepseek_models(name: str, tokenizer: str) -> None:
    assert load_catalog().models[name].tokenizer == tokenizer


def test_guess_for_models_outside_the_catalog() -> None:
    assert guess_tokenizer("deepseek-v4.2-flash") == "deepseek"
    assert guess_tokenizer("deepseek-r1-distill-qwen-7b") is None


@needs_reference
def test_chat_framing_follows_deepseeks_chat_template() -> None:
    """DeepSeek's chat template writes ``<BOS>{system}<User>{text}<Assistant>`` for a
    generation: the request's tokens are those of that string in the reference tokenizer."""
    from promptbudget.counting import count_prompt
    from promptbudget.templates.rendered import Message, RenderedPrompt

    system, user = "You answer in one line.", "What is 12 + 30?"
    rendered = RenderedPrompt(
        messages=(Message("system", (system,)), Message("user", (user,))), variables=()
    )
    counted = count_prompt(rendered, get_tokenizer("deepseek"))
    template = f"<｜begin▁of▁sentence｜>{system}<｜User｜>{user}<｜Assistant｜>"
    # The system message has no tag of its own: one token of framing too many, by design
    # (one framing figure per message for every role).
    assert counted.request_tokens == len(_reference_ids(template)) + 1
