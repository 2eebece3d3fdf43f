"""Front matter and prompt documents of the formats that are more than a file with a header:
Dotprompt (picoschema inputs, variants), Semantic Kernel (skprompt.txt with config.json, prompt
YAML), LangChain saved prompts, and promptfoo prompt files with their config."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from promptbudget.bounded import InputBoundsError, check_yaml_events, load_json, load_yaml
from promptbudget.confine import is_regular_file
from promptbudget.templates.meta import (
    FrontMatterError,
    MetaError,
    ParsedTemplate,
    TemplateMeta,
    as_mapping,
    broken_template,
    declaration_lines,
    is_placeholder_model,
    optional_text,
    positive_int,
    prompt_data_format,
    tool_names,
)
from promptbudget.templates.source import TemplateFormat

# Dotprompt's FRONTMATTER_AND_BODY_REGEX: ``#`` comment lines and blank lines (a license
# header) may come before the opening ``---``. A closing ``---`` at the very end of the file
# (no newline after it) is accepted too.
_DOTPROMPT_DOCUMENT = re.compile(
    r"\A(?P<lead>(?:(?:#[^\n]*|[ \t]*)\n)*)---[ \t]*\n(?:(?P<header>.*?)\n)?---[ \t]*(?:\n|\Z)",
    re.DOTALL,
)


_PICOSCHEMA_SCALARS = frozenset({"any", "boolean", "integer", "null", "number", "string"})


@dataclass(frozen=True)
class DotpromptDocument:
    """A ``.prompt`` file split as Dotprompt splits it: the body is trimmed when there is
    front matter (``template: body.trim()``) and used as is when there is none."""

    data: Mapping[str, Any]
    header: tuple[str, ...]
    header_line: int  # the file line of the first YAML line
    body: str
    body_line: int  # the file line the (trimmed) body starts on


def split_dotprompt(text: str) -> DotpromptDocument | None:
    """Split a Dotprompt file; None when it has no front matter. Raises ``FrontMatterError``
    for YAML that does not parse or is not a mapping."""
    match = _DOTPROMPT_DOCUMENT.match(text)
    if match is None:
        return None
    header_line = match.group("lead").count("\n") + 2
    header = match.group("header") or ""
    try:
        data = load_yaml(header) if header.strip() else {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = header_line + (mark.line if mark is not None else 0)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise FrontMatterError(f"front matter is not valid YAML: {problem}", line) from err
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FrontMatterError("front matter must be a YAML mapping of keys to values", header_line)
    rest = text[match.end() :]
    body = rest.strip()
    leading = rest[: len(rest) - len(rest.lstrip())]
    body_line = text[: match.end()].count("\n") + 1 + leading.count("\n")
    return DotpromptDocument(
        data=data,
        header=tuple(header.split("\n")),
        header_line=header_line,
        body=body,
        body_line=body_line,
    )


def parse_dotprompt(base: ParsedTemplate) -> ParsedTemplate:
    try:
        document = split_dotprompt(base.text)
    except FrontMatterError as err:
        return broken_template(base, str(err), err.line)
    if document is None:
        return replace(base, meta=TemplateMeta(engine="handlebars"))
    try:
        meta = dotprompt_meta(document.data)
    except MetaError as err:
        return broken_template(base, str(err), document.header_line)
    if meta.declared_inputs:
        lines = _dotprompt_declaration_lines(
            meta.declared_inputs, document.header, document.header_line
        )
        meta = replace(meta, declared_lines=lines)
    return replace(base, body=document.body, body_line=document.body_line, meta=meta)


def dotprompt_meta(data: Mapping[str, Any]) -> TemplateMeta:
    """Dotprompt front matter: ``model``, ``config.maxOutputTokens``, ``version``,
    ``input.default`` (samples) and ``input.schema`` (Picoschema or JSON Schema: the inputs)."""
    model = optional_text(data.get("model"))
    if model is not None and is_placeholder_model(model):
        model = None
    config = data.get("config")
    max_output = None
    if isinstance(config, dict):
        max_output = positive_int(config.get("maxOutputTokens"), "config.maxOutputTokens")
    elif config is not None:
        raise MetaError("front matter config must be a mapping of model settings")
    section = data.get("input")
    if section is not None and not isinstance(section, dict):
        raise MetaError("front matter input must be a mapping with 'schema' and 'default'")
    section = section or {}
    samples = dict(as_mapping(section.get("default"), "input.default"))
    names = _schema_inputs(section.get("schema"))
    declared: frozenset[str] | None = None
    if names is not None:
        declared = frozenset(names | set(samples))
    elif samples and "schema" not in section:
        declared = frozenset(samples)
    return TemplateMeta(
        model=model,
        max_output_tokens=max_output,
        version=optional_text(data.get("version")),
        samples=samples,
        declared_inputs=declared,
        engine="handlebars",
        tool_names=tool_names(data.get("tools")),
    )


def _schema_inputs(schema: object) -> set[str] | None:
    """The input names an ``input.schema`` declares; None when it does not say (a named
    schema, a non-object type, a ``(*)`` wildcard)."""
    if not isinstance(schema, dict):
        return None
    kind = schema.get("type")
    if kind in _PICOSCHEMA_SCALARS or kind == "array":
        return None
    if kind == "object" or isinstance(schema.get("properties"), dict):
        properties = schema.get("properties")
        return {str(name) for name in properties} if isinstance(properties, dict) else None
    names = set()
    for key in schema:
        name = str(key)
        if name == "(*)":
            return None
        names.add(name.split("(", 1)[0].strip().removesuffix("?"))
    return names


def _dotprompt_declaration_lines(
    names: frozenset[str], header: tuple[str, ...], header_line: int
) -> dict[str, int]:
    """The file line where each input is first named as a key after ``input:``."""
    start = next((i for i, line in enumerate(header) if re.match(r"input\s*:", line)), 0)
    found: dict[str, int] = {}
    for name in names:
        pattern = re.compile(rf"^\s*(?:-\s*)?{re.escape(name)}\??\s*(?:\(|:)")
        for index in range(start, len(header)):
            if pattern.match(header[index]):
                found[name] = header_line + index
                break
        else:
            found[name] = header_line + start
    return found


def parse_skprompt(base: ParsedTemplate, root: Path | None) -> ParsedTemplate:
    """``skprompt.txt``: the whole file is the template; ``config.json`` beside it says the
    model, the output limit and the inputs."""
    from promptbudget.templates.semantic_kernel import SK_CONFIG, sk_meta
    from promptbudget.templates.source import read_prompt_text

    meta = TemplateMeta(engine="semantic-kernel")
    config = base.path.parent / SK_CONFIG
    if is_regular_file(config, root) and config.resolve().parent == base.path.resolve().parent:
        read = read_prompt_text(config, root=root)
        try:
            data = load_json(read.text) if read.is_readable else None
        except json.JSONDecodeError as err:
            return replace(
                base,
                meta=meta,
                problem=f"its {SK_CONFIG} is not valid JSON (line {err.lineno}: {err.msg})",
                problem_line=1,
            )
        except InputBoundsError as err:
            return replace(base, meta=meta, problem=f"its {SK_CONFIG} {err}", problem_line=1)
        if isinstance(data, dict):
            found = sk_meta(data)
            meta = TemplateMeta(
                model=found.model,
                max_output_tokens=found.max_output_tokens,
                samples=found.samples,
                declared_inputs=found.declared,
                engine="semantic-kernel",
            )
    return replace(base, meta=meta)


def parse_data_prompt(base: ParsedTemplate, root: Path | None) -> ParsedTemplate:
    """A YAML or JSON file: a Semantic Kernel prompt YAML or a serialized LangChain
    ``PromptTemplate`` when it has their keys; anything else stays plain text."""
    suffix = base.path.suffix.lower()
    if suffix == ".json" and "{{" in base.text:
        from promptbudget.templates.promptfoo import find_config

        config = find_config(base.path, root=root)
        if config is not None:  # a promptfoo prompt: Nunjucks over JSON (chat messages)
            return replace(
                base,
                format=TemplateFormat.JINJA2,
                meta=TemplateMeta(engine="jinja2", samples=dict(config.samples)),
            )
    if suffix not in {".yaml", ".yml", ".json"} or "template" not in base.text:
        return base
    try:
        check_yaml_events(base.text)
        node = yaml.compose(base.text, Loader=yaml.SafeLoader)
        data = load_yaml(base.text)
    except yaml.YAMLError as err:
        fmt = prompt_data_format(base.text)
        if fmt is None:
            return base  # not YAML or JSON: a text prompt with a data suffix
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        kind = "JSON" if suffix == ".json" else "YAML"
        label = "LangChain" if fmt is TemplateFormat.LANGCHAIN else "Semantic Kernel"
        return replace(
            base,
            format=fmt,
            problem=f"looks like a {label} prompt, but is not valid {kind}: {problem}",
            problem_line=mark.line + 1 if mark is not None else 1,
        )
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        return base
    from promptbudget.templates.langchain import is_langchain_prompt, langchain_engine
    from promptbudget.templates.semantic_kernel import engine_of, is_sk_prompt_yaml, sk_meta

    if is_langchain_prompt(data):
        fmt = TemplateFormat.LANGCHAIN
        engine = langchain_engine(data.get("template_format"))
        samples: dict[str, Any] = {}
        declared = _langchain_inputs(data, samples)
        meta = TemplateMeta(engine=engine or "none", samples=samples, declared_inputs=declared)
        problem = (
            None
            if engine is not None
            else f"template_format {data.get('template_format')!r} is not one LangChain "
            "knows (f-string, jinja2, mustache)"
        )
    elif is_sk_prompt_yaml(data):
        fmt = TemplateFormat.SEMANTIC_KERNEL
        engine = engine_of(data.get("template_format"))
        found = sk_meta(data)
        meta = TemplateMeta(
            model=found.model,
            max_output_tokens=found.max_output_tokens,
            samples=found.samples,
            declared_inputs=found.declared,
            engine=engine or "none",
        )
        problem = (
            None
            if engine is not None
            else f"template_format {data.get('template_format')!r} is not one Semantic Kernel "
            "knows (semantic-kernel, handlebars, liquid)"
        )
    else:
        return base
    body, body_line, line_map = _template_value(node, data["template"], base.text)
    if meta.declared_inputs:
        meta = replace(meta, declared_lines=_input_lines(meta.declared_inputs, base.text))
    return replace(
        base,
        format=fmt,
        body=body,
        body_line=body_line,
        meta=meta,
        problem=problem,
        problem_line=body_line if problem else None,
        line_map=line_map,
    )


def _template_value(
    node: yaml.MappingNode, template: str, text: str
) -> tuple[str, int, tuple[int, ...]]:
    """The template text, the file line it starts on (a literal block ``template: |`` starts
    on the next line) and, for a folded or quoted scalar, the file line of each of its
    lines."""
    for key, value in node.value:
        if not (isinstance(key, yaml.ScalarNode) and key.value == "template"):
            continue
        line = value.start_mark.line + 1
        if isinstance(value, yaml.ScalarNode) and value.style == "|":
            return template, line + 1, ()
        if "\n" not in template:
            return template, line + (1 if getattr(value, "style", None) == ">" else 0), ()
        return template, line, _line_map(template, text, value.start_mark.index, line)
    return template, 1, ()


def _line_map(template: str, text: str, start: int, first_line: int) -> tuple[int, ...]:
    """Where each line of a folded or quoted scalar's value is in the file: found by its
    first words, in order (escapes aside, a scalar keeps its words)."""
    lines: list[int] = []
    position = start
    for part in template.split("\n"):
        probe = part.strip()[:20]
        found = text.find(probe, position) if probe else -1
        if found < 0:
            lines.append(lines[-1] if lines else first_line)
            continue
        lines.append(text.count("\n", 0, found) + 1)
        position = found + len(probe)
    return tuple(lines)


def _langchain_inputs(data: Mapping[str, Any], samples: dict[str, Any]) -> frozenset[str] | None:
    """LangChain's ``input_variables`` (names), with ``partial_variables`` as samples."""
    names = data.get("input_variables")
    partial = data.get("partial_variables")
    if isinstance(partial, dict):
        samples.update({str(k): v for k, v in partial.items()})
    if not isinstance(names, list):
        return frozenset(samples) or None
    return frozenset(str(n) for n in names) | frozenset(samples)


