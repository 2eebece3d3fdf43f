"""A model name resolved against the catalog: its price and the tokenizer that counts it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from promptbudget.pricing.catalog import ModelPrice, PriceCatalog
from promptbudget.tokenizers import guess_tokenizer

DEFAULT_TOKENIZER = "o200k_base"

_SNAPSHOT_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4})$")


@dataclass(frozen=True)
class ModelChoice:
    """A model name resolved against the catalog.

    ``price`` is the catalog entry (None: cannot be priced). ``family`` is the catalog entry
    of a dated snapshot's model (``gpt-4-0613`` -> ``gpt-4``): good enough to count tokens,
    not to price, since snapshots can have their own prices.
    """

    name: str | None
    price: ModelPrice | None
    tokenizer: str
    family: ModelPrice | None = None

    @property
    def is_known(self) -> bool:
        """Known well enough to count: in the catalog, or a snapshot of a catalog model."""
        return self.name is None or self.price is not None or self.family is not None


def resolve_model(name: str | None, catalog: PriceCatalog) -> ModelChoice:
    """Catalog entry and tokenizer for ``name``. An unknown name keeps a best-guess tokenizer
    (so its tokens are still counted) and is reported as PB110."""
    if name is None:
        return ModelChoice(None, None, DEFAULT_TOKENIZER)
    price = catalog.lookup(name)
    if price is not None:
        return ModelChoice(price.name, price, price.tokenizer)
    family = catalog.lookup(_SNAPSHOT_SUFFIX.sub("", name))
    if family is not None:
        return ModelChoice(name, None, family.tokenizer, family=family)
    return ModelChoice(name, None, guess_tokenizer(name) or "approximate")
