"""Every catalog model prices one call exactly as LiteLLM does, from a pinned copy of its file.

The expected cost is computed here from LiteLLM 1.110.2's own fields (``tests/data/litellm``,
the per-token floats read exactly as decimals) with LiteLLM's formula: uncached prompt tokens
at the input rate, cache reads and writes at their rates, output at the output rate, and all
of them at the ``_above_<N>k_tokens`` rates of the highest threshold the prompt is above
(a rate the tier lacks keeps the base rate). The catalog is never consulted for an expected
value. Fields the curated corrections change (``pricing/corrections.json``) are the documented
exceptions; a correction whose LiteLLM value moved fails here so it gets re-checked. The other
documented exception: a model with more than one long-context tier is priced at its first
tier above every threshold (its ``unmodelled`` says so, and ``estimate`` prints it), so a
call above its second threshold is not compared.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from promptbudget.pricing.catalog import PriceCatalog, load_catalog
from promptbudget.simulation import CallTokens, price_call

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "data" / "litellm" / "prices-1.110.2.json"
CORRECTIONS = ROOT / "src" / "promptbudget" / "pricing" / "corrections.json"
TIER = re.compile(r"^input_cost_per_token_above_(\d+)k_tokens$")


@pytest.fixture(scope="module")
def litellm() -> dict[str, dict[str, Any]]:
    data: dict[str, dict[str, Any]] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def catalog() -> PriceCatalog:
    return load_catalog()


def _rate(entry: dict[str, Any], field: str, tier: int | None) -> Decimal | None:
    """LiteLLM's per-token rate for ``field`` at ``tier`` (thousands of tokens), exactly."""
    value = entry.get(f"{field}_above_{tier}k_tokens") if tier is not None else None
    if value is None:
        value = entry.get(field)
    return None if value is None else Decimal(repr(value))


def litellm_cost(entry: dict[str, Any], call: CallTokens) -> Decimal:
    """LiteLLM's ``cost_per_token`` for ``call``, from the file's fields."""
    crossed = [
        int(m.group(1)) for key in entry if (m := TIER.match(key)) and entry[key] is not None
    ]
    above = [n for n in crossed if call.input_tokens > n * 1000]
    tier = max(above) if above else None
    input_rate = _rate(entry, "input_cost_per_token", tier)
    output_rate = _rate(entry, "output_cost_per_token", tier)
    assert input_rate is not None and output_rate is not None
    read_rate = _rate(entry, "cache_read_input_token_cost", tier)
    write_rate = _rate(entry, "cache_creation_input_token_cost", tier)
    uncached = call.input_tokens - call.cache_read_tokens - call.cache_write_tokens
    return (
        uncached * input_rate
        + call.cache_read_tokens * (read_rate if read_rate is not None else input_rate)
        + call.cache_write_tokens * (write_rate if write_rate is not None else input_rate)
        + call.output_tokens * output_rate
    )


def calls_for(entry: dict[str, Any]) -> list[CallTokens]:
    """A short call with the cache reads and writes the model bills, and one call just above
    the first long-context threshold."""
    reads = 300 if entry.get("cache_read_input_token_cost") is not None else 0
    writes = 200 if (entry.get("cache_creation_input_token_cost") or 0) > 0 else 0
    calls = [CallTokens(3_000, 700, cache_read_tokens=reads, cache_write_tokens=writes)]
    thresholds = sorted(
        int(m.group(1)) for key in entry if (m := TIER.match(key)) and entry[key] is not None
    )
    calls.extend(CallTokens(n * 1000 + 1_000, 500) for n in thresholds[:1])
    return calls


def test_the_fixture_is_the_whole_text_generation_file(litellm: dict[str, Any]) -> None:
    assert len(litellm) >= 3_000
    assert all(
        entry.get("mode", "chat") in {"chat", "completion", "responses"}
        for entry in litellm.values()
    )


def test_the_catalog_lists_every_text_generation_model(
    catalog: PriceCatalog, litellm: dict[str, Any]
) -> None:
    assert len(catalog.models) >= 300
    missing = [key for key in litellm if catalog.from_litellm_key(key) is None]
    assert missing == []


def test_every_model_prices_one_call_as_litellm_does(
    catalog: PriceCatalog, litellm: dict[str, Any]
) -> None:
    checked = 0
    wrong: list[str] = []
    for name in catalog.models:
        model = catalog.models[name]
        entry = litellm.get(model.litellm_key or "")
        if entry is None:
            continue
        for call in calls_for(entry):
            ours = price_call(model, call).total_usd
            theirs = litellm_cost(entry, call)
            if ours != theirs:
                wrong.append(f"{name} {call}: {ours} != {theirs}")
            checked += 1
    assert wrong == []
    assert checked >= 3_500


def test_a_known_price_by_hand(litellm: dict[str, Any]) -> None:
    """The formula above, checked once against arithmetic: gpt-4o at $2.50 / $10 / $1.25."""
    call = CallTokens(3_000, 700, cache_read_tokens=300)
    expected = (
        Decimal("2700") * Decimal("2.5e-6") + 300 * Decimal("1.25e-6") + 700 * Decimal("1e-5")
    )
    assert litellm_cost(litellm["gpt-4o"], call) == expected == Decimal("0.014125")


def test_each_correction_still_corrects_the_pinned_litellm_value(
    catalog: PriceCatalog, litellm: dict[str, Any]
) -> None:
    corrections = json.loads(CORRECTIONS.read_text(encoding="utf-8"))
    assert corrections["litellm_version"] == "1.110.2"
    for fix in corrections["corrections"]:
        assert fix["source"].startswith("https://")
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", fix["checked"])
        model = catalog.models[fix["model"]]
        raw = litellm[model.litellm_key or ""].get(fix["litellm_field"])
        # LiteLLM still says what the correction corrects; if this fails, re-check the source.
        assert raw == fix["litellm_value"], fix
        assert getattr(model, fix["field"]) == fix["value"], fix
