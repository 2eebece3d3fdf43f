"""The price catalog: dated package data, overridable from the manifest.

Rates are US dollars per million tokens, held as ``Decimal``. Field names are the manifest's
``models:`` keys, so a user override and the bundled data go through the same code path.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any, Literal

from promptbudget.errors import PricesError
from promptbudget.pricing.timeofday import (
    OffPeakPricing,
    TrafficProfile,
    off_peak_weights,
    parse_windows,
)

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
    provider: str  # the vendor: openai, anthropic, google, meta...
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
    successor: str | None = None  # the model the provider names as its replacement
    off_peak: OffPeakPricing | None = None  # time-of-day rates (DeepSeek)
    ttft_ms: float | None = None  # time to first token, median (milliseconds)
    ttft_p95_ms: float | None = None  # its 95th percentile, when a source gives one
    output_tokens_per_second: float | None = None  # after the first token
    speed_source: str | None = None  # where the speed figures come from
    speed_date: str | None = None  # when they were taken
    unmodelled: tuple[str, ...] = ()  # pricing dimensions the cost model leaves out
    source: str | None = None
    notes: str | None = None
    aliases: tuple[str, ...] = ()
    litellm_key: str | None = None  # the LiteLLM price-file key this entry comes from
    host: str | None = None  # who serves it, as a route prefix: openai, bedrock, vertex_ai...
    origin: str = "catalog"  # "catalog", "prices" (a price file) or "manifest"


def is_deprecated(model: ModelPrice, today: date | str | None) -> bool:
    """True when the catalog dates ``model``'s deprecation on or before ``today``
    (``YYYY-MM-DD``); False without a date on either side."""
    if not model.deprecation_date or today is None:
        return False
    try:
        day = date.fromisoformat(today) if isinstance(today, str) else today
        return date.fromisoformat(model.deprecation_date) <= day
    except ValueError:
        return False


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
_FLOAT_FIELDS = {"ttft_ms", "ttft_p95_ms", "output_tokens_per_second"}
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
        elif key in _FLOAT_FIELDS:
            values[key] = float(raw)
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
        elif key in {"aliases", "unmodelled"}:
            values[key] = tuple(raw)
        elif key == "off_peak":
            values[key] = raw if isinstance(raw, OffPeakPricing) else _off_peak(raw)
        else:
            values[key] = raw
    return ModelPrice(name=name, origin=origin, **values)


def _off_peak(raw: Mapping[str, Any]) -> OffPeakPricing:
    return OffPeakPricing(
        input_per_mtok=_decimal(raw["input_per_mtok"]),
        output_per_mtok=_decimal(raw["output_per_mtok"]),
        cache_read_per_mtok=(
            _decimal(raw["cache_read_per_mtok"])
            if raw.get("cache_read_per_mtok") is not None
            else None
        ),
        hours=parse_windows(raw["windows"]),
    )


class LazyModels(Mapping[str, ModelPrice]):
    """Models by name, each parsed from its catalog line the first time it is asked for.

    The bundled catalog holds thousands of models; a check uses a handful, so start-up reads
    the file and splits it into lines but parses only the entries it looks up.
    """

    def __init__(
        self,
        lines: Mapping[str, str],
        parsed: Mapping[str, ModelPrice],
        speeds: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self._lines = lines
        self._parsed = dict(parsed)
        self._speeds = speeds or {}

    def __getitem__(self, name: str) -> ModelPrice:
        model = self._parsed.get(name)
        if model is None:
            line = self._lines[name]  # KeyError for an unknown name, as a Mapping should
            data = json.loads(line)
            del data["name"]
            data.update(self._speeds.get(name, {}))
            model = model_from_mapping(name, data, origin="catalog")
            self._parsed[name] = model
        return model

    def __contains__(self, name: object) -> bool:
        return name in self._parsed or name in self._lines

    def __iter__(self) -> Iterator[str]:
        yield from self._lines
        yield from (name for name in self._parsed if name not in self._lines)

    def __len__(self) -> int:
        return len(self._lines) + sum(1 for name in self._parsed if name not in self._lines)

    def with_models(self, extra: Iterable[ModelPrice]) -> LazyModels:
        parsed = dict(self._parsed)
        parsed.update((model.name, model) for model in extra)
        return LazyModels(self._lines, parsed, self._speeds)


@dataclass(frozen=True)
class PriceCatalog:
    """Models by name, with the date the prices were taken."""

    models: Mapping[str, ModelPrice]
    as_of: str
    source: str
    _aliases: Mapping[str, str] = field(default_factory=dict, repr=False)
    _litellm_keys: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_models(cls, models: Iterable[ModelPrice], *, as_of: str, source: str) -> PriceCatalog:
        by_name = {model.name: model for model in models}
        aliases = {
            alias.lower(): model.name for model in by_name.values() for alias in model.aliases
        }
        keys = {
            model.litellm_key: model.name
            for model in by_name.values()
            if model.litellm_key is not None and model.litellm_key != model.name
        }
        return cls(models=by_name, as_of=as_of, source=source, _aliases=aliases, _litellm_keys=keys)

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

    def from_litellm_key(self, key: str) -> ModelPrice | None:
        """The model built from LiteLLM's entry ``key``: a curated model whose name differs
        from its key (``gemini-2.5-pro`` comes from ``gemini/gemini-2.5-pro``), a model renamed
        because its key is taken (Vertex AI's bare ``gemini-2.5-pro`` is
        ``vertex_ai/gemini-2.5-pro``), else the model of that name when it has no other key."""
        renamed = self._litellm_keys.get(key)
        if renamed is not None:
            return self.models[renamed]
        model = self.exact(key)
        if model is None or model.litellm_key not in (None, key):
            return None
        return model

    def closest(self, name: str, n: int = 3) -> list[str]:
        """Catalog names that look like ``name`` (for "did you mean" messages)."""
        bare = name.lower().rsplit("/", 1)[-1]
        return difflib.get_close_matches(bare, list(self.models), n=n, cutoff=0.5)

    def with_models(self, extra: Iterable[ModelPrice]) -> PriceCatalog:
        """A catalog where ``extra`` entries replace or add to these."""
        extra = list(extra)
        aliases = dict(self._aliases)
        aliases.update((a.lower(), model.name) for model in extra for a in model.aliases)
        models: Mapping[str, ModelPrice]
        if isinstance(self.models, LazyModels):
            models = self.models.with_models(extra)
        else:
            models = {**self.models, **{model.name: model for model in extra}}
        return PriceCatalog(
            models=models,
            as_of=self.as_of,
            source=self.source,
            _aliases=aliases,
            _litellm_keys=self._litellm_keys,
        )


@dataclass(frozen=True)
class TimeOfDay:
    """How a time-of-day price was blended: the share of traffic off-peak and both prices."""

    off_peak_share: Decimal
    peak: ModelPrice
    off_peak: ModelPrice
    is_even_spread: bool


def blend_time_of_day(
    price: ModelPrice, profile: TrafficProfile | None
) -> tuple[ModelPrice, TimeOfDay | None]:
    """``price`` with its off-peak rates blended in by the share of traffic sent off-peak
    (``profile``, or an even spread over the week): ``(peak x peak_weight + off_peak x
    off_peak_weight) / total_weight`` for input, output and cache reads. A model without
    time-of-day prices comes back unchanged."""
    off = price.off_peak
    if off is None:
        return price, None
    off_weight, total = off_peak_weights(off.hours, profile)
    peak_weight = total - off_weight

    def blend(peak: Decimal, low: Decimal | None) -> Decimal:
        if low is None:
            return peak
        return (peak * peak_weight + low * off_weight) / total

    off_price = replace(
        price,
        input_per_mtok=off.input_per_mtok,
        output_per_mtok=off.output_per_mtok,
        cache_read_per_mtok=off.cache_read_per_mtok
        if off.cache_read_per_mtok is not None
        else price.cache_read_per_mtok,
        off_peak=None,
    )
    blended = replace(
        price,
        input_per_mtok=blend(price.input_per_mtok, off.input_per_mtok),
        output_per_mtok=blend(price.output_per_mtok, off.output_per_mtok),
        cache_read_per_mtok=(
            blend(price.cache_read_per_mtok, off.cache_read_per_mtok)
            if price.cache_read_per_mtok is not None
            else None
        ),
        off_peak=None,
    )
    split = TimeOfDay(
        off_peak_share=off_weight / total,
        peak=replace(price, off_peak=None),
        off_peak=off_price,
        is_even_spread=profile is None,
    )
    return blended, split


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


CATALOG_FILE = "catalog.jsonl"
SPEEDS_FILE = "speeds.json"
_NAME_PREFIX = '{"name": "'
SPEED_FIELDS = ("ttft_ms", "ttft_p95_ms", "output_tokens_per_second", "speed_source", "speed_date")


def load_speeds() -> dict[str, dict[str, Any]]:
    """``speeds.json``: the sourced speeds of catalog models, by model name."""
    text = resources.files(__package__).joinpath(SPEEDS_FILE).read_text(encoding="utf-8")
    return {
        entry["model"]: {key: entry[key] for key in SPEED_FIELDS if key in entry}
        for entry in json.loads(text)["speeds"]
    }


@cache
def load_catalog() -> PriceCatalog:
    """The bundled catalog (``pricing/catalog.jsonl``), read once.

    The first line is the header (date, source, the alias and LiteLLM-key indexes); every
    other line is one model, ``{"name": ...}`` first. Models are parsed on first use.
    """
    try:
        text = resources.files(__package__).joinpath(CATALOG_FILE).read_text(encoding="utf-8")
        head, _, body = text.partition("\n")
        header = json.loads(head)
        lines: dict[str, str] = {}
        for line in body.splitlines():
            if not line.startswith(_NAME_PREFIX):
                raise ValueError(f"unexpected catalog line {line[:40]!r}")
            end = line.index('"', len(_NAME_PREFIX))
            lines[line[len(_NAME_PREFIX) : end]] = line
        speeds = load_speeds()
    except (OSError, ValueError, KeyError) as err:
        raise PricesError(f"the bundled price catalog cannot be read ({err}); reinstall") from err
    return PriceCatalog(
        models=LazyModels(lines, {}, speeds),
        as_of=header["as_of"],
        source=header["source"],
        _aliases=header["aliases"],
        _litellm_keys=header["litellm_keys"],
    )


def overlay_prices(
    catalog: PriceCatalog, entries: Mapping[str, Mapping[str, Any]], *, label: str
) -> PriceCatalog:
    """``catalog`` with the prices of a LiteLLM-format file laid over it.

    An entry is matched to the catalog model built from the same LiteLLM key (so Vertex AI's
    bare ``gemini-2.5-pro`` updates ``vertex_ai/gemini-2.5-pro``, not the Gemini API model);
    it replaces the values it gives and keeps the rest (tokenizer, aliases, curated fields
    the file lacks). Any other entry is added as a new model, its tokenizer guessed from its
    name.
    """
    from promptbudget.pricing.litellm import guess_family

    updated: dict[str, ModelPrice] = {}
    for name, entry in entries.items():
        base = catalog.from_litellm_key(name)
        if base is not None:
            if base.name in updated:
                continue
            model = model_from_mapping(base.name, {**_as_mapping(base), **entry}, origin="prices")
            updated[base.name] = replace(model, aliases=base.aliases)
        elif name not in catalog.models and name not in updated:
            updated[name] = model_from_mapping(
                name, {**entry, "tokenizer": guess_family(name)}, origin="prices"
            )
    merged = catalog.with_models(updated.values())
    return replace(
        merged, as_of=f"{catalog.as_of}, with {label}", source=f"{catalog.source}; {label}"
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
    "deprecation_date",
)


def diff_prices(
    catalog: PriceCatalog, entries: Mapping[str, Mapping[str, Any]]
) -> tuple[list[PriceChange], list[str]]:
    """What a price file changes for the catalog's models, and which models it lacks.

    Entries are matched by LiteLLM key (see ``PriceCatalog.from_litellm_key``); a long-context
    tier is compared field by field, so a change always shows two different values.
    """
    by_name: dict[str, ModelPrice] = {}
    for name, entry in entries.items():
        base = catalog.from_litellm_key(name)
        if base is not None and base.name not in by_name:
            by_name[base.name] = model_from_mapping(
                base.name, {**entry, "tokenizer": base.tokenizer}, origin="prices"
            )
    changes: list[PriceChange] = []
    missing: list[str] = []
    for name in sorted(catalog.models):
        other = by_name.get(name)
        if other is None:
            missing.append(name)
            continue
        bundled = catalog.models[name]
        for field_name in DIFFED_FIELDS:
            old, new = getattr(bundled, field_name), getattr(other, field_name)
            if new is not None and old != new:
                changes.append(PriceChange(name, field_name, old, new))
        changes.extend(_tier_changes(name, bundled.long_context, other.long_context))
    return changes, missing


def _tier_changes(
    name: str, old: LongContextTier | None, new: LongContextTier | None
) -> list[PriceChange]:
    if new is None or old == new:
        return []
    if old is None:
        return [PriceChange(name, "long_context", None, new)]
    out = []
    for f in fields(LongContextTier):
        before, after = getattr(old, f.name), getattr(new, f.name)
        if after is not None and before != after:
            out.append(PriceChange(name, f"long_context.{f.name}", before, after))
    return out
