"""The bundled price catalog (``pricing/catalog.jsonl``) and the LiteLLM conversion behind it.

No network. The regeneration test runs only where the LiteLLM 1.110.2 price file has been
extracted (``/tmp/ll/x/...``, see ``scripts/build_catalog.py``); CI skips it. The test that
prices every model against LiteLLM's own formula runs everywhere, from a pinned trimmed copy
of the file (``tests/unit/test_catalog_prices.py``).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import sys
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from promptbudget.pricing.catalog import LongContextTier, PriceCatalog, load_catalog
from promptbudget.pricing.litellm import litellm_entry_to_catalog, per_mtok
from promptbudget.tokenizers import TOKENIZERS

ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = ROOT / "scripts" / "build_catalog.py"
CATALOG_JSONL = ROOT / "src" / "promptbudget" / "pricing" / "catalog.jsonl"


def _litellm_json() -> Path:
    """LiteLLM's price file the bundled catalog was built from: ``PROMPTBUDGET_LITELLM_JSON``,
    else the one the installed litellm ships (the dev extra installs it) when it is the
    version the catalog names (read from its metadata; litellm is not imported)."""
    if "PROMPTBUDGET_LITELLM_JSON" in os.environ:
        return Path(os.environ["PROMPTBUDGET_LITELLM_JSON"])
    header = json.loads(CATALOG_JSONL.read_text(encoding="utf-8").partition("\n")[0])
    try:
        installed = importlib.metadata.distribution("litellm")
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed is not None and installed.version == header["litellm_version"]:
        return Path(str(installed.locate_file(f"litellm/{LITELLM_FILE}")))
    return Path("/tmp/ll/x/litellm") / LITELLM_FILE


LITELLM_FILE = "model_prices_and_context_window_backup.json"
LITELLM_JSON = _litellm_json()

D = Decimal


@pytest.fixture(scope="module")
def catalog() -> PriceCatalog:
    return load_catalog()


# --- the bundled catalog ------------------------------------------------------------------


def test_catalog_is_dated_and_sourced(catalog: PriceCatalog) -> None:
    assert catalog.as_of == "2026-12-05"
    assert "litellm 1.110.2" in catalog.source.lower()
    assert "model_prices_and_context_window_backup.json" in catalog.source


def test_catalog_covers_the_providers(catalog: PriceCatalog) -> None:
    assert len(catalog.models) >= 300
    providers = {model.provider for model in catalog.models.values()}
    assert {"openai", "anthropic", "google", "mistral", "deepseek", "meta"} <= providers
    # Llama prices differ by host, so the host is part of the curated names.
    assert "bedrock/llama-3.3-70b-instruct" in catalog.models
    assert "bedrock/llama-4-maverick" in catalog.models


REQUIRED_MODELS = [
    # OpenAI
    "gpt-6-astra",
    "gpt-6-sol",
    "gpt-6-luna",
    "gpt-5.6",
    "gpt-5.5",
    "gpt-5.4",
    "gpt-5.4-mini",
    "gpt-5.4-nano",
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-nano",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-4o",
    "gpt-4o-mini",
    "o3",
    "o4-mini",
    "gpt-4",
    "gpt-3.5-turbo",
    # Anthropic
    "claude-fable-5-1",
    "claude-opus-5-5",
    "claude-sonnet-5-5",
    "claude-haiku-5-5",
    "claude-opus-4-8",
    "claude-sonnet-4-6",
    "claude-haiku-4-5",
    # Google
    "gemini-3.1-pro-preview",
    "gemini-3.8-flash",
    "gemini-2.5-pro",
    "gemini-2.5-flash",
    "gemini-3.1-flash-lite",
    # DeepSeek
    "deepseek-flash",
    "deepseek-v4-pro",
    # Mistral
    "mistral-large-latest",
    "mistral-medium-latest",
    "mistral-small-latest",
]

# Names users write that the 41-model catalog did not know (issue 15).
NEW_MODELS = [
    "gpt-5.1",
    "gpt-5.2",
    "gpt-5.1-codex",
    "gpt-5-pro",
    "o1",
    "o1-pro",
    "o3-mini",
    "o3-pro",
    "claude-opus-4-5",
    "claude-opus-4-7",
    "claude-opus-5",
    "claude-sonnet-5",
    "gemini-2.5-flash-lite",
    "gemini-3-flash-preview",
    "deepseek-chat",
    "deepseek-reasoner",
    "mistral/codestral-latest",
    "mistral/devstral-medium-latest",
    "mistral/magistral-medium-latest",
    "azure_ai/grok-4",
    "bedrock/anthropic.claude-sonnet-4-5-20250929-v1:0",
    "vertex_ai/claude-opus-4-5",
    "azure/gpt-4o",
    "together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo",
    "fireworks_ai/accounts/fireworks/models/deepseek-v3",
]


@pytest.mark.parametrize("name", NEW_MODELS)
def test_names_users_write_are_priced(catalog: PriceCatalog, name: str) -> None:
    model = catalog.lookup(name)
    assert model is not None, name
    assert model.input_per_mtok > 0 and model.output_per_mtok > 0


@pytest.mark.parametrize("name", REQUIRED_MODELS)
def test_required_model_is_present(catalog: PriceCatalog, name: str) -> None:
    assert name in catalog.models


def test_every_model_loads_with_a_known_tokenizer(catalog: PriceCatalog) -> None:
    for name, model in catalog.models.items():
        assert model.input_per_mtok >= 0, name
        assert model.output_per_mtok >= 0, name
        assert model.tokenizer in TOKENIZERS, name
        assert model.litellm_key, name
        assert model.billing == ("anthropic" if "claude" in name.lower() else "openai"), name


def test_every_curated_model_is_complete(catalog: PriceCatalog) -> None:
    for name in REQUIRED_MODELS:
        model = catalog.models[name]
        assert model.input_per_mtok > 0, name
        assert model.output_per_mtok > 0, name
        assert model.tokenizer in TOKENIZERS, name
        assert model.context_window, name
        assert model.max_output_tokens, name
        assert model.source, name
        assert model.billing == ("anthropic" if model.provider == "anthropic" else "openai"), name
        assert model.origin == "catalog"


def test_tokenizers_follow_the_model_family(catalog: PriceCatalog) -> None:
    expected = {
        "gpt-4": "cl100k_base",
        "gpt-3.5-turbo": "cl100k_base",
        "gpt-4o": "o200k_base",
        "gpt-6-astra": "o200k_base",
        "claude-opus-4-8": "claude-4.7",
        "claude-fable-5-1": "claude-4.7",
        "claude-haiku-5-5": "claude-4.7",
        "claude-sonnet-4-6": "claude",
        "claude-haiku-4-5": "claude",
        "gemini-2.5-pro": "gemini",
        "deepseek-flash": "deepseek",
        "mistral-small-latest": "approximate",
        "bedrock/llama-4-maverick": "approximate",
    }
    for name, tokenizer in expected.items():
        assert catalog.models[name].tokenizer == tokenizer, name


# The OpenAI model id inside a host's name, as the hosts spell it (written here from the
# catalog's names, not from the product's pattern): Bedrock ``openai.`` with region prefixes,
# Databricks ``databricks-``, Gradient and Snowflake ``openai-``, Azure AI ``FW-``, Ollama.
_HOSTED_OPENAI = re.compile(
    r"(?:^|/|\.|openai-|databricks-|fw-)(gpt-[0-9a-z][^/]*|chatgpt-[^/]*|o[1-9](?:-[^/]*)?"
    r"|codex-mini[^/]*|(?:ft:)?(?:davinci|babbage)-002[^/]*)$"
)


def test_every_openai_model_behind_any_host_gets_its_real_encoding(catalog: PriceCatalog) -> None:
    """A Bedrock, Databricks, Snowflake, OCI, Ollama or Azure AI name hides the OpenAI model
    id behind its prefix; the model is counted with OpenAI's encoding all the same. Where
    tiktoken itself names the encoding of the inner id, the catalog agrees with it."""
    import tiktoken

    seen = 0
    for name, model in catalog.models.items():
        match = _HOSTED_OPENAI.search(name.lower())
        if match is None and model.provider != "openai":
            continue
        assert model.tokenizer in {"o200k_base", "cl100k_base"}, (name, model.tokenizer)
        seen += 1
        if match is None:
            continue
        inner = (
            match.group(1).split(":")[0] if not match.group(1).startswith("ft:") else match.group(1)
        )
        try:
            expected = tiktoken.encoding_name_for_model(inner)
        except KeyError:
            continue
        expected = "o200k_base" if expected == "o200k_harmony" else expected
        assert model.tokenizer == expected, (name, inner, expected)
    assert seen > 500
    for name in (
        "bedrock/us-gov-east-1/openai.gpt-oss-120b-1:0",
        "global.openai.gpt-5.4",
        "databricks/databricks-gpt-5-1",
        "gradient_ai/openai-o3",
        "azure_ai/FW-GPT-OSS-120B",
        "ollama/gpt-oss:20b-cloud",
        "gpt-audio",
    ):
        assert catalog.models[name].tokenizer == "o200k_base", name
    assert catalog.models["davinci-002"].tokenizer == "cl100k_base"


def test_catalog_jsonl_is_sorted_and_stringly_priced() -> None:
    text = CATALOG_JSONL.read_text(encoding="utf-8")
    assert text.endswith("}\n")
    header, *lines = text.splitlines()
    assert json.loads(header)["format"] == 2
    models = {}
    for line in lines:
        entry = json.loads(line)
        assert line.startswith('{"name": ')
        models[entry.pop("name")] = entry
    keys = list(models)
    assert keys == sorted(keys, key=lambda name: (models[name]["provider"], name))
    for name, entry in models.items():
        assert None not in entry.values(), name
        for field, value in entry.items():
            if field.endswith("_per_mtok"):
                assert isinstance(value, str), (name, field)
                assert "e" not in value.lower(), (name, field)


# Spot checks against domain-facts.md §4b (LiteLLM 1.109.1, checked against vendor pages).
SPOT_CHECKS: list[tuple[str, str, str]] = [
    ("gpt-4o", "input_per_mtok", "2.5"),
    ("gpt-4o", "output_per_mtok", "10"),
    ("gpt-4o", "cache_read_per_mtok", "1.25"),
    ("gpt-4o-mini", "cache_read_per_mtok", "0.075"),
    ("gpt-6-astra", "cache_write_per_mtok", "12.5"),
    ("gpt-6-luna", "cache_write_per_mtok", "0.125"),
    ("gpt-5.5", "output_per_mtok", "30"),
    ("gpt-5.4-mini", "input_per_mtok", "0.75"),
    ("gpt-4.1", "cache_read_per_mtok", "0.5"),
    ("claude-fable-5-1", "cache_read_per_mtok", "0.25"),
    ("claude-fable-5-1", "cache_write_1h_per_mtok", "20"),
    ("claude-opus-5-5", "cache_read_per_mtok", "0.2"),
    # Anthropic cut Sonnet 5.5 cache reads to 0.05x on 2026-10-07 (LiteLLM has it right).
    ("claude-sonnet-5-5", "cache_read_per_mtok", "0.10"),
    ("claude-sonnet-5-5", "batch_cache_read_per_mtok", "0.05"),
    ("claude-sonnet-4-6", "cache_write_per_mtok", "3.75"),
    ("claude-sonnet-4-6", "cache_write_1h_per_mtok", "6"),
    ("claude-opus-4-8", "input_per_mtok", "5"),
    ("claude-haiku-4-5", "cache_write_per_mtok", "1.25"),
    ("gemini-3.8-flash", "input_per_mtok", "0.75"),
    ("gemini-2.5-flash", "output_per_mtok", "2.5"),
    ("gemini-3.1-flash-lite", "cache_read_per_mtok", "0.025"),
    ("deepseek-flash", "cache_read_per_mtok", "0.006"),
    ("deepseek-v4-pro", "output_per_mtok", "3.96"),
    ("mistral-medium-latest", "input_per_mtok", "1.5"),
    ("mistral-small-latest", "cache_read_per_mtok", "0.015"),
    ("bedrock/llama-3.3-70b-instruct", "output_per_mtok", "0.72"),
    ("bedrock/llama-4-maverick", "output_per_mtok", "0.97"),
]


@pytest.mark.parametrize(("name", "field", "expected"), SPOT_CHECKS)
def test_spot_check_rates(catalog: PriceCatalog, name: str, field: str, expected: str) -> None:
    assert getattr(catalog.models[name], field) == D(expected)


def test_spot_check_limits_and_dates(catalog: PriceCatalog) -> None:
    models = catalog.models
    assert models["gemini-2.5-pro"].cache_min_tokens == 4096  # curated correction [S25]
    assert models["gemini-2.5-pro"].notes and "4096" in models["gemini-2.5-pro"].notes
    assert models["claude-sonnet-5-5"].notes and "2026-10-07" in models["claude-sonnet-5-5"].notes
    assert models["gemini-3.8-flash"].notes and "2027-01-01" in models["gemini-3.8-flash"].notes
    assert models["gpt-5-mini"].deprecation_date == "2026-12-11"
    assert models["gpt-4o"].cache_min_tokens == 1024
    assert models["claude-opus-5-5"].cache_min_tokens == 512
    assert models["claude-haiku-4-5"].cache_min_tokens == 4096
    assert models["claude-opus-4-8"].cache_min_tokens == 1024
    assert models["gpt-6-astra"].context_window == 922_000
    assert models["claude-haiku-4-5"].context_window == 200_000
    assert models["mistral-large-latest"].context_window == 262_144


def test_long_context_tiers(catalog: PriceCatalog) -> None:
    models = catalog.models
    assert models["gpt-5.4"].long_context == LongContextTier(
        threshold_tokens=272_000,
        input_per_mtok=D("5"),
        output_per_mtok=D("22.5"),
        cache_read_per_mtok=D("0.5"),
        cache_write_per_mtok=None,
    )
    assert models["gpt-5.5"].long_context is not None
    assert models["gpt-5.5"].long_context.input_per_mtok == D("10")
    assert models["gpt-5.5"].long_context.output_per_mtok == D("45")
    astra = models["gpt-6-astra"].long_context
    assert astra is not None
    assert (astra.threshold_tokens, astra.input_per_mtok, astra.output_per_mtok) == (
        272_000,
        D("20"),
        D("75"),
    )
    haiku = models["claude-haiku-5-5"].long_context
    assert haiku is not None
    assert (haiku.threshold_tokens, haiku.input_per_mtok, haiku.output_per_mtok) == (
        100_000,
        D("0.5"),
        D("2.5"),
    )
    pro = models["gemini-2.5-pro"].long_context
    assert pro is not None
    assert (pro.threshold_tokens, pro.input_per_mtok, pro.output_per_mtok) == (
        200_000,
        D("2.5"),
        D("15"),
    )
    preview = models["gemini-3.1-pro-preview"].long_context
    assert preview is not None
    assert (preview.input_per_mtok, preview.output_per_mtok) == (D("4"), D("18"))
    # Flat across the window.
    assert models["claude-sonnet-4-6"].long_context is None
    assert models["gpt-4o"].long_context is None


def test_openai_cache_writes(catalog: PriceCatalog) -> None:
    """No write premium before GPT-5.6 (no rate: written tokens cost plain input), 1.25x input
    from GPT-5.6 on [S19]; no cache fields for legacy models."""
    for name in ("gpt-5.5", "gpt-5.4", "gpt-5", "gpt-4.1", "gpt-4o", "o3"):
        assert catalog.models[name].cache_write_per_mtok is None, name
    for name in ("gpt-5.6", "gpt-6-astra", "gpt-6-sol", "gpt-6-luna"):
        model = catalog.models[name]
        assert model.cache_write_per_mtok == model.input_per_mtok * D("1.25"), name
    for name in ("gpt-4", "gpt-3.5-turbo"):
        model = catalog.models[name]
        assert model.cache_read_per_mtok is None, name
        assert model.cache_write_per_mtok is None, name


def test_aliases_resolve(catalog: PriceCatalog) -> None:
    lookups = {
        "mistral/mistral-large-latest": "mistral-large-latest",
        "meta.llama3-3-70b-instruct-v1:0": "bedrock/llama-3.3-70b-instruct",
        "meta.llama4-maverick-17b-instruct-v1:0": "bedrock/llama-4-maverick",
        "gpt-4o-2024-08-06": "gpt-4o",
        "claude-haiku-4-5-20251001": "claude-haiku-4-5",
        "deepseek/deepseek-v4-pro": "deepseek-v4-pro",
        "gemini/gemini-2.5-pro": "gemini-2.5-pro",
        # Azure OpenAI's model names (Prompty's azure_deployment often repeats them)
        "gpt-35-turbo": "gpt-3.5-turbo",
        "azure/gpt-35-turbo-0125": "gpt-3.5-turbo",
    }
    for alias, name in lookups.items():
        found = catalog.lookup(alias)
        assert found is not None, alias
        assert found.name == name, alias
    # gpt-4o-2024-05-13 is priced differently, so it is its own model, not gpt-4o.
    dated = catalog.lookup("gpt-4o-2024-05-13")
    assert dated is not None and dated.name == "gpt-4o-2024-05-13"
    assert dated.input_per_mtok == D("5")
    # A Vertex AI entry never takes over the Gemini API model of the same bare name.
    vertex = catalog.lookup("vertex_ai/gemini-2.5-pro")
    assert vertex is not None and vertex.name == "vertex_ai/gemini-2.5-pro"
    assert vertex.litellm_key == "gemini-2.5-pro" and vertex.host == "vertex_ai"
    assert catalog.lookup("gemini-2.5-pro").litellm_key == "gemini/gemini-2.5-pro"  # type: ignore[union-attr]
    assert catalog.lookup("gpt-35") is None


# --- litellm_entry_to_catalog ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (2.5e-06, "2.5"),
        (1.25e-07, "0.125"),
        (1e-05, "10"),
        (7.5e-08, "0.075"),
        (3.125e-07, "0.3125"),
        (1.125e-05, "11.25"),
        (6e-09, "0.006"),
        (0.00018, "180"),
        (0.0, "0"),
        (0, "0"),
        ("2.5e-06", "2.5"),
    ],
)
def test_per_mtok_is_exact(raw: object, expected: str) -> None:
    assert per_mtok(raw) == expected


@pytest.mark.parametrize("raw", [True, None, "abc", -1e-06, float("nan"), float("inf"), [1]])
def test_per_mtok_rejects_non_rates(raw: object) -> None:
    with pytest.raises(ValueError):
        per_mtok(raw)


def test_entry_basic_fields_and_omissions() -> None:
    entry = {
        "litellm_provider": "openai",
        "mode": "chat",
        "input_cost_per_token": 1.25e-07,
        "output_cost_per_token": 1e-06,
        "max_input_tokens": 128000,
        "max_output_tokens": 16384.0,
        "supports_prompt_caching": True,
        "input_cost_per_token_priority": 2.5e-07,
        "output_cost_per_token_flex": 5e-07,
        "cache_read_input_token_cost": None,
        "regional_processing_uplift_multiplier_eu": 1.1,
    }
    assert litellm_entry_to_catalog(entry, name="gpt-test") == {
        "provider": "openai",
        "billing": "openai",
        "input_per_mtok": "0.125",
        "output_per_mtok": "1",
        "context_window": 128000,
        "max_output_tokens": 16384,
    }


def test_entry_cache_batch_and_metadata() -> None:
    entry = {
        "litellm_provider": "anthropic",
        "input_cost_per_token": 3e-06,
        "output_cost_per_token": 1.5e-05,
        "cache_read_input_token_cost": 3e-07,
        "cache_creation_input_token_cost": 3.75e-06,
        "cache_creation_input_token_cost_above_1hr": 6e-06,
        "input_cost_per_token_batches": 1.5e-06,
        "output_cost_per_token_batches": 7.5e-06,
        "cache_read_input_token_cost_batches": 1.5e-07,
        "cache_creation_input_token_cost_batches": 1.875e-06,
        "prompt_cache_min_tokens": 1024.0,
        "deprecation_date": "2027-01-01",
        "source": "https://example.invalid/pricing",
        "max_input_tokens": 200000,
        "max_output_tokens": 64000,
    }
    out = litellm_entry_to_catalog(entry, name="claude-sonnet-x")
    assert out == {
        "provider": "anthropic",
        "billing": "anthropic",
        "input_per_mtok": "3",
        "output_per_mtok": "15",
        "cache_read_per_mtok": "0.3",
        "cache_write_per_mtok": "3.75",
        "cache_write_1h_per_mtok": "6",
        "batch_input_per_mtok": "1.5",
        "batch_output_per_mtok": "7.5",
        "batch_cache_read_per_mtok": "0.15",
        "context_window": 200000,
        "max_output_tokens": 64000,
        "cache_min_tokens": 1024,
        "deprecation_date": "2027-01-01",
        "source": "https://example.invalid/pricing",
    }
    assert isinstance(out["cache_min_tokens"], int)


def test_entry_long_context_uses_the_smallest_threshold() -> None:
    entry = {
        "litellm_provider": "vertex_ai-language-models",
        "input_cost_per_token": 1e-06,
        "output_cost_per_token": 4e-06,
        "cache_read_input_token_cost": 1e-07,
        "input_cost_per_token_above_512k_tokens": 4e-06,
        "output_cost_per_token_above_512k_tokens": 1.6e-05,
        "input_cost_per_token_above_128k_tokens": 2e-06,
        "output_cost_per_token_above_128k_tokens": 8e-06,
        "cache_read_input_token_cost_above_128k_tokens": 2e-07,
        "cache_creation_input_token_cost_above_128k_tokens": 2.5e-06,
        # Suffixed variants are not tiers of their own and must not win.
        "input_cost_per_token_above_100k_tokens_priority": 9e-06,
        "input_cost_per_token_above_64k_tokens_batches": 5e-07,
        "cache_read_input_token_cost_above_128k_tokens_batches": 1e-07,
    }
    out = litellm_entry_to_catalog(entry, name="gemini-test-pro")
    assert out["provider"] == "google"
    assert out["long_context"] == {
        "threshold_tokens": 128000,
        "input_per_mtok": "2",
        "output_per_mtok": "8",
        "cache_read_per_mtok": "0.2",
        "cache_write_per_mtok": "2.5",
    }


def test_entry_long_context_partial_tier() -> None:
    entry = {
        "litellm_provider": "openai",
        "input_cost_per_token": 2.5e-06,
        "output_cost_per_token": 1.5e-05,
        "input_cost_per_token_above_272k_tokens": 5e-06,
        "output_cost_per_token_above_272k_tokens": 2.25e-05,
    }
    tier = litellm_entry_to_catalog(entry)["long_context"]
    assert tier == {"threshold_tokens": 272000, "input_per_mtok": "5", "output_per_mtok": "22.5"}
    # Without a tier output rate the base output rate carries over (as LiteLLM computes it).
    del entry["output_cost_per_token_above_272k_tokens"]
    tier = litellm_entry_to_catalog(entry)["long_context"]
    assert tier == {"threshold_tokens": 272000, "input_per_mtok": "5", "output_per_mtok": "15"}


def test_entry_without_tier_has_no_long_context() -> None:
    entry = {
        "litellm_provider": "openai",
        "input_cost_per_token": 1e-06,
        "output_cost_per_token": 2e-06,
        "input_cost_per_token_above_272k_tokens_flex": 1e-06,
        "cache_creation_input_token_cost_above_12hr": 2e-06,
    }
    assert "long_context" not in litellm_entry_to_catalog(entry)
    assert "cache_write_per_mtok" not in litellm_entry_to_catalog(entry)


@pytest.mark.parametrize(
    ("name", "litellm_provider", "provider", "billing"),
    [
        ("bedrock/us.anthropic.claude-sonnet-4-6", "bedrock_converse", "anthropic", "anthropic"),
        ("vertex_ai/claude-opus-4-8", "vertex_ai-anthropic_models", "anthropic", "anthropic"),
        (None, "anthropic", "anthropic", "anthropic"),
        ("meta.llama3-3-70b-instruct-v1:0", "bedrock_converse", "meta", "openai"),
        ("mistral/mistral-small-latest", "mistral", "mistral", "openai"),
        ("deepseek/deepseek-v4-pro", "deepseek", "deepseek", "openai"),
        ("gemini/gemini-2.5-flash", "gemini", "google", "openai"),
        ("o4-mini", "openai", "openai", "openai"),
        ("azure/gpt-4o", "azure", "openai", "openai"),
        (None, "gemini", "google", "openai"),
    ],
)
def test_entry_provider_and_billing(
    name: str | None, litellm_provider: str, provider: str, billing: str
) -> None:
    entry = {
        "litellm_provider": litellm_provider,
        "input_cost_per_token": 1e-06,
        "output_cost_per_token": 2e-06,
    }
    out = litellm_entry_to_catalog(entry, name=name)
    assert (out["provider"], out["billing"]) == (provider, billing)


def test_entry_rejects_bad_token_counts() -> None:
    with pytest.raises(ValueError):
        litellm_entry_to_catalog({"litellm_provider": "openai", "max_input_tokens": 1000.5})


# --- the build script -------------------------------------------------------------------


def _load_build_script() -> ModuleType:
    """``scripts/build_catalog.py`` as a module (scripts/ is not a package)."""
    name = "promptbudget_build_catalog_script"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BUILD_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve annotations through sys.modules
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


@pytest.mark.skipif(
    not LITELLM_JSON.is_file(),
    reason=(
        f"LiteLLM price file not found at {LITELLM_JSON} (install the litellm the catalog "
        "names, 1.110.2, or extract the file from its wheel, see scripts/build_catalog.py, "
        "or set PROMPTBUDGET_LITELLM_JSON)"
    ),
)
def test_build_script_reproduces_the_bundled_catalog() -> None:
    build = _load_build_script()
    data: dict[str, Any] = build.load_litellm(LITELLM_JSON)
    bundled = CATALOG_JSONL.read_text(encoding="utf-8")
    as_of = json.loads(bundled.partition("\n")[0])["as_of"]
    first = build.render(build.build_catalog(data, as_of=as_of))
    second = build.render(build.build_catalog(data, as_of=as_of))
    assert first == second
    assert first == bundled, "catalog.jsonl is stale: re-run scripts/build_catalog.py"


def test_build_script_fails_loudly_on_a_missing_model() -> None:
    build = _load_build_script()
    with pytest.raises(build.BuildError, match="LiteLLM has no entry"):
        build.build_catalog({}, as_of="2026-11-23")


# --- price files: entries match the model built from the same LiteLLM key ----------------

VERTEX_GEMINI = {
    "litellm_provider": "vertex_ai-language-models",
    "mode": "chat",
    "input_cost_per_token": 1.25e-06,
    "output_cost_per_token": 1e-05,
    "input_cost_per_token_above_200k_tokens": 2.5e-06,
    "output_cost_per_token_above_200k_tokens": 1.5e-05,
    "cache_read_input_token_cost_above_200k_tokens": 2.5e-07,
    "cache_creation_input_token_cost_above_200k_tokens": 2.5e-07,
    "prompt_cache_min_tokens": 2048,
    "max_input_tokens": 1048576,
    "max_output_tokens": 65535,
}


def test_a_vertex_bare_key_never_overwrites_the_gemini_api_model(catalog: PriceCatalog) -> None:
    from promptbudget.pricing.catalog import overlay_prices

    entries = {"gemini-2.5-pro": litellm_entry_to_catalog(VERTEX_GEMINI, name="gemini-2.5-pro")}
    merged = overlay_prices(catalog, entries, label="prices.json")
    api = merged.models["gemini-2.5-pro"]
    assert api.cache_min_tokens == 4096  # the curated Gemini API figure stays
    assert api.origin == "catalog"
    vertex = merged.models["vertex_ai/gemini-2.5-pro"]
    assert (vertex.origin, vertex.cache_min_tokens, vertex.max_output_tokens) == (
        "prices",
        2048,
        65535,
    )


def test_models_diff_matches_by_key_and_shows_tier_fields(catalog: PriceCatalog) -> None:
    from promptbudget.pricing.catalog import diff_prices

    changed = dict(VERTEX_GEMINI, output_cost_per_token_above_200k_tokens=1.8e-05)
    entries = {"gemini-2.5-pro": litellm_entry_to_catalog(changed, name="gemini-2.5-pro")}
    changes, missing = diff_prices(catalog, entries)
    assert "gemini-2.5-pro" in missing  # the Gemini API model is not in this file
    assert [(c.model, c.field, c.bundled, c.other) for c in changes] == [
        ("vertex_ai/gemini-2.5-pro", "long_context.output_per_mtok", D("15"), D("18"))
    ]
    # Identical values are no change.
    same = {"gemini-2.5-pro": litellm_entry_to_catalog(VERTEX_GEMINI, name="gemini-2.5-pro")}
    assert diff_prices(catalog, same)[0] == []
