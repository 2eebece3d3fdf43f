"""Convert LiteLLM ``model_prices_and_context_window.json`` entries to catalog vocabulary.

LiteLLM stores rates in US dollars per *token* as JSON floats; the catalog stores US dollars
per *million* tokens as decimal strings. The conversion goes through ``repr`` of the float, so
``2.5e-06`` becomes exactly ``"2.5"`` rather than a binary-float approximation.

Only the fields the catalog knows are read (list price, cache read/write, Anthropic's 1-hour
cache write, batch, the first long-context tier, limits, cache minimum, deprecation date,
source). Flex, priority, regional, audio, image, search and every other field are ignored.
The result is a plain mapping that ``catalog.model_from_mapping`` accepts; missing values are
omitted, never written as ``None``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from promptbudget.bounded import MAX_JSON_BYTES, InputBoundsError, load_json
from promptbudget.confine import ConfinementError, read_confined
from promptbudget.errors import PricesError

__all__ = [
    "guess_family",
    "infer_provider",
    "is_claude",
    "litellm_entry_to_catalog",
    "load_price_file",
    "per_mtok",
]

_MILLION = Decimal(1_000_000)

# LiteLLM field -> catalog field, for plain per-token rates.
_RATE_FIELDS: tuple[tuple[str, str], ...] = (
    ("input_cost_per_token", "input_per_mtok"),
    ("output_cost_per_token", "output_per_mtok"),
    ("cache_read_input_token_cost", "cache_read_per_mtok"),
    ("cache_creation_input_token_cost", "cache_write_per_mtok"),
    ("cache_creation_input_token_cost_above_1hr", "cache_write_1h_per_mtok"),
    ("input_cost_per_token_batches", "batch_input_per_mtok"),
    ("output_cost_per_token_batches", "batch_output_per_mtok"),
    ("cache_read_input_token_cost_batches", "batch_cache_read_per_mtok"),
)

# Long-context tier: LiteLLM prefix of ``<prefix>_above_<N>k_tokens`` -> tier field.
_TIER_FIELDS: tuple[tuple[str, str], ...] = (
    ("input_cost_per_token", "input_per_mtok"),
    ("output_cost_per_token", "output_per_mtok"),
    ("cache_read_input_token_cost", "cache_read_per_mtok"),
    ("cache_creation_input_token_cost", "cache_write_per_mtok"),
)

_TIER_KEY = re.compile(r"^input_cost_per_token_above_(\d+)k_tokens$")

# Model-name fragments -> vendor, checked in order against the LiteLLM key.
_VENDOR_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"claude"), "anthropic"),
    (re.compile(r"gemini|gemma"), "google"),
    (re.compile(r"llama"), "meta"),
    (re.compile(r"deepseek"), "deepseek"),
    (re.compile(r"mistral|mixtral|codestral|magistral|devstral|ministral|pixtral"), "mistral"),
    (re.compile(r"(^|/)(gpt-|chatgpt|o[1-9](-|$)|text-embedding|davinci|babbage)"), "openai"),
)

# LiteLLM ``litellm_provider`` -> vendor, when the name says nothing.
_PROVIDER_VENDORS: dict[str, str] = {
    "openai": "openai",
    "text-completion-openai": "openai",
    "azure": "openai",
    "anthropic": "anthropic",
    "gemini": "google",
    "vertex_ai-language-models": "google",
    "mistral": "mistral",
    "codestral": "mistral",
    "deepseek": "deepseek",
    "meta_llama": "meta",
}


def per_mtok(value: object) -> str:
    """A LiteLLM per-token rate as an exact per-million decimal string (``2.5e-06`` -> ``"2.5"``).

    Raises ``ValueError`` for anything that is not a finite, non-negative number.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise ValueError(f"not a per-token rate: {value!r}")
    text = repr(value) if isinstance(value, float) else str(value).strip()
    try:
        rate = Decimal(text)
    except InvalidOperation as err:
        raise ValueError(f"not a per-token rate: {value!r}") from err
    if not rate.is_finite() or rate < 0:
        raise ValueError(f"not a per-token rate: {value!r}")
    return _plain(rate * _MILLION)


def _plain(value: Decimal) -> str:
    """``value`` without trailing zeros or an exponent (``Decimal('1E+1')`` -> ``"10"``)."""
    text = format(value.normalize(), "f")
    return "0" if text in {"-0", "0"} else text


def _token_count(value: object, field: str) -> int:
    """An integral token count from LiteLLM (which sometimes writes ``4096.0``)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{field}: not a token count: {value!r}")
    try:
        number = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
    except InvalidOperation as err:
        raise ValueError(f"{field}: not a token count: {value!r}") from err
    if not number.is_finite() or number != number.to_integral_value() or number < 0:
        raise ValueError(f"{field}: not a token count: {value!r}")
    return int(number)


def is_claude(entry: Mapping[str, Any], name: str | None = None) -> bool:
    """True for Anthropic's API or a Claude model on any host (Bedrock, Vertex, Azure...)."""
    if entry.get("litellm_provider") == "anthropic":
        return True
    return name is not None and "claude" in name.lower()


