"""Front matter and per-format metadata: model, output limit, version, samples, inputs.

A template is split into its YAML front matter (if any) and its body. What each format keeps
in its front matter is read into one ``TemplateMeta``, so the rest of the pipeline never needs
to know whether a value came from Prompty v1, Prompty v2 or a Jinja2 header.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from promptbudget.bounded import InputBoundsError, check_yaml_events, load_json, load_yaml
from promptbudget.confine import is_regular_file
from promptbudget.templates.source import PromptText, TemplateFormat
from promptbudget.tools import Tool, ToolError, parse_tools

_YAML_KEY_LINE = re.compile(r"^[A-Za-z_][\w.-]*\s*:")
_FILE_REFERENCE = re.compile(r"^\$\{file:(?P<path>[^}]+)\}$")


@dataclass(frozen=True)
class TemplateMeta:
    """What a template says about itself."""

    model: str | None = None
    max_output_tokens: int | None = None
    version: str | None = None
    samples: Mapping[str, Any] = field(default_factory=dict)
    # Input names the template declares (front matter ``inputs``/``sample``); None: no list.
    declared_inputs: frozenset[str] | None = None
    # "jinja2", "mustache", "handlebars", "semantic-kernel", "format", "go-template", "text"
    # (a generic file's detected engine), "fstring" (LangChain), "liquid" or "none" (data)
    engine: str = "jinja2"
    # Prompty ``sample: file.json`` or ``${file:...}``, ``inputs: ${file:...}``: JSON files
    # of sample values, relative to the template (loaded by the pipeline, inside the project)
    sample_files: tuple[str, ...] = ()
    declared_lines: Mapping[str, int] = field(default_factory=dict)  # input -> file line
    tools: tuple[Tool, ...] = ()  # tool definitions in the front matter (sent with each call)
    # Tools named but defined elsewhere (Dotprompt's ``tools: [lookup_account]``): the
    # application sends them, a step's ``tools:`` says what they cost (PB111 when it does not)
    tool_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedTemplate:
    """A template's metadata and body, with the 1-based file line the body starts on."""

    path: Path
    display_path: str
    format: TemplateFormat
    text: str
    body: str
    body_line: int
    meta: TemplateMeta
    problem: str | None = None  # why the file could not be parsed (PB001), if so
    problem_line: int | None = None
    text_problem: str | None = None  # from reading the bytes (encoding, size)
    text_problem_line: int = 1
    is_readable: bool = True
    # Several prompts in one file (promptfoo's '---'): (body, body line) of each; ``body`` is
    # the first. ``variant`` names the one a copy stands for ("2 of 3").
    variants: tuple[tuple[str, int], ...] = ()
    variant: str | None = None
    # The file line of each body line, where they do not follow one another (a template in
    # a folded or quoted YAML scalar); empty: line ``body_line + n``.
    line_map: tuple[int, ...] = ()
    # PB302: a generic file that looks like a template no engine accepts (counted as text)
    engine_note: str | None = None
    engine_line: int = 1


@dataclass(frozen=True)
class FrontMatter:
    data: Mapping[str, Any]
    body: str
    body_line: int
    header: tuple[str, ...] = ()  # the YAML lines, from file line 2


class FrontMatterError(ValueError):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def split_front_matter(text: str, *, required: bool) -> FrontMatter | None:
    """Split ``---`` YAML front matter from ``text``.

    With ``required=False`` (Jinja2, Markdown, text), a leading ``---`` block counts as front
    matter only if it looks like YAML keys; a Markdown horizontal rule stays text.
    Raises ``FrontMatterError`` for front matter that is there but broken.
    """
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        if required:
            raise FrontMatterError("has no front matter (the file must start with a '---' line)", 1)
        return None
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in {"---", "..."}), None)
    if end is None:
        if required or _looks_like_yaml(lines[1:]):
            raise FrontMatterError("front matter is not closed (no second '---' line)", 1)
        return None
    header = lines[1:end]
    if not required and not _looks_like_yaml(header):
        return None
    try:
        data = load_yaml("\n".join(header)) if any(s.strip() for s in header) else {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 2 if mark is not None else 2
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise FrontMatterError(f"front matter is not valid YAML: {problem}", line) from err
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FrontMatterError("front matter must be a YAML mapping of keys to values", 2)
    body = "\n".join(lines[end + 1 :])
    return FrontMatter(data=data, body=body, body_line=end + 2, header=tuple(header))


def _declaration_lines(names: frozenset[str], header: tuple[str, ...]) -> dict[str, int]:
    """The front matter line where each input is first named (file lines; header starts on 2)."""
    found: dict[str, int] = {}
    for name in names:
        pattern = re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])")
        for index, line in enumerate(header):
            if pattern.search(line):
                found[name] = index + 2
                break
    return found


