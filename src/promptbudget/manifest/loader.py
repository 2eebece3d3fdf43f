"""Find, parse, validate and convert ``budgets.yaml``.

YAML is composed into nodes (so every value keeps its line), converted with a node budget (so
an alias bomb stops early), validated against ``schema.json`` (the only definition of a valid
manifest), then turned into dataclasses with human units parsed. Every problem is one
``ManifestError`` naming the file, the line, the JSON path and what would be valid.
"""

from __future__ import annotations

import difflib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from promptbudget.bounded import (
    InputBoundsError,
    YamlBoundsError,
    check_json_depth,
    check_yaml_events,
)
from promptbudget.cache import active_store, cache_key
from promptbudget.confine import ConfinementError, read_confined, resolve_path
from promptbudget.errors import ManifestError, PricesError, TokenizerUnavailableError
from promptbudget.manifest.model import (
    ALL_TRAFFIC,
    DAYS_PER_MONTH,
    CompressionSettings,
    CostLimit,
    Distribution,
    EngineSetting,
    Escalation,
    Limits,
    Manifest,
    PathIgnore,
    ReplayMatch,
    ReplaySettings,
    Retry,
    Route,
    RouteRule,
    Step,
    TemplateLimit,
    TokenAmount,
    TrafficClass,
    VariableSpec,
    Workflow,
    typical,
)
from promptbudget.manifest.overrides import apply_overrides
from promptbudget.pricing.catalog import (
    PriceCatalog,
    load_catalog,
    model_from_mapping,
    overlay_prices,
    override_model,
)
from promptbudget.pricing.litellm import load_price_file
from promptbudget.pricing.timeofday import TrafficProfile, is_time_zone
from promptbudget.templates.detect import ENGINES, engine_name
from promptbudget.templates.source import display_path, iter_prompt_files
from promptbudget.tokenizers import TOKENIZERS, register_tokenizer_file
from promptbudget.tools import Tool, ToolError, parse_tool
from promptbudget.units import format_share, parse_share, parse_tokens, parse_usd

MANIFEST_NAMES = ("budgets.yaml", "budgets.yml")
MAX_MANIFEST_BYTES = 1_048_576
MAX_YAML_NODES = 100_000
MAX_YAML_DEPTH = 64
# A step's model calls per request, turns x (1 + tool_calls): an agent loop far beyond any
# reviewed budget, and what bounds the simulation's work (SECURITY.md).
MAX_CALLS_PER_STEP = 1_000
MAX_TOKENIZER_BYTES = 64 * 1024 * 1024  # Hugging Face tokenizer.json files are 1-20 MB

Lines = dict[str, int]


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
                child_path = _child_path(json_path, key_text)
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


def _child_path(parent: str, key: str) -> str:
    if key.isidentifier():
        return f"{parent}.{key}"
    return f"{parent}[{json.dumps(key)}]"


def _json_path(parts: Any) -> str:
    path = "$"
    for part in parts:
        path = f"{path}[{part}]" if isinstance(part, int) else _child_path(path, str(part))
    return path


def _line_for(lines: Lines, json_path: str) -> int | None:
    """The line of ``json_path``, or of its nearest ancestor that has one."""
    path = json_path
    while path:
        if path in lines:
            return lines[path]
        cut = max(path.rfind("."), path.rfind("["))
        if cut <= 0:
            break
        path = path[:cut]
    return lines.get("$")


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

    validator = Draft202012Validator(load_schema())
    error = best_match(validator.iter_errors(data))
    if error is None:
        if store is not None and key is not None:
            store.put(key, True)
        return
    message, json_path = _describe(error)
    raise ManifestError(message, path=shown, line=_line_for(lines, json_path), json_path=json_path)


def _describe(error: Any) -> tuple[str, str]:
    """A human sentence for a jsonschema error, and the JSON path it concerns."""
    json_path = _json_path(error.absolute_path)
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
        return f"unknown key {key!r}{valid}", _child_path(json_path, key)
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


