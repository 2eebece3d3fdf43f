#!/usr/bin/env python3
"""Build ``src/promptbudget/pricing/catalog.jsonl`` from LiteLLM's price file.

Usage::

    python scripts/build_catalog.py PATH_TO_LITELLM_JSON \
        [--out src/promptbudget/pricing/catalog.jsonl] [--as-of 2026-12-05]

``PATH_TO_LITELLM_JSON`` is ``litellm/model_prices_and_context_window_backup.json`` from the
LiteLLM wheel (1.110.2 for the bundled catalog)::

    pip download --no-deps litellm==1.110.2 -d /tmp/ll
    unzip -o -q /tmp/ll/litellm-*.whl 'litellm/model_prices_and_context_window_backup.json' \
        -d /tmp/ll/x

The catalog holds every text-generation entry of the file (modes chat, completion and
responses, with per-token input and output prices). The curated part lives here: the
canonical models (which LiteLLM key each comes from, its tokenizer, aliases and provider
rules, each with the source key of ``domain-facts.md`` ([S19], [S22], ...) that justifies
it); corrections to LiteLLM's values live in ``src/promptbudget/pricing/corrections.json``,
each dated and with its source. Every other entry keeps its LiteLLM key as its name (renamed
with its provider's route prefix when a canonical model already has that name, e.g. Vertex
AI's bare ``gemini-2.5-pro`` becomes ``vertex_ai/gemini-2.5-pro``) and gets a
provider-prefixed alias (``bedrock/anthropic.claude-...``). The conversion of one entry is
``promptbudget.pricing.litellm.litellm_entry_to_catalog``, shared with the product.

The output is one JSON line per model after a header line, so a lookup parses only its own
line; the build prints a diff report against the catalog it replaces.

The output is deterministic: the same input file and ``--as-of`` give the same bytes. A model
missing from LiteLLM, or a correction whose premise no longer holds (LiteLLM changed the value
being corrected), stops the build instead of guessing.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

from promptbudget.pricing.catalog import model_from_mapping  # noqa: E402
from promptbudget.pricing.litellm import (  # noqa: E402
    guess_family,
    litellm_entry_to_catalog,
    per_mtok,
)
from promptbudget.tokenizers import TOKENIZERS  # noqa: E402

LITELLM_VERSION = "1.110.2"
DEFAULT_AS_OF = "2026-12-05"
DEFAULT_OUT = ROOT / "src" / "promptbudget" / "pricing" / "catalog.jsonl"
CORRECTIONS_FILE = ROOT / "src" / "promptbudget" / "pricing" / "corrections.json"
TEXT_MODES = frozenset({"chat", "completion", "responses"})

# Key order of a model in catalog.json (the order fields are listed in the brief/dataclass).
FIELD_ORDER = (
    "provider",
    "host",
    "tokenizer",
    "billing",
    "input_per_mtok",
    "output_per_mtok",
    "cache_read_per_mtok",
    "cache_write_per_mtok",
    "cache_write_1h_per_mtok",
    "batch_input_per_mtok",
    "batch_output_per_mtok",
    "batch_cache_read_per_mtok",
    "long_context",
    "context_window",
    "max_output_tokens",
    "cache_min_tokens",
    "cache_increment_tokens",
    "deprecation_date",
    "successor",
    "off_peak",
    "unmodelled",
    "source",
    "notes",
    "aliases",
    "litellm_key",
)

# Vendor pricing pages (domain-facts.md source table), used when LiteLLM has no ``source``.
VENDOR_PRICING_PAGES = {
    # The OpenAI pricing page LiteLLM cites for its other OpenAI entries (the source table
    # has no general OpenAI pricing page; [S19] is the caching guide).
    "openai": "https://developers.openai.com/api/docs/pricing",
    "anthropic": "https://platform.claude.com/docs/en/about-claude/pricing",  # [S22]
    "google": "https://ai.google.dev/gemini-api/docs/pricing",  # [S26]
    "deepseek": "https://api-docs.deepseek.com/quick_start/pricing",  # [S39]
    # [S40] is Mistral's caching page (the source table has no Mistral pricing page); all
    # three Mistral entries carry LiteLLM's own model-card source, so this is a last resort.
    "mistral": "https://docs.mistral.ai/studio-api/conversations/advanced/prompt-caching",
}


@dataclass(frozen=True)
class ModelSpec:
    """One catalog model: its name, the LiteLLM key it comes from and the curated extras."""

    name: str
    litellm_key: str
    provider: str
    tokenizer: str
    aliases: tuple[str, ...] = ()
    notes: str | None = None
    # OpenAI from GPT-5.6 on bills cache writes at 1.25x input; earlier models write free.
    openai_paid_cache_writes: bool = False


O200K = "o200k_base"
CL100K = "cl100k_base"
CLAUDE = "claude"  # Claude up to Opus/Sonnet 4.6 and Haiku 4.5
CLAUDE_47 = "claude-4.7"  # Opus 4.7 and later, Opus 4.8, the 5.x family, Fable, Haiku 5.5
GEMINI = "gemini"
DEEPSEEK = "deepseek"  # V3, R1, V3.x and V4 share one BPE; bundled
APPROX = "approximate"

MODELS: tuple[ModelSpec, ...] = (
    # --- OpenAI: LiteLLM's bare keys are the first-party OpenAI API ----------------------
    ModelSpec(
        "gpt-6-astra",
        "gpt-6-astra",
        "openai",
        O200K,
        openai_paid_cache_writes=True,
        notes="Cache writes cost 1.25x input (GPT-5.6 and later) [S19].",
    ),
    ModelSpec(
        "gpt-6-sol",
        "gpt-6-sol",
        "openai",
        O200K,
        openai_paid_cache_writes=True,
        notes="Cache writes cost 1.25x input (GPT-5.6 and later) [S19].",
    ),
    ModelSpec(
        "gpt-6-luna",
        "gpt-6-luna",
        "openai",
        O200K,
        openai_paid_cache_writes=True,
        notes="Cache writes cost 1.25x input (GPT-5.6 and later) [S19].",
    ),
    ModelSpec(
        "gpt-5.6",
        "gpt-5.6",
        "openai",
        O200K,
        openai_paid_cache_writes=True,
        notes="Cache writes cost 1.25x input (GPT-5.6 and later) [S19].",
    ),
    ModelSpec("gpt-5.5", "gpt-5.5", "openai", O200K, aliases=("gpt-5.5-2026-04-23",)),
    ModelSpec("gpt-5.4", "gpt-5.4", "openai", O200K, aliases=("gpt-5.4-2026-03-05",)),
    ModelSpec(
        "gpt-5.4-mini", "gpt-5.4-mini", "openai", O200K, aliases=("gpt-5.4-mini-2026-03-17",)
    ),
    ModelSpec(
        "gpt-5.4-nano", "gpt-5.4-nano", "openai", O200K, aliases=("gpt-5.4-nano-2026-03-17",)
    ),
    ModelSpec("gpt-5", "gpt-5", "openai", O200K, aliases=("gpt-5-2025-08-07",)),
    # LiteLLM carries gpt-5-mini's deprecation date (2026-12-11); it is kept as is.
    ModelSpec("gpt-5-mini", "gpt-5-mini", "openai", O200K, aliases=("gpt-5-mini-2025-08-07",)),
    ModelSpec("gpt-5-nano", "gpt-5-nano", "openai", O200K, aliases=("gpt-5-nano-2025-08-07",)),
    ModelSpec("gpt-4.1", "gpt-4.1", "openai", O200K, aliases=("gpt-4.1-2025-04-14",)),
    ModelSpec(
        "gpt-4.1-mini", "gpt-4.1-mini", "openai", O200K, aliases=("gpt-4.1-mini-2025-04-14",)
    ),
    ModelSpec(
        "gpt-4.1-nano", "gpt-4.1-nano", "openai", O200K, aliases=("gpt-4.1-nano-2025-04-14",)
    ),
    # gpt-4o-2024-05-13 is priced 5/15, so it is deliberately *not* an alias of gpt-4o.
    ModelSpec(
        "gpt-4o", "gpt-4o", "openai", O200K, aliases=("gpt-4o-2024-08-06", "gpt-4o-2024-11-20")
    ),
    ModelSpec("gpt-4o-mini", "gpt-4o-mini", "openai", O200K, aliases=("gpt-4o-mini-2024-07-18",)),
    ModelSpec("o3", "o3", "openai", O200K, aliases=("o3-2025-04-16",)),
    ModelSpec("o4-mini", "o4-mini", "openai", O200K, aliases=("o4-mini-2025-04-16",)),
    ModelSpec(
        "gpt-4",
        "gpt-4",
        "openai",
        CL100K,
        aliases=("gpt-4-0613",),
        notes="Legacy model (cl100k_base); no prompt caching.",
    ),
    ModelSpec(
        "gpt-3.5-turbo",
        "gpt-3.5-turbo",
        "openai",
        CL100K,
        aliases=("gpt-3.5-turbo-0125",),
        notes="Legacy model (cl100k_base); no prompt caching.",
    ),
    # --- Anthropic: LiteLLM's bare keys are the first-party Anthropic API ----------------
    ModelSpec("claude-fable-5-1", "claude-fable-5-1", "anthropic", CLAUDE_47),
    ModelSpec("claude-opus-5-5", "claude-opus-5-5", "anthropic", CLAUDE_47),
    ModelSpec(
        "claude-sonnet-5-5",
        "claude-sonnet-5-5",
        "anthropic",
        CLAUDE_47,
        notes=(
            "Cache reads $0.10/MTok (batch $0.05) since Anthropic's cut of 2026-10-07 (0.05x "
            "input; $0.20 before) [S22]."
        ),
    ),
    ModelSpec("claude-haiku-5-5", "claude-haiku-5-5", "anthropic", CLAUDE_47),
    ModelSpec("claude-opus-4-8", "claude-opus-4-8", "anthropic", CLAUDE_47),
    ModelSpec(
        "claude-sonnet-4-6",
        "claude-sonnet-4-6",
        "anthropic",
        CLAUDE,
        notes=(
            "Cache minimum 1024 tokens per LiteLLM and Anthropic's docs; one gateway and one "
            "user report 2048 in practice [S49][S50]."
        ),
    ),
    ModelSpec(
        "claude-haiku-4-5",
        "claude-haiku-4-5",
        "anthropic",
        CLAUDE,
        aliases=("claude-haiku-4-5-20251001",),
    ),
    ModelSpec(
        "claude-opus-4-6",
        "claude-opus-4-6",
        "anthropic",
        CLAUDE,
        aliases=("claude-opus-4-6-20260205",),
    ),
    ModelSpec(
        "claude-sonnet-4-5",
        "claude-sonnet-4-5",
        "anthropic",
        CLAUDE,
        aliases=("claude-sonnet-4-5-20250929",),
    ),
    # --- Google: the ``gemini/`` keys are the Gemini Developer API (AI Studio), whose
    # pricing and caching pages [S25][S26] domain-facts checks against; the bare keys are
    # Vertex AI entries (different source, odd cache-write fields, deprecation dates).
    ModelSpec(
        "gemini-3.1-pro-preview",
        "gemini/gemini-3.1-pro-preview",
        "google",
        GEMINI,
        aliases=("gemini/gemini-3.1-pro-preview",),
    ),
    ModelSpec(
        "gemini-3.8-flash",
        "gemini/gemini-3.8-flash",
        "google",
        GEMINI,
        aliases=("gemini/gemini-3.8-flash",),
        notes=(
            "Price rises to $1.50 input / $7.50 output per MTok on 2027-01-01 "
            "($0.75/$3.75 through 2026-12-31) [S42]."
        ),
    ),
    ModelSpec(
        "gemini-2.5-pro",
        "gemini/gemini-2.5-pro",
        "google",
        GEMINI,
        aliases=("gemini/gemini-2.5-pro",),
        notes=(
            "Cache minimum corrected to 4096 tokens per the Gemini API caching docs; LiteLLM "
            "(1.109.1 to 1.110.2) says 2048, the Vertex AI figure [S25][S47]."
        ),
    ),
    ModelSpec(
        "gemini-2.5-flash",
        "gemini/gemini-2.5-flash",
        "google",
        GEMINI,
        aliases=("gemini/gemini-2.5-flash",),
        notes="Cache minimum 1024 tokens per the Gemini API caching docs (not in LiteLLM) [S25].",
    ),
    ModelSpec(
        "gemini-3.1-flash-lite",
        "gemini/gemini-3.1-flash-lite",
        "google",
        GEMINI,
        aliases=("gemini/gemini-3.1-flash-lite",),
    ),
    # --- DeepSeek: first-party ``deepseek/deepseek-flash`` and ``deepseek/deepseek-v4-pro``
    # (litellm_provider "deepseek"; identical to LiteLLM's bare keys).
    ModelSpec(
        "deepseek-flash",
        "deepseek/deepseek-flash",
        "deepseek",
        DEEPSEEK,
        aliases=("deepseek/deepseek-flash",),
        notes=(
            "Off-peak rates are half the listed (peak) price; peak is Mon-Fri 01-04 and "
            "06-10 UTC. Costs blend the two by the workflow's traffic profile [S39]."
        ),
    ),
    ModelSpec(
        "deepseek-v4-pro",
        "deepseek/deepseek-v4-pro",
        "deepseek",
        DEEPSEEK,
        aliases=("deepseek/deepseek-v4-pro",),
        notes=(
            "Off-peak rates are half the listed (peak) price; peak is Mon-Fri 01-04 and "
            "06-10 UTC. Costs blend the two by the workflow's traffic profile [S39]."
        ),
    ),
    # --- Mistral: first-party La Plateforme keys ``mistral/...`` ---------------------------
    ModelSpec(
        "mistral-large-latest",
        "mistral/mistral-large-latest",
        "mistral",
        APPROX,
        aliases=("mistral/mistral-large-latest",),
    ),
    ModelSpec(
        "mistral-medium-latest",
        "mistral/mistral-medium-latest",
        "mistral",
        APPROX,
        aliases=("mistral/mistral-medium-latest",),
    ),
    ModelSpec(
        "mistral-small-latest",
        "mistral/mistral-small-latest",
        "mistral",
        APPROX,
        aliases=("mistral/mistral-small-latest",),
    ),
    # --- Meta Llama: prices differ ~5x by host, so the host is part of the name ----------
    ModelSpec(
        "bedrock/llama-3.3-70b-instruct",
        "meta.llama3-3-70b-instruct-v1:0",
        "meta",
        APPROX,
        aliases=("meta.llama3-3-70b-instruct-v1:0", "us.meta.llama3-3-70b-instruct-v1:0"),
        notes=(
            "Amazon Bedrock on-demand price; other hosts differ (e.g. Together $1.04, "
            "DeepInfra $0.23/$0.40)."
        ),
    ),
    ModelSpec(
        "bedrock/llama-4-maverick",
        "meta.llama4-maverick-17b-instruct-v1:0",
        "meta",
        APPROX,
        aliases=(
            "meta.llama4-maverick-17b-instruct-v1:0",
            "us.meta.llama4-maverick-17b-instruct-v1:0",
        ),
        notes="Amazon Bedrock on-demand price; other hosts differ (e.g. Fireworks $0.22/$0.88).",
    ),
)

# Anthropic minimum cacheable prompt length, domain-facts §6 [S48][S4]; used only when
# LiteLLM has no ``prompt_cache_min_tokens`` (a disagreement is reported on stderr).
ANTHROPIC_CACHE_MIN = {
    "claude-fable-5-1": 512,  # Fable 5.x
    "claude-opus-5-5": 512,  # Opus 5/5.5
    "claude-sonnet-5-5": 512,  # Sonnet 5.5
    "claude-haiku-5-5": 512,  # Haiku 5.5
    "claude-opus-4-8": 1024,  # Opus 4.8
    "claude-sonnet-4-6": 1024,  # Sonnet 4.5/4.6
    "claude-sonnet-4-5": 1024,  # Sonnet 4.5/4.6
    "claude-opus-4-6": 4096,  # Opus 4.5/4.6
    "claude-haiku-4-5": 4096,  # Haiku 4.5
}

# OpenAI automatic caching starts at 1024 prompt tokens [S19].
OPENAI_CACHE_MIN = 1024
OPENAI_CACHE_INCREMENT = 128


@dataclass(frozen=True)
class Correction:
    """Replace one field LiteLLM has wrong. ``field`` may be ``long_context.<field>``.

    ``litellm_value`` is what LiteLLM (converted) says today; if it changes upstream the
    build stops so that someone re-checks the correction instead of silently overriding.
    """

    model: str
    field: str
    value: str | int
    litellm_value: str | int | None
    reason: str
    source: str
    checked: str  # date the correction was last checked against ``source``


def load_corrections(path: Path = CORRECTIONS_FILE) -> tuple[Correction, ...]:
    """The dated, sourced corrections of ``corrections.json``."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return tuple(
        Correction(
            model=item["model"],
            field=item["field"],
            value=item["value"],
            litellm_value=item["litellm_value"],
            reason=item["reason"],
            source=item["source"],
            checked=item["checked"],
        )
        for item in data["corrections"]
    )


