"""Suppressions: findings a team has decided to accept, and saying so where they live.

In a template, in the format's own comment syntax (Jinja2 ``{# #}``, Handlebars ``{{! }}`` and
``{{!-- --}}``, HTML ``<!-- -->``, or a ``#`` comment in YAML front matter)::

    {# promptbudget: disable=PB203 #}                 the whole file
    {# promptbudget: disable-next-line=PB201 #}       the line after the comment
    {{ context }} {# promptbudget: disable-line=PB201,unbounded-variable #}

The same ``# promptbudget: ...`` comments work in budgets.yaml, for findings that point into
it. ``per_file_ignores`` in the manifest ignores rules on paths matching a glob. A
suppression (or one code of it) that silences nothing, or that names no rule, is reported as
PB002, so that stale suppressions do not pile up.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from promptbudget.findings import Finding

Scope = Literal["file", "line", "next-line", "path"]

_DIRECTIVE = re.compile(
    r"promptbudget:\s*(?P<kind>disable-next-line|disable-line|disable)\b\s*(?:=\s*"
    r"(?P<codes>[A-Za-z0-9_-]+(?:\s*,\s*[A-Za-z0-9_-]+)*))?"
)
_JINJA_COMMENT = re.compile(r"\{#(.*?)#\}", re.DOTALL)
_HANDLEBARS_COMMENT = re.compile(r"\{\{!--(.*?)--\}\}|\{\{!(.*?)\}\}", re.DOTALL)
_HTML_COMMENT = re.compile(r"<!--(.*?)-->", re.DOTALL)
_GO_COMMENT = re.compile(r"\{\{-?\s*/\*(.*?)\*/\s*-?\}\}", re.DOTALL)
_LINE_COMMENT = re.compile(r"(?:^|\s)#(?P<text>.*)$")


@dataclass(frozen=True)
class Suppression:
    """One suppression: where it is written, what it covers and the rules it names."""

    path: str  # the file it is written in (display path)
    line: int | None  # where it is written
    scope: Scope
    names: tuple[str, ...]  # as written: codes or slugs
    codes: tuple[str | None, ...]  # each name resolved to a rule code; None: no such rule
    target_line: int | None = None  # line scopes: the line it covers
    pattern: str | None = None  # path scope: the glob

    def covers(self, finding: Finding) -> bool:
        """Whether this suppression is about ``finding``'s place (its codes aside)."""
        if finding.path is None:
            return False
        match self.scope:
            case "path":
                return self.pattern is not None and glob_matches(self.pattern, finding.path)
            case "file":
                return finding.path == self.path
            case "line" | "next-line":
                return finding.path == self.path and finding.line == self.target_line


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _comments(text: str, syntaxes: Iterable[re.Pattern[str]]) -> Iterator[tuple[str, int, int]]:
    """(comment text, first line, last line) of every comment of the given syntaxes."""
    for syntax in syntaxes:
        for match in syntax.finditer(text):
            body = next((g for g in match.groups() if g is not None), "")
            yield body, _line_of(text, match.start()), _line_of(text, match.end() - 1)


def _line_comments(text: str, last_line: int | None) -> Iterator[tuple[str, int, int]]:
    """``#`` comments of YAML lines (up to ``last_line``; None: every line)."""
    for number, line in enumerate(text.split("\n"), start=1):
        if last_line is not None and number > last_line:
            break
        match = _LINE_COMMENT.search(line)
        if match:
            yield match.group("text"), number, number


