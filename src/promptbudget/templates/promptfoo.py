"""promptfoo prompt files: several prompts in one file, and the config that names them.

A prompt file that a ``promptfooconfig.yaml`` (in its directory or a parent) refers to with
``file://`` is a promptfoo prompt: Nunjucks (rendered as Jinja2; custom ``nunjucksFilters`` are
the application's and pass their value through), several prompts separated by lines holding
only ``---``, and the config's test variables as samples (``defaultTest.vars``, then the first
test's ``vars``).
"""

from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from promptbudget.bounded import load_yaml
from promptbudget.confine import ConfinementError, is_regular_file, read_confined
from promptbudget.pathnames import real
from promptbudget.runmemo import content_hash, note_digest

CONFIG_NAMES = ("promptfooconfig.yaml", "promptfooconfig.yml", "promptfooconfig.json")
MAX_CONFIG_BYTES = 1024 * 1024
_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)


@dataclass(frozen=True)
class PromptfooConfig:
    path: Path
    prompt_files: tuple[str, ...]  # prompts: file:// entries (globs allowed), split on '---'
    content_files: tuple[str, ...]  # files that are one message's content (not split)
    samples: dict[str, Any] = field(default_factory=dict)

    def _names(self, references: tuple[str, ...], prompt: Path) -> bool:
        base = self.path.parent.resolve()
        target = prompt.resolve().as_posix()
        return any(
            fnmatch.fnmatchcase(target, Path(os.path.normpath(base / reference)).as_posix())
            for reference in references
        )

    def refers_to(self, prompt: Path) -> bool:
        """Whether a ``file://`` reference (a path or a glob) names ``prompt``."""
        return self.is_prompt_file(prompt) or self._names(self.content_files, prompt)

    def is_prompt_file(self, prompt: Path) -> bool:
        """A prompt file (``prompts: [file://...]``): several prompts split on '---'."""
        return self._names(self.prompt_files, prompt)


# (path, mtime, size) -> the config, and the real path and sha256 of the bytes it was read from
_CACHE: dict[tuple[Path, int, int], tuple[PromptfooConfig | None, tuple[str, str] | None]] = {}


def find_config(
    prompt: Path, levels: int = 3, *, root: Path | None = None
) -> PromptfooConfig | None:
    """The promptfoo config that refers to ``prompt``: in its directory or up to ``levels``
    parents, never above ``root`` (the project root), and only a regular file inside it (a
    symlink out of the project is not read). ``None``: a file the user named outside any
    project."""
    directory = real(prompt).parent
    limit = real(root) if root is not None else None
    if limit is not None and not directory.is_relative_to(limit):
        return None
    for _ in range(levels + 1):
        for name in CONFIG_NAMES:
            candidate = directory / name
            if is_regular_file(candidate, limit or directory):
                config = _load(candidate)
                if config is not None and config.refers_to(prompt):
                    return config
        if directory == limit or directory.parent == directory:
            break
        directory = directory.parent
    return None


def _load(path: Path) -> PromptfooConfig | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (path, stat.st_mtime_ns, stat.st_size)
    known = _CACHE.get(key)
    if known is not None:
        config, read = known
        if read is not None:  # a recorded run (runmemo.py): it used these bytes again
            note_digest(read[0], read[1], stat)
        return config
    config, read = None, None
    if stat.st_size <= MAX_CONFIG_BYTES:
        try:
            raw = read_confined(path, root=path.parent, limit=MAX_CONFIG_BYTES)
            read = (os.fspath(path.resolve()), content_hash(raw))
            data = load_yaml(raw.decode("utf-8-sig"))
        except (ConfinementError, UnicodeDecodeError, yaml.YAMLError):
            data = None
        if isinstance(data, dict):
            prompts, contents = _file_references(data.get("prompts"))
            config = PromptfooConfig(path, tuple(prompts), tuple(contents), _samples(data))
    _CACHE[key] = (config, read)
    return config


def _file_references(prompts: object) -> tuple[list[str], list[str]]:
    """(prompt files, content files): ``prompts:`` entries that are files (a string, or an
    ``id``/``file`` key), and files named deeper (a message's ``content``)."""
    direct: list[str] = []
    nested: list[str] = []

    def reference(value: object) -> str | None:
        if isinstance(value, str) and value.startswith("file://"):
            return value[len("file://") :].split(":", 1)[0]
        return None

    def visit(value: object) -> None:
        found = reference(value)
        if found is not None:
            nested.append(found)
        elif isinstance(value, dict):
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)

    for entry in prompts if isinstance(prompts, list) else [prompts]:
        found = reference(entry)
        if found is None and isinstance(entry, dict):
            found = reference(entry.get("id")) or reference(entry.get("file"))
            if found is None:
                visit(entry)
        if found is not None:
            direct.append(found)
    return direct, nested


def _samples(data: dict[str, Any]) -> dict[str, Any]:
    samples: dict[str, Any] = {}
    sources = [data.get("defaultTest")]
    tests = data.get("tests")
    if isinstance(tests, list) and tests:
        sources.append(tests[0])
    for source in sources:
        if isinstance(source, dict) and isinstance(source.get("vars"), dict):
            for name, value in source["vars"].items():
                if isinstance(value, str | int | float) and not (
                    isinstance(value, str) and value.startswith("file://")
                ):
                    samples.setdefault(str(name), value)
    return samples


def split_prompts(body: str, first_line: int) -> list[tuple[str, int]]:
    """The prompts of a file, each with the file line it starts on. promptfoo splits on
    lines holding only ``---`` and trims each prompt (``String.trim``)."""
    prompts: list[tuple[str, int]] = []
    position = 0
    bounds = [(m.start(), m.end()) for m in _SEPARATOR.finditer(body)] + [(len(body), len(body))]
    for start, end in bounds:
        text = body[position:start]
        stripped = text.strip()
        if stripped:
            offset = position + text.index(stripped)
            prompts.append((stripped, first_line + body.count("\n", 0, offset)))
        position = end
    return prompts


def relative_label(index: int, total: int) -> str:
    return f"{index} of {total}"


__all__ = ["CONFIG_NAMES", "PromptfooConfig", "find_config", "relative_label", "split_prompts"]
