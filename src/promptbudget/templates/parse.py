"""Front matter and per-format metadata: model, output limit, version, samples, inputs.

A template is split into its YAML front matter (if any) and its body. What each format keeps
in its front matter is read into one ``TemplateMeta``, so the rest of the pipeline never needs
to know whether a value came from Prompty v1, Prompty v2 or a Jinja2 header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from promptbudget.bounded import load_yaml
from promptbudget.templates.depth import nesting_problem
from promptbudget.templates.formats import (
    parse_data_prompt,
    parse_dotprompt,
    parse_promptfoo,
    parse_skprompt,
)
from promptbudget.templates.meta import (
    FrontMatter,
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
    tool_names,
)
from promptbudget.templates.source import (
    PromptText,
    TemplateFormat,
    detect_format,
    read_prompt_text,
)
from promptbudget.tools import Tool, ToolError, parse_tools

_YAML_KEY_LINE = re.compile(r"^[A-Za-z_][\w.-]*\s*:")
_FILE_REFERENCE = re.compile(r"^\$\{file:(?P<path>[^}]+)\}$")


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
    ``promptfooconfig.yaml``) are looked for and read only inside it. A template nested
    beyond ``depth.py``'s limits is PB001 and is never handed to a recursive parser."""
    return _bound_nesting(_parse_with_engine(path, display, fmt, read, root, engine))


def parse_file(
    path: Path, display: str, *, root: Path | None, engine: str | None
) -> ParsedTemplate:
    """Read the template file ``path`` (with ``root``, only when its real path is inside it)
    and parse it (``parse_template``)."""
    read = read_prompt_text(path, root=root)
    return parse_template(path, display, detect_format(path), read, root=root, engine=engine)


def _bound_nesting(parsed: ParsedTemplate) -> ParsedTemplate:
    """PB001 for a template nested past ``depth.py``'s limits (with the line)."""
    if parsed.problem is not None or not parsed.is_readable:
        return parsed
    engine = parsed.meta.engine
    if parsed.format is TemplateFormat.DOTPROMPT or engine in {"handlebars", "mustache"}:
        found = nesting_problem(parsed.body, "handlebars")
    elif engine in {"jinja2", "liquid", "nunjucks"}:
        found = nesting_problem(parsed.body, "jinja2")
    else:
        return parsed
    if found is None:
        return parsed
    problem, line = found
    return broken_template(parsed, f"template {problem}", parsed.body_line + line - 1)


def _parse_with_engine(
    path: Path,
    display: str,
    fmt: TemplateFormat,
    read: PromptText,
    root: Path | None,
    engine: str | None,
) -> ParsedTemplate:
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
    return broken_template(
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
        return parse_data_prompt(base, root)
    if fmt is TemplateFormat.SEMANTIC_KERNEL:
        return parse_skprompt(base, root)
    if fmt is TemplateFormat.DOTPROMPT:
        return parse_dotprompt(base)
    try:
        front = split_front_matter(read.text, required=fmt is TemplateFormat.PROMPTY)
    except FrontMatterError as err:
        return broken_template(base, str(err), err.line)
    if front is None:
        return parse_promptfoo(base, root) if fmt is TemplateFormat.JINJA2 else base
    read_meta = prompty_meta if fmt is TemplateFormat.PROMPTY else jinja_meta
    try:
        meta = read_meta(front.data)
    except MetaError as err:
        return broken_template(base, str(err), 2)
    if meta.declared_inputs:
        meta = replace(meta, declared_lines=declaration_lines(meta.declared_inputs, front.header))
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


def jinja_meta(data: Mapping[str, Any]) -> TemplateMeta:
    """Jinja2/Markdown front matter: ``model``, ``max_output_tokens``, ``version``, ``sample``,
    ``inputs`` (a list of names or a mapping of name -> {sample, default, ...})."""
    samples = dict(as_mapping(data.get("sample"), "sample"))
    declared = set(samples)
    inputs = data.get("inputs")
    declared |= _input_names_and_defaults(inputs, samples)
    return TemplateMeta(
        model=optional_text(data.get("model")),
        max_output_tokens=positive_int(data.get("max_output_tokens"), "max_output_tokens"),
        version=optional_text(data.get("version")),
        samples=samples,
        declared_inputs=frozenset(declared) if ("inputs" in data or "sample" in data) else None,
        engine="jinja2",
        tools=_front_matter_tools(data.get("tools")),
        tool_names=tool_names(data.get("tools")),
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
        model = optional_text(model_section.get("id"))
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
                        max_output = positive_int(section[key], f"model.{section_name}.{key}")
                        break
            if max_output is not None:
                break
    if model is not None and is_placeholder_model(model):
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
        samples.update(as_mapping(sample_value, "sample"))
    if isinstance(inputs, str):  # inputs: ${file:context.json}, the inputs and their values
        match = _FILE_REFERENCE.match(inputs.strip())
        if match is not None:
            sample_files.append(match["path"].strip())
    declared = set(samples) | _input_names_and_defaults(inputs, samples)
    return TemplateMeta(
        model=model,
        max_output_tokens=max_output,
        version=optional_text(data.get("version")),
        samples=samples,
        declared_inputs=frozenset(declared) if ("inputs" in data or "sample" in data) else None,
        engine=_prompty_engine(data.get("template")),
        sample_files=tuple(sample_files),
        tools=_front_matter_tools(data.get("tools")),
        tool_names=tool_names(data.get("tools")),
    )


def _front_matter_tools(value: object) -> tuple[Tool, ...]:
    """Tool definitions in front matter (JSON Schema functions). A list of bare names (as
    Dotprompt writes them) names tools defined in code: nothing to count here."""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ()
    try:
        return parse_tools(value, "front matter tools")
    except ToolError as err:
        raise MetaError(str(err)) from err


def _prompty_engine(template: object) -> str:
    kind: object = template
    if isinstance(template, dict):
        kind = template.get("format", template.get("type"))
        if isinstance(kind, dict):
            kind = kind.get("kind", kind.get("type"))
    if isinstance(kind, str) and kind.strip().lower() in {"mustache", "handlebars"}:
        return kind.strip().lower()
    return "jinja2"


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


# -- Semantic Kernel and LangChain ---------------------------------------------------------


def variants_of(parsed: ParsedTemplate) -> list[ParsedTemplate]:
    """One template per prompt of a multi-prompt file (else the template itself)."""
    if len(parsed.variants) <= 1:
        return [parsed]
    total = len(parsed.variants)
    return [
        replace(parsed, body=body, body_line=line, variants=(), variant=f"{index} of {total}")
        for index, (body, line) in enumerate(parsed.variants, start=1)
    ]