def _looks_like_yaml(lines: list[str]) -> bool:
    first = next((line for line in lines if line.strip() and not line.startswith("#")), None)
    return first is not None and _YAML_KEY_LINE.match(first) is not None


# Template engines parse and compile a template in time that grows with its tags, a few
# seconds for tens of thousands: beyond this many ``{{``/``{%`` a template is PB001, counted
# as plain text. Real prompt templates hold tens to hundreds.
MAX_TEMPLATE_TAGS = 5_000


def parse_template(
    path: Path,
    display: str,
    fmt: TemplateFormat,
    read: PromptText,
    *,
    root: Path | None = None,
    engine: str | None = None,
) -> ParsedTemplate:
    """Split and interpret ``read`` according to ``fmt``; a generic file's engine is
    ``engine`` (a per-glob setting) or found by content. Never raises for content problems.

    ``root``: the project root; files found next to the template (``config.json``, a
    ``promptfooconfig.yaml``) are looked for and read only inside it."""
    parsed = _bound_tags(_parse_template(path, display, fmt, read, root=root))
    if fmt is not TemplateFormat.JINJA2 or not parsed.is_readable or parsed.problem:
        return parsed
    if engine is None and parsed.meta.engine == "nunjucks":  # promptfoo renders Nunjucks
        return replace(parsed, meta=replace(parsed.meta, engine="jinja2"))
    if engine is None and is_jinja_file(path):
        return parsed
    return with_engine(parsed, engine)


def _bound_tags(parsed: ParsedTemplate) -> ParsedTemplate:
    """A template with more than ``MAX_TEMPLATE_TAGS`` tags is PB001, counted as plain text."""
    if parsed.meta.engine == "none" or parsed.problem is not None:
        return parsed
    tags = parsed.body.count("{{") + parsed.body.count("{%")
    if tags <= MAX_TEMPLATE_TAGS:
        return parsed
    return _broken(
        parsed,
        f"has {tags:,} template tags; promptbudget renders templates of at most "
        f"{MAX_TEMPLATE_TAGS:,} (split it into partials)",
        parsed.body_line,
    )


_JINJA_SUFFIXES = frozenset({".j2", ".jinja", ".jinja2"})


def is_jinja_file(path: Path) -> bool:
    """A file whose suffix says Jinja2; other generic files are read by content."""
    return path.suffix.lower() in _JINJA_SUFFIXES


def with_engine(parsed: ParsedTemplate, engine: str | None) -> ParsedTemplate:
    """``parsed`` read with ``engine`` (None: the engine its content shows)."""
    from promptbudget.templates.detect import detect_engine

    if engine is None:
        found = detect_engine(parsed.body, parsed.body_line)
        engine = found.engine
        if found.problem is not None:
            parsed = replace(parsed, problem=found.problem[0], problem_line=found.problem[1])
        elif found.note is not None:
            parsed = replace(parsed, engine_note=found.note, engine_line=parsed.body_line)
    fmt = TemplateFormat.SEMANTIC_KERNEL if engine == "semantic-kernel" else parsed.format
    return replace(parsed, format=fmt, meta=replace(parsed.meta, engine=engine))


