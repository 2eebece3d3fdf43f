"""``promptbudget init``: a manifest and an example prompt that pass ``check`` as written; in
a project that already has prompts, a manifest with one commented workflow stub per
template found (and no example file)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path, PurePosixPath

from promptbudget.errors import UsageError
from promptbudget.fileio import Expect, replace_file
from promptbudget.templates.source import iter_prompt_files

SCAFFOLD_FILES = ("budgets.yaml", "prompts/summarize.j2")
MAX_STUBS = 200  # a stub per template, up to this many (the rest are counted, not listed)

HEADER = """\
# promptbudget manifest: budgets for the LLM workflows in this repository.
# Reference: https://github.com/promptbudget/promptbudget#budgetsyaml-reference
version: 1
prompts: prompts/            # templates live here; step prompt paths are relative to it

defaults:
  model: gpt-4.1-mini        # the model your application calls; see `promptbudget models`

# A workflow is one request your application serves: the model calls it makes, how often.
# Below is a stub for each template found in prompts/. Uncomment the `workflows:` line and
# the workflows you run, set their traffic and output_tokens, then run `promptbudget
# baseline` to write their limits at today's values plus 25% headroom.
#
# workflows:
"""


@dataclass(frozen=True)
class Scaffold:
    written: tuple[Path, ...]
    templates: int = 0  # templates already in prompts/ (a stub each); 0: the example scaffold


def write_scaffold(directory: Path, *, force: bool = False) -> Scaffold:
    """Write the scaffold into ``directory``; refuse to overwrite unless ``force``."""
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} is not a directory")
    prompts = directory / "prompts"
    found = sorted(iter_prompt_files([prompts])) if prompts.is_dir() else []
    names = SCAFFOLD_FILES[:1] if found else SCAFFOLD_FILES
    targets = [directory / name for name in names]
    existing = [t for t in targets if t.exists()]
    if existing and not force:
        shown = ", ".join(str(t) for t in existing)
        raise UsageError(f"{shown} already exists; use --force to overwrite")
    package = resources.files(__package__).joinpath("scaffold")
    for name, target in zip(names, targets, strict=True):
        if found:
            content = stub_manifest([p.relative_to(prompts).as_posix() for p in found])
        else:
            content = package.joinpath(name).read_text(encoding="utf-8")
        target.parent.mkdir(parents=True, exist_ok=True)
        replace_file(
            target,
            content.encode("utf-8"),
            expected=Expect.ANY if force else None,  # a file made meanwhile is kept
            shown=str(target),
            activity="init ran",
        )
    return Scaffold(tuple(targets), len(found))


def stub_manifest(templates: list[str]) -> str:
    """The manifest for a project with ``templates`` (paths relative to prompts/): the header
    and one commented workflow per template, named after its file."""
    lines = [HEADER]
    used: set[str] = set()
    for prompt in templates[:MAX_STUBS]:
        name = _workflow_name(prompt, used)
        used.add(name)
        lines.append(
            f"#   {name}:\n"
            "#     traffic: {requests_per_day: 1000}   # how often it runs\n"
            "#     steps:\n"
            f"#       - prompt: {_yaml_text(prompt)}\n"
            "#         output_tokens: 200              # the expected reply, per call\n"
        )
    if len(templates) > MAX_STUBS:
        lines.append(f"#   ... and {len(templates) - MAX_STUBS} more templates in prompts/\n")
    return "".join(lines)


def _workflow_name(prompt: str, used: set[str]) -> str:
    """``support/answer.j2`` -> ``answer`` (``support-answer`` if taken): a valid name."""
    path = PurePosixPath(prompt)
    stem = path.name.split(".", 1)[0]
    for candidate in (stem, "-".join((*path.parent.parts, stem))):
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", candidate).strip("-.") or "workflow"
        if name not in used:
            return name
    number = 2
    while f"{name}-{number}" in used:
        number += 1
    return f"{name}-{number}"


def _yaml_text(value: str) -> str:
    """A path as a YAML scalar: plain when safe, else double-quoted (JSON escapes)."""
    if re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_./-]*", value):
        return value
    return json.dumps(value)