class BuildError(Exception):
    """The LiteLLM file does not support the curated list; nothing is written."""


def _rate_positive(value: object) -> bool:
    return isinstance(value, str) and Decimal(value) > 0


def _apply_openai_rules(spec: ModelSpec, entry: dict[str, Any]) -> None:
    """[S19] OpenAI caching: no write premium before GPT-5.6, 1.25x from 5.6; minimum 1024."""
    if "cache_read_per_mtok" not in entry:
        # No prompt caching (legacy gpt-4 / gpt-3.5-turbo): no cache fields at all.
        return
    if spec.openai_paid_cache_writes:
        if "cache_write_per_mtok" not in entry:
            raise BuildError(f"{spec.name}: LiteLLM has no cache_creation rate for a 5.6+ model")
    else:
        current = entry.get("cache_write_per_mtok")
        if current is not None and Decimal(current) != 0:
            raise BuildError(
                f"{spec.name}: LiteLLM bills cache writes at {current}; expected free [S19]"
            )
        # No write premium: written tokens are billed as plain input, which is what an
        # absent cache_write rate means to the cost model.
        entry.pop("cache_write_per_mtok", None)
        tier = entry.get("long_context")
        if isinstance(tier, dict):
            tier.pop("cache_write_per_mtok", None)
        # [S19][S20] before GPT-5.6, cache hits come in 128-token increments.
        entry["cache_increment_tokens"] = OPENAI_CACHE_INCREMENT
    entry.setdefault("cache_min_tokens", OPENAI_CACHE_MIN)


