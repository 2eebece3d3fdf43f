"""Editing budgets.yaml as text, so comments, key order and formatting stay as they were.

The YAML is composed (nodes with their positions) to find where a value stands; an edit is a
replacement of a span of the text, applied from the end so earlier offsets stay valid. Used
by ``baseline`` (limits) and ``replay --calibrate`` (observed assumptions).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import yaml

from promptbudget.errors import PromptBudgetError


class ManifestEditError(PromptBudgetError):
    """budgets.yaml cannot be edited safely."""


@dataclass
class Edit:
    """Replace ``text[start:end]`` with ``text`` (an insertion when ``start == end``)."""

    start: int
    end: int
    text: str


def find_key(mapping: yaml.MappingNode, name: str) -> tuple[yaml.Node, yaml.Node] | None:
    """The (key, value) nodes of ``name`` in ``mapping``, or ``None``."""
    for key, value in mapping.value:
        if isinstance(key, yaml.ScalarNode) and key.value == name:
            return key, value
    return None


def last_line(node: yaml.Node) -> int:
    """The 0-based line of the last character of ``node``'s content."""
    if isinstance(node, yaml.MappingNode) and node.value and not node.flow_style:
        return last_line(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and node.value and not node.flow_style:
        return last_line(node.value[-1])
    end = node.end_mark
    return end.line - 1 if end.column == 0 and end.line > node.start_mark.line else end.line


def shared_nodes(root: yaml.Node) -> set[int]:
    """ids of nodes reached more than once (anchors and aliases)."""
    seen: set[int] = set()
    shared: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            shared.add(id(node))
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend((key, value))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return shared


def line_start(text: str, line: int) -> int:
    """Offset of the start of 0-based ``line`` (the end of the text past the last line)."""
    offset = 0
    for _ in range(line):
        found = text.find("\n", offset)
        if found < 0:
            return len(text)
        offset = found + 1
    return offset


def apply_edits(text: str, edits: Iterable[Edit]) -> str:
    """``text`` with ``edits`` (non-overlapping) applied."""
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[: edit.start] + edit.text + text[edit.end :]
    return text


def decode_manifest(raw: bytes) -> tuple[str, bool, bool]:
    """(text with LF line ends, had a BOM, used CRLF) of a manifest's bytes."""
    bom = raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    crlf = "\r\n" in text
    return text.replace("\r\n", "\n"), bom, crlf


def encode_manifest(text: str, *, bom: bool, crlf: bool) -> bytes:
    """``text`` back in the line ends and BOM the file had."""
    if crlf:
        text = text.replace("\n", "\r\n")
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
