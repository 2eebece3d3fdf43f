"""The bundled encodings are tiktoken's own, byte for byte, and load without a network."""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable
from decimal import Decimal as D
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from conftest import Run
from promptbudget.errors import TokenizerUnavailableError
from promptbudget.tokenizers import (
    ENCODINGS,
    TOKENIZERS,
    get_tokenizer,
    guess_tokenizer,
    load_encoding,
    parse_rank_file,
)


@pytest.mark.parametrize("name", ["cl100k_base", "o200k_base"])
def test_rank_files_match_tiktokens_expected_hashes(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our constants (hash, pattern, special tokens) equal what tiktoken itself would build."""
    from tiktoken_ext import openai_public

    data = resources.files("promptbudget.tokenizers").joinpath(f"data/{name}.tiktoken").read_bytes()
    seen: dict[str, Any] = {}

    def fake_load(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        seen["hash"] = expected_hash
        return parse_rank_file(data)

    monkeypatch.setattr(openai_public, "load_tiktoken_bpe", fake_load)
    constructor = getattr(openai_public, name)()
    spec = ENCODINGS[name]
    assert seen["hash"] == spec.sha256 == hashlib.sha256(data).hexdigest()
    assert constructor["pat_str"] == spec.pat_str
    assert constructor["special_tokens"] == spec.special_tokens


def test_parse_rank_file_matches_tiktokens_loader() -> None:
    import tiktoken.load

    data = b"IQ== 0\nIg== 1\nIw== 2\n"
    path = resources.files("promptbudget.tokenizers").joinpath("data/cl100k_base.tiktoken")
    assert parse_rank_file(data) == {b"!": 0, b'"': 1, b"#": 2}
    full = path.read_bytes()
    ours = parse_rank_file(full)
    expected = {
        __import__("base64").b64decode(tok): int(rank)
        for tok, rank in (line.split() for line in full.splitlines() if line)
    }
    assert ours == expected
    assert tiktoken.load.check_hash(full, ENCODINGS["cl100k_base"].sha256)


def test_encodings_load_without_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("promptbudget tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    load_encoding.cache_clear()
    get_tokenizer.cache_clear()
    try:
        tokenizer = get_tokenizer("o200k_base")
        assert tokenizer.count("Hello, world!") == 4
        assert get_tokenizer("cl100k_base").count("Hello, world!") == 4
    finally:
        load_encoding.cache_clear()
        get_tokenizer.cache_clear()


def test_known_counts() -> None:
    o200k = get_tokenizer("o200k_base")
    assert o200k.exact
    assert o200k.count("") == 0
    # Special-token text is counted as plain text, never interpreted.
    assert o200k.count("<|endoftext|>") == 7
    # The cookbook's example: [83, 1609, 5963, 374, 2294, 0] in cl100k_base.
    assert get_tokenizer("cl100k_base").encode("tiktoken is great!") == [
        83,
        1609,
        5963,
        374,
        2294,
        0,
    ]


def test_estimates_apply_the_documented_factor() -> None:
    base = get_tokenizer("o200k_base").count("The quick brown fox jumps over the lazy dog.")
    claude = get_tokenizer("claude")
    assert not claude.exact
    # ROUND_HALF_UP of 10 x 1.18 = 11.8 -> 12; 10 x 1.53 = 15.3 -> 15
    assert base == 10
    assert claude.count("The quick brown fox jumps over the lazy dog.") == 12
    assert get_tokenizer("claude-4.7").count("The quick brown fox jumps over the lazy dog.") == 15
    assert TOKENIZERS["claude"].factor == D("1.18")
    assert TOKENIZERS["claude-4.7"].factor == D("1.53")
    assert TOKENIZERS["gemini"].factor == D("1.08")
    for spec in TOKENIZERS.values():
        assert spec.exact == (spec.error_band == "exact")
        assert spec.source


@pytest.mark.parametrize(
    ("model", "tokenizer"),
    [
        ("gpt-4o", "o200k_base"),
        ("gpt-4o-2024-08-06", "o200k_base"),
        ("openai/gpt-4.1-mini", "o200k_base"),
        ("gpt-5.4", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-0613", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("claude-sonnet-4-6", "claude"),
        ("claude-3-5-sonnet-20241022", "claude"),
        ("claude-opus-4-7", "claude-4.7"),
        ("claude-haiku-5-5", "claude-4.7"),
        ("claude-fable-5-1", "claude-4.7"),
        ("gemini-2.5-pro", "gemini"),
        ("llama-3.3-70b", None),
    ],
)
def test_guess_tokenizer(model: str, tokenizer: str | None) -> None:
    assert guess_tokenizer(model) == tokenizer


def test_unknown_tokenizer_is_a_clear_error() -> None:
    with pytest.raises(TokenizerUnavailableError, match="known tokenizers"):
        get_tokenizer("sentencepiece")
    with pytest.raises(TokenizerUnavailableError, match="malformed"):
        parse_rank_file(b"IQ== 0\nIg==\n")


# -- a project's own tokenizer.json (optional extra: tokenizers) --------------------------------


def _train_tokenizer(path: Path) -> None:
    """A small byte-level BPE tokenizer.json, trained here (no download)."""
    tokenizers = pytest.importorskip("tokenizers", reason="the tokenizers extra is not installed")
    from tokenizers import models, pre_tokenizers, trainers

    tokenizer = tokenizers.Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<s>"])
    corpus = ["You answer questions about Acme's products.", "Acme sells anvils."] * 50
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    tokenizer.save(str(path))


def test_a_models_tokenizer_json_counts_exactly(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = make_project(
        {
            "budgets.yaml": (
                "version: 1\n"
                "models:\n"
                "  acme-llama:\n"
                "    tokenizer: tokenizers/acme.json\n"
                "    input_per_mtok: 0.2\n"
                "    output_per_mtok: 0.6\n"
                "defaults: {model: acme-llama}\n"
            ),
            "prompts/a.txt": "You answer questions about Acme's products.\n",
        },
        dedent=False,
    )
    (root / "tokenizers").mkdir()
    _train_tokenizer(root / "tokenizers/acme.json")
    import tokenizers

    trained = tokenizers.Tokenizer.from_file(str(root / "tokenizers/acme.json"))
    expected = len(
        trained.encode("You answer questions about Acme's products.\n", add_special_tokens=False)
    )
    run = run_cli("count", "--format", "json", cwd=root)
    assert run.exit_code == 0, run.stderr
    (template,) = run.json()["templates"]
    assert template["text_tokens"] == expected
    assert template["exact"] is True
    assert template["encoding"] == "tokenizers/acme.json"
    assert not [f for f in run.json()["findings"] if f["rule"] == "PB301"]


@pytest.mark.parametrize(
    ("file", "content", "message"),
    [
        ("tokenizers/missing.json", None, "tokenizer file 'tokenizers/missing.json' not found"),
        ("../outside.json", None, "a Hugging Face tokenizer.json inside the project"),
        ("tokenizers/broken.json", "{not json", "broken.json is not a Hugging Face tokenizer.json"),
    ],
)
def test_a_bad_tokenizer_json_is_a_manifest_error(
    make_project: Callable[..., Path],
    run_cli: Callable[..., Run],
    file: str,
    content: str | None,
    message: str,
) -> None:
    pytest.importorskip("tokenizers", reason="the tokenizers extra is not installed")
    files = {
        "budgets.yaml": (
            "version: 1\nmodels:\n  m:\n"
            f"    tokenizer: {file}\n    input_per_mtok: 1\n    output_per_mtok: 1\n"
        ),
    }
    if content is not None:
        files[file] = content
    root = make_project(files, dedent=False)
    run = run_cli("check", cwd=root)
    assert run.exit_code == 2
    assert "budgets.yaml:4:" in run.stderr and message in run.stderr


def test_without_the_extra_the_message_says_what_to_install(
    make_project: Callable[..., Path],
    run_cli: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import builtins

    real_import = builtins.__import__

    def no_tokenizers(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "tokenizers" or name.startswith("tokenizers."):
            raise ImportError("No module named 'tokenizers'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_tokenizers)
    root = make_project(
        {
            "budgets.yaml": (
                "version: 1\nmodels:\n  m:\n    tokenizer: t.json\n"
                "    input_per_mtok: 1\n    output_per_mtok: 1\n"
            ),
            "t.json": "{}",
        },
        dedent=False,
    )
    run = run_cli("check", cwd=root)
    assert run.exit_code == 2
    assert "pip install 'promptbudget-cli[tokenizers]'" in run.stderr


def test_the_packed_rank_table_is_the_parsed_rank_file() -> None:
    """load_encoding reads data/<name>.ranks: for every bundled encoding it must be exactly
    the published rank file's table (whose sha256 is tiktoken's own, tested above)."""
    from promptbudget.tokenizers import (
        ENCODINGS,
        _read_data_file,
        _read_rank_file,
        pack_ranks,
        unpack_ranks,
    )

    for name, spec in ENCODINGS.items():
        ranks = parse_rank_file(_read_rank_file(spec))
        shipped = _read_data_file(spec, f"{name}.ranks", spec.ranks_sha256, "rank table")
        assert unpack_ranks(shipped) == ranks, name
    table = {b"a": 0, b"bc": 7, b"\x00\xff": 3}
    packed = pack_ranks(table)
    assert unpack_ranks(packed) == table
    assert unpack_ranks(packed[:-1]) is None  # truncated
    assert unpack_ranks(packed + b"x") is None  # trailing bytes
    assert unpack_ranks(b"") is None
    assert unpack_ranks((10**6).to_bytes(4, "little")) is None  # not a pickle
    import os
    import pickle

    assert unpack_ranks(pickle.dumps(([os.getcwd], [0]))) is None  # code is never loaded
    assert unpack_ranks(pickle.dumps(([b"a", b"a"], [0, 1]))) is None  # a repeated token


def test_a_rank_table_that_is_not_the_shipped_one_is_refused() -> None:
    from promptbudget.tokenizers import _read_data_file

    spec = ENCODINGS["cl100k_base"]
    with pytest.raises(TokenizerUnavailableError, match="cl100k_base rank table is corrupt"):
        _read_data_file(spec, "cl100k_base.ranks", "0" * 64, "rank table")