def _apply_anthropic_rules(spec: ModelSpec, entry: dict[str, Any]) -> None:
    """Domain-facts §6 cache minimums when LiteLLM lacks them [S48][S4]."""
    expected = ANTHROPIC_CACHE_MIN.get(spec.name)
    if expected is None:
        raise BuildError(f"{spec.name}: no Anthropic cache minimum in ANTHROPIC_CACHE_MIN")
    current = entry.get("cache_min_tokens")
    if current is None:
        entry["cache_min_tokens"] = expected
    elif current != expected:
        print(
            f"warning: {spec.name}: LiteLLM cache minimum {current} differs from "
            f"domain-facts §6 ({expected}); keeping LiteLLM's",
            file=sys.stderr,
        )


def _get(entry: Mapping[str, Any], dotted: str) -> Any:
    node: Any = entry
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _set(entry: dict[str, Any], dotted: str, value: object) -> None:
    *parents, last = dotted.split(".")
    node = entry
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            raise BuildError(f"cannot set {dotted}: {part} is missing")
        node = child
    node[last] = value


def _check_aliases(spec: ModelSpec, data: Mapping[str, Any]) -> None:
    """An alias that is itself a LiteLLM key must be priced like the model it points to."""
    base = data[spec.litellm_key]
    for alias in spec.aliases:
        other = data.get(alias)
        if other is None or alias == spec.litellm_key:
            continue
        for key in ("input_cost_per_token", "output_cost_per_token", "cache_read_input_token_cost"):
            a, b = base.get(key), other.get(key)
            if (a is None) != (b is None) or (a is not None and per_mtok(a) != per_mtok(b)):
                raise BuildError(f"alias {alias} of {spec.name} is priced differently ({key})")


