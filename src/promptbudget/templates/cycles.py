"""Templates that extend, include or import themselves, directly or through others.

``{% extends "a.j2" %}`` in ``a.j2`` (or A extends B extends A, or an include cycle) renders
forever or until Python's recursion limit; the render deadline would stop it after 5 s. It is
refused before rendering instead, as a finding that names the chain. Only literal names are
followed (a name computed at render time is the deadline's business); each file is parsed
once, and at most ``MAX_FILES`` files are looked at.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from jinja2 import Environment, TemplateSyntaxError, nodes
from jinja2.exceptions import TemplateError

MAX_FILES = 256

_KINDS: dict[type[nodes.Node], str] = {
    nodes.Extends: "extends",
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "import",
}


@dataclass(frozen=True)
class Cycle:
    """``chain``: the files, first and last the same; ``line``: the tag in the first file that
    starts it; ``kind``: that tag (extends, include or import)."""

    chain: tuple[str, ...]
    line: int
    kind: str

    def describe(self) -> str:
        return (
            f"{{% {self.kind} %}} cycle: {' -> '.join(self.chain)} "
            "(a template that extends, includes or imports itself never finishes rendering)"
        )


def _references(ast: nodes.Template) -> list[tuple[str, int, str]]:
    """The literal names ``ast`` extends, includes or imports: (name, line, kind)."""
    found: list[tuple[str, int, str]] = []
    for node in ast.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        target = node.template  # type: ignore[attr-defined]
        values = target.items if isinstance(target, nodes.Tuple | nodes.List) else [target]
        found.extend(
            (value.value, node.lineno, _KINDS[type(node)])
            for value in values
            if isinstance(value, nodes.Const) and isinstance(value.value, str)
        )
    return found


def find_cycle(env: Environment, ast: nodes.Template, path: Path, display: str) -> Cycle | None:
    """The first cycle of extends/include/import reachable from the template ``ast`` (the
    file ``path``, shown as ``display``), following literal names through ``env``'s loader."""
    start = str(path.resolve())
    start_dir = path.resolve().parent
    names = {start: display}
    parsed: dict[str, list[tuple[str, int, str]]] = {start: _references(ast)}
    loader = env.loader
    if loader is None:
        return None

    def references(filename: str) -> list[tuple[str, int, str]]:
        return parsed.get(filename, [])

    def load(name: str) -> str | None:
        """The file ``name`` resolves to (parsed and remembered), or None."""
        if len(parsed) >= MAX_FILES:
            return None
        try:
            source, filename, _ = loader.get_source(env, name)
        except TemplateError:
            return None
        if filename is None:
            return None
        if filename not in parsed:
            try:
                parsed[filename] = _references(env.parse(source))
            except (TemplateSyntaxError, RecursionError):
                parsed[filename] = []
        if filename not in names:  # shown the way the template's own path is shown
            relative = os.path.relpath(filename, start=start_dir)
            names[filename] = str(PurePosixPath(display).parent / Path(relative).as_posix())
        return filename

    # Depth-first, iteratively: the stack holds (file, its references still to follow).
    on_path: list[str] = [start]
    first_hop = (1, "include")
    stack = [iter(references(start))]
    done: set[str] = set()
    while stack:
        step = next(stack[-1], None)
        if step is None:
            stack.pop()
            done.add(on_path.pop())
            continue
        name, line, kind = step
        target = load(name)
        if target is None or target in done:
            continue
        if len(on_path) == 1:
            first_hop = (line, kind)  # the tag in the template itself that leads here
        if target in on_path:
            chain = (*(names[f] for f in on_path), names[target])
            return Cycle(chain, *first_hop)
        on_path.append(target)
        stack.append(iter(references(target)))
    return None
