"""Offline token counting.

The ``o200k_base`` and ``cl100k_base`` rank files ship inside this package (``data/``). They are
verified against the sha256 that tiktoken itself expects, parsed once per process and handed to
``tiktoken.Encoding``; nothing is ever downloaded. DeepSeek's tokenizer (MIT) ships the same
way, converted from its tokenizer.json to a rank file (gzip) and one pre-tokenizer pattern
that gives the same tokens as the Hugging Face ``tokenizers`` library
(``tests/unit/test_deepseek.py``). Models without a public tokenizer (Claude 3+,
Gemini) are counted as ``o200k_base`` times a documented per-family factor and reported as
estimates, never as exact.
"""

from __future__ import annotations

import binascii
import contextlib
import gzip
import hashlib
import io
import json
import os
import pickle
import re
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
from promptbudget.tokenizers.textclass import classify, estimate_for

if TYPE_CHECKING:
    import tiktoken


@dataclass(frozen=True)
class EncodingSpec:
    """What tiktoken needs to build an encoding; values from tiktoken 0.14.0's openai_public.py."""

    name: str
    sha256: str
    pat_str: str
    special_tokens: dict[str, int]
    # The rank file under data/ (gzip when it ends in .gz); default ``<name>.tiktoken``.
    data_file: str = ""
    # Added tokens matched in text, as the Hugging Face library does (a JSON object
    # {text: id} under data/, with its sha256); OpenAI's encodings count them as text.
    added_tokens_file: str = ""
    added_tokens_sha256: str = ""
    # ``data/<name>.ranks``: the rank file pre-parsed (``scripts/pack_ranks.py``), what
    # ``load_encoding`` reads.
    ranks_sha256: str = ""


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

# DeepSeek's pre-tokenizer is a sequence of three splits (digits in threes, runs of CJK
# ideographs and kana, then words, punctuation and spaces); tiktoken takes one pattern, so the
# third split's classes leave out what the first two took, and its lookahead stops where they
# begin. The last alternative keeps a run of characters no split matches as one piece.
_DS_CJK = "\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff"
_DS_WORD = rf"[\p{{L}}\p{{M}}&&[^{_DS_CJK}]]"
_DS_OTHER = rf"[^\s\p{{L}}\p{{M}}\p{{P}}\p{{S}}\p{{N}}{_DS_CJK}]"
_DEEPSEEK_PATTERN = "|".join(
    [
        r"\p{N}{1,3}",
        rf"[{_DS_CJK}]+",
        r"""[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+""",
        rf"[^\r\n\p{{L}}\p{{P}}\p{{S}}\p{{N}}{_DS_CJK}]?{_DS_WORD}+",
        rf" ?[\p{{P}}\p{{S}}&&[^{_DS_CJK}]]+[\r\n]*",
        r"\s*[\r\n]+",
        rf"\s+(?![^\s\p{{N}}{_DS_CJK}])",
        r"\s+",
        rf"(?:{_DS_OTHER}(?!{_DS_WORD}))+",
    ]
)

