"""Refreshing prices offline: --prices FILE, the manifest's prices:, models --diff."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

from conftest import Run

PRICE_FILE = {
    "sample_spec": {"input_cost_per_token": 0.0, "litellm_provider": "x"},
    # A price change for a catalog model: $3 in / $12 out instead of $2.50 / $10.
    "gpt-4o": {
        "litellm_provider": "openai",
        "mode": "chat",
        "input_cost_per_token": 3e-06,
        "output_cost_per_token": 1.2e-05,
        "max_input_tokens": 128000,
        "max_output_tokens": 16384,
    },
    # A model the catalog does not have.
    "acme/new-model": {
        "litellm_provider": "acme",
        "mode": "chat",
        "input_cost_per_token": 1e-06,
        "output_cost_per_token": 2e-06,
    },
    "dall-e-9": {
        "litellm_provider": "openai",
        "mode": "image_generation",
        "input_cost_per_token": 1,
    },
}

PROJECT = {
    "budgets.yaml": """\
        version: 1
        workflows:
          w:
            steps:
              - prompt: a.j2
                model: gpt-4o
                output_tokens: 0
                variables:
                  doc: {max_tokens: 999993}
    """,
    "prompts/a.j2": "{{ doc }}",
}


def write_prices(root: Path) -> Path:
    path = root / "prices.json"
    path.write_text(json.dumps(PRICE_FILE), encoding="utf-8")
    return path


def cost(run_cli: Callable[..., Run], root: Path, *args: str) -> float:
    result = run_cli("estimate", "--format", "json", *args, cwd=root)
    assert result.exit_code == 0, result.stderr
    value: float = result.json()["workflows"][0]["cost_per_request_usd"]
    return value


def test_prices_option_replaces_catalog_prices(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = make_project(PROJECT)
    prices = write_prices(root)
    # 1,000,000 input tokens (999,993 + 7 framing) at $2.50, then at $3.
    assert cost(run_cli, root) == 2.5
    assert cost(run_cli, root, "--prices", str(prices)) == 3.0


def test_manifest_prices_key(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    files = dict(PROJECT)
    files["budgets.yaml"] = "prices: prices.json\n" + textwrap.dedent(PROJECT["budgets.yaml"])
    root = make_project(files)
    write_prices(root)
    assert cost(run_cli, root) == 3.0
    models = run_cli("models", "--format", "json", cwd=root).json()["models"]
    new = next(m for m in models if m["name"] == "acme/new-model")
    assert (new["input_per_mtok"], new["origin"], new["tokenizer"]) == (
        1.0,
        "prices",
        "approximate",
    )
    gpt4o = next(m for m in models if m["name"] == "gpt-4o")
    # Values the file lacks keep the catalog's (its cache read rate, its aliases).
    assert (gpt4o["input_per_mtok"], gpt4o["cache_read_per_mtok"]) == (3.0, 1.25)
    assert not any(m["name"] == "dall-e-9" for m in models)


def test_models_diff(make_project: Callable[..., Path], run_cli: Callable[..., Run]) -> None:
    root = make_project({"x.txt": "x"})
    prices = write_prices(root)
    payload = run_cli("models", "--diff", str(prices), "--format", "json").json()
    changes = {(c["model"], c["field"]): (c["bundled"], c["file"]) for c in payload["changes"]}
    assert changes == {
        ("gpt-4o", "input_per_mtok"): (2.5, 3.0),
        ("gpt-4o", "output_per_mtok"): (10.0, 12.0),
    }
    assert "claude-sonnet-4-6" in payload["missing"]
    text = run_cli("models", "--diff", str(prices))
    assert text.exit_code == 0
    assert "gpt-4o" in text.stdout and "input_per_mtok" in text.stdout
    assert "2 changed value(s)" in text.stdout


def test_bad_price_file_is_exit_2(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = make_project(PROJECT)
    (root / "broken.json").write_text("{not json", encoding="utf-8")
    for args in (
        ("estimate", "--prices", "broken.json"),
        ("models", "--diff", "broken.json"),
        ("check", "--prices", "missing.json"),
    ):
        result = run_cli(*args, cwd=root)
        assert result.exit_code == 2, args
        assert len(result.stderr.splitlines()) == 1
        assert "promptbudget: error:" in result.stderr
    files = dict(PROJECT)
    files["budgets.yaml"] = "prices: nope.json\n" + textwrap.dedent(PROJECT["budgets.yaml"])
    result = run_cli("check", cwd=make_project(files))
    assert result.exit_code == 2
    assert "budgets.yaml:1: price file 'nope.json' not found" in result.stderr
