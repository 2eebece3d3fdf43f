"""Pricing dimensions the cost model leaves out are said, per model, wherever costs are shown."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from promptbudget.pricing.catalog import load_catalog
from promptbudget.pricing.litellm import unmodelled_dimensions


def test_litellm_fields_name_the_missing_dimensions() -> None:
    entry = {
        "litellm_provider": "openai",
        "input_cost_per_token": 2.5e-06,
        "output_cost_per_token": 1.5e-05,
        "cache_creation_input_token_cost_above_12hr": 3e-06,
        "input_cost_per_token_above_128k_tokens": 5e-06,
        "input_cost_per_token_above_256k_tokens": 7e-06,
    }
    assert unmodelled_dimensions(entry, "gpt-x") == [
        "12-hour cache writes",
        "long-context tiers above the first",
    ]
    gemini = {"litellm_provider": "gemini", "cache_read_input_token_cost": 1.25e-07}
    assert unmodelled_dimensions(gemini, "gemini/gemini-x") == ["cache storage per hour"]
    assert unmodelled_dimensions({"litellm_provider": "anthropic"}, "claude-x") == []


def test_the_catalog_carries_them() -> None:
    models = load_catalog().models
    assert "12-hour cache writes" in models["gpt-6-astra"].unmodelled
    assert "cache storage per hour" in models["gemini-2.5-pro"].unmodelled
    assert models["claude-sonnet-4-6"].unmodelled == ()


def test_estimate_says_what_is_not_modelled(
    run_cli: Callable[..., Any], make_project: Callable[..., Path]
) -> None:
    root = make_project(
        {
            "budgets.yaml": """\
                version: 1
                workflows:
                  review:
                    traffic: {requests_per_day: 100}
                    steps:
                      - prompt: review.j2
                        model: gemini-2.5-pro
                        output_tokens: 300
                """,
            "prompts/review.j2": "Review the diff below for bugs.\n",
        }
    )
    text = run_cli("estimate", cwd=root).stdout
    assert "not modelled for gemini-2.5-pro: cache storage per hour" in text
    (workflow,) = run_cli("estimate", "--format", "json", cwd=root).json()["workflows"]
    assert workflow["unmodelled"] == {"gemini-2.5-pro": ["cache storage per hour"]}
