"""Find, parse, validate and convert ``budgets.yaml``.

YAML is composed into nodes (so every value keeps its line), converted with a node budget (so
an alias bomb stops early), validated against ``schema.json`` (the only definition of a valid
manifest), then turned into dataclasses with human units parsed. Every problem is one
``ManifestError`` naming the file, the line, the JSON path and what would be valid.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from promptbudget.bounded import (
    YamlBoundsError,
    check_yaml_events,
    construct_scalar,
    with_fallback,
)
from promptbudget.cache import active_store, cache_key
from promptbudget.confine import ConfinementError, read_confined
from promptbudget.errors import ManifestError, ManifestErrors
from promptbudget.manifest.catalog import manifest_catalog
from promptbudget.manifest.convert import Converter
from promptbudget.manifest.model import (
    ChangeThresholds,
    CompressionSettings,
    Manifest,
    PathIgnore,
    ReplayMatch,
    ReplaySettings,
    Route,
    TemplateLimit,
    Workflow,
)
from promptbudget.manifest.overrides import apply_overrides
from promptbudget.manifest.paths import Lines, join_path
from promptbudget.manifest.rulenames import rule_name_problems
from promptbudget.manifest.validation import load_schema, raise_all, validate
from promptbudget.pricing.catalog import PriceCatalog
from promptbudget.templates.source import display_path
from promptbudget.units import parse_percent_value, parse_share, parse_tokens

MANIFEST_NAMES = ("budgets.yaml", "budgets.yml")
MAX_MANIFEST_BYTES = 1_048_576
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 64

_T = TypeVar("_T")

__all__ = ["find_manifest", "load_manifest", "load_schema"]


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
    problems = validate(data, lines, shown)
    return _to_manifest(data, lines, path.resolve(), shown, prices, problems)


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
    work, but expansion stops after ``MAX_YAML_NODES`` values. A document composed before is
    taken from the cache, keyed by its text (composing a manifest of hundreds of workflows
    in pure-Python YAML is most of what a one-file check costs after an edit elsewhere);
    only documents that JSON keeps exactly (no dates, no binary) are kept.
    """
    store = active_store()
    key = cache_key("composed yaml", text)
    if store is not None:
        cached = store.get(key)
        if isinstance(cached, str):
            try:
                data, lines = json.loads(cached)
            except ValueError:
                data, lines = None, None
            if isinstance(lines, dict):
                return data, lines
    data, lines = _compose_yaml(text, shown)
    if store is not None and data is not None and _is_plain(data):
        store.put(key, json.dumps([data, lines], separators=(",", ":")))
    return data, lines


def _is_plain(value: Any, depth: int = 0) -> bool:
    """Whether JSON gives ``value`` back exactly (str keys; str, int, finite float, bool,
    None, lists and dicts of them)."""
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if depth > MAX_YAML_DEPTH:
        return False
    if isinstance(value, list):
        return all(_is_plain(item, depth + 1) for item in value)
    if isinstance(value, dict):
        return all(
            isinstance(key, str) and _is_plain(item, depth + 1) for key, item in value.items()
        )
    return False


def _compose_yaml(text: str, shown: str) -> tuple[Any, Lines]:
    data, lines = with_fallback(text, lambda loader_class: _compose_with(loader_class, text, shown))
    if data is None:  # an empty document: libyaml puts it a line further down than PyYAML
        return _compose_with(yaml.SafeLoader, text, shown)
    return data, lines


def _compose_with(loader_class: type[yaml.SafeLoader], text: str, shown: str) -> tuple[Any, Lines]:
    try:
        check_yaml_events(
            text, max_depth=MAX_YAML_DEPTH, max_nodes=MAX_YAML_NODES, loader=loader_class
        )
    except YamlBoundsError as err:
        raise ManifestError(err.message, path=shown, line=err.line) from err
    except yaml.YAMLError:
        pass  # reported with its line by the composer below
    loader = loader_class(text)
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
                key = _construct(loader, key_node, shown)
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
        value = _construct(loader, current, shown)
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


def _construct(loader: yaml.SafeLoader, node: yaml.Node, shown: str) -> Any:
    try:
        return construct_scalar(loader, node)
    except YamlBoundsError as err:
        raise ManifestError(err.message, path=shown, line=err.line) from err


# -- conversion -----------------------------------------------------------------------------


