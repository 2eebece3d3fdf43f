"""The manifest against ``schema.json``: every violation at once, each as one human line
(file:line, JSON path, what would be valid, a near name when a key looks like a typo)."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from typing import Any

from promptbudget.cache import active_store, cache_key
from promptbudget.errors import ManifestError, ManifestErrors
from promptbudget.manifest.paths import Lines, format_json_path, join_path, line_for


@cache
def load_schema() -> dict[str, Any]:
    """The manifest JSON Schema shipped in the package."""
    text = resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


# Keywords that only describe: a ``$ref`` beside nothing else is replaced by its definition.
_ANNOTATIONS = frozenset({"description", "title", "default", "examples", "$comment"})


@cache
def validation_schema() -> dict[str, Any]:
    """``schema.json`` with each ``$ref`` to a definition replaced by that definition (beside
    other checks: both, under ``allOf``), and each ``oneOf`` of branches for different types
    made an ``anyOf`` (``_first_match``). The same verdicts and the same errors, found in a
    third of the time: jsonschema looks a ``$ref`` up in its registry each time, 2,800 times
    for a manifest of 200 workflows. A definition that refers to itself keeps its ``$ref``
    (none does today); ``$defs`` stays for it."""
    schema = load_schema()
    definitions: dict[str, Any] = schema.get("$defs", {})

    def inline(node: Any, within: frozenset[str]) -> Any:
        if isinstance(node, list):
            return [inline(item, within) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        name = ref.removeprefix("#/$defs/") if isinstance(ref, str) else None
        if name is None or name == ref or name not in definitions or name in within:
            return {
                key: value if key == "$defs" else inline(value, within)
                for key, value in node.items()
            }
        target = inline(definitions[name], within | {name})
        rest = {key: value for key, value in node.items() if key != "$ref"}
        if _ANNOTATIONS.issuperset(rest):
            return target
        return {"allOf": [target, inline(rest, within)]}

    inlined: dict[str, Any] = _first_match(inline(schema, frozenset()))
    return inlined


# JSON types a value may have: an integer is a number too
_TYPES = {"integer": {"number"}, "number": {"number"}}


def _first_match(node: Any) -> Any:
    """``node`` with each ``oneOf`` whose branches take values of different JSON types made an
    ``anyOf``: at most one branch can match either way, so the verdict and the errors (the
    same message, the same context, both "weak" to ``best_match``) are the same, but
    jsonschema stops at the branch that matches instead of trying every one (half of the
    time a manifest of 200 workflows took)."""
    if isinstance(node, list):
        return [_first_match(item) for item in node]
    if not isinstance(node, dict):
        return node
    changed = {key: _first_match(value) for key, value in node.items()}
    branches = changed.get("oneOf")
    if isinstance(branches, list) and "anyOf" not in changed:
        kinds = [_kinds_of(branch) for branch in branches]
        known = [kind for kind in kinds if kind is not None]
        if len(known) == len(kinds) and sum(map(len, known)) == len(set().union(*known)):
            changed["anyOf"] = changed.pop("oneOf")  # no type in two branches
    return changed


def _kinds_of(schema: Any) -> set[str] | None:
    """The JSON types a value must have to match ``schema`` (None: any, as far as is told)."""
    if not isinstance(schema, dict):
        return None
    declared = schema.get("type")
    if isinstance(declared, str):
        declared = [declared]
    if isinstance(declared, list) and all(isinstance(kind, str) for kind in declared):
        return set().union(*(_TYPES.get(kind, {kind}) for kind in declared))
    for either in ("oneOf", "anyOf"):
        branches = schema.get(either)
        if isinstance(branches, list) and branches:
            kinds = [_kinds_of(branch) for branch in branches]
            if any(kind is None for kind in kinds):
                return None
            return set().union(*(kind for kind in kinds if kind is not None))
    return None


MAX_NAME_BYTES = 255  # one component of a path, as most file systems allow


def is_project_path(value: object) -> bool:
    """The schema's ``project-path`` format: a relative path that stays where it is put (no
    ``..`` component, not absolute, no drive), every component at most 255 bytes in UTF-8,
    no NUL and no lone surrogate (a file system accepts neither)."""
    if not isinstance(value, str):
        return True  # the type is the schema's other business
    if "\x00" in value or value.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", value):
        return False
    try:
        parts = [part.encode("utf-8") for part in re.split(r"[/\\]", value)]
    except UnicodeEncodeError:
        return False
    return all(part != b".." and len(part) <= MAX_NAME_BYTES for part in parts)


@cache
def _format_checker() -> Any:
    from jsonschema import FormatChecker

    checker = FormatChecker(formats=())
    checker.checks("project-path")(is_project_path)
    return checker


def raise_all(errors: Sequence[ManifestError]) -> None:
    """Raise nothing, the one error, or every error together (sorted by line)."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ManifestErrors(errors)