def _input_lines(names: frozenset[str], text: str) -> dict[str, int]:
    """Where each input is declared: ``- name: x`` (SK), ``- x`` or ``"x"`` in a list
    (LangChain); else its first mention."""
    lines = text.split("\n")
    found: dict[str, int] = {}
    for name in names:
        quoted = re.escape(name)
        pattern = re.compile(rf"^\s*(?:-\s*)?(?:name:\s*)?[\"']?{quoted}[\"']?\s*,?\s*(?:#.*)?$")
        for number, line in enumerate(lines, start=1):
            if pattern.match(line) or re.search(rf"\bname:\s*[\"']?{quoted}[\"']?\s*$", line):
                found[name] = number
                break
    missing = names - set(found)
    if missing:
        header = tuple(lines[1:])
        found.update(declaration_lines(frozenset(missing), header))
    return found


def parse_promptfoo(base: ParsedTemplate, root: Path | None) -> ParsedTemplate:
    """A Jinja2/text file that a promptfoo config names: its prompts split on '---' lines, and
    the config's test variables as samples."""
    from promptbudget.templates.promptfoo import find_config, split_prompts

    if base.problem is not None:
        return base
    config = find_config(base.path, root=root)
    if config is None:
        return base
    # promptfoo renders its prompt files with Nunjucks, whatever their suffix
    meta = replace(base.meta, samples={**config.samples, **base.meta.samples}, engine="nunjucks")
    if not config.is_prompt_file(base.path):  # a message's content: read as it is
        return replace(base, meta=meta)
    prompts = split_prompts(base.body, base.body_line)
    if not prompts:
        return replace(base, meta=meta)
    if len(prompts) == 1:  # promptfoo trims a prompt
        return replace(base, meta=meta, body=prompts[0][0], body_line=prompts[0][1])
    body, line = prompts[0]
    return replace(base, meta=meta, body=body, body_line=line, variants=tuple(prompts))