def infer_provider(entry: Mapping[str, Any], name: str | None = None) -> str:
    """The model's vendor (``openai``, ``anthropic``, ``google``, ``mistral``, ``deepseek``,
    ``meta``), from the LiteLLM key when given, else from ``litellm_provider``.

    Falls back to ``litellm_provider`` itself (or ``"unknown"``) for other vendors.
    """
    if name is not None:
        lowered = name.lower()
        for pattern, vendor in _VENDOR_PATTERNS:
            if pattern.search(lowered):
                return vendor
    host = entry.get("litellm_provider")
    if isinstance(host, str) and host:
        return _PROVIDER_VENDORS.get(host, host)
    return "unknown"


def guess_family(name: str, vendor: object = None) -> str:
    """The tokenizer family for a LiteLLM key: OpenAI encodings by prefix, also behind a
    host's prefix (``bedrock/openai.gpt-oss-...``, ``databricks-gpt-5``); Claude and Gemini
    estimate families anywhere in the key (``bedrock/anthropic.claude-...``); any other model
    of the vendor ``openai`` (``computer-use-preview``, ``chat-latest``) ``o200k_base``;
    else ``approximate``."""
    from promptbudget.tokenizers import guess_tokenizer

    lowered = name.lower()
    bare = lowered.rsplit("/", 1)[-1]
    claude = lowered.find("claude")
    if claude >= 0:
        return guess_tokenizer(lowered[claude:].split(":")[0]) or "claude"
    if "gemini" in bare:
        return "gemini"
    deepseek = lowered.rfind("deepseek")  # us.deepseek.v3.2, .../deepseek-v3/community
    if deepseek >= 0:
        return guess_tokenizer(lowered[deepseek:].split("/")[0]) or "approximate"
    if bare.startswith("ft:"):  # a fine-tune counts as its base model: ft:gpt-4.1-...:org::id
        bare = bare[3:].split(":")[0]
    found = guess_tokenizer(bare)
    if found is not None:
        return found
    hosted = _OPENAI_HOSTED.search(bare)
    model = hosted.group(1) if hosted is not None else ""
    found = guess_tokenizer(model) if model else None
    # An OpenAI model tiktoken does not list by name (gpt-audio, computer-use-preview...):
    # every OpenAI model since gpt-4o uses o200k_base; the cl100k_base ones are listed.
    if found is None and (model.startswith("gpt-") or vendor == "openai"):
        found = "o200k_base"
    return found or "approximate"


# An OpenAI model id inside a host's key: ``openai.gpt-oss-120b-1:0`` (Bedrock, with region
# prefixes ``us.``, ``global.``), ``databricks-gpt-5-1``, ``openai-o3`` (Gradient),
# ``openai-gpt-4.1`` (Snowflake), ``FW-GPT-OSS-120B`` (Azure AI), ``gpt-oss:20b-cloud``
# (Ollama). ``gpt-j``, ``gpt-neox``, ``gpt-sw3`` and ``gpt2`` are not OpenAI models.
_OPENAI_HOSTED = re.compile(
    r"(?:^|[._-])((?:gpt-(?!j\b|j-|neo|sw|2\b)|chatgpt-|o[1-9](?:-|$)|codex-mini|davinci-002"
    r"|babbage-002)[^/]*)"
)


def _long_context(entry: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any] | None:
    """The lowest ``_above_<N>k_tokens`` tier, or ``None`` when the entry has none.

    A tier without its own output rate keeps the base output rate (LiteLLM does the same).
    """
    thresholds = sorted(
        int(match.group(1))
        for key, value in entry.items()
        if value is not None and (match := _TIER_KEY.match(key))
    )
    if not thresholds:
        return None
    n = thresholds[0]
    tier: dict[str, Any] = {"threshold_tokens": n * 1000}
    for prefix, target in _TIER_FIELDS:
        raw = entry.get(f"{prefix}_above_{n}k_tokens")
        if raw is not None:
            tier[target] = per_mtok(raw)
    if "output_per_mtok" not in tier:
        if "output_per_mtok" not in base:
            return None
        tier["output_per_mtok"] = base["output_per_mtok"]
    # Key order as in ``LongContextTier`` so generated JSON reads the same way every time.
    order = ("threshold_tokens", *(target for _, target in _TIER_FIELDS))
    return {key: tier[key] for key in order if key in tier}


