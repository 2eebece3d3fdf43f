"""A small Handlebars engine for prompt templates: Dotprompt, sandboxed and bounded.

Dotprompt (``.prompt``) renders its body with Handlebars.js, compiled with ``noEscape: true``
(nothing is HTML-escaped) and ``knownHelpersOnly: true`` (a helper that is not registered is a
compile error). This module implements the subset those templates use, with Handlebars'
exact whitespace rules, because token counts depend on every newline:

* ``{{path}}``, ``{{{path}}}``, ``{{& path}}``; paths ``a.b``, ``a/b``, ``this``, ``.``,
  ``../x``, ``[odd key]``, data ``@index @key @first @last @root``; literals; hash arguments
  ``key=value``; subexpressions ``(lookup a b)``; block parameters ``as |item i|``;
* blocks ``#if``/``#unless`` (``includeZero=true``), ``#each`` (lists and mappings),
  ``#with``, ``{{else}}``, ``{{^}}``, ``{{else if …}}`` chains, Mustache-style sections
  ``{{#name}}`` and ``{{^name}}``; partials ``{{> name}}``, ``{{> name ctx}}``,
  ``{{> name key=value}}``; comments ``{{! }}`` and ``{{!-- --}}``; ``~`` whitespace control;
  standalone lines (a line holding only a block tag, ``{{else}}``, a comment or a partial is
  removed, as the Mustache spec and Handlebars' ``WhitespaceControl`` do); ``\\{{`` escapes;
* helpers: ``if unless each with lookup log`` and Dotprompt's ``role history section media json
  ifEquals unlessEquals``. Role, history, section and media render as ``Marker`` objects.

What the application provides (Genkit's ``defineHelper`` and ``definePartial``) is dynamic, not
an error: a call of a helper that is not built in (``{{add a b}}``, ``(gt x 1)``) and a partial
with no file (``{{> header}}``) render as the value of a *function* of that name (a sample or a
slot, given by the caller; nothing when there is none), and a block of such a helper
(``{{#gt x 1}}…{{/gt}}``) renders its main block once. ``read_variables`` lists them apart from
the variables. ``{{#role "x"}}…{{/role}}`` renders the role and then its text (the runtime drops
that text: a warning says so), and a ``{{! … }}`` comment that contains a mustache and so ends
early leaks its rest as text, exactly as in Handlebars.js (a warning says so too).

Not supported, each a clear ``HandlebarsError``: raw blocks ``{{{{raw}}}}``, partial blocks
``{{#> p}}``, inline partials and decorators ``{{#*inline}}``, dynamic partial names
``{{> (name)}}``, Mustache set-delimiters ``{{=<% %>=}}``. A stray ``}}`` that closes no ``{{``
(Handlebars prints it; Dotprompt's tooling reports it) is an error too.

Sandbox: values are only looked into with ``[]``: keys of mappings (the data itself, as
Handlebars reads own properties), indexes and ``length`` of sequences, and, for any other
object, ``obj[name]`` only if its class defines ``__getitem__`` (the renderer's slot values)
and the name does not start with ``_``. Attributes are never read. Functions, methods and
classes found in the data are treated as missing: never called, never printed. Loop
iterations, output size, nesting, value depth and partial depth are bounded; the caller runs
parsing and rendering under the same watchdog as Jinja2 templates.

``Dialect.MUSTACHE`` serves Prompty's ``template: mustache`` (rendered by chevron in Prompty's
Python runtime): names are found up the context stack, ``{{x}}`` is HTML-escaped the way
chevron does, values print as Python's ``str()``, and there are no helpers.
"""

from __future__ import annotations

import bisect
import enum
import functools
import json
import math
import re
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from promptbudget.templates.deadline import RenderTimeoutError, check_deadline
from promptbudget.templates.sandbox import MAX_ITERATIONS, MAX_RENDERED_CHARS

MAX_NESTING = 100  # blocks, else-if branches and subexpressions inside each other
MAX_PARTIAL_DEPTH = 20  # partials inside partials (a partial that includes itself stops here)
MAX_VALUE_DEPTH = 64  # nesting of a value printed by {{json}} (a recursive YAML anchor stops)

BUILTIN_HELPERS = frozenset({"if", "unless", "each", "with", "lookup", "log"})
DOTPROMPT_HELPERS = BUILTIN_HELPERS | {
    "role",
    "history",
    "section",
    "media",
    "json",
    "ifEquals",
    "unlessEquals",
}
# Semantic Kernel's KernelSystemHelpers: ``{{#message role="system"}}…{{/message}}`` writes a
# ``<message role="system">…</message>`` tag, which SK reads as a chat message. (Its other
# helpers, ``set``, ``concat``, ``json``..., are left to the application-helper rule.)
SEMANTIC_KERNEL_HELPERS = BUILTIN_HELPERS | {"message"}
_BLOCK_HELPERS = frozenset({"if", "unless", "each", "with", "ifEquals", "unlessEquals", "message"})
_ARITY = {
    "if": 1,
    "unless": 1,
    "each": 1,
    "with": 1,
    "lookup": 2,
    "role": 1,
    "history": 0,
    "section": 1,
    "json": 1,
    "media": 0,
    "ifEquals": 2,
    "unlessEquals": 2,
    "message": 0,
}
_SUBEXPRESSION_HELPERS = frozenset({"lookup", "json", "log"})
_ROLE_NAME = re.compile(r"[a-z]+")
_SK_ROLE = re.compile(r"[A-Za-z_]+")
# A name the manifest can give a value to (its ``variables:`` keys).
_FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")

LineWarning = tuple[str, int]  # (message, line): it renders, but probably not as meant


def helper_function(name: str) -> str:
    """The function name an application helper's output is listed (and given a value) under:
    the helper's name, or a readable form of it when no manifest variable can be named so."""
    return name if _FUNCTION_NAME.fullmatch(name) else f"{{{{{name}}}}}"


def partial_function(name: str) -> str:
    """The function name a partial the project does not hold is listed under."""
    return name if _FUNCTION_NAME.fullmatch(name) else f"{{{{> {name}}}}}"


class HandlebarsError(Exception):
    """A template that cannot be parsed or rendered; ``line`` is 1-based, in the template."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class Dialect(enum.Enum):
    HANDLEBARS = "handlebars"
    MUSTACHE = "mustache"


class _Undefined:
    """JavaScript's ``undefined``: a name that is not there (renders as nothing)."""

    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "undefined"

    def __bool__(self) -> bool:
        return False


UNDEFINED = _Undefined()


@dataclass(frozen=True)
class Marker:
    """Output of a Dotprompt helper that is not text: ``role``, ``history``, ``media``,
    ``section``. ``value`` is the role, section name or media URL."""

    kind: Literal["role", "history", "media", "section"]
    value: str = ""
    content_type: str = ""


Chunk = str | Marker
# name -> source, or None if there is no such partial (the application may define it);
# raises LookupError(why) for a name that cannot be used (outside the project, too large).
PartialLoader = Callable[[str], str | None]


# -- syntax tree -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Strip:
    open: bool = False
    close: bool = False


@dataclass(frozen=True)
class PathExpr:
    original: str
    parts: tuple[str, ...]
    depth: int = 0
    is_data: bool = False
    line: int = 1

    @property
    def is_scoped(self) -> bool:
        return bool(re.match(r"\.|this\b", self.original))

    @property
    def simple_name(self) -> str | None:
        """The name, if this path could name a helper (``foo``, not ``this.foo`` or ``@foo``)."""
        if len(self.parts) == 1 and not self.depth and not self.is_data and not self.is_scoped:
            return self.parts[0]
        return None


@dataclass(frozen=True)
class LiteralExpr:
    value: Any
    original: str


@dataclass(frozen=True)
class SubExpr:
    path: Expr
    params: tuple[Expr, ...]
    hash: tuple[tuple[str, Expr], ...]
    line: int


Expr = PathExpr | LiteralExpr | SubExpr


@dataclass(eq=False)
class Content:
    value: str
    original: str
    line: int
    right_stripped: bool = False
    left_stripped: bool = False


@dataclass(eq=False)
class Comment:
    value: str
    strip: Strip
    line: int


@dataclass(eq=False)
class Mustache:
    path: Expr
    params: tuple[Expr, ...]
    hash: tuple[tuple[str, Expr], ...]
    strip: Strip
    line: int
    escaped: bool = True
    helper: str | None = None  # set by validation: the helper this calls, if any


@dataclass(eq=False)
class Partial:
    name: str
    params: tuple[Expr, ...]
    hash: tuple[tuple[str, Expr], ...]
    strip: Strip
    line: int
    indent: str = ""


@dataclass(eq=False)
class Program:
    body: list[Node]
    chained: bool = False
    block_params: tuple[str, ...] = ()


@dataclass(eq=False)
class Block:
    path: Expr
    params: tuple[Expr, ...]
    hash: tuple[tuple[str, Expr], ...]
    program: Program | None
    inverse: Program | None
    open_strip: Strip
    inverse_strip: Strip | None
    close_strip: Strip | None
    line: int
    helper: str | None = None  # None: a Mustache-style section over a value


Node = Content | Comment | Mustache | Partial | Block


@dataclass(frozen=True)
class Template:
    """A parsed template, ready to render."""

    program: Program
    dialect: Dialect
    helpers: frozenset[str]
    escape_html: bool = False
    first_line: int = 1
    app_helpers: bool = False  # names not in ``helpers`` may be called: the application's
    warnings: tuple[LineWarning, ...] = ()


# -- lexer -------------------------------------------------------------------------------------

_LOOKAHEAD = r"(?=[=~}\s/.)|]|\Z)"
_LITERAL_LOOKAHEAD = r"(?=[~}\s)]|\Z)"


