"""JSON paths into the manifest and the YAML line each one comes from."""

from __future__ import annotations

import json
from typing import Any

Lines = dict[str, int]


def join_path(parent: str, key: str) -> str:
    if key.isidentifier():
        return f"{parent}.{key}"
    return f"{parent}[{json.dumps(key)}]"


def format_json_path(parts: Any) -> str:
    path = "$"
    for part in parts:
        path = f"{path}[{part}]" if isinstance(part, int) else join_path(path, str(part))
    return path


def line_for(lines: Lines, json_path: str) -> int | None:
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
