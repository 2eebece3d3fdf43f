"""What-if overrides: ``--set support-reply.steps.answer.model=gpt-5.4-mini``.

A path is resolved against the manifest's data before validation, so an override is checked
by the same schema and the same rules as the file itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import yaml

from promptbudget.bounded import InputBoundsError, load_yaml
from promptbudget.errors import UsageError

TOP_LEVEL = frozenset(
    {"version", "prompts", "defaults", "variables", "models", "routes", "rules", "prices"}
)
WORKFLOW_LEVEL = frozenset(
    {
        "description",
        "traffic",
        "success_rate",
        "semantic_cache_hit_rate",
        "batch_share",
        "steps",
        "limits",
    }
)


def parse_override(text: str) -> tuple[str, Any]:
    """``PATH=VALUE`` -> (path, value); the value is read as YAML (``50000``, ``80%``)."""
    path, sep, raw = text.partition("=")
    if not sep or not path.strip():
        raise UsageError(f"--set {text!r}: expected PATH=VALUE, e.g. --set defaults.model=gpt-4o")
    try:
        value = load_yaml(raw) if raw.strip() else ""
    except (yaml.YAMLError, InputBoundsError) as err:
        raise UsageError(f"--set {text!r}: the value is not valid YAML ({err})") from err
    return path.strip(), value


def apply_overrides(
    data: dict[str, Any], overrides: Sequence[str], *, workflow: str | None = None
) -> dict[str, Any]:
    """A copy of ``data`` with every ``PATH=VALUE`` applied.

    ``PATH`` starts with a top-level key (``defaults.model``), a workflow name
    (``support-reply.steps.answer.model``), ``workflows.<name>``, or a workflow key that then
    applies to every workflow (or only ``workflow``): ``traffic.requests_per_day``. Steps are
    addressed by name (or index).
    """
    result: dict[str, Any] = _copy(data)
    for text in overrides:
        path, value = parse_override(text)
        for parts in _targets(result, path, workflow, text):
            _assign(result, parts, value, text)
    return result


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _targets(data: dict[str, Any], path: str, workflow: str | None, text: str) -> list[list[str]]:
    workflows = data.get("workflows") or {}
    if path.startswith("workflows."):
        rest = path[len("workflows.") :]
        name = _longest_prefix(rest, workflows)
        if name is None:
            raise UsageError(f"--set {text!r}: no such workflow ({_names(workflows)})")
        return [["workflows", name, *_split(rest[len(name) + 1 :])]]
    name = _longest_prefix(path, workflows)
    if name is not None:
        return [["workflows", name, *_split(path[len(name) + 1 :])]]
    head = path.split(".", 1)[0]
    if head in TOP_LEVEL:
        return [_split(path)]
    if head in WORKFLOW_LEVEL:
        names = [workflow] if workflow is not None else list(workflows)
        if not names:
            raise UsageError(f"--set {text!r}: the manifest has no workflows")
        return [["workflows", n, *_split(path)] for n in names]
    raise UsageError(
        f"--set {text!r}: {head!r} is neither a workflow ({_names(workflows)}) nor a manifest "
        f"key ({', '.join(sorted(TOP_LEVEL | WORKFLOW_LEVEL))})"
    )


def _names(workflows: dict[str, Any]) -> str:
    return "workflows: " + (", ".join(workflows) or "none")


def _longest_prefix(path: str, workflows: dict[str, Any]) -> str | None:
    """The workflow whose name starts ``path`` (names may contain dots)."""
    matches = [name for name in workflows if path == name or path.startswith(f"{name}.")]
    return max(matches, key=len) if matches else None


def _split(path: str) -> list[str]:
    return [part for part in path.split(".") if part] if path else []


def _assign(data: dict[str, Any], parts: list[str], value: Any, text: str) -> None:
    if len(parts) < 1:
        raise UsageError(f"--set {text!r}: the path is empty")
    node: Any = data
    for index, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = _step(node, part, text)
            continue
        if not isinstance(node, dict):
            raise UsageError(f"--set {text!r}: {'.'.join(parts[:index])} is not a mapping")
        if part not in node or node[part] is None:
            node[part] = {} if parts[index + 1] != "steps" else []
        node = node[part]
    last = parts[-1]
    if isinstance(node, list):
        raise UsageError(f"--set {text!r}: set a field of a step, e.g. steps.NAME.model")
    if not isinstance(node, dict):
        raise UsageError(f"--set {text!r}: {'.'.join(parts[:-1])} is not a mapping")
    # A what-if replaces what it contradicts: a step sent to a model is no longer routed, a
    # route made a single model no longer splits.
    replaced = (
        _STEP_REPLACES if "prompt" in node else _ROUTE_REPLACES if parts[0] == "routes" else {}
    )
    for key in replaced.get(last, ()):
        node.pop(key, None)
    node[last] = value


_STEP_REPLACES = {"model": ("route",), "route": ("model",)}
_ROUTE_REPLACES = {"model": ("split", "rules", "default"), "split": ("model", "rules", "default")}


def _step(steps: list[Any], key: str, text: str) -> Any:
    for step in steps:
        if isinstance(step, dict):
            name = step.get("name") or str(step.get("prompt", "")).rsplit("/", 1)[-1].split(".")[0]
            if name == key:
                return step
    if key.isdigit() and int(key) < len(steps):
        return steps[int(key)]
    names = [
        str(s.get("name") or str(s.get("prompt", "")).rsplit("/", 1)[-1].split(".")[0])
        for s in steps
        if isinstance(s, dict)
    ]
    raise UsageError(f"--set {text!r}: no step named {key!r} (steps: {', '.join(names)})")
