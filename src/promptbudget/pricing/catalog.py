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
    cache_increment_tokens: int | None = None  # cache hits come in steps of this many tokens
    deprecation_date: str | None = None
    source: str | None = None
    notes: str | None = None
    aliases: tuple[str, ...] = ()
    origin: str = "catalog"  # "catalog", "prices" (a price file) or "manifest"


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
_INT_FIELDS = {
    "context_window",
    "max_output_tokens",
    "cache_min_tokens",
    "cache_increment_tokens",
}
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
        """Exact name, then an alias, then the name without a provider prefix (and with
        Azure OpenAI's ``gpt-35-turbo`` spelled ``gpt-3.5-turbo``)."""
        if name in self.models:
            return self.models[name]
        lowered = name.lower()
        bare = lowered.rsplit("/", 1)[-1]
        azure = "gpt-3.5-" + bare.removeprefix("gpt-35-") if bare.startswith("gpt-35-") else bare
        for candidate in dict.fromkeys((lowered, bare, azure)):
            if candidate in self.models:
                return self.models[candidate]
            if candidate in self._aliases:
                return self.models[self._aliases[candidate]]
        return None

    def exact(self, name: str) -> ModelPrice | None:
        """The model called exactly ``name`` or with ``name`` as an alias (any case)."""
        if name in self.models:
            return self.models[name]
        lowered = name.lower()
        if lowered in self.models:
            return self.models[lowered]
        alias = self._aliases.get(lowered)
        return self.models[alias] if alias is not None else None

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


def overlay_prices(
    catalog: PriceCatalog, entries: Mapping[str, Mapping[str, Any]], *, label: str
) -> PriceCatalog:
    """``catalog`` with the prices of a LiteLLM-format file laid over it.

    An entry whose name (or an alias) is a catalog model replaces the values it gives and
    keeps the rest (tokenizer, aliases, curated fields the file lacks); any other entry is
    added as a new model, its tokenizer guessed from its name.
    """
    from promptbudget.tokenizers import guess_tokenizer

    merged = dict(catalog.models)
    for name, entry in entries.items():
        base = catalog.exact(name)
        if base is not None:
            updated = model_from_mapping(base.name, {**_as_mapping(base), **entry}, origin="prices")
            merged[base.name] = replace(updated, aliases=base.aliases)
        elif name not in merged:
            tokenizer = guess_tokenizer(name) or "approximate"
            merged[name] = model_from_mapping(
                name, {**entry, "tokenizer": tokenizer}, origin="prices"
            )
    return PriceCatalog.from_models(
        merged.values(), as_of=f"{catalog.as_of}, with {label}", source=f"{catalog.source}; {label}"
    )


@dataclass(frozen=True)
class PriceChange:
    model: str
    field: str
    bundled: object
    other: object


DIFFED_FIELDS = (
    "input_per_mtok",
    "output_per_mtok",
    "cache_read_per_mtok",
    "cache_write_per_mtok",
    "cache_write_1h_per_mtok",
    "batch_input_per_mtok",
    "batch_output_per_mtok",
    "batch_cache_read_per_mtok",
    "context_window",
    "max_output_tokens",
)


def diff_prices(
    catalog: PriceCatalog, entries: Mapping[str, Mapping[str, Any]]
) -> tuple[list[PriceChange], list[str]]:
    """What a price file changes for the catalog's models, and which models it lacks."""
    by_name: dict[str, ModelPrice] = {}
    for name, entry in entries.items():
        base = catalog.exact(name)
        if base is not None and base.name not in by_name:
            by_name[base.name] = model_from_mapping(
                base.name, {**entry, "tokenizer": base.tokenizer}, origin="prices"
            )
    changes: list[PriceChange] = []
    missing: list[str] = []
    for name in sorted(catalog.models):
        bundled = catalog.models[name]
        other = by_name.get(name)
        if other is None:
            missing.append(name)
            continue
        for field_name in DIFFED_FIELDS:
            old, new = getattr(bundled, field_name), getattr(other, field_name)
            if new is not None and old != new:
                changes.append(PriceChange(name, field_name, old, new))
        old_tier, new_tier = bundled.long_context, other.long_context
        if new_tier is not None and old_tier != new_tier:
            changes.append(PriceChange(name, "long_context", old_tier, new_tier))
    return changes, missing