class _Converter:
    def __init__(self, lines: Lines, shown: str, root: Path) -> None:
        self.lines = lines
        self.shown = shown
        self.root = root
        self.tools: dict[str, Tool] = {}

    def named_tools(self, data: object) -> dict[str, Tool]:
        """The top-level ``tools:``: name -> definition (its name defaults to the key)."""
        tools: dict[str, Tool] = {}
        if not isinstance(data, dict):
            return tools
        for key, value in data.items():
            where = _child_path("$.tools", str(key))
            spec = dict(value) if isinstance(value, dict) else value
            if isinstance(spec, dict) and "function" not in spec:
                spec.setdefault("name", str(key))
            try:
                tools[str(key)] = parse_tool(spec, where)
            except ToolError as err:
                raise self.fail(str(err), where) from err
        return tools

    def step_tools(self, data: object, path: str) -> tuple[Tool, ...]:
        if not isinstance(data, list):
            return ()
        tools = []
        for index, item in enumerate(data):
            where = f"{path}.tools[{index}]"
            if isinstance(item, str):
                if item not in self.tools:
                    known = ", ".join(sorted(self.tools)) or "none"
                    raise self.fail(
                        f"no tool named {item!r} under tools: (defined: {known})", where
                    )
                tools.append(self.tools[item])
                continue
            try:
                tools.append(parse_tool(item, where))
            except ToolError as err:
                raise self.fail(str(err), where) from err
        return tuple(tools)

    def fail(self, message: str, json_path: str) -> ManifestError:
        return ManifestError(
            message, path=self.shown, line=_line_for(self.lines, json_path), json_path=json_path
        )

    def unit(self, parse: Callable[[object], Any], value: object, json_path: str) -> Any:
        try:
            return parse(value)
        except ValueError as err:
            raise self.fail(str(err), json_path) from err

    def amount(self, value: object, json_path: str) -> TokenAmount:
        """A token count, or ``{p50, p95}``."""
        if isinstance(value, dict):
            p50 = self.unit(parse_tokens, value["p50"], f"{json_path}.p50")
            p95 = self.unit(parse_tokens, value["p95"], f"{json_path}.p95")
            if p95 < p50:
                raise self.fail(f"p95 ({p95:,}) is below p50 ({p50:,})", json_path)
            if p50 == 0 and p95 > 0:
                raise self.fail("p50 must be above 0 when p95 is", json_path)
            return Distribution(p50, p95) if p95 > p50 else p50
        value_tokens: int = self.unit(parse_tokens, value, json_path)
        return value_tokens

    def variables(self, data: Mapping[str, Any] | None, json_path: str) -> dict[str, VariableSpec]:
        out: dict[str, VariableSpec] = {}
        for name, spec in (data or {}).items():
            path = _child_path(json_path, name)
            cap = None
            if "max_tokens" in spec:
                cap = self.unit(parse_tokens, spec["max_tokens"], f"{path}.max_tokens")
            tokens = self.amount(spec["tokens"], f"{path}.tokens") if "tokens" in spec else None
            if cap is not None and tokens is not None and typical(tokens) > cap:
                raise self.fail(
                    f"tokens ({typical(tokens):,}) is above max_tokens ({cap:,}), the cap",
                    f"{path}.tokens",
                )
            out[name] = VariableSpec(
                name=name,
                max_tokens=cap,
                tokens=tokens,
                sample=spec.get("sample"),
                has_sample="sample" in spec,
                line=self.lines.get(path),
            )
        return out

    def catalog(
        self, data: Mapping[str, Any], prices: Path | None
    ) -> tuple[PriceCatalog, Path | None]:
        catalog = load_catalog()
        prices_path = None
        if "prices" in data:
            prices_path = self.resolved(self.root, data["prices"], "$.prices")
            if not prices_path.is_relative_to(self.root):
                raise self.fail("prices must be a file inside the project", "$.prices")
            if not prices_path.is_file():
                raise self.fail(f"price file {data['prices']!r} not found", "$.prices")
            catalog = self.price_file(catalog, prices_path, "$.prices")
        if prices is not None:
            catalog = overlay_prices(catalog, load_price_file(prices), label=prices.name)
        extra = []
        for name, entry in (data.get("models") or {}).items():
            path = _child_path("$.models", name)
            entry = self.model_entry(entry, path)
            if str(entry.get("tokenizer", "")).endswith(".json"):
                entry["tokenizer"] = self.tokenizer_file(entry["tokenizer"], f"{path}.tokenizer")
            existing = catalog.lookup(name)
            if existing is not None and existing.name == name:
                extra.append(override_model(existing, entry))
                continue
            missing = [k for k in ("input_per_mtok", "output_per_mtok") if k not in entry]
            if missing:
                near = catalog.closest(name)
                hint = f" (did you mean {', '.join(near)}?)" if near else ""
                raise self.fail(
                    f"model {name!r} is not in the catalog{hint}, so it needs "
                    f"{' and '.join(missing)}",
                    path,
                )
            entry.setdefault("tokenizer", "approximate")
            entry.setdefault("provider", "custom")
            extra.append(model_from_mapping(name, entry, origin="manifest"))
        return (catalog.with_models(extra) if extra else catalog), prices_path

    def tokenizer_file(self, value: str, json_path: str) -> str:
        """A project's tokenizer.json, registered as a tokenizer; its name."""
        path = self.resolved(self.root, value, json_path)
        if not path.is_relative_to(self.root):
            raise self.fail("a tokenizer file must be inside the project", json_path)
        if not path.is_file():
            raise self.fail(f"tokenizer file {value!r} not found", json_path)
        try:
            # Checked before the Rust library sees it: regular, inside, bounded size and depth.
            raw = read_confined(path, root=self.root, limit=MAX_TOKENIZER_BYTES)
            check_json_depth(raw.decode("utf-8", "replace"))
        except (ConfinementError, InputBoundsError) as err:
            raise self.fail(f"tokenizer file {value!r}: {err}", json_path) from err
        try:
            return register_tokenizer_file(path, display_path(path, self.root))
        except TokenizerUnavailableError as err:
            raise self.fail(str(err), json_path) from err

    def price_file(self, catalog: PriceCatalog, path: Path, json_path: str) -> PriceCatalog:
        try:
            entries = load_price_file(path, root=self.root)
        except PricesError as err:
            raise self.fail(str(err), json_path) from err
        return overlay_prices(catalog, entries, label=display_path(path, self.root))

    def model_entry(self, entry: Mapping[str, Any], path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in entry.items():
            if key.endswith("_per_mtok"):
                out[key] = self.unit(parse_usd, value, f"{path}.{key}")
            elif key in {"context_window", "max_output_tokens", "cache_min_tokens"}:
                out[key] = self.unit(parse_tokens, value, f"{path}.{key}")
            elif key == "long_context":
                tier_path = f"{path}.long_context"
                out[key] = {
                    k: (
                        self.unit(parse_tokens, v, f"{tier_path}.{k}")
                        if k == "threshold_tokens"
                        else self.unit(parse_usd, v, f"{tier_path}.{k}")
                    )
                    for k, v in value.items()
                }
            else:
                out[key] = value
        return out

    def share(self, value: object, json_path: str) -> Decimal:
        share: Decimal = self.unit(parse_share, value, json_path)
        return share

    def engine(self, pattern: str, value: str) -> EngineSetting:
        """``engines: {glob: engine}``: an engine detection would otherwise decide."""
        json_path = _child_path("$.engines", pattern)
        engine = engine_name(value)
        if engine is None:
            raise self.fail(
                f"unknown engine {value!r}; valid engines: {', '.join(ENGINES)}", json_path
            )
        return EngineSetting(pattern, engine, self.lines.get(json_path))

    def shares_sum_to_one(self, shares: list[Decimal], what: str, json_path: str) -> None:
        total = sum(shares, Decimal(0))
        if total != 1:
            raise self.fail(
                f"{what} shares sum to {format_share(total)}; they must sum to 100%", json_path
            )

    def route(self, name: str, data: Mapping[str, Any]) -> Route:
        path = _child_path("$.routes", name)
        split = tuple(
            (
                item.get("model") or item["route"],
                self.share(item["share"], f"{path}.split[{i}].share"),
            )
            for i, item in enumerate(data.get("split") or ())
        )
        if split:
            self.shares_sum_to_one([share for _, share in split], "split", f"{path}.split")
        rules = tuple(
            RouteRule(
                when=dict(item["when"]),
                target=item.get("model") or item["route"],
                line=self.lines.get(f"{path}.rules[{i}]"),
            )
            for i, item in enumerate(data.get("rules") or ())
        )
        escalation = None
        if "escalation" in data:
            escalation = Escalation(
                to=data["escalation"]["to"],
                rate=self.share(data["escalation"]["rate"], f"{path}.escalation.rate"),
            )
        return Route(
            name=name,
            model=data.get("model"),
            split=split,
            rules=rules,
            default=data.get("default"),
            escalation=escalation,
            line=self.lines.get(path),
        )

    def check_routes(self, routes: Mapping[str, Route], catalog: PriceCatalog) -> None:
        """Every target is a route or a known model, and no route leads back to itself."""
        for name, route in routes.items():
            path = _child_path("$.routes", name)
            if catalog.lookup(name) is not None:
                raise self.fail(
                    f"route {name!r} has the name of a model; give the route another name", path
                )
            for target in route.targets:
                if target not in routes and catalog.lookup(target) is None:
                    near = catalog.closest(target)
                    hint = f"; did you mean {', '.join(near)}?" if near else ""
                    raise self.fail(
                        f"route {name!r} sends calls to {target!r}, which is neither a route "
                        f"nor a model in the catalog{hint} (declare it under models:)",
                        path,
                    )
        for name in routes:
            cycle = _find_cycle(name, routes, ())
            if cycle:
                raise self.fail(
                    f"routes form a cycle: {' -> '.join(cycle)}; a cascade must end at a model",
                    _child_path("$.routes", cycle[0]),
                )

    def step(self, data: Mapping[str, Any], path: str, prompts_dir: Path) -> Step:
        prompt = data["prompt"]
        prompt_path = self.prompt_path(prompt, prompts_dir, f"{path}.prompt")
        name = data.get("name") or Path(prompt).name.split(".", 1)[0]

        def tokens(key: str) -> int | None:
            if key not in data:
                return None
            value: int = self.unit(parse_tokens, data[key], f"{path}.{key}")
            return value

        def share(key: str) -> Decimal | None:
            return self.share(data[key], f"{path}.{key}") if key in data else None

        max_output = tokens("max_output_tokens")
        if max_output == 0:
            raise self.fail("max_output_tokens must be 1 or more", f"{path}.max_output_tokens")
        retry = None
        if "retry" in data:
            retry = Retry(
                failure_rate=self.share(
                    data["retry"]["failure_rate"], f"{path}.retry.failure_rate"
                ),
                max_attempts=int(data["retry"]["max_attempts"]),
            )
        output = (
            self.amount(data["output_tokens"], f"{path}.output_tokens")
            if "output_tokens" in data
            else None
        )
        turns, tool_calls = int(data.get("turns", 1)), int(data.get("tool_calls", 0))
        if turns * (1 + tool_calls) > MAX_CALLS_PER_STEP:
            raise self.fail(
                f"turns: {turns} with tool_calls: {tool_calls} is {turns * (1 + tool_calls):,} "
                f"model calls per request; a step makes at most {MAX_CALLS_PER_STEP:,} "
                "(turns x (1 + tool_calls))",
                f"{path}.turns",
            )
        limits, limit_lines = self.limits(data.get("limits") or {}, f"{path}.limits")
        return Step(
            name=name,
            prompt=prompt,
            prompt_path=prompt_path,
            model=data.get("model"),
            route=data.get("route"),
            output_tokens=output,
            max_output_tokens=max_output,
            turns=turns,
            tool_calls=tool_calls,
            tool_result_tokens=tokens("tool_result_tokens") or 0,
            user_turn_tokens=tokens("user_turn_tokens"),
            variables=self.variables(data.get("variables"), f"{path}.variables"),
            prompt_cache_hit_rate=share("prompt_cache_hit_rate"),
            retry=retry,
            batch_share=share("batch_share"),
            line=self.lines.get(path),
            tools=self.step_tools(data.get("tools"), path),
            limits=limits,
            limit_lines=limit_lines,
        )

    def resolved(self, base: Path, value: str, json_path: str) -> Path:
        """``base / value`` with symlinks resolved; a name no file system accepts (a NUL, a
        component over 255 bytes, a symlink loop) is an error at ``json_path``."""
        try:
            return resolve_path(base / value)
        except ConfinementError as err:
            raise self.fail(f"{value[:80]!r} {err.reason}", json_path) from err

    def prompt_path(self, prompt: str, prompts_dir: Path, path: str) -> Path:
        candidate = prompts_dir / prompt
        resolved = self.resolved(prompts_dir, prompt, path)
        if not resolved.is_relative_to(self.root):
            raise self.fail(
                f"prompt {prompt!r} is outside the project root; templates must live inside it",
                path,
            )
        if not candidate.exists():
            shown_dir = display_path(prompts_dir, self.root)
            raise self.fail(
                f"prompt file {prompt!r} not found (looked in {shown_dir}/); paths are relative "
                "to the prompts directory",
                path,
            )
        if candidate.is_dir():
            raise self.fail(f"prompt {prompt!r} is a directory; name a template file", path)
        return resolved

    def traffic_classes(self, data: Mapping[str, Any], path: str) -> tuple[TrafficClass, ...]:
        classes = data.get("classes")
        if not classes:
            return (ALL_TRAFFIC,)
        parsed = tuple(
            TrafficClass(
                name=name,
                share=self.share(spec["share"], f"{path}.classes.{name}.share"),
                signals=dict(spec.get("signals") or {}),
                variables=self.variables(spec.get("variables"), f"{path}.classes.{name}.variables"),
                line=self.lines.get(_child_path(f"{path}.classes", name)),
            )
            for name, spec in classes.items()
        )
        self.shares_sum_to_one([c.share for c in parsed], "traffic class", f"{path}.classes")
        return parsed

    def limits(
        self, limits_data: Mapping[str, Any], limits_path: str
    ) -> tuple[Limits, dict[str, int]]:
        """A workflow's or a step's ``limits:`` and the line of each."""
        parsed: dict[str, Any] = {}
        for key, value in limits_data.items():
            key_path = f"{limits_path}.{key}"
            if key in {"max_cost_per_request", "max_cost_per_outcome"}:
                parsed[key] = self.cost_limit(value, key_path)
            elif key in {"max_monthly_spend", "max_daily_spend"}:
                parsed[key] = self.unit(parse_usd, value, key_path)
            elif key in {"max_input_tokens", "max_output_tokens"}:
                parsed[key] = self.unit(parse_tokens, value, key_path)
            else:
                parsed[key] = int(value)
        limit_lines = {
            key: line
            for key in limits_data
            if (line := self.lines.get(f"{limits_path}.{key}")) is not None
        }
        return Limits(**parsed), limit_lines

    def template_limits(
        self, data: Mapping[str, Any] | None, catalog: PriceCatalog
    ) -> tuple[TemplateLimit, ...]:
        """``templates:``: each pattern's ``max_tokens``, for its own model or per model or
        encoding (each key must be a model of the catalog or a bundled encoding)."""
        found = []
        for pattern, spec in (data or {}).items():
            path = _child_path("$.templates", str(pattern))
            value = spec["max_tokens"]
            limits: dict[str | None, int] = {}
            lines: dict[str | None, int] = {}
            if isinstance(value, dict):
                for key, tokens in value.items():
                    key_path = _child_path(f"{path}.max_tokens", str(key))
                    name = str(key)
                    if name not in TOKENIZERS and catalog.lookup(name) is None:
                        near = catalog.closest(name) + difflib.get_close_matches(
                            name, list(TOKENIZERS), n=2
                        )
                        hint = f"; did you mean {', '.join(near)}?" if near else ""
                        raise self.fail(
                            f"{name!r} is neither a model in the catalog nor an encoding "
                            f"({', '.join(TOKENIZERS)}){hint}",
                            key_path,
                        )
                    limits[name] = self.unit(parse_tokens, tokens, key_path)
                    if (line := self.lines.get(key_path)) is not None:
                        lines[name] = line
            else:
                limits[None] = self.unit(parse_tokens, value, f"{path}.max_tokens")
                if (line := self.lines.get(f"{path}.max_tokens")) is not None:
                    lines[None] = line
            found.append(
                TemplateLimit(str(pattern), limits, line=self.lines.get(path), lines=lines)
            )
        return tuple(found)

    def matched(
        self, limits: tuple[TemplateLimit, ...], prompts_dir: Path
    ) -> tuple[TemplateLimit, ...]:
        """Every ``templates:`` pattern matches a file in the prompts directory (a typo
        would otherwise limit nothing, silently)."""
        if not limits:
            return limits
        from promptbudget.suppressions import glob_matches

        files = list(iter_prompt_files([prompts_dir])) if prompts_dir.is_dir() else []
        names = [(display_path(p, self.root), p.relative_to(prompts_dir).as_posix()) for p in files]
        for limit in limits:
            if any(glob_matches(limit.pattern, name) for pair in names for name in pair):
                continue
            near = difflib.get_close_matches(limit.pattern, [pair[0] for pair in names], n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            shown_dir = display_path(prompts_dir, self.root)
            raise self.fail(
                f"templates: {limit.pattern!r} matches no file in {shown_dir}/ (paths and globs "
                f"are relative to the project root or the prompts directory){hint}",
                _child_path("$.templates", limit.pattern),
            )
        return limits

    def cost_limit(self, value: object, json_path: str) -> CostLimit:
        if isinstance(value, dict):
            ((statistic, amount),) = value.items()
            return CostLimit(self.unit(parse_usd, amount, f"{json_path}.{statistic}"), statistic)
        return CostLimit(self.unit(parse_usd, value, json_path))

    def traffic_profile(self, data: Mapping[str, Any], path: str) -> TrafficProfile | None:
        """``traffic: {timezone, hourly}``: when requests are sent (time-of-day prices)."""
        if "hourly" not in data:
            if "timezone" in data:
                raise self.fail("timezone needs hourly: a list of 24 or 168 weights", path)
            return None
        hourly = tuple(Decimal(str(value)) for value in data["hourly"])
        if len(hourly) not in (24, 168):
            raise self.fail(
                f"hourly has {len(hourly)} weights; give 24 (one per hour of the day) or 168 "
                "(Monday 00:00 to Sunday 23:00)",
                f"{path}.hourly",
            )
        if not any(hourly):
            raise self.fail("hourly needs at least one hour with traffic", f"{path}.hourly")
        timezone = str(data.get("timezone", "UTC"))
        if not is_time_zone(timezone):
            raise self.fail(
                f"unknown time zone {timezone!r}; use an IANA name such as UTC or Europe/Berlin",
                f"{path}.timezone",
            )
        return TrafficProfile(timezone=timezone, hourly=hourly)

    def workflow(
        self, name: str, data: Mapping[str, Any], prompts_dir: Path, routes: Mapping[str, Route]
    ) -> Workflow:
        path = _child_path("$.workflows", name)
        steps = tuple(
            self.step(step, f"{path}.steps[{index}]", prompts_dir)
            for index, step in enumerate(data["steps"])
        )
        seen: set[str] = set()
        for index, step in enumerate(steps):
            if step.name in seen:
                raise self.fail(
                    f"two steps are named {step.name!r}; give one a different 'name:'",
                    f"{path}.steps[{index}]",
                )
            seen.add(step.name)
            if step.route is not None and step.route not in routes:
                near = difflib.get_close_matches(step.route, list(routes), n=3)
                hint = f"; did you mean {', '.join(near)}?" if near else ""
                raise self.fail(
                    f"step {step.name!r} uses route {step.route!r}, which is not under routes:"
                    f"{hint}",
                    f"{path}.steps[{index}].route",
                )
        traffic = data.get("traffic") or {}
        # Monthly traffic is kept as written, so a monthly limit compares exactly.
        per_month: Decimal | None = None
        if "requests_per_day" in traffic:
            per_month = Decimal(str(traffic["requests_per_day"])) * DAYS_PER_MONTH
        elif "requests_per_month" in traffic:
            per_month = Decimal(str(traffic["requests_per_month"]))
        success = Decimal(1)
        if "success_rate" in data:
            success = self.share(data["success_rate"], f"{path}.success_rate")
            if success == 0:
                raise self.fail(
                    "success_rate must be above 0% (cost per outcome divides by it)",
                    f"{path}.success_rate",
                )
        limits, limit_lines = self.limits(data.get("limits") or {}, f"{path}.limits")
        optional_shares = {
            key: self.share(data[key], f"{path}.{key}")
            for key in ("semantic_cache_hit_rate", "batch_share")
            if key in data
        }
        return Workflow(
            name=name,
            steps=steps,
            limits=limits,
            description=data.get("description"),
            requests_per_month=per_month,
            success_rate=success,
            classes=self.traffic_classes(traffic, f"{path}.traffic"),
            traffic_profile=self.traffic_profile(traffic, f"{path}.traffic"),
            line=self.lines.get(path),
            limit_lines=limit_lines,
            **optional_shares,
        )


def _percent(value: object) -> Decimal:
    """``10%`` -> Decimal(10) (a percentage, as ``--fail-on-increase`` takes it)."""
    text = str(value).strip().removesuffix("%").strip()
    try:
        number = Decimal(text)
    except ArithmeticError as err:
        raise ValueError(f"{value!r} is not a percentage such as 10%") from err
    if not number.is_finite() or number < 0:
        raise ValueError(f"{value!r} is not a percentage such as 10%")
    return number


def _find_cycle(name: str, routes: Mapping[str, Route], stack: tuple[str, ...]) -> tuple[str, ...]:
    if name in stack:
        return (*stack[stack.index(name) :], name)
    route = routes.get(name)
    if route is None:
        return ()
    for target in route.targets:
        cycle = _find_cycle(target, routes, (*stack, name))
        if cycle:
            return cycle
    return ()


def _replay_settings(
    data: Mapping[str, Any],
    lines: Lines,
    converter: _Converter,
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
    converter = _Converter(lines, shown, root)
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
        rule_lines={k: v for k in rules if (v := lines.get(_child_path("$.rules", k))) is not None},
        prices_path=prices_path,
        compression=compression,
        per_file_ignores=tuple(
            PathIgnore(
                str(pattern),
                tuple(str(name) for name in names),
                lines.get(_child_path("$.per_file_ignores", str(pattern))),
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
            if (line := lines.get(_child_path("$.tools", name))) is not None
        },
        select=tuple(str(x) for x in data["select"]) if "select" in data else None,
        ignore=tuple(str(x) for x in data.get("ignore") or ()),
        fail_on=data.get("fail_on"),
        fail_on_increase=(
            converter.unit(_percent, data["fail_on_increase"], "$.fail_on_increase")
            if "fail_on_increase" in data
            else None
        ),
        templates=converter.matched(
            converter.template_limits(data.get("templates"), catalog), prompts_dir
        ),
    )
