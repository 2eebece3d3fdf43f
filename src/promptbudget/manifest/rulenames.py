"""Rule names in the manifest (``rules:``, ``select``, ``ignore``, ``per_file_ignores``)
checked while it loads, so an unknown rule is reported in the same run as every other
manifest error, at its own line, with a near name when it looks like a typo."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

from promptbudget.errors import ManifestError
from promptbudget.manifest.paths import join_path

Fail = Callable[[str, str], ManifestError]
Blocked = Callable[[str], bool]

SEE = "see 'promptbudget rules' for codes and slugs"


def rule_name_problems(
    data: Mapping[str, Any], fail: Fail, blocked: Blocked
) -> list[ManifestError]:
    """One error per unknown rule name (and per rule configured twice under ``rules:``);
    a part the schema already refused (``blocked``) is not looked at again."""
    # The registry is imported only when the manifest names a rule: it pulls in every rule.
    if not any(data.get(key) for key in ("rules", "select", "ignore", "per_file_ignores")):
        return []
    from promptbudget.rules import RULES, find_rule

    def near(name: str) -> str:
        known = [*RULES, *(rule.slug for rule in RULES.values())]
        found = difflib.get_close_matches(name, known, n=1) or difflib.get_close_matches(
            name.upper(), list(RULES), n=1
        )
        return f"did you mean {found[0]!r}? " if found else ""

    problems: list[ManifestError] = []
    rules = data.get("rules")
    if isinstance(rules, dict):
        configured_as: dict[str, str] = {}
        for name in rules:
            path = join_path("$.rules", str(name))
            rule = find_rule(str(name))
            if blocked(path):
                continue
            if rule is None:
                problems.append(fail(f"unknown rule {name!r}; {near(str(name))}{SEE}", path))
            elif rule.code in configured_as:
                problems.append(
                    fail(
                        f"{rule.code} is configured twice (as {configured_as[rule.code]!r} "
                        f"and {name!r}); keep one",
                        path,
                    )
                )
            else:
                configured_as[rule.code] = str(name)
    for key in ("select", "ignore"):
        names = data.get(key)
        if not isinstance(names, list):
            continue
        for index, name in enumerate(names):
            if blocked(f"$.{key}[{index}]"):
                continue
            if find_rule(str(name)) is None and not _prefix_matches(str(name), RULES):
                problems.append(
                    fail(
                        f"unknown rule {name!r} in {key}; {near(str(name))}give a code "
                        "(PB101), a prefix (PB1) or a slug (see 'promptbudget rules')",
                        f"$.{key}[{index}]",
                    )
                )
    ignores = data.get("per_file_ignores")
    if isinstance(ignores, dict):
        for pattern, names in ignores.items():
            where = join_path("$.per_file_ignores", str(pattern))
            if blocked(where):
                continue
            for index, name in enumerate(names if isinstance(names, list) else ()):
                if find_rule(str(name)) is None:
                    problems.append(
                        fail(
                            f"unknown rule {name!r} in per_file_ignores; {near(str(name))}{SEE}",
                            f"{where}[{index}]",
                        )
                    )
    return problems


def _prefix_matches(name: str, codes: Mapping[str, object]) -> bool:
    """``PB1``: a prefix of at least one rule code."""
    prefix = name.strip().upper()
    return prefix.startswith("PB") and any(code.startswith(prefix) for code in codes)
