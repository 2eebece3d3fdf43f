"""Find, parse, validate and convert ``budgets.yaml``.

YAML is composed into nodes (so every value keeps its line), converted with a node budget (so
an alias bomb stops early), validated against ``schema.json`` (the only definition of a valid
manifest), then turned into dataclasses with human units parsed. Every problem is one
``ManifestError`` naming the file, the line, the JSON path and what would be valid.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from promptbudget.bounded import (
    YamlBoundsError,
    check_yaml_events,
)
from promptbudget.cache import active_store, cache_key
from promptbudget.confine import ConfinementError, read_confined
from promptbudget.errors import ManifestError
from promptbudget.manifest.convert import Converter, parse_percent_value
from promptbudget.manifest.model import (
    CompressionSettings,
    Manifest,
    PathIgnore,
    ReplayMatch,
    ReplaySettings,
    Workflow,
)
from promptbudget.manifest.overrides import apply_overrides
from promptbudget.manifest.paths import Lines, format_json_path, join_path, line_for
from promptbudget.templates.source import display_path
from promptbudget.units import parse_tokens

MANIFEST_NAMES = ("budgets.yaml", "budgets.yml")
MAX_MANIFEST_BYTES = 1_048_576
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 64


@cache
def load_schema() -> dict[str, Any]:
    """The manifest JSON Schema shipped in the package."""
    text = resources.files(__package__).joinpath("schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def find_manifest(start: Path) -> Path | None:
    """The nearest manifest from ``start`` up: in each directory ``budgets.yaml`` (or
    ``budgets.yml``), else a ``pyproject.toml`` with a ``[tool.promptbudget]`` table."""
    from promptbudget.manifest.pyproject import has_tool_table

    current = start.resolve()
    for directory in (current, *current.parents):
        for name in MANIFEST_NAMES:
            candidate = directory / name
            if candidate.is_file():
                return candidate
        pyproject = directory / "pyproject.toml"
        if pyproject.is_file():
            try:
                raw = read_confined(pyproject, root=directory, limit=MAX_MANIFEST_BYTES)
                text = raw.decode("utf-8-sig")
            except (ConfinementError, UnicodeDecodeError):
                continue
            if has_tool_table(text):
                return pyproject
    return None


def load_manifest(
    path: Path,
    *,
    cwd: Path | None = None,
    prices: Path | None = None,
    overrides: Sequence[str] = (),
    workflow: str | None = None,
    text: str | None = None,
) -> Manifest:
    """Read and validate the manifest at ``path`` (or ``text``, as if it were at ``path``).

    ``prices`` is a LiteLLM-format price file laid over the bundled catalog (and over the
    manifest's own ``prices:``); ``overrides`` are what-if ``PATH=VALUE`` settings applied
    before validation (to ``workflow`` only, for workflow keys, when it is given).
    """
    shown = display_path(path, cwd or Path.cwd())
    if text is None:
        text = _read_manifest_text(path, shown)
    if path.suffix.lower() == ".toml":
        from promptbudget.manifest.pyproject import load_tool_table

        data, lines = load_tool_table(text, shown)
    else:
        data, lines = compose_yaml(text, shown)
    if data is None:
        raise ManifestError(
            "the manifest is empty; it needs at least 'version: 1' (run 'promptbudget init')",
            path=shown,
            line=1,
        )
    if not isinstance(data, dict):
        raise ManifestError(
            "the manifest must be a mapping of keys (version, prompts, workflows, ...), "
            f"not a {_yaml_type(data)}",
            path=shown,
            line=lines.get("$", 1),
        )
    if overrides:
        data = apply_overrides(data, overrides, workflow=workflow)
    _unquoted_off(data)
    validate(data, lines, shown)
    return _to_manifest(data, lines, path.resolve(), shown, prices)


def _unquoted_off(data: dict[str, Any]) -> None:
    """YAML 1.1 reads an unquoted ``off`` as false; in ``rules:`` it means the severity."""
    rules = data.get("rules")
    if isinstance(rules, dict):
        for name, value in rules.items():
            if value is False:
                rules[name] = "off"


def _read_manifest_text(path: Path, shown: str) -> str:
    if path.is_dir():
        raise ManifestError(
            "is a directory; give the manifest file itself (e.g. budgets.yaml)", path=shown
        )
    try:
        # The manifest's directory is the project root: a budgets.yaml that is a symlink
        # out of it (or to a device, or a FIFO) is not read.
        data = read_confined(
            path, root=path.absolute().parent, limit=MAX_MANIFEST_BYTES, shown=shown
        )
    except ConfinementError as err:
        reason = err.reason
        if err.is_too_large:
            reason = f"is larger than {MAX_MANIFEST_BYTES:,} bytes, the limit for a manifest"
        raise ManifestError(reason, path=shown) from err
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ManifestError("is not valid UTF-8; save it as UTF-8", path=shown, line=line) from err
    return text


def compose_yaml(text: str, shown: str) -> tuple[Any, Lines]:
    """Parse YAML into plain data plus a map of JSON path -> line.

    Duplicate keys are errors (YAML would silently keep the last one); anchors and aliases
    work, but expansion stops after ``MAX_YAML_NODES`` values.
    """
    try:
        check_yaml_events(text, max_depth=MAX_YAML_DEPTH, max_nodes=MAX_YAML_NODES)
    except YamlBoundsError as err:
        raise ManifestError(err.message, path=shown, line=err.line) from err
    except yaml.YAMLError:
        pass  # reported with its line by the composer below
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ManifestError(
            f"is not valid YAML: {problem}",
            path=shown,
            line=mark.line + 1 if mark is not None else None,
        ) from err
    lines: Lines = {}
    if node is None:
        loader.dispose()
        return None, lines
    budget = [MAX_YAML_NODES]

    def convert(current: yaml.Node, json_path: str, depth: int) -> Any:
        budget[0] -= 1
        line = current.start_mark.line + 1
        if budget[0] < 0:
            raise ManifestError(
                f"has more than {MAX_YAML_NODES:,} values (an alias bomb?); simplify it",
                path=shown,
                line=line,
            )
        if depth > MAX_YAML_DEPTH:
            raise ManifestError(
                f"is nested more than {MAX_YAML_DEPTH} levels deep", path=shown, line=line
            )
        lines.setdefault(json_path, line)
        if isinstance(current, yaml.MappingNode):
            try:
                loader.flatten_mapping(current)
            except yaml.YAMLError as err:
                raise ManifestError(
                    f"has an invalid merge key: {err}", path=shown, line=line
                ) from err
            result: dict[Any, Any] = {}
            for key_node, value_node in current.value:
                key = loader.construct_object(key_node, deep=True)
                if not isinstance(key, str | int | float | bool) or key is None:
                    raise ManifestError(
                        "has a key that is not a plain value",
                        path=shown,
                        line=key_node.start_mark.line + 1,
                        json_path=json_path,
                    )
                key_text = str(key)
                if key_text in result:
                    raise ManifestError(
                        f"has the key {key_text!r} twice in the same mapping",
                        path=shown,
                        line=key_node.start_mark.line + 1,
                        json_path=json_path,
                    )
                child_path = join_path(json_path, key_text)
                lines.setdefault(child_path, key_node.start_mark.line + 1)
                result[key_text] = convert(value_node, child_path, depth + 1)
            return result
        if isinstance(current, yaml.SequenceNode):
            return [
                convert(item, f"{json_path}[{index}]", depth + 1)
                for index, item in enumerate(current.value)
            ]
        value = loader.construct_object(current, deep=True)
        if isinstance(value, float) and not math.isfinite(value):
            raise ManifestError(
                f"has {current.value!r}, which is not a finite number; give a number",
                path=shown,
                line=line,
                json_path=json_path,
            )
        return value

    try:
        return convert(node, "$", 0), lines
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise ManifestError(
            f"is not valid YAML: {getattr(err, 'problem', err)}",
            path=shown,
            line=mark.line + 1 if mark is not None else None,
        ) from err
    finally:
        loader.dispose()


def validate(data: Any, lines: Lines, shown: str) -> None:
    """Validate against the schema; raise the single most useful error. A document the
    cache knows to be valid (the same ``repr``, the same schema) is not validated again, so
    jsonschema is not even imported."""
    store = active_store()
    key = None
    if store is not None:
        schema_text = resources.files(__package__).joinpath("schema.json").read_text("utf-8")
        key = cache_key("valid manifest", schema_text, repr(data))
        if store.get(key) is True:
            return

    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    validator = Draft202012Validator(load_schema(), format_checker=_format_checker())
    error = best_match(validator.iter_errors(data))
    if error is None:
        if store is not None and key is not None:
            store.put(key, True)
        return
    message, json_path = _describe(error)
    raise ManifestError(message, path=shown, line=line_for(lines, json_path), json_path=json_path)


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


def _describe(error: Any) -> tuple[str, str]:
    """A human sentence for a jsonschema error, and the JSON path it concerns."""
    json_path = format_json_path(error.absolute_path)
    instance = error.instance
    # Climb out of oneOf branches to the schema that says what is valid.
    hinted = error
    while "x-valid" not in _schema_of(hinted) and hinted.parent is not None:
        hinted = hinted.parent
    hint = _schema_of(hinted).get("x-valid")
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = sorted(_schema_of(error).get("properties", {}))
        unknown = sorted(set(instance) - set(allowed))
        key = unknown[0] if unknown else "?"
        valid = f"; valid keys: {', '.join(allowed)}" if allowed else ""
        return f"unknown key {key!r}{valid}", join_path(json_path, key)
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


def _yaml_type(value: object) -> str:
    if isinstance(value, list):
        return "list"
    return type(value).__name__


# -- conversion -----------------------------------------------------------------------------


def _replay_settings(
    data: Mapping[str, Any],
    lines: Lines,
    converter: Converter,
    workflows: tuple[Workflow, ...],
) -> ReplaySettings:
    steps = {w.name: {s.name for s in w.steps} for w in workflows}
    rules = []
    for index, rule in enumerate(data.get("match") or ()):
        path = f"$.replay.match[{index}]"
        if rule["workflow"] not in steps:
            known = ", ".join(sorted(steps)) or "none"
            raise converter.fail(
                f"replay rule names workflow {rule['workflow']!r}, which is not in workflows: "
                f"(workflows: {known})",
                f"{path}.workflow",
            )
        step = rule.get("step")
        if step is not None and step not in steps[rule["workflow"]]:
            known = ", ".join(sorted(steps[rule["workflow"]]))
            raise converter.fail(
                f"replay rule names step {step!r}, which workflow {rule['workflow']!r} does not "
                f"have (steps: {known})",
                f"{path}.step",
            )
        rules.append(
            ReplayMatch(
                workflow=rule["workflow"],
                step=step,
                model=rule.get("model"),
                prompt=rule.get("prompt"),
                attributes={str(k): str(v) for k, v in (rule.get("attributes") or {}).items()},
                line=lines.get(path),
            )
        )
    columns = {str(k): str(v) for k, v in (data.get("columns") or {}).items()}
    return ReplaySettings(match=tuple(rules), columns=columns)


def _to_manifest(
    data: Mapping[str, Any], lines: Lines, path: Path, shown: str, prices: Path | None
) -> Manifest:
    root = path.parent
    converter = Converter(lines, shown, root)
    prompts_value = data.get("prompts", "prompts")
    prompts_dir = converter.resolved(root, prompts_value, "$.prompts")
    if not prompts_dir.is_relative_to(root):
        raise converter.fail("prompts must be a directory inside the project", "$.prompts")
    if "prompts" in data and not prompts_dir.is_dir():
        raise converter.fail(f"prompts directory {prompts_value!r} does not exist", "$.prompts")
    catalog, prices_path = converter.catalog(data, prices)
    converter.tools = converter.named_tools(data.get("tools"))
    routes = {
        name: converter.route(name, route) for name, route in (data.get("routes") or {}).items()
    }
    converter.check_routes(routes, catalog)
    workflows = tuple(
        converter.workflow(name, workflow, prompts_dir, routes)
        for name, workflow in (data.get("workflows") or {}).items()
    )
    rules = {str(k): str(v) for k, v in (data.get("rules") or {}).items()}
    settings = data.get("compression") or {}
    compression = CompressionSettings(
        passes=tuple(settings["passes"]) if "passes" in settings else None,
        min_savings=(
            converter.share(settings["min_savings"], "$.compression.min_savings")
            if "min_savings" in settings
            else CompressionSettings.min_savings
        ),
        duplicate_min_tokens=(
            converter.unit(
                parse_tokens, settings["duplicate_min_tokens"], "$.compression.duplicate_min_tokens"
            )
            if "duplicate_min_tokens" in settings
            else CompressionSettings.duplicate_min_tokens
        ),
        keep_examples=int(settings.get("keep_examples", CompressionSettings.keep_examples)),
    )
    return Manifest(
        replay=_replay_settings(data.get("replay") or {}, lines, converter, workflows),
        path=path,
        root=root,
        display_path=display_path(path, root),
        prompts_dir=prompts_dir,
        catalog=catalog,
        default_model=(data.get("defaults") or {}).get("model"),
        variables=converter.variables(data.get("variables"), "$.variables"),
        routes=routes,
        rules=rules,
        workflows=workflows,
        rule_lines={k: v for k in rules if (v := lines.get(join_path("$.rules", k))) is not None},
        prices_path=prices_path,
        compression=compression,
        per_file_ignores=tuple(
            PathIgnore(
                str(pattern),
                tuple(str(name) for name in names),
                lines.get(join_path("$.per_file_ignores", str(pattern))),
            )
            for pattern, names in (data.get("per_file_ignores") or {}).items()
        ),
        engines=tuple(
            converter.engine(str(pattern), str(engine))
            for pattern, engine in (data.get("engines") or {}).items()
        ),
        tools=converter.tools,
        tool_lines={
            name: line
            for name in converter.tools
            if (line := lines.get(join_path("$.tools", name))) is not None
        },
        select=tuple(str(x) for x in data["select"]) if "select" in data else None,
        ignore=tuple(str(x) for x in data.get("ignore") or ()),
        fail_on=data.get("fail_on"),
        fail_on_increase=(
            converter.unit(parse_percent_value, data["fail_on_increase"], "$.fail_on_increase")
            if "fail_on_increase" in data
            else None
        ),
        templates=converter.matched(
            converter.template_limits(data.get("templates"), catalog), prompts_dir
        ),
    )