def _token_regex(id_lookahead: str) -> re.Pattern[str]:
    """One token inside a tag, in the order of Handlebars' lexer rules."""
    return re.compile(
        rf"""
          (?P<space>\s+)
        | (?P<string>"(?:\\"|[^"])*"|'(?:\\'|[^'])*')
        | (?P<keyword>(?:true|false|null|undefined){_LITERAL_LOOKAHEAD})
        | (?P<number>-?[0-9]+(?:\.[0-9]+)?{_LITERAL_LOOKAHEAD})
        | (?P<bp_open>as\s+\|)
        | (?P<dot>\.\.?{_LOOKAHEAD})
        | (?P<sep>[./])
        | (?P<id>[^\s!"\#%-,./;->@\[-^`{{-~]+{id_lookahead})
        | (?P<bracket>\[(?:\\\]|[^\]])*\]{_LOOKAHEAD})
        | (?P<simple>[()=|@])
        """,
        re.VERBOSE,
    )


_TOKEN = _token_regex(_LOOKAHEAD)
# Handlebars.Net (Semantic Kernel's engine) also reads ``items[0]`` as ``items.[0]``.
_TOKEN_NET = _token_regex(r"(?=[=~}\s/.)|\[]|\Z)")
_SIMPLE_TOKENS = {
    "sep": "SEP",
    "bp_open": "BP_OPEN",
    "(": "OPEN_SEXPR",
    ")": "CLOSE_SEXPR",
    "=": "EQUALS",
    "|": "BP_CLOSE",
    "@": "DATA",
}
_BRACE = re.compile(r"[{}]")
_ELSE = re.compile(r"\s*else(?=[\s~}])")
_CLOSE_PLAIN = re.compile(r"\s*~?\}\}")
_LONG_COMMENT_END = re.compile(r"--(~?)\}\}")
_KEYWORD_VALUES: dict[str, Any] = {
    "true": True,
    "false": False,
    "null": None,
    "undefined": UNDEFINED,
}


@dataclass(frozen=True)
class _Tok:
    kind: str  # ID SEP DATA STRING NUMBER LITERAL OPEN_SEXPR CLOSE_SEXPR EQUALS BP_OPEN BP_CLOSE
    value: Any
    text: str
    line: int
    end: int = -1  # offset just past the token in the source (IDs only)


@dataclass(frozen=True)
class _Tag:
    kind: str  # mustache unescaped open open_inverse inverse inverse_chain close partial
    tokens: tuple[_Tok, ...]
    strip: Strip
    line: int


@dataclass(frozen=True)
class _Text:
    value: str
    line: int


@dataclass(frozen=True)
class _CommentTok:
    value: str
    strip: Strip
    line: int


@dataclass(frozen=True)
class _Open:
    """An opening brace in the text, as Dotprompt's tooling counts them: ``{{`` or ``{``.
    ``comment_line``: this ``{{`` opened a ``{{! … }}`` comment, which ends at its first
    ``}}`` (on ``comment_end_line``). It is still open after that only if the comment held a
    ``{{``; a ``}}`` in the text that closes it ends the text the comment leaked."""

    double: bool
    comment_line: int | None = None
    comment_end_line: int = 0


class _Lexer:
    def __init__(self, source: str, first_line: int = 1, *, index_segments: bool = False) -> None:
        self.src = source
        self.token = _TOKEN_NET if index_segments else _TOKEN
        self.first_line = first_line
        self.newlines = [i for i, c in enumerate(source) if c == "\n"]
        self.items: list[_Text | _CommentTok | _Tag] = []
        self.braces: list[_Open] = []  # braces opened in the text, still open
        self.warnings: list[LineWarning] = []

    def line_at(self, pos: int) -> int:
        return bisect.bisect_left(self.newlines, pos) + self.first_line

    def run(self) -> list[_Text | _CommentTok | _Tag]:
        src, pos, n = self.src, 0, len(self.src)
        while pos < n:
            start = src.find("{{", pos)
            if start == -1:
                self._text(pos, n)
                break
            before = src[pos:start]
            if before.endswith("\\\\"):  # \\{{: a literal backslash, then a real mustache
                self._text(pos, start - 1)
            elif before.endswith("\\"):  # \{{: literal text up to the next mustache
                self._text(pos, start - 1)
                end = self._escaped_end(start)
                self._text(start, end)
                pos = end
                continue
            else:
                self._text(pos, start)
            pos = self._tag(start)
        return self.items

    def _escaped_end(self, start: int) -> int:
        nxt = self.src.find("{{", start + 2)
        if nxt == -1:
            return len(self.src)
        for back in (2, 1):
            if nxt - back >= start + 2 and self.src[nxt - back : nxt] == "\\" * back:
                return nxt - back
        return nxt

    def _text(self, start: int, end: int) -> None:
        if end <= start:
            return
        value = self.src[start:end]
        self._count_braces(value, start)
        self.items.append(_Text(value, self.line_at(start)))

    def _count_braces(self, value: str, offset: int) -> None:
        """Count braces the way Dotprompt's tooling does, in the text and inside ``{{! }}``
        comments: every ``{{`` opens, every ``}}`` closes. A ``}}`` that closes nothing is an
        error (Handlebars prints it, but it is nearly always a broken tag). Single braces
        nest too, so JSON in the text (``{"a": {"b": 1}}``) is never one. A ``}}`` that closes
        the ``{{`` of a short comment that ended early is where the text it leaked ends."""
        stack = self.braces
        match = _BRACE.search(value)
        while match is not None:
            index = match.start()
            step = 1
            if value[index] == "{":
                step = 2 if value.startswith("{{", index) else 1
                stack.append(_Open(double=step == 2))
            elif stack and not stack[-1].double:
                stack.pop()
            elif value.startswith("}}", index):
                step = 2
                line = self.line_at(offset + index)
                if not stack:
                    raise HandlebarsError(
                        f"unbalanced braces: this '}}}}' on line {line} closes no '{{{{'", line
                    )
                opened = stack.pop()
                if opened.comment_line is not None:
                    self.warnings.append((_leak_warning(opened, line), opened.comment_line))
            match = _BRACE.search(value, index + step)

    def _short_comment(self, content: str, offset: int, line: int, end: int) -> None:
        """``{{! content }}``: its ``{{`` opens, the braces in it count, its ``}}`` closes the
        innermost ``{{`` (its own, unless the comment holds a ``{{`` and so ended early)."""
        self.braces.append(_Open(True, line, self.line_at(end)))
        self._count_braces(content, offset)
        while self.braces:
            if self.braces.pop().double:
                break

    def _tag(self, start: int) -> int:
        src, line = self.src, self.line_at(start)
        if src.startswith("{{{{", start):
            raise HandlebarsError("raw blocks '{{{{raw}}}}' are not supported", line)
        pos = start + 2
        strip_open = src.startswith("~", pos)
        if strip_open:
            pos += 1
        if src.startswith("!--", pos):
            match = _LONG_COMMENT_END.search(src, pos + 3)
            if match is None:
                raise HandlebarsError("comment '{{!--' is never closed (no '--}}')", line)
            comment = _CommentTok(
                src[pos + 3 : match.start()], Strip(strip_open, match.group(1) == "~"), line
            )
            self.items.append(comment)
            return match.end()
        if src.startswith("!", pos):
            end = src.find("}}", pos + 1)
            if end == -1:
                raise HandlebarsError("comment '{{!' is never closed (no '}}')", line)
            value = src[pos + 1 : end]
            self._short_comment(value, pos + 1, line, end)
            strip_close = value.endswith("~")
            comment = _CommentTok(value.removesuffix("~"), Strip(strip_open, strip_close), line)
            self.items.append(comment)
            return end + 2
        triple = False
        kind = "mustache"
        char = src[pos : pos + 1]
        if char == "{":
            kind, triple, pos = "unescaped", True, pos + 1
        elif char == "&":
            kind, pos = "unescaped", pos + 1
        elif src.startswith("#>", pos):
            raise HandlebarsError("partial blocks '{{#> partial}}' are not supported", line)
        elif src.startswith("#*", pos):
            raise HandlebarsError("decorators and inline partials are not supported", line)
        elif char == "#":
            kind, pos = "open", pos + 1
        elif char == "/":
            kind, pos = "close", pos + 1
        elif char == "^":
            pos += 1
            kind = "inverse" if _CLOSE_PLAIN.match(src, pos) else "open_inverse"
        elif char == ">":
            kind, pos = "partial", pos + 1
        elif char == "=":
            raise HandlebarsError("Mustache set-delimiter tags '{{=…=}}' are not supported", line)
        else:
            match = _ELSE.match(src, pos)
            if match is not None:
                pos = match.end()
                kind = "inverse" if _CLOSE_PLAIN.match(src, pos) else "inverse_chain"
        tokens, strip_close, end = self._expression(pos, line, triple=triple)
        if kind == "inverse" and tokens:
            raise HandlebarsError("'{{else}}' takes no arguments here", line)
        self.items.append(_Tag(kind, tuple(tokens), Strip(strip_open, strip_close), line))
        return end

    def _expression(self, pos: int, line: int, *, triple: bool) -> tuple[list[_Tok], bool, int]:
        src, n = self.src, len(self.src)
        close = "}}}" if triple else "}}"
        tokens: list[_Tok] = []
        while True:
            match = self.token.match(src, pos)
            kind = match.lastgroup if match is not None else None
            if match is not None and kind == "space":
                pos = match.end()
                continue
            if pos >= n or src.startswith("{{", pos):
                raise HandlebarsError(
                    f"'{{{{' is never closed (expected '{close}' before the next '{{{{' or "
                    "the end of the file)",
                    line,
                )
            if src.startswith("~" + close, pos):
                return tokens, True, pos + 1 + len(close)
            if src.startswith(close, pos):
                return tokens, False, pos + len(close)
            at = self.line_at(pos)
            if match is None or kind is None:
                char = src[pos]
                if char in "\"'":
                    raise HandlebarsError("string is never closed", at)
                if char in "}~":
                    raise HandlebarsError(f"expected '{close}' to close the tag", at)
                raise HandlebarsError(f"unexpected {char!r} inside '{{{{ … }}}}'", at)
            text = match.group(0)
            pos = match.end()
            if kind == "string":
                quote = text[0]
                tokens.append(_Tok("STRING", text[1:-1].replace("\\" + quote, quote), text, at))
            elif kind == "number":
                number: float | int = float(text) if "." in text else int(text)
                tokens.append(_Tok("NUMBER", number, text, at))
            elif kind == "keyword":
                tokens.append(_Tok("LITERAL", _KEYWORD_VALUES[text], text, at))
            elif kind == "bracket":
                if tokens and tokens[-1].kind == "ID" and match.start() == tokens[-1].end:
                    tokens.append(_Tok("SEP", ".", "", at))  # items[0] (Handlebars.Net)
                tokens.append(_Tok("ID", text[1:-1].replace("\\]", "]"), text, at, pos))
            elif kind in {"dot", "id"}:
                tokens.append(_Tok("ID", text, text, at, pos))
            else:
                tokens.append(
                    _Tok(_SIMPLE_TOKENS[kind if kind != "simple" else text], text, text, at)
                )


