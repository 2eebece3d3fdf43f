"""What a template says about itself: its metadata (model, output limit, samples, inputs,
tools) and the parsed template; the helpers every format's front matter parser shares."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from promptbudget.templates.source import TemplateFormat
from promptbudget.tools import Tool


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


def declaration_lines(names: frozenset[str], header: tuple[str, ...]) -> dict[str, int]:
    """The front matter line where each input is first named (file lines; header starts on 2)."""
    found: dict[str, int] = {}
    for name in names:
        pattern = re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])")
        for index, line in enumerate(header):
            if pattern.search(line):
                found[name] = index + 2
                break
    return found


def broken_template(base: ParsedTemplate, problem: str, line: int) -> ParsedTemplate:
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


def positive_int(value: object, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MetaError(f"front matter {where} must be a whole number of tokens, not {value!r}")
    return value


def optional_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str | int | float):
        return str(value)
    return None


_TOP_LEVEL_KEY = re.compile(r"^[\"']?(?P<key>[A-Za-z_]+)[\"']?\s*:", re.MULTILINE)


def prompt_data_format(text: str) -> TemplateFormat | None:
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


def tool_names(value: object) -> tuple[str, ...]:
    """A front matter ``tools:`` list of bare names (tools defined in code)."""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    return ()


def is_placeholder_model(model: str) -> bool:
    return model.startswith(("${", "<")) or not model.strip()


def as_mapping(value: object, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MetaError(f"front matter {where} must be a mapping of variable names to values")
    return {str(k): v for k, v in value.items()}
