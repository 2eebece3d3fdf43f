"""A project's tokenizer.json is hostile input: whatever it holds, loading and counting end in
a one-line error (exit 2), never in pyo3's ``PanicException`` (a ``BaseException`` that
escapes every ``except Exception``) with a traceback and exit 1."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from promptbudget.cli import main
from promptbudget.errors import TokenizerUnavailableError
from promptbudget.tokenizers import Tokenizer, TokenizerSpec

tokenizers = pytest.importorskip("tokenizers", reason="the tokenizers extra is not installed")

TEXT = "You answer 12 questions about Acme's products.\n Ünïcode 日本 <s> ##x"
# Parts of a tokenizer.json that the library accepts but then trips over (found by fuzzing
# tokenizers 0.23): an empty pattern or prefix, a charsmap that is not one, a stride that
# does not fit the length.
TRAPS: list[dict[str, Any]] = [
    {"normalizer": {"type": "Replace", "pattern": {"String": ""}, "content": "x"}},
    {"normalizer": {"type": "Prepend", "prepend": ""}},
    {"normalizer": {"type": "Precompiled", "precompiled_charsmap": "AQAAAAAAAAAAAAAA"}},
    {"normalizer": {"type": "Precompiled", "precompiled_charsmap": "AAAA"}},
    {
        "truncation": {
            "direction": "Right",
            "max_length": 2,
            "strategy": "LongestFirst",
            "stride": 5,
        }
    },
]
STRINGS = ["", "x", "Ġ", "##", "<s>", "Ġa", "é", "\u0000"]


@pytest.fixture(scope="module")
def trained() -> dict[str, Any]:
    """A small byte-level BPE tokenizer.json, trained here (no download)."""
    from tokenizers import models, pre_tokenizers, trainers

    tokenizer = tokenizers.Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>"])
    corpus = ["You answer questions about Acme's products.", "Acme sells anvils."] * 50
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    data: dict[str, Any] = json.loads(tokenizer.to_str())
    return data


def mutate(base: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One to three edits of the kinds a bad merge, a hand edit or a stranger's pull request
    makes: entries removed or renumbered, merges pointing nowhere, odd prefixes, added tokens
    moved, dropout out of range, a trap from TRAPS."""
    doc = copy.deepcopy(base)
    model = doc["model"]
    for _ in range(rng.randint(1, 3)):
        keys = list(model["vocab"]) or ["x"]
        kind = rng.randrange(9)
        if kind == 0 and model["vocab"]:
            del model["vocab"][rng.choice(keys)]
        elif kind == 1:
            model["vocab"][rng.choice(keys)] = rng.randint(-3, 600)
        elif kind == 2 and model["merges"]:
            index = rng.randrange(len(model["merges"]))
            model["merges"][index] = [rng.choice(keys + STRINGS), rng.choice(keys + STRINGS)]
        elif kind == 3:
            key = rng.choice(["continuing_subword_prefix", "end_of_word_suffix", "unk_token"])
            model[key] = rng.choice(STRINGS)
        elif kind == 4:
            doc["added_tokens"][0]["id"] = rng.randint(-3, 600)
        elif kind == 5:
            doc["added_tokens"][0]["content"] = rng.choice(STRINGS)
        elif kind == 6:
            model["dropout"] = rng.choice([0.0, 0.5, 1.0, 1.5, -0.1])
        elif kind == 7:
            doc.update(copy.deepcopy(rng.choice(TRAPS)))
        else:
            model["byte_fallback"] = True
    return doc


def count_with(path: Path) -> int:
    """What a run does with a project's tokenizer.json: load it, then count text with it."""
    spec = TokenizerSpec(name="file:t", encoding="t.json", exact=True, file=path)
    return Tokenizer(spec=spec).count(TEXT)


def with_encoding(tokenizer: Tokenizer, encoding: object) -> Tokenizer:
    """``tokenizer`` with its (lazily built) encoding already set to ``encoding``."""
    tokenizer.__dict__["encoding"] = encoding
    return tokenizer


def test_a_thousand_mutated_tokenizer_files_never_escape_as_panics(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    rng = random.Random(20)
    outcomes = {"counted": 0, "refused": 0, "panic": 0}
    for index in range(1000):
        path = tmp_path / f"t{index}.json"
        path.write_text(json.dumps(mutate(trained, rng)), encoding="utf-8")
        try:
            count_with(path)
            outcomes["counted"] += 1
        except TokenizerUnavailableError as err:  # anything else fails the test
            message = str(err)
            assert "\n" not in message and message.startswith(f"t{index}.json is not a")
            outcomes["refused"] += 1
            outcomes["panic"] += "a panic in the library" in message
    # The corpus must really hold panics (and files that work), or it proves nothing.
    assert outcomes["panic"] >= 30, outcomes
    assert outcomes["counted"] >= 100, outcomes


def test_a_panic_while_counting_is_a_one_line_error(
    trained: dict[str, Any], tmp_path: Path
) -> None:
    """A tokenizer that loads and only panics on some text (past the load-time probe)."""
    doc = dict(trained, normalizer={"type": "Prepend", "prepend": ""})
    loaded = tokenizers.Tokenizer.from_str(json.dumps(doc))
    spec = TokenizerSpec(
        name="file:t", encoding="tokenizers/t.json", exact=True, file=tmp_path / "t.json"
    )
    with pytest.raises(TokenizerUnavailableError) as info:
        with_encoding(Tokenizer(spec=spec), loaded).count(TEXT)
    assert str(info.value).startswith(
        "the tokenizers/t.json tokenizer failed while counting (a panic in the library: "
    )


@pytest.mark.parametrize("trap", range(len(TRAPS)))
def test_check_on_a_project_with_a_panicking_tokenizer_is_exit_2_and_one_line(
    trained: dict[str, Any],
    make_project: Callable[..., Path],
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    trap: int,
) -> None:
    root = make_project(
        {
            "budgets.yaml": (
                "version: 1\nmodels:\n  acme:\n    tokenizer: tokenizers/acme.json\n"
                "    input_per_mtok: 1\n    output_per_mtok: 1\ndefaults: {model: acme}\n"
            ),
            "prompts/a.txt": "Hello.\n",
            "tokenizers/acme.json": json.dumps(dict(trained, **TRAPS[trap])),
        },
        dedent=False,
    )
    monkeypatch.chdir(root)
    monkeypatch.setenv("RUST_BACKTRACE", "1")
    code = main(["check"])
    _, err = capfd.readouterr()  # file descriptor 2 itself: Rust writes there
    assert code == 2
    assert err.startswith("promptbudget: error: budgets.yaml:4: ") and err.count("\n") == 1, err
    assert "acme.json is not a" in err
    assert "Traceback" not in err and "panicked" not in err


def test_a_tiktoken_panic_is_a_one_line_error() -> None:
    """pyo3 names the class PanicException and derives it from BaseException; one of the same
    name and base stands in for it, since tiktoken's bundled files give no way to cause one."""

    class PanicException(BaseException):
        pass

    class Panicking:
        def encode_ordinary(self, text: str) -> list[int]:
            raise PanicException("called `Result::unwrap()` on an `Err` value\nbacktrace")

    from promptbudget.tokenizers import TOKENIZERS

    tokenizer = with_encoding(Tokenizer(spec=TOKENIZERS["o200k_base"]), Panicking())
    with pytest.raises(TokenizerUnavailableError) as info:
        tokenizer.count("Hello")
    assert str(info.value) == (
        "the o200k_base tokenizer failed while counting (a panic in tiktoken: called "
        "`Result::unwrap()` on an `Err` value)"
    )