def engine_label(parsed: ParsedTemplate) -> str:
    """What ``format`` says in the output: a generic file's engine, else the file format."""
    if parsed.format is TemplateFormat.JINJA2:
        return "text" if parsed.meta.engine == "none" else str(parsed.meta.engine)
    return str(parsed.format.value)


def _parse_template(
    path: Path, display: str, fmt: TemplateFormat, read: PromptText, *, root: Path | None
) -> ParsedTemplate:
    base = ParsedTemplate(
        path=path,
        display_path=display,
        format=fmt,
        text=read.text,
        body=read.text,
        body_line=1,
        meta=TemplateMeta(engine="none" if fmt is TemplateFormat.TEXT else "jinja2"),
        text_problem=read.problem,
        text_problem_line=read.problem_line,
        is_readable=read.is_readable,
    )
    if not read.is_readable:
        return base
    if fmt is TemplateFormat.TEXT:
        return _parse_data_prompt(base, root)
    if fmt is TemplateFormat.SEMANTIC_KERNEL:
        return _parse_skprompt(base, root)
    if fmt is TemplateFormat.DOTPROMPT:
        return _parse_dotprompt(base)
    try:
        front = split_front_matter(read.text, required=fmt is TemplateFormat.PROMPTY)
    except FrontMatterError as err:
        return _broken(base, str(err), err.line)
    if front is None:
        return _promptfoo(base, root) if fmt is TemplateFormat.JINJA2 else base
    read_meta = prompty_meta if fmt is TemplateFormat.PROMPTY else jinja_meta
    try:
        meta = read_meta(front.data)
    except MetaError as err:
        return _broken(base, str(err), 2)
    if meta.declared_inputs:
        meta = replace(meta, declared_lines=_declaration_lines(meta.declared_inputs, front.header))
    return ParsedTemplate(
        path=path,
        display_path=display,
        format=fmt,
        text=read.text,
        body=front.body,
        body_line=front.body_line,
        meta=meta,
        text_problem=read.problem,
        text_problem_line=read.problem_line,
    )


def _broken(base: ParsedTemplate, problem: str, line: int) -> ParsedTemplate:
    return ParsedTemplate(
        path=base.path,
        display_path=base.display_path,
        format=base.format,
        text=base.text,
        body=base.text,
        body_line=1,
        meta=TemplateMeta(engine="none"),
        problem=problem,
        problem_line=line,
        text_problem=base.text_problem,
        text_problem_line=base.text_problem_line,
    )


class MetaError(ValueError):
    """Front matter parsed as YAML but holds a value of the wrong shape."""


def _positive_int(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MetaError(f"front matter {where} must be a whole number of tokens, not {value!r}")
    return value


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str | int | float):
        return str(value)
    return None


def jinja_meta(data: Mapping[str, Any]) -> TemplateMeta:
    """Jinja2/Markdown front matter: ``model``, ``max_output_tokens``, ``version``, ``sample``,
    ``inputs`` (a list of names or a mapping of name -> {sample, default, ...})."""
    samples = dict(_mapping(data.get("sample"), "sample"))
    declared = set(samples)
    inputs = data.get("inputs")
    declared |= _input_names_and_defaults(inputs, samples)
    return TemplateMeta(
        model=_text(data.get("model")),
        max_output_tokens=_positive_int(data.get("max_output_tokens"), "max_output_tokens"),
        version=_text(data.get("version")),
        samples=samples,
        declared_inputs=frozenset(declared) if ("inputs" in data or "sample" in data) else None,
        engine="jinja2",
        tools=_front_matter_tools(data.get("tools")),
        tool_names=_tool_names(data.get("tools")),
    )