def scan(
    text: str,
    path: str,
    *,
    engine: str,
    yaml_lines: int | None,
    resolve: Callable[[str], str | None],
) -> list[Suppression]:
    """The suppressions written in a file.

    ``engine``: the template engine whose comments count (``jinja2``, ``handlebars``,
    ``mustache``, ``none``; ``yaml`` for budgets.yaml). ``yaml_lines``: how many leading lines
    are YAML (front matter) whose ``#`` comments count; None with ``engine="yaml"``: all.
    ``resolve`` maps a code or slug to a rule code (None: no such rule).
    """
    found: list[tuple[str, int, int]] = []
    if engine == "yaml":
        found.extend(_line_comments(text, None))
    else:
        syntaxes = [_HTML_COMMENT]
        if engine == "jinja2":
            syntaxes.append(_JINJA_COMMENT)
        elif engine in {"handlebars", "mustache"}:
            syntaxes.append(_HANDLEBARS_COMMENT)
        elif engine == "go-template":
            syntaxes.append(_GO_COMMENT)
        found.extend(_comments(text, syntaxes))
        if yaml_lines:
            found.extend(_line_comments(text, yaml_lines))
    suppressions = []
    for body, first, last in sorted(found, key=lambda item: (item[1], item[2])):
        for match in _DIRECTIVE.finditer(body):
            names = tuple(
                name.strip() for name in (match.group("codes") or "").split(",") if name.strip()
            )
            kind = match.group("kind")
            scope: Scope = (
                "file" if kind == "disable" else "line" if kind == "disable-line" else "next-line"
            )
            target = None if scope == "file" else (first if scope == "line" else last + 1)
            suppressions.append(
                Suppression(
                    path=path,
                    line=first,
                    scope=scope,
                    names=names,
                    codes=tuple(resolve(name) for name in names),
                    target_line=target,
                )
            )
    return suppressions


def glob_matches(pattern: str, path: str) -> bool:
    """gitignore-style globs on ``/`` paths: ``*`` within a directory, ``**`` across them,
    ``?`` one character; a pattern ending in ``/`` (or naming a directory) covers what is
    under it."""
    return _glob_regex(pattern).fullmatch(path) is not None


_GLOB_CACHE: dict[str, re.Pattern[str]] = {}


def _glob_regex(pattern: str) -> re.Pattern[str]:
    cached = _GLOB_CACHE.get(pattern)
    if cached is not None:
        return cached
    text = pattern.strip()
    text = text[2:] if text.startswith("./") else text.removeprefix("/")
    if text.endswith("/"):
        text += "**"
    out = []
    index = 0
    while index < len(text):
        if text.startswith("**/", index):
            out.append("(?:.*/)?")
            index += 3
        elif text.startswith("**", index):
            out.append(".*")
            index += 2
        elif text[index] == "*":
            out.append("[^/]*")
            index += 1
        elif text[index] == "?":
            out.append("[^/]")
            index += 1
        else:
            out.append(re.escape(text[index]))
            index += 1
    compiled = re.compile("".join(out) + "(?:/.*)?")
    _GLOB_CACHE[pattern] = compiled
    return compiled


@dataclass(frozen=True)
class Outcome:
    kept: tuple[Finding, ...]
    unused: tuple[tuple[Suppression, str], ...]  # (suppression, name) that silenced nothing
    unknown: tuple[tuple[Suppression, str], ...]  # (suppression, name) that is no rule
    empty: tuple[Suppression, ...]  # names no rule at all


def apply(findings: Iterable[Finding], suppressions: Iterable[Suppression]) -> Outcome:
    """Drop the findings a suppression covers; say which suppressions did nothing."""
    active = list(suppressions)
    used: set[tuple[int, str]] = set()
    kept = []
    for finding in findings:
        hit = False
        for index, suppression in enumerate(active):
            if finding.rule in suppression.codes and suppression.covers(finding):
                used.add((index, finding.rule))
                hit = True
        if not hit:
            kept.append(finding)
    unused = []
    unknown = []
    empty = []
    for index, suppression in enumerate(active):
        if not suppression.names:
            empty.append(suppression)
        for name, code in zip(suppression.names, suppression.codes, strict=True):
            if code is None:
                unknown.append((suppression, name))
            elif (index, code) not in used:
                unused.append((suppression, name))
    return Outcome(tuple(kept), tuple(unused), tuple(unknown), tuple(empty))
