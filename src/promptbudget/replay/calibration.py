"""``replay --calibrate``: the observed values written back into budgets.yaml.

Edited as text like ``baseline`` does (the operations of :mod:`manifest.edit`): values are
replaced where they stand, missing keys are added with the indentation around them, comments
and order are kept. A value that comes from a YAML anchor or alias is reported and left for a
human.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from promptbudget.errors import PromptBudgetError
from promptbudget.fileio import reason, replace_file
from promptbudget.manifest.edit import (
    Edit,
    ManifestEditError,
    apply_edits,
    decode_manifest,
    encode_manifest,
    find_key,
    last_line,
    line_start,
    shared_nodes,
)
from promptbudget.manifest.loader import load_manifest
from promptbudget.replay.drift import Drift


@dataclass(frozen=True)
class Calibration:
    path: Path
    before: str
    after: str
    applied: tuple[Drift, ...]
    skipped: tuple[tuple[Drift, str], ...]


def _flow(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    return str(value)


def _find(root: yaml.Node, path: tuple[str | int, ...]) -> yaml.Node | None:
    node: yaml.Node | None = root
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, yaml.SequenceNode) or part >= len(node.value):
                return None
            node = node.value[part]
        else:
            if not isinstance(node, yaml.MappingNode):
                return None
            found = find_key(node, part)
            node = found[1] if found else None
    return node


def _edits(
    text: str, root: yaml.Node, shared: set[int], path: tuple[str | int, ...], value: Any
) -> list[Edit] | str:
    """The edits that set ``path`` to ``value``, or why it cannot be done safely."""
    parent = _find(root, path[:-1])
    key = path[-1]
    if parent is None or not isinstance(parent, yaml.MappingNode) or not isinstance(key, str):
        return f"{'.'.join(str(p) for p in path[:-1])} is not a mapping in budgets.yaml"
    if id(parent) in shared:
        return "it comes from a YAML anchor shared with others; edit it by hand"
    found = find_key(parent, key)
    if found is not None:
        node = found[1]
        if id(node) in shared:
            return "it comes from a YAML anchor; edit it by hand"
        if isinstance(value, dict) and isinstance(node, yaml.MappingNode):
            edits: list[Edit] = []
            for name, inner in value.items():
                more = _edits(text, root, shared, (*path, name), inner)
                if isinstance(more, str):
                    return more
                edits += more
            return edits
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and not node.flow_style:
            return f"{key} is a block {type(node).__name__[:-4].lower()}; edit it by hand"
        return [Edit(node.start_mark.index, node.end_mark.index, _flow(value))]
    if parent.flow_style:
        at = parent.end_mark.index - 1
        separator = ", " if parent.value else ""
        return [Edit(at, at, f"{separator}{key}: {_flow(value)}")]
    indent = " " * parent.value[0][0].start_mark.column if parent.value else "  "
    at = line_start(text, last_line(parent) + 1)
    prefix = "" if at == 0 or text[at - 1] == "\n" else "\n"
    return [Edit(at, at, f"{prefix}{indent}{key}: {_flow(value)}\n")]


def calibrate_text(
    text: str, drifts: list[Drift]
) -> tuple[str, list[Drift], list[tuple[Drift, str]]]:
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        raise ManifestEditError("budgets.yaml is not a mapping")
    shared = shared_nodes(root)
    edits: list[Edit] = []
    applied: list[Drift] = []
    skipped: list[tuple[Drift, str]] = []
    seen: set[tuple[str | int, ...]] = set()
    for drift in drifts:
        if not drift.is_material or drift.path in seen:
            continue
        seen.add(drift.path)
        found = _edits(text, root, shared, drift.path, drift.value)
        if isinstance(found, str):
            skipped.append((drift, found))
            continue
        edits += found
        applied.append(drift)
    return apply_edits(text, edits), applied, skipped


def calibrate(path: Path, drifts: list[Drift], *, write: bool, cwd: Path) -> Calibration:
    """Plan (and with ``write``, make) the edit; the edited file must load as a manifest
    (checked in memory: no scratch file), and is written only if budgets.yaml still holds
    what was read (the one write primitive)."""
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise PromptBudgetError(f"{path.name}: cannot be read ({reason(err)})") from err
    text, bom, crlf = decode_manifest(raw)
    edited, applied, skipped = calibrate_text(text, drifts)
    try:
        load_manifest(path, cwd=cwd, text=edited)
    except PromptBudgetError as err:
        raise PromptBudgetError(
            f"replay --calibrate could not edit {path.name} safely ({err}); it was not changed. "
            "This is a bug: please report it with your budgets.yaml"
        ) from err
    if write and edited != text:
        replace_file(
            path,
            encode_manifest(edited, bom=bom, crlf=crlf),
            expected=raw,
            shown=path.name,
            activity="replay --calibrate ran",
        )
    return Calibration(path, text, edited, tuple(applied), tuple(skipped))
