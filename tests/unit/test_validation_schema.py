"""The schema the validator runs (``$ref``s replaced by their definitions, for speed) gives
the same errors as ``schema.json`` as written, on the manifests shipped and on one-place
changes of them: at each place of each manifest, a key dropped, an unknown key added, or its
value replaced by one of 13 others (the kind of change turns with the place, so every kind is
made all over each manifest; all of them at every place would take ~30 s). And where a
``$ref`` has checks of its own beside it (``tool_calls``: a count, at most 100), values that
only those checks refuse."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from promptbudget.manifest.validation import load_schema, schema_errors, validation_schema

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = [
    "examples/budgets.yaml",
    "examples/over-budget/budgets.yaml",
    "src/promptbudget/scaffold/budgets.yaml",
    "tests/reporters/projects/three-levels/budgets.yaml",
]
# What a value may be replaced by: every JSON kind, edge numbers, text shaped like a unit.
REPLACEMENTS: list[Any] = [
    None,
    True,
    -1,
    0,
    1.5,
    500,
    10**12,
    "x",
    "$0.01",
    "6k",
    [],
    {},
    {"zz": 1},
]
CHANGES = [("drop", None), ("add", None), *(("set", value) for value in REPLACEMENTS)]


def _places(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _places(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _places(value, (*path, index))


def _with(data: Any, path: tuple[Any, ...], change: str, value: Any = None) -> Any:
    changed = copy.deepcopy(data)
    if not path:
        return value if change == "set" else changed
    parent = changed
    for part in path[:-1]:
        parent = parent[part]
    if change == "drop":
        del parent[path[-1]]
    elif change == "set":
        parent[path[-1]] = value
    elif isinstance(parent[path[-1]], dict):  # "add": an unknown key
        parent[path[-1]]["zz_unknown"] = 1
    return changed


def _variants(data: Any) -> Iterator[Any]:
    yield data
    for index, path in enumerate(_places(data)):
        change, value = CHANGES[index % len(CHANGES)]
        if path or change != "drop":
            yield _with(data, path, change, value)


def _messages(data: Any, schema: dict[str, Any] | None) -> list[str]:
    return [str(error) for error in schema_errors(data, {}, "budgets.yaml", schema=schema)]


def _compared(variants: Iterator[Any]) -> tuple[int, int]:
    written = load_schema()
    compared = broken = 0
    for variant in variants:
        expected = _messages(variant, written)
        assert _messages(variant, None) == expected, json.dumps(variant, default=str)[:400]
        compared += 1
        broken += bool(expected)
    return compared, broken


def test_the_inlined_schema_finds_the_same_errors() -> None:
    compared, broken = _compared(
        variant
        for name in MANIFESTS
        for variant in _variants(yaml.safe_load((ROOT / name).read_text(encoding="utf-8")))
    )
    assert compared > 300 and broken > compared // 2  # the changes do break the manifests


def test_checks_beside_a_reference_still_apply() -> None:
    data = yaml.safe_load((ROOT / "examples/budgets.yaml").read_text(encoding="utf-8"))
    places = [path for path in _places(data) if path and path[-1] == "tool_calls"]
    assert places
    variants = [_with(data, path, "set", value) for path in places for value in (101, 500, -1)]
    assert _compared(iter(variants)) == (len(variants), len(variants))


def test_no_reference_is_left_and_nothing_else_changes() -> None:
    inlined = json.dumps(validation_schema())
    definitions = json.dumps(validation_schema()["$defs"])
    assert '"$ref"' not in inlined.replace(definitions, "")
    assert validation_schema()["properties"].keys() == load_schema()["properties"].keys()
    assert '"$ref"' in json.dumps(load_schema())  # what `promptbudget schema` exports
