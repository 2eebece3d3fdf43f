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
from promptbudget.scanning import LineIndex, NextFinder, RegexFinder, iter_delimited

Scope = Literal["file", "line", "next-line", "path"]

_DIRECTIVE = re.compile(
    r"promptbudget:\s*(?P<kind>disable-next-line|disable-line|disable)\b\s*(?:=\s*"
    r"(?P<codes>[A-Za-z0-9_-]+(?:\s*,\s*[A-Za-z0-9_-]+)*))?"
)
# Comment syntaxes, scanned in linear time (``scanning.py``; a lazy regex is quadratic on a
# file of unclosed openers).
_JINJA_COMMENT = ("{#", "#}")
_HTML_COMMENT = ("<!--", "-->")
_HANDLEBARS_COMMENT = ("{{!", "}}")  # {{!-- ... --}} first, as Handlebars reads it
# Go text/template comments: ``{{/* ... */}}`` with optional trim markers.
_GO_COMMENT = (re.compile(r"\{\{-?\s*/\*"), re.compile(r"\*/\s*-?\}\}"))
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


_Syntax = tuple[str, str] | tuple[re.Pattern[str], re.Pattern[str]]


def _comments(text: str, syntaxes: Iterable[_Syntax]) -> Iterator[tuple[str, int, int]]:
    """(comment text, first line, last line) of every comment of the given syntaxes."""
    index = LineIndex(text)
    for opener, closer in syntaxes:
        spans: Iterable[tuple[int, int, int, int]]
        if isinstance(opener, re.Pattern) and isinstance(closer, re.Pattern):
            spans = _regex_comments(text, opener, closer)
        elif (opener, closer) == _HANDLEBARS_COMMENT:
            spans = _handlebars_comments(text)
        else:
            assert isinstance(opener, str) and isinstance(closer, str)
            spans = (
                (start, body, end, end + len(closer))
                for start, body, end in iter_delimited(text, opener, closer)
            )
        for start, body, end, after in spans:
            yield text[body:end], index.line_of(start), index.line_of(after - 1)


def _regex_comments(
    text: str, opener: re.Pattern[str], closer: re.Pattern[str]
) -> Iterator[tuple[int, int, int, int]]:
    """``opener (.*?) closer`` spans with patterns as delimiters, the closer search cached so
    unclosed openers cost one scan, not one each."""
    closers = RegexFinder(text, closer)
    position = 0
    while (found := opener.search(text, position)) is not None:
        close = closers.search(found.end())
        if close is None:
            return
        yield found.start(), found.end(), close.start(), close.end()
        position = close.end()


def _handlebars_comments(text: str) -> Iterator[tuple[int, int, int, int]]:
    """``{{!-- ... --}}`` (may hold ``}}``), else ``{{! ... }}``: (start, body, end, after)."""
    long_close = NextFinder(text, "--}}")
    short_close = NextFinder(text, "}}")
    position = 0
    while (found := text.find("{{!", position)) != -1:
        if text.startswith("{{!--", found):
            end = long_close.find(found + 5)
            if end != -1:
                yield found, found + 5, end, end + 4
                position = end + 4
                continue
        end = short_close.find(found + 3)
        if end == -1:
            return
        yield found, found + 3, end, end + 2
        position = end + 2


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
        syntaxes: list[_Syntax] = [_HTML_COMMENT]
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
