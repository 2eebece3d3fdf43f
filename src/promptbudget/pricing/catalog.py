"""The price catalog: dated package data, overridable from the manifest.

Rates are US dollars per million tokens, held as ``Decimal``. Field names are the manifest's
``models:`` keys, so a user override and the bundled data go through the same code path.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any, Literal

from promptbudget.errors import PricesError

BillingStyle = Literal["openai", "anthropic"]

MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class LongContextTier:
    """Above ``threshold_tokens`` of prompt, the *whole request* is priced at these rates."""

    threshold_tokens: int
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    cache_read_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None


@dataclass(frozen=True)
class ModelPrice:
    """One model's prices and limits.

    ``billing`` says how cached tokens relate to input: ``openai`` (cached tokens are a subset
    of the prompt tokens, billed at the cache-read rate) or ``anthropic`` (input excludes cache
    reads and writes, each billed at its own rate).
    """

    name: str
    provider: str
    tokenizer: str
    input_per_mtok: Decimal
    output_per_mtok: Decimal
    billing: BillingStyle = "openai"
    cache_read_per_mtok: Decimal | None = None
    cache_write_per_mtok: Decimal | None = None
    cache_write_1h_per_mtok: Decimal | None = None
    batch_input_per_mtok: Decimal | None = None
    batch_output_per_mtok: Decimal | None = None
    batch_cache_read_per_mtok: Decimal | None = None
    long_context: LongContextTier | None = None
    context_window: int | None = None
    max_output_tokens: int | None = None
    cache_min_tokens: int | None = None
    deprecation_date: str | None = None
    source: str | None = None
    notes: str | None = None
    aliases: tuple[str, ...] = ()
    origin: str = "catalog"  # "catalog" or "manifest"


_DECIMAL_FIELDS = {
    "input_per_mtok",
    "output_per_mtok",
    "cache_read_per_mtok",
    "cache_write_per_mtok",
    "cache_write_1h_per_mtok",
    "batch_input_per_mtok",
    "batch_output_per_mtok",
    "batch_cache_read_per_mtok",
}
_INT_FIELDS = {"context_window", "max_output_tokens", "cache_min_tokens"}
MODEL_FIELDS = frozenset(f.name for f in fields(ModelPrice)) - {"name", "origin"}


def _decimal(value: object) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float | str):
        return Decimal(str(value).strip().lstrip("$").replace(",", ""))
    raise TypeError(f"not a price: {value!r}")


def model_from_mapping(name: str, data: Mapping[str, Any], *, origin: str) -> ModelPrice:
    """Build a ``ModelPrice`` from catalog JSON or a manifest entry (already validated)."""
    values: dict[str, Any] = {}
    for key, raw in data.items():
        if raw is None:
            continue
        if key in _DECIMAL_FIELDS:
            values[key] = _decimal(raw)
        elif key in _INT_FIELDS:
            values[key] = int(raw)
        elif key == "long_context":
            values[key] = LongContextTier(
                threshold_tokens=int(raw["threshold_tokens"]),
                input_per_mtok=_decimal(raw["input_per_mtok"]),
                output_per_mtok=_decimal(raw["output_per_mtok"]),
                cache_read_per_mtok=(
                    _decimal(raw["cache_read_per_mtok"])
                    if raw.get("cache_read_per_mtok") is not None
                    else None
                ),
                cache_write_per_mtok=(
                    _decimal(raw["cache_write_per_mtok"])
                    if raw.get("cache_write_per_mtok") is not None
                    else None
                ),
            )
        elif key == "aliases":
            values[key] = tuple(raw)
        else:
            values[key] = raw
    return ModelPrice(name=name, origin=origin, **values)


@dataclass(frozen=True)
class PriceCatalog:
    """Models by name, with the date the prices were taken."""

    models: Mapping[str, ModelPrice]
    as_of: str
    source: str
    _aliases: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_models(cls, models: Iterable[ModelPrice], *, as_of: str, source: str) -> PriceCatalog:
        by_name = {model.name: model for model in models}
        aliases = {
            alias.lower(): model.name for model in by_name.values() for alias in model.aliases
        }
        return cls(models=by_name, as_of=as_of, source=source, _aliases=aliases)

    def lookup(self, name: str) -> ModelPrice | None:
        """Exact name, then an alias, then the name without a provider prefix."""
        if name in self.models:
            return self.models[name]
        lowered = name.lower()
        for candidate in (lowered, lowered.rsplit("/", 1)[-1]):
            if candidate in self.models:
                return self.models[candidate]
            if candidate in self._aliases:
                return self.models[self._aliases[candidate]]
        return None

    def closest(self, name: str, n: int = 3) -> list[str]:
        """Catalog names that look like ``name`` (for "did you mean" messages)."""
        bare = name.lower().rsplit("/", 1)[-1]
        return difflib.get_close_matches(bare, list(self.models), n=n, cutoff=0.5)

    def with_models(self, extra: Iterable[ModelPrice]) -> PriceCatalog:
        """A catalog where ``extra`` entries replace or add to these."""
        merged = dict(self.models)
        for model in extra:
            merged[model.name] = model
        return PriceCatalog.from_models(merged.values(), as_of=self.as_of, source=self.source)


def override_model(base: ModelPrice, data: Mapping[str, Any]) -> ModelPrice:
    """``base`` with the fields given in a manifest entry replaced."""
    partial = model_from_mapping(base.name, {**_as_mapping(base), **data}, origin="manifest")
    return replace(partial, aliases=base.aliases)


def _as_mapping(model: ModelPrice) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(ModelPrice):
        if f.name in {"name", "origin"}:
            continue
        value = getattr(model, f.name)
        if isinstance(value, LongContextTier):
            value = {
                "threshold_tokens": value.threshold_tokens,
                "input_per_mtok": value.input_per_mtok,
                "output_per_mtok": value.output_per_mtok,
                "cache_read_per_mtok": value.cache_read_per_mtok,
                "cache_write_per_mtok": value.cache_write_per_mtok,
            }
        out[f.name] = value
    return out


@cache
def load_catalog() -> PriceCatalog:
    """The bundled catalog (``pricing/catalog.json``), parsed once."""
    try:
        text = resources.files(__package__).joinpath("catalog.json").read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as err:
        raise PricesError(f"the bundled price catalog cannot be read ({err}); reinstall") from err
    models = [
        model_from_mapping(name, entry, origin="catalog") for name, entry in data["models"].items()
    ]
    return PriceCatalog.from_models(models, as_of=data["as_of"], source=data["source"])