ENCODINGS: dict[str, EncodingSpec] = {
    "o200k_base": EncodingSpec(
        name="o200k_base",
        sha256="446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
        pat_str=_O200K_PATTERN,
        special_tokens={"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
        ranks_sha256="dc970779629908a31dfaa522fc704b76500d09c68c59a5cab195f6df7cd84994",
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
        ranks_sha256="0a50eed083a3987572d05fa4877e609274e0fcb1c0a636323d490e15116bcc9b",
    ),
    # From LiteLLM 1.110.2's deepseek_tokenizer.json (MIT, DeepSeek; sha256 4607b3d1...):
    # the byte-level BPE of DeepSeek V3, R1, V3.x and V4 (128,000 tokens; ranks are the ids)
    # and its 1,283 added tokens. data/deepseek.LICENSE is its licence.
    "deepseek": EncodingSpec(
        name="deepseek",
        sha256="9b6e8fe27470adbfa206de838cc05f00fa0ac2182abe9afe0b39cd4d5aa2cdb8",
        pat_str=_DEEPSEEK_PATTERN,
        special_tokens={},
        data_file="deepseek.tiktoken.gz",
        added_tokens_file="deepseek.added.json",
        added_tokens_sha256="828b3ae9646dfb41cde487eef25aa3656349db16fd99fc7cd39b3336a1412d5c",
        ranks_sha256="f9cbdfdf86a74b1ccb0f4e8d841add43454f0a55a41750fa43af86efc3e4b91f",
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
    # Whether a message's role is written out as text (OpenAI's ChatML) or is one of the
    # special tokens counted in ``tokens_per_message`` (DeepSeek's User tag).
    role_as_text: bool = True


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
            name="deepseek",
            encoding="deepseek",
            exact=True,
            source=(
                "DeepSeek's tokenizer (V3, R1, V3.x, V4; MIT), bundled as a rank file: the same "
                "tokens as its tokenizer.json in the Hugging Face library"
            ),
            # DeepSeek's chat template: a role tag per user turn (the assistant's tag and
            # end-of-sentence per assistant turn, none for system), BOS and the assistant tag
            # before the reply.
            tokens_per_message=1,
            tokens_per_name=0,
            tokens_per_reply=2,
            role_as_text=False,
        ),
        TokenizerSpec(
            name="approximate",
            encoding="o200k_base",
            exact=False,
            factor=Decimal(1),
            error_band="±25%",
            source=(
                "no bundled tokenizer for this model (Llama, Mistral, Qwen, custom): "
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
        if encoding is not None and encoding.added_tokens_file:
            pattern = hashlib.sha256(encoding.pat_str.encode()).hexdigest()[:16]
            return f"{encoding.name}:{encoding.sha256}:{encoding.added_tokens_sha256}:{pattern}"
        return f"{self.spec.encoding}:{encoding.sha256 if encoding else ''}"

    def count(self, text: str, text_class: str | None = None) -> int:
        """Tokens in ``text`` (special-token strings count as plain text, except the added
        tokens of an encoding that has them). An estimate scales the base count by the factor
        for ``text_class`` (``prose``, ``code``, ``cjk``, ``mixed``: the class of the
        message the text belongs to), or for the class of ``text`` itself when not given."""
        if not text:
            return 0
        base = self._base_count(text)
        if self.spec.exact:
            return base
        factor = self.factor(text_class or classify(text))
        return int((base * factor).to_integral_value(rounding=ROUND_HALF_UP))

    def role_tokens(self, role: str) -> int:
        """Tokens of a message's role beyond ``tokens_per_message``."""
        return self.count(role) if self.spec.role_as_text else 0

    def factor(self, text_class: str) -> Decimal:
        """The estimate factor over the base encoding for texts of ``text_class``."""
        estimate = estimate_for(self.spec.name, text_class)
        return estimate.factor if estimate is not None else self.spec.factor

    def error_band(self, text_class: str | None) -> str:
        """The band of a count of ``text_class`` text ("exact" for an exact tokenizer)."""
        if self.spec.exact:
            return "exact"
        estimate = estimate_for(self.spec.name, text_class) if text_class else None
        return estimate.band if estimate is not None else self.spec.error_band

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
            encoding = self.loaded_encoding()
            if ENCODINGS[self.spec.encoding].added_tokens_file:  # matched as the model does
                result: list[int] = encoding.encode(text, allowed_special="all")
            else:
                result = encoding.encode_ordinary(text)
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


def _read_data_file(spec: EncodingSpec, file_name: str, sha256: str, what: str) -> bytes:
    try:
        data = resources.files(__package__).joinpath(f"data/{file_name}").read_bytes()
    except OSError as err:
        raise TokenizerUnavailableError(
            f"the bundled {spec.name} {what} is missing ({err}); reinstall promptbudget-cli"
        ) from err
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise TokenizerUnavailableError(
            f"the bundled {spec.name} {what} is corrupt (sha256 {digest}, expected "
            f"{sha256}); reinstall promptbudget-cli"
        )
    return data


def _read_rank_file(spec: EncodingSpec) -> bytes:
    """The rank file's bytes (decompressed), after its sha256 is checked."""
    file_name = spec.data_file or f"{spec.name}.tiktoken"
    data = _read_data_file(spec, file_name, spec.sha256, "rank file")
    if file_name.endswith(".gz"):
        data = gzip.decompress(data)
    return data


def _added_tokens(spec: EncodingSpec) -> dict[str, int]:
    """The added tokens matched in text ({} for OpenAI's encodings)."""
    if not spec.added_tokens_file:
        return {}
    data = _read_data_file(
        spec, spec.added_tokens_file, spec.added_tokens_sha256, "added-token file"
    )
    loaded = json.loads(data)
    return {str(text): int(token) for text, token in loaded.items()}


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
    """The tiktoken encoding ``name``, from its bundled, verified rank table. Loaded once.

    The table is read from ``data/<name>.ranks``: the published rank file (``data/``, under
    tiktoken's own sha256) pre-parsed by ``scripts/pack_ranks.py``, checked against its own
    sha256 on every load. Loading it is about seven times as fast as decoding 200,000
    base64 lines; ``tests/unit/test_tokenizers.py`` proves it is exactly the published
    file's table. Building tiktoken's BPE from it costs the same either way.
    """
    import tiktoken

    try:
        spec = ENCODINGS[name]
    except KeyError:
        raise TokenizerUnavailableError(
            f"unknown encoding {name!r}; bundled encodings: {', '.join(sorted(ENCODINGS))}"
        ) from None
    packed = _read_data_file(spec, f"{spec.name}.ranks", spec.ranks_sha256, "rank table")
    ranks = unpack_ranks(packed)
    if ranks is None:
        raise TokenizerUnavailableError(
            f"the bundled {spec.name} rank table is malformed; reinstall promptbudget-cli"
        )
    with rust_call(f"the {spec.name} encoding cannot be built; reinstall promptbudget-cli"):
        return tiktoken.Encoding(
            spec.name,
            pat_str=spec.pat_str,
            mergeable_ranks=ranks,
            special_tokens={**spec.special_tokens, **_added_tokens(spec)},
        )


def pack_ranks(ranks: dict[bytes, int]) -> bytes:
    """The table as a pickle of two lists, the tokens and their ranks, in rank order: the C
    unpickler builds 200,000 bytes objects five times as fast as Python slices them."""
    ordered = sorted(ranks, key=ranks.__getitem__)
    return pickle.dumps((ordered, [ranks[token] for token in ordered]), protocol=4)


class _DataOnly(pickle.Unpickler):
    """Loads lists, tuples, bytes and integers only: any class or function is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"{module}.{name} is not data")


def unpack_ranks(packed: bytes) -> dict[bytes, int] | None:
    """The table ``pack_ranks`` made; None if ``packed`` is not one (its shape is checked,
    not every item: it is only ever given a shipped file whose sha256 was just checked)."""
    stream = io.BytesIO(packed)
    try:
        loaded = _DataOnly(stream).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, MemoryError):
        return None
    if stream.tell() != len(packed) or not (isinstance(loaded, tuple) and len(loaded) == 2):
        return None
    tokens, numbers = loaded
    if not (isinstance(tokens, list) and isinstance(numbers, list)) or len(tokens) != len(numbers):
        return None
    try:
        ranks = dict(zip(tokens, numbers, strict=True))
    except TypeError:  # an unhashable token
        return None
    return ranks if len(ranks) == len(tokens) else None


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
    ("codex-mini", "o200k_base"),  # codex-mini-latest: a fine-tuned o4-mini
    ("gpt-4", "cl100k_base"),
    ("ft:gpt-4", "cl100k_base"),
    ("gpt-3.5", "cl100k_base"),
    ("gpt-35", "cl100k_base"),
    ("ft:gpt-3.5", "cl100k_base"),
    ("davinci-002", "cl100k_base"),
    ("babbage-002", "cl100k_base"),
    ("ft:davinci-002", "cl100k_base"),
    ("ft:babbage-002", "cl100k_base"),
    ("text-embedding-3", "cl100k_base"),
    ("text-embedding-ada-002", "cl100k_base"),
)

# DeepSeek's API names and the V3/R1/V3.x/V4 open models (not the R1 distillations, which are
# Qwen and Llama models, nor the older V2 and Coder models with other vocabularies).
_DEEPSEEK = re.compile(r"^deepseek[-_.]?(?:chat|reasoner|flash|pro(?![a-z])|v3|v4|r1)(?!.*distill)")

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
    if _DEEPSEEK.search(bare):
        return "deepseek"
    return None
