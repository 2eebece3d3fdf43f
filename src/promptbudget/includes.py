"""Where a template's tokens come from through its includes. ``diff``: which included file
made a template grow between two checkouts (the include chain to the first changed file it
includes, and that file's first changed line, not the includer's line 1). ``check``: a
template over its size limit names its largest include and the chain to it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from promptbudget.cache import read_regular_file
from promptbudget.diffing import DiffResult, TemplateDiff
from promptbudget.errors import TokenizerUnavailableError
from promptbudget.findings import Finding
from promptbudget.pricing.resolve import DEFAULT_TOKENIZER, resolve_model
from promptbudget.project import Project
from promptbudget.report import Report
from promptbudget.templates.source import display_path
from promptbudget.tokenizers import Tokenizer, get_tokenizer
from promptbudget.units import format_tokens

MAX_INCLUDE_BYTES = 4 * 1024 * 1024


def locate_include_growth(
    project: Project, head: Report, result: DiffResult, base_root: Path
) -> DiffResult:
    """``result`` with each changed template whose own file is the same at the base, but
    which includes (directly or not) a file that changed, marked with the include chain and
    the changed file's first changed line."""
    paths = {t.label: t.path for t in head.templates}
    marked = []
    for template in result.templates:
        path = paths.get(template.path)
        if template.status != "changed" or path is None:
            marked.append(template)
            continue
        head_file = project.root / path
        if _read(head_file) != _read(base_root / path):
            marked.append(template)  # the template itself changed: its own line says so
            continue
        found = _changed_include(project, head_file, base_root)
        marked.append(_marked(template, found) if found else template)
    return replace(result, templates=tuple(marked))


def _marked(template: TemplateDiff, found: tuple[tuple[str, ...], int]) -> TemplateDiff:
    chain, line = found
    return replace(template, via=chain, line=line)


def _changed_include(
    project: Project, start: Path, base_root: Path
) -> tuple[tuple[str, ...], int] | None:
    """(chain of display paths from ``start`` to the first changed include, its first
    changed line), depth first in include order; None when no included file changed."""
    root = project.root.resolve()
    for include, step in _includes(project, start):
        head = _read(include)
        base = _read(base_root / include.resolve().relative_to(root))
        if head != base:
            return step, _first_changed_line(base, head)
    return None


def _includes(project: Project, start: Path) -> Iterator[tuple[Path, tuple[str, ...]]]:
    """Every file ``start`` includes, directly or not, inside the project, once each, depth
    first in include order: (the file, the chain of display paths from ``start`` to it)."""
    root = project.root.resolve()
    stack: list[tuple[Path, tuple[str, ...]]] = [(start, (display_path(start, project.root),))]
    seen: set[Path] = {start.resolve()}
    while stack:
        current, chain = stack.pop()
        parsed = project.load(current, confine_to=project.root)
        for include in reversed(project.renderer.includes_of(parsed)):
            resolved = include.resolve()
            if resolved in seen or not resolved.is_relative_to(root):
                continue
            seen.add(resolved)
            step = (*chain, display_path(include, project.root))
            yield include, step
            stack.append((include, step))


def _read(path: Path) -> bytes | None:
    return read_regular_file(path, MAX_INCLUDE_BYTES)


def _first_changed_line(base: bytes | None, head: bytes | None) -> int:
    old = (base or b"").splitlines()
    new = (head or b"").splitlines()
    for number, (a, b) in enumerate(zip(old, new, strict=False), start=1):
        if a != b:
            return number
    return max(1, min(len(old) + 1, len(new)))  # lines added (or removed) at the end


# -- check: where a template's tokens come from ---------------------------------------------

# Findings about a template's own size: the include that weighs most is named.
SIZE_RULES = frozenset({"PB101", "PB111"})


def largest_include(
    project: Project, start: Path, count: Callable[[str], int]
) -> tuple[tuple[str, ...], int] | None:
    """(include chain of display paths from ``start``, tokens) of the file ``start``
    includes, directly or not, whose own text has the most tokens (the first such file in
    include order on a tie); None when it includes nothing."""
    best: tuple[tuple[str, ...], int] | None = None
    for include, step in _includes(project, start):
        tokens = count((_read(include) or b"").decode("utf-8", "replace"))
        if best is None or tokens > best[1] or (tokens == best[1] and step < best[0]):
            best = (step, tokens)
    return best


def name_largest_includes(project: Project, findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """``findings`` with each template-size finding (PB101, PB111) on a template that
    includes others naming its largest include, so the tokens can be traced to a file. The
    include's tokens are counted with the template's own model (front matter, else
    ``defaults.model``), whichever templates ``check PATH`` evaluated."""
    found: dict[str, tuple[tuple[str, ...], int] | None] = {}
    out = []
    for finding in findings:
        if finding.rule not in SIZE_RULES or not finding.path:
            out.append(finding)
            continue
        if finding.path not in found:
            found[finding.path] = _largest_include_of(project, finding.path)
        largest = found[finding.path]
        if largest is None:
            out.append(finding)
            continue
        chain, tokens = largest
        out.append(
            replace(
                finding,
                message=f"{finding.message}; largest include: {' → '.join(chain)} "
                f"({format_tokens(tokens)} tokens)",
                message_paths=tuple(dict.fromkeys((*finding.message_paths, *chain))),
            )
        )
    return tuple(out)


def _largest_include_of(project: Project, shown: str) -> tuple[tuple[str, ...], int] | None:
    path = project.root / shown
    if not path.is_file() or not path.resolve().is_relative_to(project.root.resolve()):
        return None
    parsed = project.load(path, confine_to=project.root)
    default = project.manifest.default_model if project.manifest else None
    choice = resolve_model(parsed.meta.model or default, project.catalog)
    return largest_include(project, path, _tokenizer(choice.tokenizer).count)


def _tokenizer(name: str) -> Tokenizer:
    try:
        return get_tokenizer(name)
    except TokenizerUnavailableError:
        return get_tokenizer(DEFAULT_TOKENIZER)
