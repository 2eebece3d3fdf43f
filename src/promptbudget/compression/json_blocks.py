"""``json`` (safe): pretty-printed JSON in code fences, minified.

Only a fence whose whole content is valid JSON (and holds no template syntax) is touched.
Minifying is lexical: whitespace outside strings goes, every string and number stays exactly
as written (``1.50`` stays ``1.50``; parsing and re-printing would not promise that).
"""

from __future__ import annotations

import json
import re

_FENCE = re.compile(
    r"^(?P<open>[ \t]*(?P<ticks>`{3,}|~{3,})[ \t]*(?P<lang>[\w+-]*)[^\n]*\n)"
    r"(?P<body>.*?)"
    r"(?P<close>^[ \t]*(?P=ticks)[ \t]*$)",
    re.DOTALL | re.MULTILINE,
)
_TEMPLATE = re.compile(r"\{\{|\{%|\{#|\$\{")


def minify_json_text(text: str) -> str:
    """``text`` (valid JSON) without whitespace outside strings."""
    out: list[str] = []
    in_string = escaped = False
    for char in text:
        if in_string:
            out.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
            out.append(char)
        elif char not in " \t\r\n":
            out.append(char)
    return "".join(out)


def minify_json_fences(text: str) -> str:
    def replace(match: re.Match[str]) -> str:
        body = match.group("body")
        lang = match.group("lang").lower()
        if lang not in {"", "json", "jsonc", "json5"} or _TEMPLATE.search(body):
            return match.group(0)
        stripped = body.strip()
        if not stripped or stripped[0] not in "{[":
            return match.group(0)
        try:
            json.loads(stripped)
        except ValueError:
            return match.group(0)
        return f"{match.group('open')}{minify_json_text(stripped)}\n{match.group('close')}"

    return _FENCE.sub(replace, text)