def _order(entry: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(entry) - set(FIELD_ORDER)
    if unknown:
        raise BuildError(f"unexpected fields {sorted(unknown)}")
    return {key: entry[key] for key in FIELD_ORDER if key in entry}


def build_model(spec: ModelSpec, data: Mapping[str, Any]) -> dict[str, Any]:
    """The catalog entry for ``spec`` (before ordering), with the curated rules applied."""
    raw = data.get(spec.litellm_key)
    if not isinstance(raw, Mapping):
        raise BuildError(f"{spec.name}: LiteLLM has no entry {spec.litellm_key!r}")
    entry = litellm_entry_to_catalog(raw, name=spec.litellm_key)
    if entry["provider"] != spec.provider:
        raise BuildError(
            f"{spec.name}: LiteLLM key looks like {entry['provider']!r}, list says "
            f"{spec.provider!r}"
        )
    if spec.tokenizer not in TOKENIZERS:
        raise BuildError(f"{spec.name}: unknown tokenizer {spec.tokenizer!r}")
    entry["tokenizer"] = spec.tokenizer

    if spec.provider == "openai":
        _apply_openai_rules(spec, entry)
    elif spec.provider == "anthropic":
        _apply_anthropic_rules(spec, entry)

    for fix in load_corrections():
        if fix.model != spec.name:
            continue
        current = _get(entry, fix.field)
        if current != fix.litellm_value:
            raise BuildError(
                f"{spec.name}.{fix.field}: LiteLLM now says {current!r}, the correction "
                f"expected {fix.litellm_value!r}; re-check '{fix.reason}'"
            )
        _set(entry, fix.field, fix.value)

    if "source" not in entry:
        page = VENDOR_PRICING_PAGES.get(spec.provider)
        if page is None:
            raise BuildError(f"{spec.name}: no source in LiteLLM and no vendor page known")
        entry["source"] = page
    if spec.notes:
        entry["notes"] = spec.notes
    if spec.aliases:
        _check_aliases(spec, data)
        entry["aliases"] = list(spec.aliases)

    for required in ("input_per_mtok", "output_per_mtok"):
        if not _rate_positive(entry.get(required)):
            raise BuildError(f"{spec.name}: LiteLLM has no positive {required}")
    for required in ("context_window", "max_output_tokens"):
        if not isinstance(entry.get(required), int):
            raise BuildError(f"{spec.name}: LiteLLM has no {required}")
    return entry


# LiteLLM ``litellm_provider`` -> the route prefix users write (``bedrock/...``).
_ROUTES = {
    "text-completion-openai": "openai",
    "bedrock_converse": "bedrock",
    "cohere_chat": "cohere",
}


def route_of(entry: Mapping[str, Any]) -> str:
    host = str(entry.get("litellm_provider") or "unknown")
    if host.startswith("vertex_ai"):
        return "vertex_ai"
    return _ROUTES.get(host, host)


def is_text_model(name: str, entry: object) -> bool:
    """A chat, completion or responses entry with per-token input and output prices."""
    return (
        name != "sample_spec"
        and isinstance(entry, Mapping)
        and entry.get("mode", "chat") in TEXT_MODES
        and entry.get("input_cost_per_token") is not None
        and entry.get("output_cost_per_token") is not None
    )


def build_other(key: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """A catalog entry for a LiteLLM key outside the curated list: LiteLLM's values as they
    are, the tokenizer family guessed from the key."""
    entry = litellm_entry_to_catalog(raw, name=key)
    entry["tokenizer"] = guess_family(key, entry.get("provider"))
    entry["litellm_key"] = key
    entry["host"] = route_of(raw)
    return entry


def build_catalog(
    data: Mapping[str, Any], *, as_of: str, litellm_version: str = LITELLM_VERSION
) -> dict[str, Any]:
    """The whole catalog document, models sorted by provider then name."""
    names = [spec.name for spec in MODELS]
    if len(set(names)) != len(names):
        raise BuildError("duplicate model names in MODELS")
    unknown_fixes = {fix.model for fix in load_corrections()} - set(names)
    if unknown_fixes:
        raise BuildError(f"corrections for models not in MODELS: {sorted(unknown_fixes)}")

    built: dict[str, dict[str, Any]] = {}
    taken: dict[str, str] = {}  # lowercased name or alias -> model
    other_keys: dict[str, str] = {}  # LiteLLM keys served by a model built from another key
    for spec in MODELS:
        entry = build_model(spec, data)
        entry["litellm_key"] = spec.litellm_key
        entry["host"] = route_of(data[spec.litellm_key])
        built[spec.name] = entry
        for claimed in (spec.name, spec.litellm_key, *spec.aliases):
            taken[claimed.lower()] = spec.name
        for alias in spec.aliases:
            if alias != spec.litellm_key and is_text_model(alias, data.get(alias)):
                other_keys[alias] = spec.name  # an alias that is a LiteLLM key of its own
    specs = {spec.name: spec for spec in MODELS}

    for key in sorted(data):
        raw = data[key]
        if not is_text_model(key, raw):
            continue
        owner = taken.get(key.lower())
        if owner is not None and owner not in specs:
            raise BuildError(f"{key!r} and {owner!r} differ only in case")
        if owner is not None and key in {specs[owner].litellm_key, *specs[owner].aliases}:
            continue  # a curated model's own key or alias (checked to be priced alike)
        if owner is not None and key.lower() != owner.lower():
            raise BuildError(f"{key!r} collides with an alias or key of {owner}")
        if '"' in key or "\\" in key:
            raise BuildError(f"model name {key!r} has a quote or backslash")
        entry = build_other(key, raw)
        name = key
        if owner is not None:
            # The key is a canonical model's name but that model comes from another entry.
            source = data[specs[owner].litellm_key]
            same_host = route_of(raw) == route_of(source)
            if same_host and litellm_entry_to_catalog(raw, name=key) == litellm_entry_to_catalog(
                source, name=specs[owner].litellm_key
            ):
                other_keys[key] = owner
                continue  # the same product under two keys (deepseek-flash)
            name = f"{route_of(raw)}/{key}"
            if is_text_model(name, data.get(name)):
                # LiteLLM also has the prefixed key (same host): that entry is this model.
                other_keys[key] = name
                continue
            if name.lower() in taken:
                raise BuildError(f"{key!r} is taken by {owner} and {name!r} is taken too")
        built[name] = entry
        taken[name.lower()] = name

    # Provider-prefixed aliases, where the name has no prefix and the alias is free.
    for name, entry in built.items():
        key = entry["litellm_key"]
        if "/" in name:
            continue
        alias = f"{route_of(data[key])}/{name}"
        if alias.lower() in taken:
            continue
        entry["aliases"] = [*entry.get("aliases", []), alias]
        taken[alias.lower()] = name

    # Successors name catalog models (LiteLLM writes its own keys: ``gemini/gemini-3.8-flash``).
    by_key = {entry["litellm_key"]: name for name, entry in built.items()}
    for entry in built.values():
        successor = entry.get("successor")
        if successor is not None:
            entry["successor"] = by_key.get(successor) or taken.get(successor.lower(), successor)

    ordered = sorted(built.items(), key=lambda item: (item[1]["provider"], item[0]))
    models = {name: _order(entry) for name, entry in ordered}
    for name, entry in models.items():
        model_from_mapping(name, entry, origin="catalog")  # must load unchanged

    aliases = {
        alias.lower(): name for name, entry in models.items() for alias in entry.get("aliases", ())
    }
    keys = {entry["litellm_key"]: name for name, entry in models.items()}
    keys = {key: name for key, name in keys.items() if key != name} | other_keys
    source = (
        f"LiteLLM {litellm_version} model_prices_and_context_window_backup.json (PyPI wheel "
        f"litellm=={litellm_version}, MIT), every text-generation entry, converted by "
        "scripts/build_catalog.py, with curated corrections (pricing/corrections.json) from "
        "vendor pages: Anthropic pricing "
        "(https://platform.claude.com/docs/en/about-claude/pricing), Gemini API caching "
        "(https://ai.google.dev/gemini-api/docs/caching) and pricing "
        "(https://ai.google.dev/gemini-api/docs/pricing), OpenAI prompt caching "
        "(https://developers.openai.com/api/docs/guides/prompt-caching)"
    )
    return {
        "format": 2,
        "as_of": as_of,
        "source": source,
        "litellm_version": litellm_version,
        "aliases": dict(sorted(aliases.items())),
        "litellm_keys": dict(sorted(keys.items())),
        "models": models,
    }


def render(catalog: Mapping[str, Any]) -> str:
    """``catalog`` as JSON lines: the header, then one model per line (``name`` first)."""
    header = {key: value for key, value in catalog.items() if key != "models"}
    lines = [json.dumps(header, ensure_ascii=False)]
    for name, entry in catalog["models"].items():
        lines.append(json.dumps({"name": name, **entry}, ensure_ascii=False))
    return "\n".join(lines) + "\n"


def diff_report(old_text: str | None, new_text: str, *, shown: int = 15) -> list[str]:
    """What the new catalog adds, removes and changes compared with the old one."""
    if old_text is None or not old_text.startswith("{"):
        return ["no previous catalog.jsonl to compare with"]

    def by_name(text: str) -> dict[str, str]:
        return {json.loads(line)["name"]: line for line in text.splitlines()[1:]}

    old, new = by_name(old_text), by_name(new_text)
    added = sorted(set(new) - set(old))
    removed = sorted(set(old) - set(new))
    changed = sorted(name for name in set(old) & set(new) if old[name] != new[name])
    counts = f"{len(added)} added, {len(removed)} removed, {len(changed)} changed"
    out = [f"{len(new)} models ({counts})"]
    for label, names in (("added", added), ("removed", removed), ("changed", changed)):
        if names:
            more = f" and {len(names) - shown} more" if len(names) > shown else ""
            out.append(f"  {label}: {', '.join(names[:shown])}{more}")
    return out


_FIXTURE_FIELDS = frozenset(
    {
        "litellm_provider",
        "mode",
        "input_cost_per_token",
        "output_cost_per_token",
        "cache_read_input_token_cost",
        "cache_creation_input_token_cost",
        "deprecation_date",
        "successor_model",
        "off_peak_pricing",
        "prompt_cache_min_tokens",
    }
)
_FIXTURE_TIER = re.compile(
    r"^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost"
    r"|cache_creation_input_token_cost)_above_\d+k_tokens$"
)


def trim_for_tests(data: Mapping[str, Any]) -> str:
    """The fields of every text-generation entry that a one-call price depends on, one entry
    per line: the pinned copy ``tests/data/litellm`` prices every model against."""
    lines = []
    for key in sorted(data):
        raw = data[key]
        if not is_text_model(key, raw):
            continue
        kept = {f: v for f, v in raw.items() if f in _FIXTURE_FIELDS or _FIXTURE_TIER.match(f)}
        lines.append(f"{json.dumps(key)}: {json.dumps(kept, sort_keys=True)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def load_litellm(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise BuildError(f"{path}: not a LiteLLM price file (top level is not an object)")
    return data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("litellm_json", type=Path, help="LiteLLM price JSON file")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="catalog.json to write")
    parser.add_argument("--as-of", default=DEFAULT_AS_OF, help="date the prices were taken")
    parser.add_argument(
        "--litellm-version", default=LITELLM_VERSION, help="LiteLLM version of the input file"
    )
    parser.add_argument(
        "--test-fixture",
        type=Path,
        help="also write the trimmed copy the tests price every model against",
    )
    args = parser.parse_args(argv)
    try:
        catalog = build_catalog(
            load_litellm(args.litellm_json),
            as_of=args.as_of,
            litellm_version=args.litellm_version,
        )
    except (BuildError, OSError, ValueError) as err:
        print(f"build_catalog: error: {err}", file=sys.stderr)
        return 1
    text = render(catalog)
    old = args.out.read_text(encoding="utf-8") if args.out.is_file() else None
    for line in diff_report(old, text):
        print(line, file=sys.stderr)
    args.out.write_text(text, encoding="utf-8", newline="\n")
    if args.test_fixture is not None:
        fixture = trim_for_tests(load_litellm(args.litellm_json))
        args.test_fixture.write_text(fixture, encoding="utf-8", newline="\n")
    print(f"wrote {len(catalog['models'])} models to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