def _replay_settings(
    data: Mapping[str, Any],
    lines: Lines,
    converter: Converter,
    workflows: tuple[Workflow, ...],
    problems: list[ManifestError],
    failed: set[str],
) -> ReplaySettings:
    """``replay:``; a rule naming a workflow that failed to convert is left out (that
    workflow's own error is reported)."""
    steps = {w.name: {s.name for s in w.steps} for w in workflows}
    rules = []
    for index, rule in enumerate(data.get("match") or ()):
        path = f"$.replay.match[{index}]"
        if rule["workflow"] in failed:
            continue
        if rule["workflow"] not in steps:
            known = ", ".join(sorted(steps)) or "none"
            problems.append(
                converter.fail(
                    f"replay rule names workflow {rule['workflow']!r}, which is not in "
                    f"workflows: (workflows: {known})",
                    f"{path}.workflow",
                )
            )
            continue
        step = rule.get("step")
        if step is not None and step not in steps[rule["workflow"]]:
            known = ", ".join(sorted(steps[rule["workflow"]]))
            problems.append(
                converter.fail(
                    f"replay rule names step {step!r}, which workflow {rule['workflow']!r} "
                    f"does not have (steps: {known})",
                    f"{path}.step",
                )
            )
            continue
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
    given = data.get("changes") or {}
    defaults = ChangeThresholds()
    changes = ChangeThresholds(
        min_calls=int(given.get("min_calls", defaults.min_calls)),
        mean_change=(
            converter.unit(parse_share, given["mean_change"], "$.replay.changes.mean_change")
            if "mean_change" in given
            else defaults.mean_change
        ),
        rate_change=(
            converter.unit(parse_share, given["rate_change"], "$.replay.changes.rate_change")
            if "rate_change" in given
            else defaults.rate_change
        ),
    )
    return ReplaySettings(match=tuple(rules), columns=columns, changes=changes)


def _yaml_type(value: object) -> str:
    if isinstance(value, list):
        return "list"
    return type(value).__name__


class _Collector:
    """Conversion problems, collected so that one run reports them all. A part of the
    document the schema already refused is not converted (its data is not what the
    converter expects); every other part is."""

    def __init__(self, problems: list[ManifestError]) -> None:
        self.problems = problems
        # At "$" only a missing key (version) or an unknown one: nothing the converter reads.
        self.broken = [p.json_path for p in problems if p.json_path and p.json_path != "$"]

    def blocked(self, path: str, *, below: bool = True) -> bool:
        """A schema error at ``path``, above it, or (``below``) inside it."""
        for bad in self.broken:
            if path == bad or path.startswith((f"{bad}.", f"{bad}[")):
                return True
            if below and bad.startswith((f"{path}.", f"{path}[")):
                return True
        return False

    def one(self, path: str, convert: Callable[[], _T], default: _T) -> _T:
        if self.blocked(path):
            return default
        try:
            return convert()
        except ManifestError as err:
            self.problems.append(err)
            return default

    def each(self, path: str, items: Any, convert: Callable[[str, Any], _T]) -> dict[str, _T]:
        """``convert`` applied to each item of the mapping at ``path``; a failing item's
        error is kept and the item left out, so the other items are still checked."""
        out: dict[str, _T] = {}
        if self.blocked(path, below=False) or not isinstance(items, dict):
            return out
        for name, value in items.items():
            if self.blocked(join_path(path, str(name))):
                continue
            try:
                out[str(name)] = convert(str(name), value)
            except ManifestError as err:
                self.problems.append(err)
        return out