def litellm_entry_to_catalog(
    entry: Mapping[str, Any], *, name: str | None = None
) -> dict[str, Any]:
    """One LiteLLM entry as a catalog mapping (without ``tokenizer`` or ``aliases``).

    ``name`` is the LiteLLM key; it is used only to recognise the vendor and Claude models
    served by other hosts. Keys whose value is unknown are left out.
    """
    out: dict[str, Any] = {
        "provider": infer_provider(entry, name),
        "billing": "anthropic" if is_claude(entry, name) else "openai",
    }
    for source_key, target in _RATE_FIELDS:
        raw = entry.get(source_key)
        if raw is not None:
            out[target] = per_mtok(raw)
    tier = _long_context(entry, out)
    if tier is not None:
        out["long_context"] = tier
    for source_key, target in (
        ("max_input_tokens", "context_window"),
        ("max_output_tokens", "max_output_tokens"),
        ("prompt_cache_min_tokens", "cache_min_tokens"),
    ):
        raw = entry.get(source_key)
        if raw is not None:
            out[target] = _token_count(raw, source_key)
    for key, target in (
        ("deprecation_date", "deprecation_date"),
        ("successor_model", "successor"),
        ("source", "source"),
    ):
        raw = entry.get(key)
        if isinstance(raw, str) and raw.strip():
            out[target] = raw.strip()
    off_peak = _off_peak(entry.get("off_peak_pricing"))
    if off_peak is not None:
        out["off_peak"] = off_peak
    unmodelled = unmodelled_dimensions(entry, name)
    if unmodelled:
        out["unmodelled"] = unmodelled
    return out


def _off_peak(raw: object) -> dict[str, Any] | None:
    """LiteLLM's ``off_peak_pricing`` (DeepSeek) as catalog rates plus its UTC windows."""
    if not isinstance(raw, Mapping):
        return None
    out: dict[str, Any] = {}
    for source_key, target in _RATE_FIELDS[:3]:
        value = raw.get(source_key)
        if value is not None:
            out[target] = per_mtok(value)
    windows = raw.get("windows")
    if "input_per_mtok" not in out or "output_per_mtok" not in out or not windows:
        return None
    from promptbudget.pricing.timeofday import parse_windows

    parse_windows(windows)  # raises ValueError when the windows cannot be read
    out["windows"] = windows
    return out


# LiteLLM fields for pricing dimensions promptbudget does not model -> what to call them.
_UNMODELLED_FIELDS: tuple[tuple[str, str], ...] = (
    ("cache_creation_input_token_cost_above_12hr", "12-hour cache writes"),
    ("tiered_pricing", "tiered pricing by prompt length"),
    ("input_cost_per_request", "a per-request fee"),
)


def unmodelled_dimensions(entry: Mapping[str, Any], name: str | None = None) -> list[str]:
    """Pricing dimensions of a LiteLLM entry that the cost model leaves out, in words."""
    found = [label for key, label in _UNMODELLED_FIELDS if entry.get(key) is not None]
    thresholds = {
        match.group(1)
        for key, value in entry.items()
        if value is not None and (match := _TIER_KEY.match(key))
    }
    if len(thresholds) > 1:
        found.append("long-context tiers above the first")
    host = str(entry.get("litellm_provider", ""))
    is_gemini = "gemini" in (name or "").lower() and (host == "gemini" or host.startswith("vertex"))
    if is_gemini and entry.get("cache_read_input_token_cost") is not None:
        # Gemini explicit caching bills storage per token-hour; LiteLLM has no field for it.
        found.append("cache storage per hour")
    return found


def load_price_file(path: Path, *, root: Path | None = None) -> dict[str, dict[str, Any]]:
    """Chat models of a LiteLLM-format price file, as catalog mappings keyed by model name.

    Entries without per-token input and output prices (images, audio, embeddings...) are
    skipped. Raises ``PricesError`` naming the file (and the entry) when it cannot be used.
    ``root``: the file must resolve inside it (a price file the manifest names); ``None``
    for a file named on the command line. Either way only a regular file is read.
    """
    if not path.exists() and not path.is_symlink():
        raise PricesError(f"{path}: no such price file")
    try:
        raw = read_confined(path, root=root, limit=MAX_JSON_BYTES)
        data = load_json(raw.decode("utf-8"))
    except ConfinementError as err:
        raise PricesError(str(err)) from err
    except UnicodeDecodeError as err:
        raise PricesError(f"{path}: cannot be read ({err})") from err
    except InputBoundsError as err:
        raise PricesError(f"{path}: {err}") from err
    except ValueError as err:
        raise PricesError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise PricesError(f"{path}: expected a JSON object of model names to prices")
    models: dict[str, dict[str, Any]] = {}
    for name, entry in data.items():
        if name == "sample_spec" or not isinstance(entry, dict):
            continue
        mode = entry.get("mode", "chat")
        if not isinstance(mode, str) or mode not in {"chat", "completion", "responses"}:
            continue
        if entry.get("input_cost_per_token") is None or entry.get("output_cost_per_token") is None:
            continue
        try:
            models[name] = litellm_entry_to_catalog(entry, name=name)
        except ValueError as err:
            raise PricesError(f"{path}: model {name!r}: {err}") from err
    if not models:
        raise PricesError(f"{path}: no chat model with input and output prices")
    return models
