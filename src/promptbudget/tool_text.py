"""Tool definitions written the way OpenAI's models read them: the TypeScript-like
``namespace functions { type f = (_: {...}) => any; }`` text of OpenAI's published harmony
format (github.com/openai/harmony, ``src/encoding.rs``: the tools section of a developer
message; the gpt-oss cookbook shows the same text).

Nested objects are written out with their properties, arrays as ``T[]``, enums as unions of
string literals, optional properties with ``?``, descriptions as ``//`` comments at every
level, defaults as trailing ``// default: x`` comments, ``oneOf`` (and ``anyOf``, which
harmony does not special-case; written the same way here) as ``| variant`` lines, and
``type: [a, b]`` as ``a | b``.

``flat_tools`` keeps only what OpenAI's cookbook formula models (the top-level properties'
names, types, descriptions and enums), so the text of a tool minus the text of its flat
version is what the formula does not see.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


def tools_text(tools: Sequence[tuple[str, str, Mapping[str, Any]]]) -> str:
    """The ``functions`` namespace for (name, description, parameters) tools."""
    body: list[str] = ["## functions\n", "namespace functions {\n"]
    for name, description, parameters in tools:
        body.extend(f"// {line}" for line in description.splitlines())
        if parameters:
            body.append(f"type {name} = (_: {schema_text(parameters, '')}) => any;\n")
        else:
            body.append(f"type {name} = () => any;\n")
    body.append("} // namespace functions")
    return "# Tools\n\n" + "\n".join(body)


def _default_comment(schema: Mapping[str, Any]) -> str:
    default = schema["default"]
    if isinstance(default, str):
        return f'default: "{default}"' if not schema.get("enum") else f"default: {default}"
    return f"default: {json.dumps(default, separators=(',', ':'))}"


def _variants(schema: Mapping[str, Any]) -> list[Any] | None:
    for key in ("oneOf", "anyOf"):
        value = schema.get(key)
        if isinstance(value, list):
            return value
    return None


def _union(
    variants: list[Any], indent: str, property_description: str | None, shown_above: bool
) -> str:
    """``| variant`` lines; a variant's description trails it unless it is the property's
    own (harmony drops it then, and the first variant's when the property's was written
    above)."""
    lines = []
    for index, variant in enumerate(variants):
        variant = variant if isinstance(variant, Mapping) else {}
        text = schema_text(variant, indent + "   ")
        if variant.get("nullable") is True and "null" not in text:
            text += " | null"
        notes = []
        description = variant.get("description")
        is_repeat = description == property_description or (index == 0 and shown_above)
        if isinstance(description, str) and not is_repeat:
            notes.append(description)
        if "default" in variant:
            notes.append(_default_comment(variant))
        lines.append(f"{indent} | {text}" + (f" // {' '.join(notes)}" if notes else ""))
    return "\n".join(lines)


def schema_text(schema: Mapping[str, Any], indent: str) -> str:
    """A JSON Schema as a TypeScript-like type."""
    variants = _variants(schema)
    if variants is not None:
        return "\n" + _union(variants, indent, None, False)
    kind = schema.get("type")
    if isinstance(kind, list):
        names = ["number" if item == "integer" else str(item) for item in kind]
        return " | ".join(names) if names else "any"
    if kind == "object":
        return _object_text(schema, indent)
    if kind == "string":
        values = schema.get("enum")
        if isinstance(values, list) and any(isinstance(v, str) for v in values):
            return " | ".join(f'"{value}"' for value in values if isinstance(value, str))
        return "string"
    if kind in ("number", "integer"):
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "array":
        items = schema.get("items")
        if isinstance(items, Mapping):
            return schema_text(items, indent) + "[]"
        return "Array<any>"
    return "any"


def _object_text(schema: Mapping[str, Any], indent: str) -> str:
    out = []
    description = schema.get("description")
    if isinstance(description, str):
        out.append(f"{indent}// {description}\n")
    out.append("{\n")
    properties = schema.get("properties")
    required_list = schema.get("required")
    required = set(required_list) if isinstance(required_list, list) else set()
    for key, value in properties.items() if isinstance(properties, Mapping) else ():
        value = value if isinstance(value, Mapping) else {}
        mark = "" if key in required else "?"
        if isinstance(value.get("title"), str):
            out.append(f"{indent}// {value['title']}\n{indent}//\n")
        variants = _variants(value)
        own = value.get("description") if isinstance(value.get("description"), str) else None
        if variants is None and own is not None:
            out.append(f"{indent}// {own}\n")
        examples = value.get("examples")
        if isinstance(examples, list) and examples:
            out.append(f"{indent}// Examples:\n")
            out.extend(f'{indent}// - "{ex}"\n' for ex in examples if isinstance(ex, str))
        if variants is not None:
            first = variants[0] if variants and isinstance(variants[0], Mapping) else {}
            same = own is not None and first.get("description") == own
            if own is not None and not same:
                out.append(f"{indent}// {own}\n")
            if "default" in value:
                out.append(f"{indent}// {_default_comment(value)}\n")
            out.append(f"{indent}{key}{mark}:\n")
            out.append(_union(variants, indent, own, own is not None and not same) + "\n")
            out.append(f"{indent},\n")
            continue
        text = schema_text(value, indent + "    ")
        if value.get("nullable") is True and "null" not in text:
            text += " | null"
        line = f"{indent}{key}{mark}: {text},"
        if "default" in value:
            line += f" // {_default_comment(value)}"
        out.append(line + "\n")
    out.append(f"{indent}}}")
    return "".join(out)


def flat_parameters(parameters: Mapping[str, Any]) -> Mapping[str, Any]:
    """What the cookbook formula models of ``parameters``: top-level properties with their
    type, description and enum (``required`` kept: the formula's figures include it)."""
    properties = parameters.get("properties")
    if not isinstance(properties, Mapping) or not properties:
        return {}
    flat: dict[str, Any] = {}
    for key, value in properties.items():
        value = value if isinstance(value, Mapping) else {}
        kept = {k: value[k] for k in ("type", "description", "enum") if k in value}
        if isinstance(kept.get("type"), str) and kept["type"] not in (
            "string",
            "number",
            "integer",
            "boolean",
        ):
            kept["type"] = "string"  # an object or array is counted as its type name only
        flat[key] = kept
    result: dict[str, Any] = {"type": "object", "properties": flat}
    if isinstance(parameters.get("required"), list):
        result["required"] = parameters["required"]
    return result
