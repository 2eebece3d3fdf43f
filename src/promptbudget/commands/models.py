"""``promptbudget models``: the catalog (with the manifest's additions, if any), searched and
filtered; with ``--diff FILE``, which bundled prices a price file changes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from promptbudget.errors import UsageError
from promptbudget.manifest.loader import find_manifest, load_manifest
from promptbudget.options import Options
from promptbudget.pricing.catalog import ModelPrice, diff_prices, load_catalog
from promptbudget.pricing.litellm import load_price_file
from promptbudget.project import open_catalog
from promptbudget.report import Report


def run(options: Options) -> Report:
    if options.price_diff is not None:
        return _price_diff(options.price_diff)
    manifest_path = options.config or find_manifest(options.cwd)
    if manifest_path is not None:
        catalog = load_manifest(manifest_path, cwd=options.cwd, prices=options.prices).catalog
    else:
        catalog = open_catalog(options.prices)
    models = sorted(catalog.models.values(), key=lambda m: (m.provider, m.name))
    models = filter_models(
        models, query=options.query, provider=options.provider, family=options.family
    )
    return Report(
        command="models",
        models=tuple(models),
        catalog_as_of=catalog.as_of,
        today=options.today.isoformat() if options.today else None,
    )


def matches(model: ModelPrice, words: Sequence[str]) -> bool:
    """Every word is part of the model's name or of one of its aliases (any case)."""
    names = [model.name.lower(), *(alias.lower() for alias in model.aliases)]
    return all(any(word in name for name in names) for word in words)


def filter_models(
    models: Sequence[ModelPrice],
    *,
    query: Sequence[str] = (),
    provider: str | None = None,
    family: str | None = None,
) -> list[ModelPrice]:
    """``models`` narrowed by search words, vendor or host, and tokenizer family."""
    out = list(models)
    if provider:
        wanted = provider.lower()
        known = {m.provider for m in out} | {m.host for m in out if m.host}
        if wanted not in known:
            vendors = sorted({m.provider for m in out})
            raise UsageError(
                f"unknown provider {provider!r}; vendors: {', '.join(vendors[:12])}"
                + (" ..." if len(vendors) > 12 else "")
                + " (or a host such as bedrock, vertex_ai, azure, openrouter)"
            )
        out = [m for m in out if wanted in {m.provider, m.host}]
    if family:
        families = sorted({m.tokenizer for m in models})
        if family not in families:
            raise UsageError(
                f"unknown tokenizer family {family!r}; families: {', '.join(families)}"
            )
        out = [m for m in out if m.tokenizer == family]
    words = [word.lower() for word in query if word.strip()]
    if words:
        out = [m for m in out if matches(m, words)]
    return out


def _price_diff(path: Path) -> Report:
    catalog = load_catalog()
    changes, missing = diff_prices(catalog, load_price_file(path))
    return Report(
        command="models-diff",
        catalog_as_of=catalog.as_of,
        price_file=str(path),
        price_changes=tuple(changes),
        missing_models=tuple(missing),
    )
