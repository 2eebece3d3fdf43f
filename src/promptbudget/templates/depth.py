"""How deeply a template nests, found by one linear scan of its tags before any parser runs.

Jinja2's parser, its code generator, Python's compiler and promptbudget's own AST walks all
recurse: 3,000 nested ``{% if %}``, 20,000 chained filters or 3,000 parentheses end in a
``RecursionError``, an ``IndentationError`` ("too many levels of indentation", at 100 nested
blocks) or a ``SyntaxError`` ("too many nested parentheses", at 200), not in a finding. So a
template is measured first, and one nested beyond these limits is PB001 with its line and
is not parsed at all. The limits are far beyond any real prompt (they nest a few levels).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from promptbudget.scanning import LineIndex, NextFinder

MAX_BLOCK_NESTING = 64  # {% if %}/{% for %}/{{#each}} ... inside each other
MAX_BRACKET_NESTING = 40  # ( [ { inside one tag
MAX_OPERATORS_PER_TAG = 150  # filters, attribute steps, operators in one tag
# A number literal's characters (digits, hex digits, underscores): Jinja2's lexer and the
# Handlebars parser convert literals with int(), and Python refuses more than 4,300 decimal
# digits with a ValueError (a hex literal converts, then fails when shown) instead of a
# finding.
MAX_NUMBER_LENGTH = 1_000

_JINJA_BLOCKS = frozenset(
    {"if", "for", "macro", "call", "filter", "block", "with", "autoescape", "trans", "raw"}
)
_OPERATOR = re.compile(r"[|.~+\-*/%]|\b(?:and|or|not|if|else|is|in)\b")
_FIRST_WORD = re.compile(r"[-+]?\s*(\w+)")
_LONG_NUMBER = re.compile(rf"(?<!\w)\d\w{{{MAX_NUMBER_LENGTH},}}")

# One tag: (its opener, its content, the block depth before it) -> (depth after, problem).
_Step = Callable[[str, str, int], tuple[int, str | None]]


def nesting_problem(body: str, engine: str) -> tuple[str, int] | None:
    """(what is wrong, 1-based line in ``body``) when ``body`` nests beyond the limits;
    ``engine``: ``jinja2`` (also Prompty, Liquid) or ``handlebars`` (Dotprompt, Mustache)."""
    if engine == "handlebars":
        return _scan(body, (("{{", "}}"),), _handlebars_step)
    return _scan(body, (("{{", "}}"), ("{%", "%}"), ("{#", "#}")), _jinja_step)


def _scan(body: str, syntaxes: tuple[tuple[str, str], ...], step: _Step) -> tuple[str, int] | None:
    if not any(opener in body for opener, _ in syntaxes):
        return None
    closers = {opener: NextFinder(body, closer) for opener, closer in syntaxes}
    openers = re.compile("|".join(re.escape(opener) for opener, _ in syntaxes))
    index = LineIndex(body)
    depth = 0
    position = 0
    while (found := openers.search(body, position)) is not None:
        opener = found.group()
        end = closers[opener].find(found.end())
        # unclosed: the parser reads to the end of the text, recursing as it nests
        content = body[found.end() : end if end != -1 else len(body)]
        depth, problem = step(opener, content, depth)
        if problem is not None:
            return problem, index.line_of(found.start())
        if end == -1:
            return None
        position = end + 2
    return None


def _expression_problem(content: str) -> str | None:
    if len(content) < MAX_BRACKET_NESTING:
        return None
    if len(content) > MAX_NUMBER_LENGTH and (number := _LONG_NUMBER.search(content)):
        return (
            f"has a number literal of {len(number.group()):,} characters in one tag "
            f"(at most {MAX_NUMBER_LENGTH:,})"
        )
    depth = deepest = 0
    for char in re.sub(r"[^()\[\]{}]", "", content):
        depth = depth + 1 if char in "([{" else max(0, depth - 1)
        deepest = max(deepest, depth)
    if deepest > MAX_BRACKET_NESTING:
        return f"nests brackets {deepest} deep in one tag (at most {MAX_BRACKET_NESTING})"
    operators = len(_OPERATOR.findall(content))
    if operators > MAX_OPERATORS_PER_TAG:
        return (
            f"has {operators:,} filters and operators in one tag (at most {MAX_OPERATORS_PER_TAG})"
        )
    return None


def _jinja_step(opener: str, content: str, depth: int) -> tuple[int, str | None]:
    if opener == "{#":
        return depth, None
    if opener == "{%":
        word = _FIRST_WORD.match(content)
        name = word.group(1) if word else ""
        if name in _JINJA_BLOCKS or (name == "set" and "=" not in content):
            depth += 1
            if depth > MAX_BLOCK_NESTING:
                return depth, f"nests blocks more than {MAX_BLOCK_NESTING} deep"
        elif name.startswith("end"):
            depth = max(0, depth - 1)
    return depth, _expression_problem(content)


def _handlebars_step(opener: str, content: str, depth: int) -> tuple[int, str | None]:
    text = content.lstrip("{~ ")
    if text.startswith("!"):
        return depth, None
    if text.startswith(("#", "^")) and not text.startswith("#>"):
        depth += 1
        if depth > MAX_BLOCK_NESTING:
            return depth, f"nests blocks more than {MAX_BLOCK_NESTING} deep"
    elif text.startswith("/"):
        depth = max(0, depth - 1)
    return depth, _expression_problem(content)