def _leak_warning(opened: _Open, close_line: int) -> str:
    return (
        f"this '{{{{! … }}}}' comment contains a '{{{{', so it ends at its first '}}}}' (line "
        f"{opened.comment_end_line}) and the rest of it, up to the '}}}}' on line {close_line}, "
        "is sent to the model as text; write comments that contain mustaches as "
        "'{{!-- … --}}'"
    )


# -- parser ------------------------------------------------------------------------------------


@dataclass
class _OpenTag:
    path: Expr
    params: tuple[Expr, ...]
    hash: tuple[tuple[str, Expr], ...]
    block_params: tuple[str, ...]
    strip: Strip
    line: int


@dataclass
class _InverseAndProgram:
    strip: Strip
    program: Program
    chain: bool = False


class _ExprParser:
    """Parses the tokens inside one tag."""

    def __init__(self, tokens: tuple[_Tok, ...], line: int) -> None:
        self.tokens = tokens
        self.pos = 0
        self.line = line
        self.depth = 0

    def peek(self, offset: int = 0) -> _Tok | None:
        index = self.pos + offset
        return self.tokens[index] if index < len(self.tokens) else None

    def next(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise HandlebarsError("the tag ends too early", self.line)
        self.pos += 1
        return tok

    def at_end(self) -> bool:
        return self.pos >= len(self.tokens)

    def fail(self, tok: _Tok | None, what: str) -> HandlebarsError:
        if tok is None:
            return HandlebarsError(f"expected {what} before the end of the tag", self.line)
        return HandlebarsError(f"expected {what}, found {tok.text!r}", tok.line)

    def call(self) -> tuple[Expr, tuple[Expr, ...], tuple[tuple[str, Expr], ...]]:
        """helperName param* hash?"""
        head = self.helper_name()
        params: list[Expr] = []
        pairs: list[tuple[str, Expr]] = []
        while True:
            tok = self.peek()
            if tok is None or tok.kind in {"CLOSE_SEXPR", "BP_OPEN"}:
                break
            nxt = self.peek(1)
            if tok.kind == "ID" and nxt is not None and nxt.kind == "EQUALS":
                self.pos += 2
                pairs.append((tok.value, self.param()))
                continue
            if pairs:
                raise self.fail(tok, "'key=value' (arguments go before hash arguments)")
            params.append(self.param())
        return head, tuple(params), tuple(pairs)

    def helper_name(self) -> Expr:
        tok = self.peek()
        if tok is None:
            raise self.fail(tok, "a name")
        if tok.kind in {"STRING", "NUMBER", "LITERAL"}:
            self.pos += 1
            return LiteralExpr(tok.value, tok.text)
        return self.path()

    def param(self) -> Expr:
        tok = self.peek()
        if tok is not None and tok.kind == "OPEN_SEXPR":
            return self.sexpr()
        return self.helper_name()

    def sexpr(self) -> SubExpr:
        open_tok = self.next()
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise HandlebarsError(f"subexpressions nested deeper than {MAX_NESTING}", open_tok.line)
        head, params, pairs = self.call()
        tok = self.peek()
        if tok is None or tok.kind != "CLOSE_SEXPR":
            raise self.fail(tok, "')'")
        self.pos += 1
        self.depth -= 1
        return SubExpr(head, params, pairs, open_tok.line)

    def path(self) -> PathExpr:
        first = self.peek()
        is_data = first is not None and first.kind == "DATA"
        if is_data:
            self.pos += 1
        tok = self.peek()
        if tok is None or tok.kind != "ID":
            raise self.fail(tok, "a name")
        segments: list[tuple[str, str, str]] = []  # (separator, value, text)
        separator = ""
        while True:
            tok = self.next()
            if tok.kind != "ID":
                raise self.fail(tok, "a name after the separator")
            segments.append((separator, tok.value, tok.text))
            nxt = self.peek()
            if nxt is None or nxt.kind != "SEP":
                break
            separator = nxt.value
            self.pos += 1
        original = "@" if is_data else ""
        parts: list[str] = []
        depth = 0
        for sep, value, text in segments:
            original += sep + value
            literal = text != value
            if not literal and value in {"..", ".", "this"}:
                if parts:
                    raise HandlebarsError(f"invalid path: {original}", first.line if first else 1)
                if value == "..":
                    depth += 1
            else:
                parts.append(value)
        line = first.line if first is not None else self.line
        return PathExpr(original, tuple(parts), depth, is_data, line)

    def block_params(self) -> tuple[str, ...]:
        tok = self.peek()
        if tok is None or tok.kind != "BP_OPEN":
            return ()
        self.pos += 1
        names: list[str] = []
        while True:
            tok = self.next()
            if tok.kind == "BP_CLOSE":
                break
            if tok.kind != "ID":
                raise self.fail(tok, "a block parameter name")
            names.append(tok.value)
        if not names:
            raise HandlebarsError("'as | |' names no block parameters", self.line)
        return tuple(names)

    def expect_end(self) -> None:
        if not self.at_end():
            raise self.fail(self.peek(), "'}}'")


class _Parser:
    def __init__(self, items: list[_Text | _CommentTok | _Tag]) -> None:
        self.items = items
        self.pos = 0
        self.nesting = 0

    def peek(self) -> _Text | _CommentTok | _Tag | None:
        return self.items[self.pos] if self.pos < len(self.items) else None

    def parse(self) -> Program:
        program = self.program()
        item = self.peek()
        if isinstance(item, _Tag):
            if item.kind == "close":
                name = _ExprParser(item.tokens, item.line).path().original
                raise HandlebarsError(f"'{{{{/{name}}}}}' closes no open block", item.line)
            raise HandlebarsError("'{{else}}' is outside any block", item.line)
        return program

    def program(self) -> Program:
        body: list[Node] = []
        while True:
            item = self.peek()
            if item is None:
                break
            if isinstance(item, _Text):
                body.append(Content(item.value, item.value, item.line))
            elif isinstance(item, _CommentTok):
                body.append(Comment(item.value, item.strip, item.line))
            elif item.kind in {"mustache", "unescaped"}:
                parser = _ExprParser(item.tokens, item.line)
                head, params, pairs = parser.call()
                parser.expect_end()
                head = _as_path(head, item.line)
                body.append(
                    Mustache(head, params, pairs, item.strip, item.line, item.kind == "mustache")
                )
            elif item.kind == "partial":
                body.append(self.partial(item))
            elif item.kind in {"open", "open_inverse"}:
                body.append(self.block())
                continue
            else:  # close, inverse, inverse_chain: the caller's
                break
            self.pos += 1
        return Program(body)

    def partial(self, item: _Tag) -> Partial:
        parser = _ExprParser(item.tokens, item.line)
        tok = parser.peek()
        if tok is not None and tok.kind == "OPEN_SEXPR":
            raise HandlebarsError("dynamic partial names '{{> (…)}}' are not supported", item.line)
        head, params, pairs = parser.call()
        parser.expect_end()
        name = head.original if isinstance(head, PathExpr | LiteralExpr) else ""
        if isinstance(head, LiteralExpr):
            name = str(head.value)
        if len(params) > 1:
            raise HandlebarsError(f"partial '{name}' takes at most one context argument", item.line)
        return Partial(name, params, pairs, item.strip, item.line)

    def open_tag(self, item: _Tag) -> _OpenTag:
        parser = _ExprParser(item.tokens, item.line)
        head, params, pairs = parser.call()
        block_params = parser.block_params()
        parser.expect_end()
        return _OpenTag(
            _as_path(head, item.line), params, pairs, block_params, item.strip, item.line
        )

    def block(self) -> Block:
        item = self.items[self.pos]
        assert isinstance(item, _Tag)
        self.pos += 1
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise HandlebarsError(f"blocks nested deeper than {MAX_NESTING}", item.line)
        opened = self.open_tag(item)
        inverted = item.kind == "open_inverse"
        program = self.program()
        inverse: _InverseAndProgram | None = None
        nxt = self.peek()
        if isinstance(nxt, _Tag) and nxt.kind == "inverse_chain" and not inverted:
            inverse = self.inverse_chain()
        elif isinstance(nxt, _Tag) and nxt.kind == "inverse":
            self.pos += 1
            inverse = _InverseAndProgram(nxt.strip, self.program())
        close = self.peek()
        name = _original(opened.path)
        if not isinstance(close, _Tag) or close.kind != "close":
            if isinstance(close, _Tag) and close.kind in {"inverse", "inverse_chain"}:
                raise HandlebarsError(
                    f"a second '{{{{else}}}}' in '{{{{#{name}}}}}' (opened on line {item.line})",
                    close.line,
                )
            raise HandlebarsError(
                f"'{{{{#{name}}}}}' is never closed (expected '{{{{/{name}}}}}')",
                item.line,
            )
        closing = _ExprParser(close.tokens, close.line)
        closing_path = closing.helper_name()
        closing.expect_end()
        if _original(closing_path) != name:
            raise HandlebarsError(
                f"'{{{{/{_original(closing_path)}}}}}' does not match "
                f"'{{{{#{name}}}}}' opened on line {item.line}",
                close.line,
            )
        self.pos += 1
        self.nesting -= 1
        return _prepare_block(opened, program, inverse, close.strip, inverted)

    def inverse_chain(self) -> _InverseAndProgram:
        item = self.items[self.pos]
        assert isinstance(item, _Tag)
        self.pos += 1
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            raise HandlebarsError(f"blocks nested deeper than {MAX_NESTING}", item.line)
        opened = self.open_tag(item)
        program = self.program()
        nested: _InverseAndProgram | None = None
        nxt = self.peek()
        if isinstance(nxt, _Tag) and nxt.kind == "inverse_chain":
            nested = self.inverse_chain()
        elif isinstance(nxt, _Tag) and nxt.kind == "inverse":
            self.pos += 1
            nested = _InverseAndProgram(nxt.strip, self.program())
        self.nesting -= 1
        block = _prepare_block(
            opened, program, nested, nested.strip if nested else None, inverted=False
        )
        return _InverseAndProgram(opened.strip, Program([block], chained=True), chain=True)


def _as_path(expr: Expr, line: int) -> Expr:
    """``{{"odd key"}}`` looks the literal up as a name, as Handlebars does."""
    if isinstance(expr, LiteralExpr):
        value = expr.value
        text = "true" if value is True else "false" if value is False else str(value)
        return PathExpr(expr.original, (text,), line=line)
    return expr


def _original(expr: Expr) -> str:
    if isinstance(expr, PathExpr | LiteralExpr):
        return expr.original
    return "(…)"


def _prepare_block(
    opened: _OpenTag,
    program: Program,
    inverse_and_program: _InverseAndProgram | None,
    close_strip: Strip | None,
    inverted: bool,
) -> Block:
    """Handlebars' ``prepareBlock``: the same tree, so the same whitespace rules apply."""
    program.block_params = opened.block_params
    inverse: Program | None = None
    inverse_strip: Strip | None = None
    if inverse_and_program is not None:
        if inverse_and_program.chain:
            first = inverse_and_program.program.body[0]
            assert isinstance(first, Block)
            first.close_strip = close_strip
        inverse_strip = inverse_and_program.strip
        inverse = inverse_and_program.program
    main: Program | None = program
    if inverted:
        main, inverse = inverse, program
    return Block(
        opened.path,
        opened.params,
        opened.hash,
        main,
        inverse,
        opened.strip,
        inverse_strip,
        close_strip,
        opened.line,
    )


# -- whitespace control (a port of Handlebars' compiler/whitespace-control.js) ------------------


@dataclass
class _StripInfo:
    open: bool = False
    close: bool = False
    open_standalone: bool = False
    close_standalone: bool = False
    inline_standalone: bool = False


class _WhitespaceControl:
    def __init__(self) -> None:
        self.is_root_seen = False

    def program(self, program: Program) -> None:
        is_root = not self.is_root_seen
        self.is_root_seen = True
        body = program.body
        for i, current in enumerate(body):
            strip = self.accept(current)
            if strip is None:
                continue
            prev_ws = _is_prev_whitespace(body, i, is_root)
            next_ws = _is_next_whitespace(body, i, is_root)
            open_standalone = strip.open_standalone and prev_ws
            close_standalone = strip.close_standalone and next_ws
            inline_standalone = strip.inline_standalone and prev_ws and next_ws
            if strip.close:
                _omit_right(body, i, multiple=True)
            if strip.open:
                _omit_left(body, i, multiple=True)
            if inline_standalone:
                _omit_right(body, i)
                if _omit_left(body, i) and isinstance(current, Partial):
                    previous = body[i - 1]
                    assert isinstance(previous, Content)
                    original = previous.original
                    current.indent = original[len(original.rstrip(" \t")) :]
            if open_standalone and isinstance(current, Block):
                inner = current.program or current.inverse
                assert inner is not None
                _omit_right(inner.body, None)
                _omit_left(body, i)
            if close_standalone and isinstance(current, Block):
                _omit_right(body, i)
                inner = current.inverse or current.program
                assert inner is not None
                _omit_left(inner.body, None)

    def accept(self, node: Node) -> _StripInfo | None:
        if isinstance(node, Mustache):
            return _StripInfo(open=node.strip.open, close=node.strip.close)
        if isinstance(node, Partial | Comment):
            return _StripInfo(open=node.strip.open, close=node.strip.close, inline_standalone=True)
        if isinstance(node, Block):
            return self.block(node)
        return None

    def block(self, block: Block) -> _StripInfo:
        if block.program is not None:
            self.program(block.program)
        if block.inverse is not None:
            self.program(block.inverse)
        program = block.program or block.inverse
        assert program is not None
        inverse = block.inverse if block.program is not None else None
        first_inverse = last_inverse = inverse
        if inverse is not None and inverse.chained:
            head = inverse.body[0]
            assert isinstance(head, Block) and head.program is not None
            first_inverse = head.program
            while last_inverse is not None and last_inverse.chained:
                tail = last_inverse.body[-1]
                assert isinstance(tail, Block)
                last_inverse = tail.program
        close_strip = block.close_strip or Strip()
        strip = _StripInfo(
            open=block.open_strip.open,
            close=close_strip.close,
            open_standalone=_is_next_whitespace(program.body, None, False),
            close_standalone=_is_prev_whitespace((first_inverse or program).body, None, False),
        )
        if block.open_strip.close:
            _omit_right(program.body, None, multiple=True)
        if inverse is not None:
            inverse_strip = block.inverse_strip or Strip()
            if inverse_strip.open:
                _omit_left(program.body, None, multiple=True)
            if inverse_strip.close and first_inverse is not None:
                _omit_right(first_inverse.body, None, multiple=True)
            if close_strip.open and last_inverse is not None:
                _omit_left(last_inverse.body, None, multiple=True)
            if (
                first_inverse is not None
                and _is_prev_whitespace(program.body, None, False)
                and _is_next_whitespace(first_inverse.body, None, False)
            ):
                _omit_left(program.body, None)
                _omit_right(first_inverse.body, None)
        elif close_strip.open:
            _omit_left(program.body, None, multiple=True)
        return strip


def _trailing_space(text: str) -> str:
    return text[len(text.rstrip()) :]


def _leading_space(text: str) -> str:
    return text[: len(text) - len(text.lstrip())]


def _is_prev_whitespace(body: list[Node], i: int | None, is_root: bool) -> bool:
    """The node before ``i`` ends its line: text ending in a newline and blanks (or, at the
    start of the root template, blank text)."""
    if i is None:
        i = len(body)
    prev = body[i - 1] if i - 1 >= 0 else None
    sibling = body[i - 2] if i - 2 >= 0 else None
    if prev is None:
        return is_root
    if isinstance(prev, Content):
        if "\n" in _trailing_space(prev.original):
            return True
        return sibling is None and is_root and not prev.original.strip()
    return False


def _is_next_whitespace(body: list[Node], i: int | None, is_root: bool) -> bool:
    """The node after ``i`` starts with blanks and a newline (or, at the end of the root
    template, is blank)."""
    if i is None:
        i = -1
    nxt = body[i + 1] if i + 1 < len(body) else None
    sibling = body[i + 2] if i + 2 < len(body) else None
    if nxt is None:
        return is_root
    if isinstance(nxt, Content):
        if "\n" in _leading_space(nxt.original):
            return True
        return sibling is None and is_root and not nxt.original.strip()
    return False


def _omit_right(body: list[Node], i: int | None, *, multiple: bool = False) -> None:
    """Drop the blanks and first newline (``multiple``: all whitespace) after ``i``."""
    index = 0 if i is None else i + 1
    current = body[index] if 0 <= index < len(body) else None
    if not isinstance(current, Content) or (not multiple and current.right_stripped):
        return
    original = current.value
    if multiple:
        current.value = original.lstrip()
    else:
        current.value = re.sub(r"^[ \t]*\r?\n?", "", original, count=1)
    current.right_stripped = current.value != original


def _omit_left(body: list[Node], i: int | None, *, multiple: bool = False) -> bool:
    """Drop the blanks (``multiple``: all whitespace) before ``i``."""
    index = len(body) - 1 if i is None else i - 1
    current = body[index] if 0 <= index < len(body) else None
    if not isinstance(current, Content) or (not multiple and current.left_stripped):
        return False
    original = current.value
    current.value = original.rstrip() if multiple else original.rstrip(" \t")
    current.left_stripped = current.value != original
    return current.left_stripped


# -- validation: which names are helpers (knownHelpersOnly) ------------------------------------


class _Validator:
    def __init__(self, dialect: Dialect, helpers: frozenset[str], *, app_helpers: bool) -> None:
        self.dialect = dialect
        self.helpers = helpers
        self.app_helpers = app_helpers and dialect is Dialect.HANDLEBARS
        self.plugin_functions = False
        self.warnings: list[LineWarning] = []

    def program(self, program: Program | None, block_params: frozenset[str]) -> None:
        if program is None:
            return
        params = block_params | set(program.block_params)
        for node in program.body:
            if isinstance(node, Mustache):
                node.helper = self.call(node.path, node.params, node.hash, params, node.line)
                if node.helper in _BLOCK_HELPERS:
                    raise HandlebarsError(
                        f"'{node.helper}' is a block helper: write "
                        f"'{{{{#{node.helper} …}}}}…{{{{/{node.helper}}}}}'",
                        node.line,
                    )
            elif isinstance(node, Partial):
                for expr in (*node.params, *(value for _, value in node.hash)):
                    self.expr(expr, params)
            elif isinstance(node, Block):
                node.helper = self.call(node.path, node.params, node.hash, params, node.line)
                if node.helper == "role" and "role" in self.helpers:
                    self.warnings.append((_role_block_warning(node), node.line))
                elif node.helper in self.helpers and node.helper not in _BLOCK_HELPERS:
                    raise HandlebarsError(_not_a_block_helper(node.helper), node.line)
                self.program(node.program, params)
                self.program(node.inverse, params)

    def call(
        self,
        path: Expr,
        params: tuple[Expr, ...],
        pairs: tuple[tuple[str, Expr], ...],
        block_params: frozenset[str] | set[str],
        line: int,
    ) -> str | None:
        """The helper this tag calls (a built-in, or the application's), or None for a value."""
        for expr in (*params, *(value for _, value in pairs)):
            self.expr(expr, block_params)
        name = path.simple_name if isinstance(path, PathExpr) else None
        if name is not None and name in block_params:
            return None
        if (params or pairs) and name is None and self.plugin_functions and _plugin_name(path):
            return _plugin_name(path)  # Semantic Kernel's {{Plugin.Function arg}}
        if params or pairs:
            helper = name if name is not None else _original(path)
            if self.dialect is Dialect.MUSTACHE:
                raise HandlebarsError(
                    f"'{helper}' is called with arguments, but Mustache has no helpers", line
                )
            if name not in self.helpers:
                if name is not None and self.app_helpers:
                    return name  # the application's (Genkit's defineHelper)
                raise HandlebarsError(
                    f"unknown helper '{helper}': not a Handlebars or Dotprompt built-in", line
                )
        elif name is None or name not in self.helpers:
            return None
        arity = _ARITY.get(name)
        if arity is not None and len(params) != arity:
            raise HandlebarsError(
                f"'{name}' takes {arity} argument{'s' if arity != 1 else ''}, not {len(params)}",
                line,
            )
        return name

    def expr(self, expr: Expr, block_params: frozenset[str] | set[str]) -> None:
        if not isinstance(expr, SubExpr):
            return
        name = self.call(expr.path, expr.params, expr.hash, block_params, expr.line)
        if name is None:
            simple = expr.path.simple_name if isinstance(expr.path, PathExpr) else None
            if simple is None or simple in block_params or not self.app_helpers:
                raise HandlebarsError(
                    f"subexpression '({_original(expr.path)} …)' calls no helper", expr.line
                )
            name = simple  # ``(now)``: a helper of the application's, with no arguments
        if name in self.helpers and name not in _SUBEXPRESSION_HELPERS:
            raise HandlebarsError(f"'{name}' cannot be used in a subexpression '( … )'", expr.line)


def _plugin_name(path: Expr) -> str | None:
    """``Plugin.Function`` when a dotted path of plain names is called with arguments."""
    if not isinstance(path, PathExpr) or path.depth or path.is_data or path.is_scoped:
        return None
    if len(path.parts) < 2 or not all(part.isidentifier() for part in path.parts):
        return None
    return ".".join(path.parts)


def _role_block_warning(node: Block) -> str:
    role = _original(node.params[0]) if node.params else '"…"'
    return (
        f"Dotprompt's runtime drops the text of a '{{{{#role {role}}}}}' block (role is not a "
        "block helper), so that text is never sent; it is counted here as meant. Write "
        f"'{{{{role {role}}}}}' on its own line before the text instead, with no '{{{{/role}}}}'"
    )


def _not_a_block_helper(name: str) -> str:
    return (
        f"'{name}' is not a block helper: the text between '{{{{#{name} …}}}}' and "
        f"'{{{{/{name}}}}}' would be dropped"
    )


def parse_handlebars(
    source: str,
    *,
    dialect: Dialect = Dialect.HANDLEBARS,
    helpers: frozenset[str] = DOTPROMPT_HELPERS,
    escape_html: bool = False,
    first_line: int = 1,
    app_helpers: bool = True,
    plugin_functions: bool = False,
) -> Template:
    """Parse ``source``. Raises ``HandlebarsError`` with the line of the problem.

    ``escape_html``: ``{{x}}`` is HTML-escaped (Handlebars.js and Mustache do it by default;
    Dotprompt compiles with ``noEscape``, so its templates pass False). ``first_line``: the
    line ``source`` starts on in its file; every line reported (errors, variables) counts
    from it. ``app_helpers``: a call of a helper not in ``helpers`` is one the application
    registers (Dotprompt); False: it is an error (Handlebars with no helpers registered).
    ``plugin_functions``: Semantic Kernel's Handlebars.Net: a dotted name called with
    arguments, ``{{Plugin.Function x}}``, is one too (SK registers plugin functions so), and
    ``items[0]`` reads as ``items.[0]``."""
    if dialect is Dialect.MUSTACHE:
        helpers = frozenset()
    lexer = _Lexer(source, first_line, index_segments=plugin_functions)
    items = lexer.run()
    if dialect is Dialect.MUSTACHE:
        for item in items:
            if isinstance(item, _Tag) and item.kind in {"inverse", "inverse_chain"}:
                raise HandlebarsError("'{{else}}' is Handlebars, not Mustache", item.line)
    program = _Parser(items).parse()
    _WhitespaceControl().program(program)
    validator = _Validator(dialect, helpers, app_helpers=app_helpers)
    validator.plugin_functions = plugin_functions and validator.app_helpers
    validator.program(program, frozenset())
    warnings = sorted([*lexer.warnings, *validator.warnings], key=lambda warning: warning[1])
    return Template(
        program,
        dialect,
        helpers,
        escape_html,
        first_line,
        app_helpers=validator.app_helpers,
        warnings=tuple(warnings),
    )


# -- values ------------------------------------------------------------------------------------


_CODE = (
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.MethodWrapperType,
    types.WrapperDescriptorType,
    functools.partial,
    type,
)


def _is_code(value: Any) -> bool:
    """Functions, methods and classes: never called, never printed."""
    return isinstance(value, _CODE)


def _lookup(value: Any, key: str) -> Any:
    """``value[key]`` the way Handlebars looks up a property, inside the sandbox."""
    if value is None or value is UNDEFINED:
        return UNDEFINED
    if isinstance(value, Mapping):
        if key in value:
            return value[key]
        if key.lstrip("-").isdigit() and int(key) in value:
            return value[int(key)]
        return UNDEFINED
    if isinstance(value, list | tuple) or type(value) is str:
        if key == "length":
            return len(value)
        if key.isdigit() and int(key) < len(value):
            return value[int(key)]
        return UNDEFINED
    if isinstance(value, bool | int | float) or _is_code(value) or key.startswith("_"):
        return UNDEFINED
    getitem = getattr(type(value), "__getitem__", None)
    if getitem is None or getitem is str.__getitem__:
        return UNDEFINED
    try:
        found = value[key]
    except (LookupError, TypeError, ValueError):
        return UNDEFINED
    return UNDEFINED if _is_code(found) else found


def _iterate(value: Any) -> Iterator[tuple[Any, Any]] | None:
    """(key, item) pairs of a value ``#each`` can loop over, or None."""
    if isinstance(value, Mapping):
        return iter(value.items())
    if isinstance(value, list | tuple):
        return iter(enumerate(value))
    if isinstance(value, str):
        if type(value).__iter__ is str.__iter__:
            return None
        return iter(enumerate(value))
    if value is None or isinstance(value, bool | int | float | _Undefined) or _is_code(value):
        return None
    if getattr(type(value), "__iter__", None) is None:
        return None
    return iter(enumerate(value))


def is_falsy(value: Any, *, include_zero: bool = False) -> bool:
    """Handlebars' ``#if``: false, null, undefined, "", [] and 0 (unless ``includeZero``)."""
    if value is None or value is UNDEFINED or value is False:
        return True
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (value == 0 and not include_zero) or value != value
    if type(value) is str:
        return value == ""
    if isinstance(value, list | tuple):
        return not value
    return False


def _is_empty(value: Any) -> bool:
    """Handlebars' ``isEmpty`` (``#with``): like falsy, but 0 is not empty."""
    return is_falsy(value, include_zero=True)


def _js_number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)
    mantissa, _, exponent = text.partition("e")
    if not exponent:
        return text
    power = int(exponent)
    if -7 < power < 21:
        return format(Decimal(text), "f")
    return f"{mantissa}e{'+' if power > 0 else '-'}{abs(power)}"


