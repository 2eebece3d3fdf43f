"""The price catalog a manifest prices with: the bundled one, the manifest's ``prices:``
file and ``--prices`` laid over it, and its ``models:`` entries (every bad entry reported
together, each at its own line)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from promptbudget.bounded import InputBoundsError, check_json_depth
from promptbudget.confine import ConfinementError, read_confined
from promptbudget.errors import (
    ManifestError,
    ManifestErrors,
    PricesError,
    TokenizerUnavailableError,
)
from promptbudget.manifest.convert import Converter
from promptbudget.manifest.latency import model_speed
from promptbudget.manifest.paths import join_path
from promptbudget.pricing.catalog import (
    ModelPrice,
    PriceCatalog,
    load_catalog,
    model_from_mapping,
    overlay_prices,
    override_model,
)
from promptbudget.pricing.litellm import load_price_file
from promptbudget.templates.source import display_path
from promptbudget.tokenizers import register_tokenizer_file
from promptbudget.units import parse_tokens, parse_usd

MAX_TOKENIZER_BYTES = 64 * 1024 * 1024  # Hugging Face tokenizer.json files are 1-20 MB


def manifest_catalog(
    converter: Converter,
    data: Mapping[str, Any],
    prices: Path | None,
    skip: Callable[[str], bool] = lambda _: False,
) -> tuple[PriceCatalog, Path | None]:
    """The bundled catalog with the price files and ``models:`` laid over it. Every bad
    ``models:`` entry is reported (together); an entry ``skip`` names (the schema
    already refused it) is left out."""
    catalog = load_catalog()
    prices_path = None
    if "prices" in data:
        prices_path = converter.resolved(converter.root, data["prices"], "$.prices")
        if not prices_path.is_relative_to(converter.root):
            raise converter.fail("prices must be a file inside the project", "$.prices")
        if not prices_path.is_file():
            raise converter.fail(f"price file {data['prices']!r} not found", "$.prices")
        catalog = _price_file(converter, catalog, prices_path, "$.prices")
    if prices is not None:
        catalog = overlay_prices(catalog, load_price_file(prices), label=prices.name)
    extra = []
    problems: list[ManifestError] = []
    for name, entry in (data.get("models") or {}).items():
        path = join_path("$.models", name)
        if skip(path):
            continue
        try:
            extra.append(_model(converter, catalog, name, entry, path))
        except ManifestError as err:
            problems.append(err)
    if len(problems) == 1:
        raise problems[0]
    if problems:
        raise ManifestErrors(problems)
    return (catalog.with_models(extra) if extra else catalog), prices_path


def _model(
    converter: Converter, catalog: PriceCatalog, name: str, entry: Mapping[str, Any], path: str
) -> ModelPrice:
    """One ``models:`` entry: an override of a catalog model, or a new model."""
    entry = _model_entry(converter, entry, path)
    if str(entry.get("tokenizer", "")).endswith(".json"):
        entry["tokenizer"] = _tokenizer_file(converter, entry["tokenizer"], f"{path}.tokenizer")
    existing = catalog.lookup(name)
    if existing is not None and existing.name == name:
        return override_model(existing, entry)
    missing = [k for k in ("input_per_mtok", "output_per_mtok") if k not in entry]
    if missing:
        near = catalog.closest(name)
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise converter.fail(
            f"model {name!r} is not in the catalog{hint}, so it needs {' and '.join(missing)}",
            path,
        )
    entry.setdefault("tokenizer", "approximate")
    entry.setdefault("provider", "custom")
    return model_from_mapping(name, entry, origin="manifest")


def _tokenizer_file(converter: Converter, value: str, json_path: str) -> str:
    """A project's tokenizer.json, registered as a tokenizer; its name."""
    path = converter.resolved(converter.root, value, json_path)
    if not path.is_relative_to(converter.root):
        raise converter.fail("a tokenizer file must be inside the project", json_path)
    if not path.is_file():
        raise converter.fail(f"tokenizer file {value!r} not found", json_path)
    try:
        # Checked before the Rust library sees it: regular, inside, bounded size and depth.
        raw = read_confined(path, root=converter.root, limit=MAX_TOKENIZER_BYTES)
        check_json_depth(raw.decode("utf-8", "replace"))
    except (ConfinementError, InputBoundsError) as err:
        raise converter.fail(f"tokenizer file {value!r}: {err}", json_path) from err
    try:
        return register_tokenizer_file(path, display_path(path, converter.root))
    except TokenizerUnavailableError as err:
        raise converter.fail(str(err), json_path) from err


def _price_file(
    converter: Converter, catalog: PriceCatalog, path: Path, json_path: str
) -> PriceCatalog:
    try:
        entries = load_price_file(path, root=converter.root)
    except PricesError as err:
        raise converter.fail(str(err), json_path) from err
    return overlay_prices(catalog, entries, label=display_path(path, converter.root))


def _model_entry(converter: Converter, entry: Mapping[str, Any], path: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in entry.items():
        if key.endswith("_per_mtok"):
            out[key] = converter.unit(parse_usd, value, f"{path}.{key}")
        elif key in {"context_window", "max_output_tokens", "cache_min_tokens"}:
            out[key] = converter.unit(parse_tokens, value, f"{path}.{key}")
        elif key in {"ttft_ms", "output_tokens_per_second"}:
            out.update(converter.unit(model_speed, {key: value}, f"{path}.{key}"))
        elif key == "long_context":
            tier_path = f"{path}.long_context"
            out[key] = {
                k: (
                    converter.unit(parse_tokens, v, f"{tier_path}.{k}")
                    if k == "threshold_tokens"
                    else converter.unit(parse_usd, v, f"{tier_path}.{k}")
                )
                for k, v in value.items()
            }
        else:
            out[key] = value
    if {"ttft_ms", "output_tokens_per_second"} & set(entry) and "speed_source" not in entry:
        out.update(speed_source="budgets.yaml models:", speed_date=None)  # the user's figure
    return out
