"""Offline token counting.

The ``o200k_base`` and ``cl100k_base`` rank files ship inside this package (``data/``). They are
verified against the sha256 that tiktoken itself expects, parsed once per process and handed to
``tiktoken.Encoding``; nothing is ever downloaded. Models without a public tokenizer (Claude 3+,
Gemini) are counted as ``o200k_base`` times a documented per-family factor and reported as
estimates, never as exact.
"""

from __future__ import annotations

import array
import binascii
import contextlib
import hashlib
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import cache, cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptbudget.cache import active_store, cache_key
from promptbudget.errors import PromptBudgetError, TokenizerUnavailableError
from promptbudget.runmemo import note_read

if TYPE_CHECKING:
    import tiktoken


@dataclass(frozen=True)
class EncodingSpec:
    """What tiktoken needs to build an encoding; values from tiktoken 0.14.0's openai_public.py."""

    name: str
    sha256: str
    pat_str: str
    special_tokens: dict[str, int]


_O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

ENCODINGS: dict[str, EncodingSpec] = {
    "o200k_base": EncodingSpec(
        name="o200k_base",
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        pat_str=_O200K_PATTERN,
        special_tokens={"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    ),
    "cl100k_base": EncodingSpec(
        name="cl100k_base",
        sha256="223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
        pat_str=(
            r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+"""
            r"""| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
        ),
        special_tokens={
            "<|endoftext|>": 100257,
            "<|fim_prefix|>": 100258,
            "<|fim_middle|>": 100259,
            "<|fim_suffix|>": 100260,
            "<|endofprompt|>": 100276,
        },
    ),
}


@dataclass(frozen=True)
class TokenizerSpec:
    """How one model family is counted.

    ``factor`` scales the base encoding's count; 1 with ``exact=True`` means the real tokenizer.
    ``error_band`` and ``source`` are shown to users wherever an estimate is reported.
    """

    name: str
    encoding: str
    exact: bool
    factor: Decimal = Decimal(1)
    error_band: str = "exact"
    source: str = "tiktoken rank files bundled with promptbudget"
    # Chat framing: tokens per message, per ``name`` field, and once per request.
    tokens_per_message: int = 3
    tokens_per_name: int = 1
    tokens_per_reply: int = 3
    # A Hugging Face tokenizer.json the project supplies (exact for its model); None: a
    # bundled tiktoken encoding.
    file: Path | None = None


TOKENIZERS: dict[str, TokenizerSpec] = {
    spec.name: spec
    for spec in (
        TokenizerSpec(name="o200k_base", encoding="o200k_base", exact=True),
        TokenizerSpec(name="cl100k_base", encoding="cl100k_base", exact=True),
        TokenizerSpec(
            name="claude",
            encoding="o200k_base",
            exact=False,
            factor=Decimal("1.18"),
            error_band="±20%",
            source=(
                "Claude up to Opus/Sonnet 4.6 and Haiku 4.5: o200k_base x 1.18, the offline "
                "correction calibrated against count_tokens in sammcj/ingest#65"
            ),
        ),
        TokenizerSpec(
            name="claude-4.7",
            encoding="o200k_base",
            exact=False,
            factor=Decimal("1.53"),
            error_band="±20%",
            source=(
                "Claude Opus 4.7 and later (Opus 4.8, the 5.x family, Fable, Haiku 5.5): "
                "o200k_base x 1.53 (sammcj/ingest#65; Anthropic: ~30% more tokens than the "
                "earlier tokenizer)"
            ),
        ),
        TokenizerSpec(
            name="gemini",
            encoding="o200k_base",
            exact=False,
            factor=Decimal("1.08"),
            error_band="±15%",
            source=(
                "Gemini (SentencePiece, not published): o200k_base x 1.08; English prose runs "
                "5-10% above o200k_base, CJK text lower"
            ),
        ),
        TokenizerSpec(
            name="approximate",
            encoding="o200k_base",
            exact=False,
            factor=Decimal(1),
            error_band="±25%",
            source=(
                "no bundled tokenizer for this model (Llama, Mistral, DeepSeek, custom): "
                "o200k_base, uncalibrated"
            ),
        ),
    )
}


@dataclass(frozen=True)
class Tokenizer:
    """Counts text for one tokenizer spec. Build it with ``get_tokenizer``.

    ``encoding`` is a tiktoken ``Encoding``, or a ``tokenizers.Tokenizer`` loaded from a
    project's tokenizer.json (``spec.file``); it is built the first time a text is not found
    in the cache (a fully cached run builds none).
    """

    spec: TokenizerSpec
    # Built the first time a text is not found in the cache (``loaded_encoding``); given
    # here only by tests.
    encoding: Any = field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def exact(self) -> bool:
        return self.spec.exact

    def loaded_encoding(self) -> Any:
        """The tiktoken ``Encoding`` or ``tokenizers.Tokenizer``, built on first use."""
        if self.encoding is None:
            if self.spec.file is not None:
                built = _load_tokenizer_file(self.spec.file)
            else:
                built = load_encoding(self.spec.encoding)
            object.__setattr__(self, "encoding", built)  # a cache of a frozen value
        return self.encoding

    @cached_property
    def identity(self) -> str:
        """What the counts depend on: the rank file's sha256, or the tokenizer.json's."""
        if self.spec.file is not None:
            try:
                data = self.spec.file.read_bytes()
            except OSError as err:
                raise TokenizerUnavailableError(f"{self.spec.file.name}: {err}") from err
            note_read(self.spec.file, data)
            return "tokenizer.json:" + hashlib.sha256(data).hexdigest()
        encoding = ENCODINGS.get(self.spec.encoding)
        return f"{self.spec.encoding}:{encoding.sha256 if encoding else ''}"

    def count(self, text: str) -> int:
        """Tokens in ``text`` (special-token strings count as plain text)."""
        if not text:
            return 0
        base = self._base_count(text)
        if self.spec.exact:
            return base
        return int((base * self.spec.factor).to_integral_value(rounding=ROUND_HALF_UP))

    def _base_count(self, text: str) -> int:
        """Tokens of the base encoding, from the cache when this exact text was counted by
        the same encoding before."""
        store = active_store()
        if store is None:
            return len(self.encode(text))
        key = cache_key("tokens", self.identity, text)
        cached = store.get(key)
        if isinstance(cached, int) and not isinstance(cached, bool) and cached >= 0:
            return cached
        counted = len(self.encode(text))
        store.put(key, counted)
        return counted

    def encode(self, text: str) -> list[int]:
        """Token ids in the base encoding (for exact tokenizers these are the real ids).

        A panic in the Rust library (a malformed tokenizer.json can cause one) is a
        ``TokenizerUnavailableError``, not a ``BaseException`` that escapes every handler."""
        if self.spec.file is not None:
            with rust_call(f"the {self.spec.encoding} tokenizer failed while counting"):
                ids: list[int] = self.loaded_encoding().encode(text, add_special_tokens=False).ids
            return ids
        try:  # the bundled, verified rank files: no need to withhold stderr on every call
            result: list[int] = self.loaded_encoding().encode_ordinary(text)
        except BaseException as err:
            if is_rust_panic(err):
                raise TokenizerUnavailableError(
                    f"the {self.spec.encoding} tokenizer failed while counting (a panic in "
                    f"tiktoken: {_first_line(err)})"
                ) from err
            raise
        return result


def is_rust_panic(err: BaseException) -> bool:
    """pyo3 turns a Rust panic into ``PanicException``, which derives from ``BaseException``
    (so that ``except Exception`` does not swallow it) and cannot be imported by name."""
    return type(err).__name__ == "PanicException"


@contextlib.contextmanager
def rust_call(what: str) -> Iterator[None]:
    """Around a call into tiktoken or tokenizers: an error the library raises, or a panic,
    becomes a one-line ``TokenizerUnavailableError`` ("WHAT (MESSAGE)"), and what Rust's panic
    hook writes to file descriptor 2 is withheld, so the error stays one line."""
    with _stderr_withheld():
        try:
            yield
        except BaseException as err:
            if not (is_rust_panic(err) or isinstance(err, Exception)):
                raise  # KeyboardInterrupt, SystemExit
            if isinstance(err, PromptBudgetError):
                raise
            kind = "a panic in the library: " if is_rust_panic(err) else ""
            raise TokenizerUnavailableError(f"{what} ({kind}{_first_line(err)})") from err


@contextlib.contextmanager
def _stderr_withheld() -> Iterator[None]:
    try:
        saved = os.dup(2)
    except OSError:  # no standard error to protect
        yield
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, 2)
        finally:
            os.close(null)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _read_rank_file(spec: EncodingSpec) -> bytes:
    try:
        data = resources.files(__package__).joinpath(f"data/{spec.name}.tiktoken").read_bytes()
    except OSError as err:
        raise TokenizerUnavailableError(
            f"the bundled {spec.name} rank file is missing ({err}); reinstall promptbudget-cli"
        ) from err
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise TokenizerUnavailableError(
            f"the bundled {spec.name} rank file is corrupt (sha256 {digest}, expected "
            f"{spec.sha256}); reinstall promptbudget-cli"
        )
    return data


def parse_rank_file(data: bytes) -> dict[bytes, int]:
    """tiktoken's format: one ``<base64 token> <rank>`` pair per line.

    Split once and decode with ``binascii`` (twice as fast as ``base64.b64decode`` per line,
    which is what ``tiktoken.load`` does); the result is the same mapping.
    """
    fields = data.split()
    if len(fields) % 2:
        raise TokenizerUnavailableError(
            "a bundled rank file is malformed; reinstall promptbudget-cli"
        )
    return dict(zip(map(binascii.a2b_base64, fields[0::2]), map(int, fields[1::2]), strict=True))


@cache
def load_encoding(name: str) -> tiktoken.Encoding:
    """The tiktoken encoding ``name``, from the bundled, verified rank file. Loaded once.

    The rank file's sha256 is checked on every load. Its parsed form is kept in the cache
    (under that sha256, signed like every cache file): splitting a pre-parsed table is about
    twice as fast as decoding 200,000 base64 lines; building tiktoken's BPE itself is the
    same either way.
    """
    import tiktoken

    try:
        spec = ENCODINGS[name]
    except KeyError:
        raise TokenizerUnavailableError(
            f"unknown encoding {name!r}; bundled encodings: {', '.join(sorted(ENCODINGS))}"
        ) from None
    data = _read_rank_file(spec)
    store = active_store()
    blob_name = f"ranks-{spec.name}-{spec.sha256[:16]}"
    packed = store.get_blob(blob_name) if store is not None else None
    ranks = unpack_ranks(packed) if packed is not None else None
    if ranks is None:
        ranks = parse_rank_file(data)
        if store is not None:
            store.put_blob(blob_name, pack_ranks(ranks))
    with rust_call(f"the {spec.name} encoding cannot be built; reinstall promptbudget-cli"):
        return tiktoken.Encoding(
            spec.name,
            pat_str=spec.pat_str,
            mergeable_ranks=ranks,
            special_tokens=spec.special_tokens,
        )


def pack_ranks(ranks: dict[bytes, int]) -> bytes:
    """Tokens in rank order as (count, lengths as uint16, the tokens' bytes end to end); only
    for rank tables numbered 0..n-1, as tiktoken's are (otherwise: empty, never used)."""
    ordered = sorted(ranks, key=ranks.__getitem__)
    if [ranks[token] for token in ordered] != list(range(len(ordered))):
        return b""
    lengths = array.array("H", map(len, ordered))
    if sys.byteorder != "little":
        lengths.byteswap()
    return len(ordered).to_bytes(4, "little") + lengths.tobytes() + b"".join(ordered)


def unpack_ranks(packed: bytes) -> dict[bytes, int] | None:
    """The table ``pack_ranks`` made; None if ``packed`` is not one."""
    if len(packed) < 4:
        return None
    count = int.from_bytes(packed[:4], "little")
    lengths = array.array("H")
    lengths.frombytes(packed[4 : 4 + 2 * count])
    if sys.byteorder != "little":
        lengths.byteswap()
    start = 4 + 2 * count
    if len(lengths) != count or len(packed) != start + sum(lengths):
        return None
    tokens = []
    for length in lengths:
        tokens.append(packed[start : start + length])
        start += length
    return dict(zip(tokens, range(count), strict=True))


@cache
def get_tokenizer(name: str) -> Tokenizer:
    """The tokenizer called ``name`` (a key of ``TOKENIZERS``); encodings load lazily, once."""
    try:
        spec = TOKENIZERS[name]
    except KeyError:
        raise TokenizerUnavailableError(
            f"unknown tokenizer {name!r}; known tokenizers: {', '.join(sorted(TOKENIZERS))}"
        ) from None
    return Tokenizer(spec=spec)


TOKENIZERS_EXTRA_HINT = "pip install 'promptbudget-cli[tokenizers]'"


def _tokenizers_module() -> Any:
    try:
        import tokenizers
    except ImportError as err:
        raise TokenizerUnavailableError(
            f"a tokenizer.json needs the tokenizers package: {TOKENIZERS_EXTRA_HINT}"
        ) from err
    return tokenizers


# Counted once when a tokenizer.json is loaded: text that reaches the normalizer, the
# pre-tokenizer, the model and the added tokens, so that a file that panics while counting
# is reported with the manifest line naming it rather than in the middle of a run.
_PROBE = "You answer 12 questions.\n\t Ünïcode ▁ 日本語 <s> ##x [UNK] 😀"


def _load_tokenizer_file(path: Path) -> Any:
    tokenizers = _tokenizers_module()
    with rust_call(f"{path.name} is not a Hugging Face tokenizer.json"):
        loaded = tokenizers.Tokenizer.from_file(str(path))
    with rust_call(f"{path.name} is not a usable Hugging Face tokenizer.json: it fails on text"):
        loaded.encode(_PROBE, add_special_tokens=False)
    return loaded


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def register_tokenizer_file(path: Path, shown: str) -> str:
    """Make a project's tokenizer.json a tokenizer (exact for the model that names it) and
    return its name. The file is read now, so that a broken one is reported by the manifest."""
    resolved = path.resolve()
    name = f"file:{shown}"
    existing = TOKENIZERS.get(name)
    if existing is not None and existing.file == resolved:
        return name
    _load_tokenizer_file(resolved)  # fails now, with the file's name, if it cannot be used
    TOKENIZERS[name] = TokenizerSpec(
        name=name,
        encoding=shown,
        exact=True,
        source=f"{shown} (a Hugging Face tokenizer.json from the project)",
        file=resolved,
    )
    get_tokenizer.cache_clear()
    return name


# OpenAI model ids -> encoding, by prefix, in tiktoken 0.14.0's order (model.py).
_OPENAI_PREFIXES: tuple[tuple[str, str], ...] = (
    ("gpt-oss-", "o200k_base"),  # o200k_harmony in tiktoken; same ranks for plain text
    ("gpt-6", "o200k_base"),
    ("gpt-5", "o200k_base"),
    ("gpt-4.5", "o200k_base"),
    ("gpt-4.1", "o200k_base"),
    ("chatgpt-4o", "o200k_base"),
    ("gpt-4o", "o200k_base"),
    ("ft:gpt-4o", "o200k_base"),
    ("o1", "o200k_base"),
    ("o3", "o200k_base"),
    ("o4-mini", "o200k_base"),
    ("gpt-4", "cl100k_base"),
    ("ft:gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("gpt-35", "cl100k_base"),
    ("ft:gpt-3.5", "cl100k_base"),
    ("text-embedding-3", "cl100k_base"),
    ("text-embedding-ada-002", "cl100k_base"),
)

_CLAUDE_NEW = re.compile(r"claude-(?:opus-4-[7-9]|opus-[5-9]|sonnet-[5-9]|haiku-[5-9]|fable)")


def guess_tokenizer(model: str) -> str | None:
    """The tokenizer for a model id that is not in the catalog, or None if unknown.

    OpenAI ids follow tiktoken's prefixes; Claude and Gemini ids map to their estimate
    families. A provider prefix (``openai/``, ``azure/``) is ignored.
    """
    bare = model.rsplit("/", 1)[-1].lower()
    for prefix, encoding in _OPENAI_PREFIXES:
        if bare.startswith(prefix):
            return encoding
    if bare.startswith("claude"):
        return "claude-4.7" if _CLAUDE_NEW.search(bare) else "claude"
    if bare.startswith("gemini"):
        return "gemini"
    return None