def _to_manifest(
    data: Mapping[str, Any],
    lines: Lines,
    path: Path,
    shown: str,
    prices: Path | None,
    problems: list[ManifestError],
) -> Manifest:
    """The dataclasses; the schema's ``problems`` and every conversion problem are raised
    together (a problem that makes the rest meaningless, such as a missing prompts
    directory, stops at once)."""
    root = path.parent
    converter = Converter(lines, shown, root)
    collect = _Collector(problems)
    if collect.blocked("$.prompts"):
        raise_all(problems)
    prompts_value = data.get("prompts", "prompts")
    prompts_dir = converter.resolved(root, prompts_value, "$.prompts")
    if not prompts_dir.is_relative_to(root):
        problem = "prompts must be a directory inside the project"
    elif "prompts" in data and not prompts_dir.is_dir():
        problem = f"prompts directory {prompts_value!r} does not exist"
    else:
        problem = ""
    if problem:  # every prompt path would fail after it
        raise_all([*problems, converter.fail(problem, "$.prompts")])
    catalog: tuple[PriceCatalog, Path | None] | None = None
    if not (collect.blocked("$.models", below=False) or collect.blocked("$.prices")):
        try:
            catalog = manifest_catalog(converter, data, prices, skip=collect.blocked)
        except ManifestErrors as err:
            problems.extend(err.errors)
        except ManifestError as err:
            problems.append(err)
        if collect.blocked("$.models"):  # an entry the schema refused is missing from it
            catalog = None
    tools = collect.each("$.tools", data.get("tools"), lambda n, v: converter.named_tools({n: v}))
    converter.tools = {name: tool for one in tools.values() for name, tool in one.items()}
    before = len(problems)
    routes = collect.each("$.routes", data.get("routes"), converter.route)
    route_names = data["routes"] if isinstance(data.get("routes"), dict) else {}
    if len(problems) > before or catalog is None or len(routes) < len(route_names):
        # A route left out would read as "not under routes:" in the steps that use it.
        for name in route_names:
            routes.setdefault(str(name), _placeholder_route(str(name)))
    else:
        collect.one("$.routes", lambda: converter.check_routes(routes, catalog[0]), None)
    workflows = tuple(
        collect.each(
            "$.workflows",
            data.get("workflows"),
            lambda name, v: converter.workflow(name, v, prompts_dir, routes),
        ).values()
    )
    variables = collect.each(
        "$.variables",
        data.get("variables"),
        lambda name, v: converter.variables({name: v}, "$.variables")[name],
    )
    compression = collect.one(
        "$.compression",
        lambda: _compression(data.get("compression") or {}, converter),
        CompressionSettings(),
    )
    named = data["workflows"] if isinstance(data.get("workflows"), dict) else {}
    failed = set(named) - {w.name for w in workflows}
    replay = collect.one(
        "$.replay",
        lambda: _replay_settings(
            data.get("replay") or {}, lines, converter, workflows, problems, failed
        ),
        ReplaySettings(),
    )
    engines = collect.each(
        "$.engines", data.get("engines"), lambda p, v: converter.engine(p, str(v))
    )
    templates: dict[str, TemplateLimit] = {}
    if catalog is not None:
        limits = collect.each(
            "$.templates",
            data.get("templates"),
            lambda p, v: converter.template_limits({p: v}, catalog[0])[0],
        )
        templates = collect.each(
            "$.templates",
            {limit.pattern: limit for limit in limits.values()},
            lambda _, limit: converter.matched((limit,), prompts_dir)[0],
        )
    fail_on_increase = None
    if "fail_on_increase" in data:
        fail_on_increase = collect.one(
            "$.fail_on_increase",
            lambda: converter.unit(
                parse_percent_value, data["fail_on_increase"], "$.fail_on_increase"
            ),
            None,
        )
    problems.extend(rule_name_problems(data, converter.fail, collect.blocked))
    raise_all(problems)
    assert catalog is not None  # no problem, so the catalog was converted
    catalog_, prices_path = catalog
    rules = {str(k): str(v) for k, v in (data.get("rules") or {}).items()}
    return Manifest(
        replay=replay,
        path=path,
        root=root,
        display_path=display_path(path, root),
        prompts_dir=prompts_dir,
        catalog=catalog_,
        default_model=(data.get("defaults") or {}).get("model"),
        variables=variables,
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
        engines=tuple(engines.values()),
        tools=converter.tools,
        tool_lines={
            name: line
            for name in converter.tools
            if (line := lines.get(join_path("$.tools", name))) is not None
        },
        select=tuple(str(x) for x in data["select"]) if "select" in data else None,
        ignore=tuple(str(x) for x in data.get("ignore") or ()),
        fail_on=data.get("fail_on"),
        fail_on_increase=fail_on_increase,
        templates=tuple(templates.values()),
        lines=lines,
    )


def _compression(settings: Mapping[str, Any], converter: Converter) -> CompressionSettings:
    return CompressionSettings(
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


def _placeholder_route(name: str) -> Route:
    """A route whose own error is already reported: its name still resolves for steps."""
    return Route(name=name, model=None, split=(), rules=(), default=None, escalation=None)