def prompty_meta(data: Mapping[str, Any]) -> TemplateMeta:
    """Prompty v1 (``model.configuration``/``parameters``, ``sample``) and v2 (``model.id``,
    ``model.options``, ``inputs`` as a list with ``default``/``sample``)."""
    model_section = data.get("model")
    model: str | None = None
    max_output: int | None = None
    if isinstance(model_section, str):
        model = model_section
    elif isinstance(model_section, dict):
        model = _text(model_section.get("id"))
        # v1 ``configuration``; ``connection`` in prompty's older files and its own tests
        for section_name, keys in (
            ("configuration", ("model", "name", "azure_deployment", "deployment")),
            ("connection", ("model", "azure_deployment", "deployment")),  # its name: a connection
        ):
            configuration = model_section.get(section_name)
            if model is None and isinstance(configuration, dict):
                for key in keys:
                    if isinstance(configuration.get(key), str):
                        model = configuration[key]
                        break
        for section_name, keys in (
            ("parameters", ("max_tokens", "max_completion_tokens", "max_output_tokens")),
            ("options", ("maxOutputTokens", "maxTokens", "max_tokens")),
        ):
            section = model_section.get(section_name)
            if isinstance(section, dict):
                for key in keys:
                    if key in section:
                        max_output = _positive_int(section[key], f"model.{section_name}.{key}")
                        break
            if max_output is not None:
                break
    if model is not None and _is_placeholder(model):
        model = None

    sample_value = data.get("sample")
    inputs = data.get("inputs")
    sample_files: list[str] = []
    samples: dict[str, Any] = {}
    if isinstance(sample_value, str):
        # Prompty's spec: "object (inline) or string (filename)"; ${file:...} too.
        match = _FILE_REFERENCE.match(sample_value.strip())
        sample_files.append((match["path"] if match is not None else sample_value).strip())
    elif sample_value is not None:
        samples.update(_mapping(sample_value, "sample"))
    if isinstance(inputs, str):  # inputs: ${file:context.json}, the inputs and their values
        match = _FILE_REFERENCE.match(inputs.strip())
        if match is not None:
            sample_files.append(match["path"].strip())
    declared = set(samples) | _input_names_and_defaults(inputs, samples)
    return TemplateMeta(
        model=model,
        max_output_tokens=max_output,
        version=_text(data.get("version")),
        samples=samples,
        declared_inputs=frozenset(declared) if ("inputs" in data or "sample" in data) else None,
        engine=_prompty_engine(data.get("template")),
        sample_files=tuple(sample_files),
        tools=_front_matter_tools(data.get("tools")),
        tool_names=_tool_names(data.get("tools")),
    )


_TOP_LEVEL_KEY = re.compile(r"^[\"']?(?P<key>[A-Za-z_]+)[\"']?\s*:", re.MULTILINE)


def _prompt_data_format(text: str) -> TemplateFormat | None:
    """The format a YAML/JSON file that does not parse was meant to be, by its top-level
    keys: LangChain (``_type``), Semantic Kernel (``template_format``, ``input_variables``,
    ``execution_settings``, beside ``template``); None for any other data file."""
    keys = {match["key"] for match in _TOP_LEVEL_KEY.finditer(text)}
    if "template" not in keys:
        return None
    if "_type" in keys:
        return TemplateFormat.LANGCHAIN
    if keys & {"template_format", "input_variables", "execution_settings"}:
        return TemplateFormat.SEMANTIC_KERNEL
    return None


def _front_matter_tools(value: object) -> tuple[Tool, ...]:
    """Tool definitions in front matter (JSON Schema functions). A list of bare names (as
    Dotprompt writes them) names tools defined in code: nothing to count here."""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ()
    try:
        return parse_tools(value, "front matter tools")
    except ToolError as err:
        raise MetaError(str(err)) from err


def _tool_names(value: object) -> tuple[str, ...]:
    """A front matter ``tools:`` list of bare names (tools defined in code)."""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return ()


def _is_placeholder(model: str) -> bool:
    return model.startswith(("${", "<")) or not model.strip()


def _prompty_engine(template: object) -> str:
    kind: object = template
    if isinstance(template, dict):
        kind = template.get("format", template.get("type"))
        if isinstance(kind, dict):
            kind = kind.get("kind", kind.get("type"))
    if isinstance(kind, str) and kind.strip().lower() in {"mustache", "handlebars"}:
        return kind.strip().lower()
    return "jinja2"


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MetaError(f"front matter {where} must be a mapping of variable names to values")
    return {str(k): v for k, v in value.items()}