def validate(data: Any, lines: Lines, shown: str) -> list[ManifestError]:
    """Validate against the schema: every violation (one error per JSON path, the most
    useful one), for the loader to report with the converter's own. A document the cache
    knows to be valid (the same ``repr``, the same schema) is not validated again, so
    jsonschema is not even imported."""
    store = active_store()
    key = None
    if store is not None:
        schema_text = resources.files(__package__).joinpath("schema.json").read_text("utf-8")
        key = cache_key("valid manifest", schema_text, repr(data))
        if store.get(key) is True:
            return []
    errors = schema_errors(data, lines, shown)
    if not errors and store is not None and key is not None:
        store.put(key, True)
    return errors


def schema_errors(
    data: Any, lines: Lines, shown: str, *, schema: dict[str, Any] | None = None
) -> list[ManifestError]:
    """One ``ManifestError`` per place the document breaks the schema (``validation_schema``
    unless another is given: the tests compare it with ``schema.json`` as written)."""
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    validator = Draft202012Validator(
        validation_schema() if schema is None else schema, format_checker=_format_checker()
    )
    by_place: dict[str, list[Any]] = {}
    for error in validator.iter_errors(data):
        by_place.setdefault(format_json_path(error.absolute_path), []).append(error)
    found: list[ManifestError] = []
    seen: set[str] = set()
    for group in by_place.values():
        best = best_match(group)
        if best is None:  # pragma: no cover - a group is never empty
            continue
        for message, json_path in _describe_all(best):
            problem = ManifestError(
                message, path=shown, line=line_for(lines, json_path), json_path=json_path
            )
            if str(problem) not in seen:
                seen.add(str(problem))
                found.append(problem)
    return found


def _describe_all(error: Any) -> Iterable[tuple[str, str]]:
    """Every unknown key of a mapping separately; any other error as one sentence."""
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(_schema_of(error).get("properties", {}))
        json_path = format_json_path(error.absolute_path)
        for key in sorted(set(error.instance) - set(allowed)):
            near = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {near[0]!r}? " if near else ""
            valid = f"; {hint}valid keys: {', '.join(allowed)}" if allowed else ""
            yield f"unknown key {key!r}{valid}", join_path(json_path, key)
        return
    yield _describe(error)


def _describe(error: Any) -> tuple[str, str]:
    """A human sentence for a jsonschema error, and the JSON path it concerns."""
    json_path = format_json_path(error.absolute_path)
    instance = error.instance
    # Climb out of oneOf branches to the schema that says what is valid.
    hinted = error
    while "x-valid" not in _schema_of(hinted) and hinted.parent is not None:
        hinted = hinted.parent
    hint = _schema_of(hinted).get("x-valid")
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        return f"missing required key {missing!r}", json_path
    if error.validator == "not" and isinstance(instance, dict):
        clash = [key for key in _required_keys(error.validator_value) if key in instance]
        if len(clash) >= 2:
            keys = " and ".join(repr(key) for key in clash)
            advice = f"expected {hint}" if hint else "keep one of them"
            return f"{keys} cannot be used together; {advice}", json_path
    if error.validator == "propertyNames":
        return f"invalid name {error.instance!r}; expected {hint or 'a valid name'}", json_path
    if error.validator in {"minProperties", "maxProperties"} and hint:
        return f"expected {hint}", json_path
    if error.validator == "minItems":
        return f"must not be empty; expected {hint or 'at least one item'}", json_path
    if hint:
        return f"{_show(instance)} is not valid here; expected {hint}", json_path
    if error.validator == "type":
        expected = error.validator_value
        return f"expected {_type_words(expected)}, got {_show(instance)}", json_path
    return error.message, json_path


def _required_keys(schema: Any) -> list[str]:
    """The keys a ``not`` schema forbids together: ``{required: [...]}`` or ``anyOf`` of them."""
    if not isinstance(schema, dict):
        return []
    keys = [str(key) for key in schema.get("required", [])]
    for branch in schema.get("anyOf", []):
        keys.extend(key for key in _required_keys(branch) if key not in keys)
    return keys


def _schema_of(error: Any) -> dict[str, Any]:
    schema = error.schema
    return schema if isinstance(schema, dict) else {}


def _type_words(expected: object) -> str:
    words = {
        "object": "a mapping (key: value)",
        "array": "a list",
        "string": "text",
        "integer": "a whole number",
        "number": "a number",
        "boolean": "true or false",
    }
    if isinstance(expected, list):
        return " or ".join(words.get(str(e), str(e)) for e in expected)
    return words.get(str(expected), str(expected))


def _show(value: object) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "an empty value"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
