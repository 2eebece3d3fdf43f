"""Front matter and per-format metadata: model, output limit, version, samples, inputs.

A template is split into its YAML front matter (if any) and its body. What each format keeps
in its front matter is read into one ``TemplateMeta``, so the rest of the pipeline never needs
to know whether a value came from Prompty v1, Prompty v2 or a Jinja2 header.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from promptbudget.templates.source import PromptText, TemplateFormat

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
    engine: str = "jinja2"  # "jinja2", "mustache", "handlebars" or "none"
    sample_file: str | None = None  # Prompty ``sample: ${file:...}``, relative to the template
    declared_lines: Mapping[str, int] = field(default_factory=dict)  # input -> file line


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
        data = yaml.safe_load("\n".join(header)) if any(s.strip() for s in header) else {}
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


def parse_template(
    path: Path, display: str, fmt: TemplateFormat, read: PromptText
) -> ParsedTemplate:
    """Split and interpret ``read`` according to ``fmt``. Never raises for content problems."""
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
    if not read.is_readable or fmt is TemplateFormat.TEXT:
        return base
    try:
        front = split_front_matter(read.text, required=fmt is TemplateFormat.PROMPTY)
    except FrontMatterError as err:
        return _broken(base, str(err), err.line)
    if front is None:
        return base
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
        configuration = model_section.get("configuration")
        if model is None and isinstance(configuration, dict):
            for key in ("model", "name", "azure_deployment", "deployment"):
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
    sample_file = None
    samples: dict[str, Any] = {}
    if isinstance(sample_value, str):
        match = _FILE_REFERENCE.match(sample_value.strip())
        if match is None:
            raise MetaError(
                f"front matter sample must be a mapping or ${{file:...}}, not {sample_value!r}"
            )
        sample_file = match["path"].strip()
    elif sample_value is not None:
        samples.update(_mapping(sample_value, "sample"))
    declared = set(samples) | _input_names_and_defaults(data.get("inputs"), samples)
    return TemplateMeta(
        model=model,
        max_output_tokens=max_output,
        version=_text(data.get("version")),
        samples=samples,
        declared_inputs=frozenset(declared) if ("inputs" in data or "sample" in data) else None,
        engine=_prompty_engine(data.get("template")),
        sample_file=sample_file,
    )


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