def _input_names_and_defaults(inputs: object, samples: dict[str, Any]) -> set[str]:
    """Names declared by ``inputs``; a ``sample`` or ``default`` fills ``samples`` if unset."""
    names: set[str] = set()
    entries: list[tuple[str, object]] = []
    if isinstance(inputs, dict):
        entries = [(str(name), spec) for name, spec in inputs.items()]
    elif isinstance(inputs, list):
        for item in inputs:
            if isinstance(item, str):
                entries.append((item, None))
            elif isinstance(item, dict) and isinstance(item.get("name"), str):
                entries.append((item["name"], item))
    for name, spec in entries:
        names.add(name)
        if isinstance(spec, dict) and name not in samples:
            for key in ("sample", "default"):
                if key in spec and spec[key] is not None:
                    samples[name] = spec[key]
                    break
    return names


# -- Dotprompt ---------------------------------------------------------------------------------

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


def _parse_dotprompt(base: ParsedTemplate) -> ParsedTemplate:
    try:
        document = split_dotprompt(base.text)
    except FrontMatterError as err:
        return _broken(base, str(err), err.line)
    if document is None:
        return replace(base, meta=TemplateMeta(engine="handlebars"))
    try:
        meta = dotprompt_meta(document.data)
    except MetaError as err:
        return _broken(base, str(err), document.header_line)
    if meta.declared_inputs:
        lines = _dotprompt_declaration_lines(
            meta.declared_inputs, document.header, document.header_line
        )
        meta = replace(meta, declared_lines=lines)
    return replace(base, body=document.body, body_line=document.body_line, meta=meta)


def dotprompt_meta(data: Mapping[str, Any]) -> TemplateMeta:
    """Dotprompt front matter: ``model``, ``config.maxOutputTokens``, ``version``,
    ``input.default`` (samples) and ``input.schema`` (Picoschema or JSON Schema: the inputs)."""
    model = _text(data.get("model"))
    if model is not None and _is_placeholder(model):
        model = None
    config = data.get("config")
    max_output = None
    if isinstance(config, dict):
        max_output = _positive_int(config.get("maxOutputTokens"), "config.maxOutputTokens")
    elif config is not None:
        raise MetaError("front matter config must be a mapping of model settings")
    section = data.get("input")
    if section is not None and not isinstance(section, dict):
        raise MetaError("front matter input must be a mapping with 'schema' and 'default'")
    section = section or {}
    samples = dict(_mapping(section.get("default"), "input.default"))
    names = _schema_inputs(section.get("schema"))
    declared: frozenset[str] | None = None
    if names is not None:
        declared = frozenset(names | set(samples))
    elif samples and "schema" not in section:
        declared = frozenset(samples)
    return TemplateMeta(
        model=model,
        max_output_tokens=max_output,
        version=_text(data.get("version")),
        samples=samples,
        declared_inputs=declared,
        engine="handlebars",
        tool_names=_tool_names(data.get("tools")),
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


# -- Semantic Kernel and LangChain ---------------------------------------------------------


def _parse_skprompt(base: ParsedTemplate, root: Path | None) -> ParsedTemplate:
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


def _parse_data_prompt(base: ParsedTemplate, root: Path | None) -> ParsedTemplate:
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
        fmt = _prompt_data_format(base.text)
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
        found.update(_declaration_lines(frozenset(missing), header))
    return found


def _promptfoo(base: ParsedTemplate, root: Path | None) -> ParsedTemplate:
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


def variants_of(parsed: ParsedTemplate) -> list[ParsedTemplate]:
    """One template per prompt of a multi-prompt file (else the template itself)."""
    if len(parsed.variants) <= 1:
        return [parsed]
    total = len(parsed.variants)
    return [
        replace(parsed, body=body, body_line=line, variants=(), variant=f"{index} of {total}")
        for index, (body, line) in enumerate(parsed.variants, start=1)
    ]
