"""``promptbudget models``: the catalog (with the manifest's additions, if any); with
``--diff FILE``, which bundled prices a price file changes."""

from __future__ import annotations

from pathlib import Path

from promptbudget.errors import UsageError
from promptbudget.manifest.loader import find_manifest, load_manifest
from promptbudget.options import Options
from promptbudget.pricing.catalog import diff_prices, load_catalog
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
    if options.provider:
        providers = sorted({m.provider for m in models})
        if options.provider.lower() not in providers:
            raise UsageError(
                f"unknown provider {options.provider!r}; providers: {', '.join(providers)}"
            )
        models = [m for m in models if m.provider == options.provider.lower()]
    return Report(command="models", models=tuple(models), catalog_as_of=catalog.as_of)


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
