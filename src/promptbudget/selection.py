"""Which rules report, and from which severity a run fails: the command line over the
manifest (``select``, ``ignore``, ``fail_on``, ``fail_on_increase``), as ruff does."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from promptbudget.errors import UsageError
from promptbudget.findings import Finding, Severity
from promptbudget.manifest.model import Manifest
from promptbudget.options import Options
from promptbudget.rules import RULES, find_rule


def rule_codes(names: Iterable[str], where: str) -> frozenset[str]:
    """Codes for ``PB101``, a prefix (``PB1``: every PB1xx rule) or a slug."""
    codes: set[str] = set()
    for name in names:
        found = find_rule(name)
        if found is not None:
            codes.add(found.code)
            continue
        prefix = name.strip().upper()
        matching = {code for code in RULES if code.startswith(prefix)} if prefix else set()
        if prefix.startswith("PB") and matching:
            codes |= matching
            continue
        raise UsageError(
            f"{where}: unknown rule {name!r}; give a code (PB101), a prefix (PB1) or a slug "
            "(see 'promptbudget rules')"
        )
    return frozenset(codes)


def selected(
    options: Options, manifest: Manifest | None
) -> tuple[frozenset[str] | None, frozenset[str]]:
    """(rules that may report, or None for all; rules that never do). ``--select`` replaces
    the manifest's ``select``; ``--ignore`` adds to its ``ignore``."""
    select: frozenset[str] | None = None
    if options.select:
        select = rule_codes(options.select, "--select")
    elif manifest is not None and manifest.select is not None:
        select = rule_codes(manifest.select, f"{manifest.display_path}: select")
    ignore = rule_codes(options.ignore, "--ignore")
    if manifest is not None:
        ignore |= rule_codes(manifest.ignore, f"{manifest.display_path}: ignore")
    return select, ignore


def filter_findings(
    findings: tuple[Finding, ...], options: Options, manifest: Manifest | None
) -> tuple[Finding, ...]:
    select, ignore = selected(options, manifest)
    if select is None and not ignore:
        return findings
    return tuple(
        f for f in findings if (select is None or f.rule in select) and f.rule not in ignore
    )


def fail_on(options: Options, manifest: Manifest | None) -> Severity:
    """``--fail-on`` when given, else the manifest's ``fail_on``, else error."""
    if options.fail_on_given or manifest is None or manifest.fail_on is None:
        return options.fail_on
    return Severity(manifest.fail_on)


def fail_on_increase(options: Options, manifest: Manifest | None) -> Decimal | None:
    if options.fail_on_increase is not None or manifest is None:
        return options.fail_on_increase
    return manifest.fail_on_increase