def _strict_equal(left: Any, right: Any) -> bool:
    """JavaScript's ``===`` on data values (Dotprompt's ``ifEquals``)."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    numbers = (int, float)
    if isinstance(left, numbers) and isinstance(right, numbers):
        return left == right
    if isinstance(left, str) and isinstance(right, str):
        return str.__eq__(left, right)
    if left is None or right is None or left is UNDEFINED or right is UNDEFINED:
        return left is right
    return left is right  # objects and lists compare by identity


_HTML_ESCAPES = str.maketrans({"&": "&amp;", '"': "&quot;", "<": "&lt;", ">": "&gt;"})
_HANDLEBARS_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        '"': "&quot;",
        "'": "&#x27;",
        "`": "&#x60;",
        "=": "&#x3D;",
    }
)


# -- rendering ---------------------------------------------------------------------------------


@dataclass
class _Budget:
    iterations: int = MAX_ITERATIONS
    chars: int = MAX_RENDERED_CHARS

    def iterate(self, line: int, count: int = 1) -> None:
        self.iterations -= count
        if self.iterations < 0:
            raise HandlebarsError(
                f"loops in this template would run more than {MAX_ITERATIONS:,} iterations", line
            )

    def spend(self, count: int, line: int) -> None:
        self.chars -= count
        if self.chars < 0:
            raise HandlebarsError(
                f"rendered output is larger than {MAX_RENDERED_CHARS:,} characters", line
            )


@dataclass(frozen=True)
class _Data:
    values: Mapping[str, Any]
    parent: _Data | None = None


@dataclass(frozen=True)
class _Env:
    depths: tuple[Any, ...]  # depths[0] is ``this``
    data: _Data
    block_params: tuple[Mapping[str, Any], ...] = ()

    def with_context(self, context: Any, data: _Data | None = None) -> _Env:
        depths = self.depths if context is self.depths[0] else (context, *self.depths)
        return _Env(depths, data or self.data, self.block_params)


@dataclass
class _PartialCache:
    loader: PartialLoader | None
    dialect: Dialect
    helpers: frozenset[str]
    escape_html: bool
    app_helpers: bool = False
    parsed: dict[str, Template | None] = field(default_factory=dict)

    @classmethod
    def like(cls, template: Template, loader: PartialLoader | None) -> _PartialCache:
        """Partials parse the way ``template`` was parsed."""
        return cls(
            loader, template.dialect, template.helpers, template.escape_html, template.app_helpers
        )

    def get(self, name: str, line: int) -> Template | None:
        """The partial ``name``, or None when the project has no such partial (the
        application may define it: its output is dynamic)."""
        if name in self.parsed:
            return self.parsed[name]
        if self.loader is None:
            raise HandlebarsError(f"partial '{name}' not found (no partials here)", line)
        try:
            source = self.loader(name)
        except LookupError as err:
            reason = err.args[0] if err.args else ""
            raise HandlebarsError(
                f"partial '{name}' cannot be used" + (f": {reason}" if reason else ""), line
            ) from None
        template = None
        if source is not None:
            try:
                template = parse_handlebars(
                    source,
                    dialect=self.dialect,
                    helpers=self.helpers,
                    escape_html=self.escape_html,
                    app_helpers=self.app_helpers,
                )
            except HandlebarsError as err:
                raise _in_partial(name, err, line) from None
        self.parsed[name] = template
        return template


class _PartialDepthError(HandlebarsError):
    """Partials nested too deeply: reported once, at the outermost ``{{> partial}}``."""


def _in_partial(name: str, err: HandlebarsError, line: int) -> HandlebarsError:
    if isinstance(err, _PartialDepthError):
        return _PartialDepthError(err.message, line)
    return HandlebarsError(f"in partial '{name}', line {err.line}: {err.message}", line)


class _Renderer:
    def __init__(
        self, template: Template, partials: _PartialCache, functions: Mapping[str, Any]
    ) -> None:
        self.dialect = template.dialect
        self.known = template.helpers
        self.functions = functions
        self.partials = partials
        self.budget = _Budget()
        self.out: list[Chunk] = []
        self.partial_depth = 0
        self.escape: dict[int, str] | None = None
        if template.escape_html:
            is_mustache = template.dialect is Dialect.MUSTACHE
            self.escape = _HTML_ESCAPES if is_mustache else _HANDLEBARS_ESCAPES

    def emit(self, text: str, line: int) -> None:
        if text:
            self.budget.spend(len(text), line)
            self.out.append(text)

    def program(self, program: Program | None, env: _Env) -> None:
        if program is None:
            return
        for node in program.body:
            check_deadline(node.line)
            if isinstance(node, Content):
                self.emit(node.value, node.line)
            elif isinstance(node, Mustache):
                self.mustache(node, env)
            elif isinstance(node, Block):
                self.block(node, env)
            elif isinstance(node, Partial):
                self.partial(node, env)

    # -- expressions

    def value(self, expr: Expr, env: _Env) -> Any:
        if isinstance(expr, LiteralExpr):
            return expr.value
        if isinstance(expr, SubExpr):
            assert isinstance(expr.path, PathExpr)
            name = expr.path.parts[0]
            return self.inline_helper(name, expr.params, expr.hash, env, expr.line, as_value=True)
        return self.path(expr, env)

    def path(self, path: PathExpr, env: _Env) -> Any:
        parts = path.parts
        if path.is_data:
            data: _Data | None = env.data
            for _ in range(path.depth):
                data = data.parent if data is not None else None
            if data is None or not parts:
                return UNDEFINED
            current = data.values.get(parts[0], UNDEFINED)
            return self.walk(current, parts[1:])
        if not path.depth and not path.is_scoped and parts:
            for frame in env.block_params:
                if parts[0] in frame:
                    return self.walk(frame[parts[0]], parts[1:])
        if self.dialect is Dialect.MUSTACHE and not path.depth and parts:
            for context in env.depths:
                found = self.walk(context, parts)
                if found is not UNDEFINED:
                    return found
            return UNDEFINED
        if path.depth >= len(env.depths):
            return UNDEFINED
        return self.walk(env.depths[path.depth], parts)

    def walk(self, value: Any, parts: Sequence[str]) -> Any:
        for part in parts:
            value = _lookup(value, part)
            if value is UNDEFINED:
                return UNDEFINED
        return value

    def hash(self, pairs: tuple[tuple[str, Expr], ...], env: _Env) -> dict[str, Any]:
        return {key: self.value(expr, env) for key, expr in pairs}

    # -- text

    def text(self, value: Any, line: int, depth: int = 0) -> str:
        if value is None or value is UNDEFINED or _is_code(value):
            return ""
        if self.dialect is Dialect.MUSTACHE:
            return self.python_text(value, line)
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            return _js_number(value)
        if isinstance(value, str):
            return str.__str__(value)
        if isinstance(value, list | tuple):
            if depth > MAX_VALUE_DEPTH:
                raise HandlebarsError("a list is nested too deeply to print", line)
            pieces = []
            size = 0
            for item in value:
                piece = self.text(item, line, depth + 1)
                size += len(piece) + 1
                if size > self.budget.chars:
                    self.budget.spend(size, line)  # raises: over the output limit
                pieces.append(piece)
            return ",".join(pieces)
        if isinstance(value, Mapping):
            return "[object Object]"
        return str(value)

    def python_text(self, value: Any, line: int) -> str:
        """chevron prints ``str(value)``; structures through a bounded ``repr``."""
        if isinstance(value, str):
            return str.__str__(value)
        if isinstance(value, list | tuple | Mapping):
            return _bounded_dump(value, line, self.budget, style="python")
        return str(value)

    # -- statements

    def mustache(self, node: Mustache, env: _Env) -> None:
        if node.helper is not None:
            result = self.inline_helper(node.helper, node.params, node.hash, env, node.line)
            if isinstance(result, Marker):
                self.out.append(result)
                return
            text = str(result)
            if node.helper == "lookup" and node.escaped and self.escape is not None:
                text = text.translate(self.escape)
            self.emit(text, node.line)
            return
        text = self.text(self.value(node.path, env), node.line)
        if node.escaped and self.escape is not None:
            text = text.translate(self.escape)
        self.emit(text, node.line)

    def inline_helper(
        self,
        name: str,
        params: tuple[Expr, ...],
        pairs: tuple[tuple[str, Expr], ...],
        env: _Env,
        line: int,
        *,
        as_value: bool = False,
    ) -> Any:
        if name not in self.known:  # the application's: its output is the function's value
            found = self.functions.get(helper_function(name), UNDEFINED)
            return found if as_value else self.text(found, line)
        args = [self.value(expr, env) for expr in params]
        options = self.hash(pairs, env)
        if name == "lookup":
            key = args[1]
            if isinstance(key, bool) or key is None or key is UNDEFINED:
                return UNDEFINED
            found = _lookup(args[0], self.text(key, line))
            return found if as_value else self.text(found, line)
        if name == "log":
            return ""
        if name == "json":
            return _bounded_dump(args[0], line, self.budget, indent=options.get("indent"))
        if name == "role":
            role = args[0]
            if not isinstance(role, str) or not _ROLE_NAME.fullmatch(role):
                raise HandlebarsError(
                    f'role must be a lowercase name like "system", not {role!r}', line
                )
            return Marker("role", str.__str__(role))
        if name == "history":
            return Marker("history")
        if name == "section":
            return Marker("section", self.text(args[0], line))
        if name == "media":
            content_type = options.get("contentType")
            return Marker(
                "media",
                self.text(options.get("url"), line),
                self.text(content_type, line) if content_type else "",
            )
        raise HandlebarsError(f"'{name}' cannot be used here", line)  # pragma: no cover

    def block(self, node: Block, env: _Env) -> None:
        helper = node.helper
        if helper is None:
            self.section(node, env)
            return
        if helper not in self.known:
            self.app_block(node, env)
            return
        if helper == "role":  # the role, then the text (which Dotprompt's runtime drops)
            self.out.append(self.inline_helper(helper, node.params, node.hash, env, node.line))
            self.program(node.program, env)
            return
        args = [self.value(expr, env) for expr in node.params]
        options = self.hash(node.hash, env)
        if helper in {"if", "unless"}:
            falsy = is_falsy(args[0], include_zero=bool(options.get("includeZero")))
            chosen = node.inverse if falsy == (helper == "if") else node.program
            self.program(chosen, env)
        elif helper in {"ifEquals", "unlessEquals"}:
            equal = _strict_equal(args[0], args[1])
            chosen = node.program if equal == (helper == "ifEquals") else node.inverse
            self.program(chosen, env)
        elif helper == "with":
            if _is_empty(args[0]):
                self.program(node.inverse, env)
            else:
                self.program(node.program, self.scoped(env, args[0], node.program, (args[0],)))
        elif helper == "message":
            role = self.text(options.get("role"), node.line)
            if not _SK_ROLE.fullmatch(role):
                # A role the sample does not give (a capped history item): counted as user.
                role = "user"
            self.out.append(f'<message role="{role}">')
            self.program(node.program, env)
            self.out.append("</message>")
        else:  # each
            self.each(node, args[0], env)

    def app_block(self, node: Block, env: _Env) -> None:
        """A block helper of the application's: its main block once, the worst case (what it
        does with ``{{else}}`` is unknown). Block parameters it would pass are unknown."""
        program = node.program or node.inverse
        names = program.block_params if program is not None else ()
        inner = env
        if names:
            frame = dict.fromkeys(names, UNDEFINED)
            inner = _Env(env.depths, env.data, (frame, *env.block_params))
        self.program(program, inner)

    def scoped(
        self, env: _Env, context: Any, program: Program | None, values: tuple[Any, ...]
    ) -> _Env:
        inner = env.with_context(context)
        names = program.block_params if program is not None else ()
        if names:
            frame = dict(zip(names, values, strict=False))
            inner = _Env(inner.depths, inner.data, (frame, *inner.block_params))
        return inner

    def each(self, node: Block, value: Any, env: _Env) -> None:
        items = _iterate(value)
        count = 0
        sized = isinstance(value, list | tuple | Mapping)
        if items is not None and sized:
            self.budget.iterate(node.line, len(value))  # a huge list fails before it starts
        if items is not None:
            previous: tuple[Any, Any] | None = None
            for pair in items:
                if not sized:
                    self.budget.iterate(node.line)
                if previous is not None:
                    self.iteration(node, previous, count - 1, False, env)
                previous = pair
                count += 1
            if previous is not None:
                self.iteration(node, previous, count - 1, True, env)
        if count == 0:
            self.program(node.inverse, env)

    def iteration(
        self,
        node: Block,
        pair: tuple[Any, Any],
        index: int,
        last: bool,
        env: _Env,
    ) -> None:
        key, item = pair
        data = _Data(
            {
                "root": env.data.values.get("root"),
                "index": index,
                "key": key,
                "first": index == 0,
                "last": last,
            },
            env.data,
        )
        inner = env.with_context(item, data)
        names = node.program.block_params if node.program is not None else ()
        if names:
            frame = dict(zip(names, (item, key), strict=False))
            inner = _Env(inner.depths, inner.data, (frame, *inner.block_params))
        self.program(node.program, inner)

    def section(self, node: Block, env: _Env) -> None:
        """``{{#name}}`` with no helper: Handlebars' ``blockHelperMissing`` (or a Mustache
        section): true renders once, a list loops, other truthy values become the context."""
        value = self.value(node.path, env)
        if self.dialect is Dialect.MUSTACHE:
            falsy = _python_falsy(value)
        else:
            falsy = value is False or value is None or value is UNDEFINED
        if value is True:
            self.program(node.program, env)
        elif falsy or (_is_list_like(value) and _is_empty_list(value)):
            self.program(node.inverse, env)
        elif _is_list_like(value):
            if node.program is not None:
                self.each(node, value, env)
        else:
            self.program(node.program, self.scoped(env, value, node.program, (value,)))

    def partial(self, node: Partial, env: _Env) -> None:
        if self.partial_depth >= MAX_PARTIAL_DEPTH:
            raise _PartialDepthError(
                f"partials nested more than {MAX_PARTIAL_DEPTH} deep (does '{node.name}' "
                "include itself?)",
                node.line,
            )
        template = self.partials.get(node.name, node.line)
        if template is None:  # not in the project: the application's (definePartial)
            found = self.functions.get(partial_function(node.name), UNDEFINED)
            text = self.text(found, node.line)
            if node.indent and text:
                text = "".join(str(chunk) for chunk in _indent([text], node.indent))
            self.emit(text, node.line)
            return
        context = self.value(node.params[0], env) if node.params else env.depths[0]
        if node.hash:
            extra = self.hash(node.hash, env)
            base = dict(context) if isinstance(context, Mapping) else {}
            context = {**base, **extra}
        inner = _Env(env.with_context(context).depths, env.data)  # no block params inside
        saved = self.out
        self.out = []
        self.partial_depth += 1
        try:
            self.program(template.program, inner)
        except HandlebarsError as err:
            raise _in_partial(node.name, err, node.line) from None
        except RenderTimeoutError as err:  # stopped in the partial: at the tag that called it
            err.line = node.line
            raise
        finally:
            self.partial_depth -= 1
            produced, self.out = self.out, saved
        if node.indent:
            produced = _indent(produced, node.indent)
            self.budget.spend(sum(len(c) for c in produced if isinstance(c, str)), node.line)
        self.out.extend(produced)


def _is_list_like(value: Any) -> bool:
    if isinstance(value, list | tuple):
        return True
    return isinstance(value, str) and type(value).__iter__ is not str.__iter__


def _is_empty_list(value: Any) -> bool:
    return isinstance(value, list | tuple) and not value


def _python_falsy(value: Any) -> bool:
    if value is UNDEFINED or value is None:
        return True
    if isinstance(value, bool | int | float | list | tuple | Mapping) or type(value) is str:
        return not value
    return False


def _indent(chunks: list[Chunk], indent: str) -> list[Chunk]:
    """Handlebars indents every line of a standalone partial but a final empty one."""
    out: list[Chunk] = []
    at_line_start = True
    for chunk in chunks:
        if isinstance(chunk, Marker):
            if at_line_start:
                out.append(indent)
                at_line_start = False
            out.append(chunk)
            continue
        for index, piece in enumerate(chunk.split("\n")):
            if index > 0:
                if at_line_start:
                    out.append(indent)
                out.append("\n")
                at_line_start = True
            if piece:
                if at_line_start:
                    out.append(indent)
                    at_line_start = False
                out.append(piece)
    return out


def _bounded_dump(
    value: Any,
    line: int,
    budget: _Budget,
    *,
    indent: Any = None,
    style: Literal["json", "python"] = "json",
) -> str:
    """``JSON.stringify(value, null, indent)`` (or Python's ``repr``, for Mustache), refusing
    values nested too deeply or longer than the output budget allows."""
    if value is UNDEFINED or _is_code(value):
        return ""
    if isinstance(indent, bool) or indent is None:
        pad = ""
    elif isinstance(indent, int | float):
        pad = " " * max(0, min(10, int(indent)))
    else:
        pad = str(indent)[:10]
    out: list[str] = []
    size = 0

    def write(text: str) -> None:
        nonlocal size
        size += len(text)
        if size > budget.chars:
            raise HandlebarsError(
                f"rendered output is larger than {MAX_RENDERED_CHARS:,} characters", line
            )
        out.append(text)

    def scalar(item: Any) -> str:
        if style == "python":
            return repr(str.__str__(item)) if isinstance(item, str) else repr(item)
        if item is None or item is UNDEFINED:
            return "null"
        if isinstance(item, bool):
            return "true" if item else "false"
        if isinstance(item, int):
            return str(item)
        if isinstance(item, float):
            return "null" if math.isnan(item) or math.isinf(item) else _js_number(item)
        text = str.__str__(item) if isinstance(item, str) else str(item)
        return json.dumps(text, ensure_ascii=False)

    def encode(item: Any, level: int) -> None:
        if level > MAX_VALUE_DEPTH:
            raise HandlebarsError(
                "a value is nested too deeply to print (a recursive YAML anchor?)", line
            )
        if style == "python":
            first_sep, sep, colon = "", ", ", ": "
        elif pad:
            first_sep = "\n" + pad * (level + 1)
            sep, colon = "," + first_sep, ": "
        else:
            first_sep, sep, colon = "", ",", ":"
        closing = "\n" + pad * level if pad and style == "json" else ""
        if isinstance(item, Mapping):
            entries = [(k, v) for k, v in item.items() if not (v is UNDEFINED or _is_code(v))]
            if not entries:
                write("{}")
                return
            write("{")
            for index, (key, entry) in enumerate(entries):
                write(sep if index else first_sep)
                write(scalar(str(key)) if style == "json" else repr(key))
                write(colon)
                encode(entry, level + 1)
            write(closing + "}")
        elif isinstance(item, list | tuple):
            if not item:
                write("[]")
                return
            write("[")
            for index, entry in enumerate(item):
                write(sep if index else first_sep)
                encode(UNDEFINED if _is_code(entry) else entry, level + 1)
            write(closing + "]")
        else:
            write(scalar(item))

    encode(value, 0)
    return "".join(out)


def render_handlebars(
    template: Template,
    context: Mapping[str, Any],
    *,
    partials: PartialLoader | None = None,
    functions: Mapping[str, Any] | None = None,
) -> tuple[Chunk, ...]:
    """Render ``template`` with ``context`` into text and markers.

    ``functions``: the output of what the application provides, by function name (see
    ``read_variables``): a helper's calls and a partial the project does not hold render as
    its value, nothing when it has none. Raises ``HandlebarsError`` (with its line) for
    anything the template cannot do: a partial outside the project, a loop or output over the
    limits, partials nested too deeply.
    """
    cache = _PartialCache.like(template, partials)
    renderer = _Renderer(template, cache, functions or {})
    env = _Env((context,), _Data({"root": context}))
    try:
        renderer.program(template.program, env)
    except RecursionError:
        raise HandlebarsError(
            "the template nests too deeply to render", template.first_line
        ) from None
    return tuple(renderer.out)


# -- variables a template reads ---------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Scope:
    """What ``this`` is, statically: the root context (whose fields are the inputs), possibly
    with some names shadowed by a partial's hash arguments, or some other value. Compared by
    identity, as Handlebars compares contexts: ``{{#with this}}`` keeps the scope, any other
    value is a new one."""

    is_root: bool
    shadowed: frozenset[str] = frozenset()

    @property
    def signature(self) -> tuple[bool, frozenset[str]]:
        return (self.is_root, self.shadowed)


_ROOT = _Scope(True)


def _other() -> _Scope:
    return _Scope(False)


@dataclass(frozen=True)
class VariableReads:
    """The root-level names a template reads, with the first line each is read on, and the
    line of the first place that reads the whole input (``{{json this}}``), if any.

    ``functions``: what the application provides, by function name (``helper_function``,
    ``partial_function``), with the first line each is used on: helpers that are not built
    in, and partials the project does not hold. ``block_functions``: those only used as
    block helpers (their output is their block, rendered). ``warnings``: from the template
    and the partials it includes (a partial's at the line that includes it)."""

    names: Mapping[str, int]
    whole_input_line: int | None = None
    functions: Mapping[str, int] = field(default_factory=dict)
    block_functions: frozenset[str] = frozenset()
    warnings: tuple[LineWarning, ...] = ()


class _Reader:
    def __init__(self, template: Template, partials: _PartialCache) -> None:
        self.dialect = template.dialect
        self.known = template.helpers
        self.partials = partials
        self.names: dict[str, int] = {}
        self.functions: dict[str, int] = {}
        self.block_uses: set[str] = set()
        self.other_uses: set[str] = set()
        self.warnings: dict[LineWarning, None] = dict.fromkeys(template.warnings)
        self.partial_warnings: set[str] = set()
        self.whole_line: int | None = None
        self.active: set[tuple[str, tuple[tuple[bool, frozenset[str]], ...]]] = set()
        self.call_line: int | None = None

    def record(self, name: str, line: int) -> None:
        line = self.call_line or line
        if name not in self.names or line < self.names[name]:
            self.names[name] = line

    def function(self, name: str, line: int, *, block: bool = False) -> None:
        line = self.call_line or line
        if name not in self.functions or line < self.functions[name]:
            self.functions[name] = line
        (self.block_uses if block else self.other_uses).add(name)

    def whole(self, line: int) -> None:
        line = self.call_line or line
        if self.whole_line is None or line < self.whole_line:
            self.whole_line = line

    def program(
        self, program: Program | None, scopes: tuple[_Scope, ...], params: frozenset[str]
    ) -> None:
        if program is None:
            return
        for node in program.body:
            check_deadline(node.line)
            if isinstance(node, Mustache):
                self.statement(node.helper, node.path, node.params, node.hash, scopes, params)
                if node.helper is None:
                    self.value_read(node.path, scopes, params, node.line)
                elif node.helper not in self.known:
                    self.function(helper_function(node.helper), node.line)
            elif isinstance(node, Block):
                self.block(node, scopes, params)
            elif isinstance(node, Partial):
                self.partial(node, scopes, params)

    def statement(
        self,
        helper: str | None,
        path: Expr,
        params: tuple[Expr, ...],
        pairs: tuple[tuple[str, Expr], ...],
        scopes: tuple[_Scope, ...],
        block_params: frozenset[str],
    ) -> None:
        if helper is None:
            return
        for expr in (*params, *(value for _, value in pairs)):
            if helper in {"if", "unless", "with"}:
                self.expr(expr, scopes, block_params)
            else:
                self.value_read(expr, scopes, block_params, _line_of(expr, 1))

    def value_read(
        self, expr: Expr, scopes: tuple[_Scope, ...], params: frozenset[str], line: int
    ) -> None:
        """``expr`` is used as data (printed, iterated, compared): the root itself counts as
        a read of the whole input."""
        if self.expr(expr, scopes, params).is_root:
            self.whole(line)

    def expr(self, expr: Expr, scopes: tuple[_Scope, ...], params: frozenset[str]) -> _Scope:
        if isinstance(expr, LiteralExpr):
            return _other()
        if isinstance(expr, SubExpr):
            for item in (*expr.params, *(value for _, value in expr.hash)):
                self.value_read(item, scopes, params, expr.line)
            name = expr.path.simple_name if isinstance(expr.path, PathExpr) else None
            if name is not None and name not in self.known:
                self.function(helper_function(name), expr.line)
            return _other()
        parts = expr.parts
        if expr.is_data:
            if parts and parts[0] == "root" and not expr.depth:
                if len(parts) == 1:
                    return _ROOT
                self.record(parts[1], expr.line)
            return _other()
        if not expr.depth and not expr.is_scoped and parts and parts[0] in params:
            return _other()
        if self.dialect is Dialect.MUSTACHE and not expr.depth and parts:
            scope = scopes[0] if scopes[0].is_root else None
            if scope is not None and parts[0] not in scope.shadowed:
                self.record(parts[0], expr.line)
            return _other()
        if expr.depth >= len(scopes):
            return _other()
        scope = scopes[expr.depth]
        if not parts:
            return scope
        if scope.is_root and parts[0] not in scope.shadowed:
            self.record(parts[0], expr.line)
        return _other()

    def block(self, node: Block, scopes: tuple[_Scope, ...], params: frozenset[str]) -> None:
        helper = node.helper
        inner_params = params | set(node.program.block_params if node.program else ())
        if helper is None:
            self.value_read(node.path, scopes, params, node.line)
            self.program(node.program, (_other(), *scopes), inner_params)
            self.program(node.inverse, scopes, params)
            return
        self.statement(helper, node.path, node.params, node.hash, scopes, params)
        if helper not in self.known:
            self.function(helper_function(helper), node.line, block=True)
        if helper == "with":
            target = self.expr(node.params[0], scopes, params)
            inner = scopes if target is scopes[0] else (target, *scopes)
            self.program(node.program, inner, inner_params)
        elif helper == "each":
            self.program(node.program, (_other(), *scopes), inner_params)
        else:
            self.program(node.program, scopes, inner_params)
        self.program(node.inverse, scopes, params)

    def partial(self, node: Partial, scopes: tuple[_Scope, ...], params: frozenset[str]) -> None:
        for _, value in node.hash:
            self.value_read(value, scopes, params, node.line)
        scope = self.expr(node.params[0], scopes, params) if node.params else scopes[0]
        if node.hash:
            shadowed = scope.shadowed | {key for key, _ in node.hash}
            scope = _Scope(scope.is_root, frozenset(shadowed))
        inner = scopes if scope is scopes[0] else (scope, *scopes)
        key = (node.name, tuple(scope.signature for scope in inner[:2]))
        if key in self.active or len(self.active) >= MAX_PARTIAL_DEPTH:
            return
        template = self.partials.get(node.name, node.line)
        if template is None:
            self.function(partial_function(node.name), node.line)
            return
        for message, line in template.warnings:
            text = f"in partial '{node.name}', line {line}: {message}"
            if text not in self.partial_warnings:  # once, where the partial is first used
                self.partial_warnings.add(text)
                self.warnings.setdefault((text, self.call_line or node.line))
        outer_call = self.call_line
        self.call_line = outer_call or node.line
        self.active.add(key)
        try:
            self.program(template.program, inner, frozenset())
        except HandlebarsError as err:
            raise _in_partial(node.name, err, node.line) from None
        finally:
            self.active.discard(key)
            self.call_line = outer_call


def _line_of(expr: Expr, default: int) -> int:
    if isinstance(expr, PathExpr | SubExpr):
        return expr.line
    return default


def read_variables(template: Template, *, partials: PartialLoader | None = None) -> VariableReads:
    """The root-level names ``template`` reads (first path segment of a lookup in the root
    context), each with the first line it is read on. Not variables: ``this`` fields inside
    ``#each``/``#with``, ``@data``, block parameters, helper names. Partials are followed (a
    name read in a partial is reported on the line of the ``{{> partial}}``); a partial the
    project does not hold is a function, like a helper of the application's. Raises
    ``HandlebarsError`` if a partial cannot be used or parsed."""
    reader = _Reader(template, _PartialCache.like(template, partials))
    try:
        reader.program(template.program, (_ROOT,), frozenset())
    except RecursionError:
        raise HandlebarsError(
            "the template nests too deeply to analyse", template.first_line
        ) from None
    return VariableReads(
        dict(reader.names),
        reader.whole_line,
        functions=dict(reader.functions),
        block_functions=frozenset(reader.block_uses - reader.other_uses),
        warnings=tuple(reader.warnings),
    )


def partial_names(template: Template) -> tuple[str, ...]:
    """The partials ``template`` names, in order of first use (not following them)."""
    names: dict[str, None] = {}

    def visit(program: Program | None) -> None:
        for node in program.body if program is not None else ():
            if isinstance(node, Partial):
                names.setdefault(node.name)
            elif isinstance(node, Block):
                visit(node.program)
                visit(node.inverse)

    visit(template.program)
    return tuple(names)


# -- Dotprompt messages -----------------------------------------------------------------------


@dataclass(frozen=True)
class DotpromptMessage:
    """One message as Dotprompt builds it: a role and its text parts (whitespace-only parts
    between media and section markers are dropped, as Dotprompt does)."""

    role: str
    texts: tuple[str, ...]
    media: tuple[str, ...] = ()


def split_dotprompt_messages(chunks: Sequence[Chunk]) -> tuple[DotpromptMessage, ...]:
    """Dotprompt's ``toMessages``: text before any ``{{role}}`` is the user's; a role marker
    starts a new message (or renames the current one if it holds only whitespace);
    ``{{history}}`` inserts the conversation so far and starts a ``model`` message."""
    sources: list[tuple[list[str], list[Chunk]]] = [(["user"], [])]
    run: list[Chunk] = []

    def flush() -> None:
        if any(isinstance(c, Marker) or c.strip() for c in run):
            sources[-1][1].extend(run)
        run.clear()

    for chunk in chunks:
        if isinstance(chunk, Marker) and chunk.kind == "role":
            flush()
            role, content = sources[-1]
            if content:
                sources.append(([chunk.value], []))
            else:
                role[0] = chunk.value
        elif isinstance(chunk, Marker) and chunk.kind == "history":
            flush()
            sources.append((["model"], []))
        else:
            run.append(chunk)
    flush()
    messages = []
    for role, content in sources:
        if not content:
            continue
        texts: list[str] = []
        media: list[str] = []
        buffer: list[str] = []
        for chunk in [*content, Marker("section")]:
            if isinstance(chunk, Marker):
                joined = "".join(buffer)
                if joined.strip():
                    texts.append(joined)
                buffer.clear()
                if chunk.kind == "media":
                    media.append(chunk.value)
            else:
                buffer.append(chunk)
        messages.append(DotpromptMessage(role[0], tuple(texts), tuple(media)))
    return tuple(messages)
