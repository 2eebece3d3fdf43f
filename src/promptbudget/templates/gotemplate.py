"""Go ``text/template`` prompts: ``{{.Name}}``, ``{{range .Items}}``, ``{{if}}``, ``{{with}}``,
``{{end}}``, ``{{- trim -}}``, ``{{/* comments */}}``, ``{{define}}``/``{{template}}``.

Parsed the way Go's parser reads a template (its errors, Go's wording where it matters), and
executed over sample data only: fields look into mappings, ``range`` walks lists and
mappings, functions are Go's builtins; a function Go does not have is the application's
(``template.Funcs``), and its output is a value like any variable (a cap, or unbounded). A
capped value renders as a slot; ``range`` over it renders its body once as a part of it.
Execution is bounded in steps and output size.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from promptbudget.templates.deadline import check_deadline

MAX_STEPS = 200_000
MAX_OUTPUT_CHARS = 4_000_000
MAX_DEPTH = 100

_BUILTIN_NAMES = "and call html index slice js len not or print printf println urlquery"
BUILTINS = frozenset((_BUILTIN_NAMES + " eq ne lt le gt ge").split())
_KEYWORDS = frozenset(
    ["if", "else", "end", "range", "with", "define", "template", "block", "break", "continue"]
)


class GoTemplateError(ValueError):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


# -- syntax tree -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    """``.A.B`` (``root`` "dot"), ``$x.A`` (``root`` "$x"), ``$.A`` (``root`` "$")."""

    root: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Identifier:
    name: str  # a function


@dataclass(frozen=True)
class Command:
    args: tuple[Any, ...]  # Field | Literal | Identifier | Pipeline


@dataclass(frozen=True)
class Pipeline:
    commands: tuple[Command, ...]
    declare: tuple[str, ...] = ()  # $x := ... / $i, $e := range ...
    line: int = 1


@dataclass
class Node:
    kind: str  # text, action, if, range, with, template, break, continue
    line: int
    text: str = ""
    pipeline: Pipeline | None = None
    body: list[Node] = field(default_factory=list)
    otherwise: list[Node] = field(default_factory=list)
    name: str = ""


@dataclass(frozen=True)
class GoTemplate:
    body: tuple[Node, ...]
    defines: Mapping[str, tuple[Node, ...]]


# -- lexing ----------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s+|(?P<str>"(?:[^"\\\n]|\\.)*")|(?P<raw>`[^`]*`)|(?P<char>'(?:[^'\\]|\\.)+')
    |(?P<num>[+-]?(?:0[xX][0-9a-fA-F_]+|\d[\d_]*(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+))
    |(?P<field>(?:\.[A-Za-z_]\w*)+|\.)|(?P<var>\$\w*(?:\.[A-Za-z_]\w*)*)
    |(?P<ident>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)|(?P<op>:=|=|\||\(|\)|,)""",
    re.VERBOSE,
)


def _tokens(content: str, line: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    while position < len(content):
        match = _TOKEN.match(content, position)
        if match is None or match.end() == position:
            bad = content[position]
            if bad in "\"'`":
                raise GoTemplateError("unterminated quoted string", line)
            raise GoTemplateError(f'unexpected "{bad}" in command', line)
        kind = match.lastgroup
        if kind is not None:
            out.append((kind, match.group(kind)))
        position = match.end()
    return out


def _unquote(kind: str, text: str, line: int) -> Any:
    if kind == "raw":
        return text[1:-1]
    if kind == "str":
        try:
            return bytes(text[1:-1], "utf-8").decode("unicode_escape")
        except UnicodeDecodeError as err:
            raise GoTemplateError(f"bad string {text}", line) from err
    if kind == "char":
        inner = bytes(text[1:-1], "utf-8").decode("unicode_escape")
        return ord(inner[0]) if inner else 0
    cleaned = text.replace("_", "")
    try:
        return int(cleaned, 0)
    except ValueError:
        return float(cleaned)


# -- parsing ---------------------------------------------------------------------------------

_ACTION_OPEN = re.compile(r"\{\{(-[ \t\r\n])?")


def parse_go(body: str, first_line: int = 1) -> GoTemplate:
    """Parse ``body``. Raises ``GoTemplateError`` where Go's parser would."""
    items: list[tuple[str, str, int]] = []  # (kind, text or action, line)
    position = 0
    line = first_line  # the line ``position`` is on (counted as it moves: linear time)

    def advance(to: int) -> None:
        nonlocal position, line
        line += body.count("\n", position, to)
        position = to

    while True:
        match = _ACTION_OPEN.search(body, position)
        text = body[position : match.start() if match else len(body)]
        text_line = line
        if match is None:
            if text:
                items.append(("text", text, text_line))
            break
        if match.group(1) is not None:
            text = text.rstrip(" \t\r\n")
        if text:
            items.append(("text", text, text_line))
        advance(match.start())
        action_line = line
        end = _action_end(body, match.end(), action_line)
        content = body[match.end() : end]
        trim_right = content.endswith((" -", "\t-", "\n-", "\r-"))
        if trim_right:
            content = content[:-2]
        after = end + 2
        if trim_right:
            while after < len(body) and body[after] in " \t\r\n":
                after += 1
        advance(after)
        items.append(("action", content, action_line))
    defines: dict[str, tuple[Node, ...]] = {}
    parser = _Parser(items, defines)
    try:
        nodes = parser.parse_list(top=True)
    except RecursionError as err:  # parentheses nested thousands deep
        raise GoTemplateError("nested too deeply to parse", first_line) from err
    return GoTemplate(tuple(nodes), defines)


def _action_end(body: str, start: int, line: int) -> int:
    """The index of the ``}}`` closing the action that starts at ``start`` (quotes and
    comments skipped)."""
    index = start
    stripped = body[start:].lstrip(" \t\r\n")
    if stripped.startswith("/*"):
        close = body.find("*/", start)
        if close < 0:
            raise GoTemplateError("unclosed comment", line)
        end = body.find("}}", close)
        if end < 0 or body[close + 2 : end].strip(" -") != "":
            raise GoTemplateError("comment ends before closing delimiter", line)
        return end
    while index < len(body):
        char = body[index]
        if char == "}" and body.startswith("}}", index):
            return index
        if char in "\"'`":
            close = index + 1
            while close < len(body) and body[close] != char:
                if body[close] == "\\" and char != "`":
                    close += 1
                elif body[close] == "\n" and char != "`":
                    raise GoTemplateError("unterminated quoted string", line)
                close += 1
            if close >= len(body):
                raise GoTemplateError("unterminated quoted string", line)
            index = close + 1
            continue
        index += 1
    raise GoTemplateError("unclosed action", line)


class _Parser:
    def __init__(
        self, items: list[tuple[str, str, int]], defines: dict[str, tuple[Node, ...]]
    ) -> None:
        self.items = items
        self.index = 0
        self.defines = defines
        self.variables: list[set[str]] = [{"$"}]
        self.depth = 0

    def parse_list(self, *, top: bool = False, ends: tuple[str, ...] = ()) -> list[Node]:
        """Nodes up to an ``{{end}}``/``{{else}}`` (left unconsumed) or the end of input."""
        nodes: list[Node] = []
        while self.index < len(self.items):
            kind, text, line = self.items[self.index]
            if kind == "text":
                nodes.append(Node("text", line, text=text))
                self.index += 1
                continue
            content = text.strip(" \t\r\n")
            if content.startswith("/*"):
                self.index += 1
                continue
            word = re.match(r"[A-Za-z_]\w*", content)
            keyword = word.group(0) if word and word.group(0) in _KEYWORDS else None
            if keyword in ("end", "else"):
                if top or keyword not in ends:
                    raise GoTemplateError(f"unexpected {{{{{keyword}}}}}", line)
                return nodes
            self.index += 1
            nodes.append(self._action(keyword, content, line))
        if not top:
            raise GoTemplateError("unexpected EOF", self.items[-1][2] if self.items else 1)
        return nodes

    def _action(self, keyword: str | None, content: str, line: int) -> Node:
        if keyword is None:
            return Node("action", line, pipeline=self._pipeline(content, line, allow_declare=True))
        rest = content[len(keyword) :]
        if keyword in ("break", "continue"):
            if rest.strip():
                raise GoTemplateError(f"unexpected {rest.strip()} in {{{{{keyword}}}}}", line)
            return Node(keyword, line)
        if keyword in ("if", "range", "with"):
            return self._control(keyword, rest, line)
        if keyword in ("template", "block", "define"):
            tokens = _tokens(rest, line)
            if not tokens or tokens[0][0] not in ("str", "raw"):
                raise GoTemplateError(f"missing name in {{{{{keyword}}}}}", line)
            name = _unquote(tokens[0][0], tokens[0][1], line)
            after = rest[rest.index(tokens[0][1]) + len(tokens[0][1]) :]
            if keyword == "define":
                if after.strip():
                    raise GoTemplateError("unexpected text after define name", line)
                body = self._body(("end",), line)
                self._expect_end(line)
                self.defines[name] = tuple(body)
                return Node("text", line, text="")
            pipeline = self._pipeline(after, line) if after.strip() else None
            if keyword == "block":
                body = self._body(("end",), line)
                self._expect_end(line)
                self.defines.setdefault(name, tuple(body))
            return Node("template", line, pipeline=pipeline, name=name)
        raise GoTemplateError(f"unexpected {keyword}", line)

    def _control(self, keyword: str, rest: str, line: int) -> Node:
        if not rest.strip():
            raise GoTemplateError(f"missing value for {keyword}", line)
        self.depth += 1
        try:
            return self._control_body(keyword, rest, line)
        finally:
            self.depth -= 1

    def _control_body(self, keyword: str, rest: str, line: int) -> Node:
        if self.depth > MAX_DEPTH:
            raise GoTemplateError(f"blocks nested deeper than {MAX_DEPTH}", line)
        self.variables.append(set())
        pipeline = self._pipeline(rest, line, allow_declare=True, is_range=keyword == "range")
        node = Node(keyword, line, pipeline=pipeline)
        node.body = self._body(("end", "else"), line)
        _, text, else_line = self.items[self.index]
        content = text.strip(" \t\r\n")
        self.index += 1
        if content.startswith("else"):
            chained = content[4:].strip()
            if chained.startswith(("if ", "with ")):  # {{else if}}: one {{end}} closes both
                inner = chained.split(None, 1)[0]
                node.otherwise = [self._control(inner, chained[len(inner) :], else_line)]
                self.variables.pop()
                return node
            if chained:
                raise GoTemplateError(f"unexpected {chained} in {{{{else}}}}", else_line)
            node.otherwise = self._body(("end",), line)
            self._expect_end(line)
        self.variables.pop()
        return node

    def _body(self, ends: tuple[str, ...], line: int) -> list[Node]:
        if len(self.variables) > 3 * MAX_DEPTH:
            raise GoTemplateError(f"blocks nested deeper than {MAX_DEPTH}", line)
        self.variables.append(set())
        try:
            return self.parse_list(ends=ends)
        finally:
            self.variables.pop()

    def _expect_end(self, line: int) -> None:
        if self.index >= len(self.items):
            raise GoTemplateError("unexpected EOF", line)
        _, text, end_line = self.items[self.index]
        if text.strip(" \t\r\n") != "end":
            raise GoTemplateError(f"expected end; found {{{{{text.strip()}}}}}", end_line)
        self.index += 1

    def _pipeline(
        self, content: str, line: int, *, allow_declare: bool = False, is_range: bool = False
    ) -> Pipeline:
        tokens = _tokens(content, line)
        declare: list[str] = []
        if allow_declare:
            assign = next(
                (
                    i
                    for i, (kind, text) in enumerate(tokens)
                    if kind == "op" and text in (":=", "=")
                ),
                None,
            )
            if assign is not None and all(
                kind == "var" or (kind == "op" and text == ",") for kind, text in tokens[:assign]
            ):
                declare = [text for kind, text in tokens[:assign] if kind == "var"]
                if len(declare) > (2 if is_range else 1) or not declare:
                    raise GoTemplateError("too many declarations", line)
                tokens = tokens[assign + 1 :]
        commands, rest = self._commands(tokens, line)
        if rest:
            raise GoTemplateError(f"unexpected {rest[0][1]!r} in command", line)
        if not commands:
            raise GoTemplateError("missing value for command", line)
        if tokens and tokens[0][0] == "op" and tokens[0][1] == "=":
            raise GoTemplateError("unexpected = in command", line)
        for name in declare:
            self.variables[-1].add(name.split(".")[0])
        return Pipeline(tuple(commands), tuple(declare), line)

    def _commands(
        self, tokens: list[tuple[str, str]], line: int
    ) -> tuple[list[Command], list[tuple[str, str]]]:
        commands: list[Command] = []
        args: list[Any] = []
        index = 0
        while index < len(tokens):
            kind, text = tokens[index]
            if kind == "op" and text == "|":
                if not args:
                    raise GoTemplateError("missing command before |", line)
                commands.append(Command(tuple(args)))
                args = []
                index += 1
                continue
            if kind == "op" and text == ")":
                break
            if kind == "op" and text == "(":
                inner, rest = self._commands(tokens[index + 1 :], line)
                if not rest or rest[0] != ("op", ")"):
                    raise GoTemplateError("unclosed left paren", line)
                if not inner:
                    raise GoTemplateError("missing value for parenthesized pipeline", line)
                args.append(Pipeline(tuple(inner), (), line))
                index = len(tokens) - len(rest) + 1
                continue
            args.append(self._operand(kind, text, line, first=not args))
            index += 1
        if args:
            commands.append(Command(tuple(args)))
        return commands, tokens[index:]

    def _operand(self, kind: str, text: str, line: int, *, first: bool) -> Any:
        if kind == "field":
            return Field("dot", tuple(part for part in text.split(".") if part))
        if kind == "var":
            head, *names = text.split(".")
            if not any(head in scope for scope in self.variables):
                raise GoTemplateError(f'undefined variable "{head}"', line)
            return Field(head, tuple(names))
        if kind == "ident":
            if text in ("true", "false"):
                return Literal(text == "true")
            if text == "nil":
                return Literal(None)
            if text in _KEYWORDS:
                raise GoTemplateError(f"unexpected <{text}> in command", line)
            if "." in text:
                raise GoTemplateError(f"bad character in {text}", line)
            return Identifier(text)
        if kind in ("str", "raw", "char", "num"):
            return Literal(_unquote(kind, text, line))
        raise GoTemplateError(f"unexpected {text!r} in operand", line)


# -- what a template reads -------------------------------------------------------------------


def read_names(template: GoTemplate) -> tuple[dict[str, int], dict[str, int]]:
    """The top-level fields it reads (``.Name`` where dot is the data, ``$.Name``
    anywhere) and the application functions it calls, each with its first line."""
    names: dict[str, int] = {}
    functions: dict[str, int] = {}
    seen_defines: set[str] = set()

    def operand(arg: Any, at_root: bool, line: int) -> None:
        if isinstance(arg, Field) and arg.names:
            if (arg.root == "dot" and at_root) or arg.root == "$":
                names.setdefault(arg.names[0], line)
        elif isinstance(arg, Identifier) and arg.name not in BUILTINS:
            functions.setdefault(arg.name, line)
        elif isinstance(arg, Pipeline):
            pipeline(arg, at_root)

    def pipeline(value: Pipeline | None, at_root: bool) -> None:
        if value is None:
            return
        for command in value.commands:
            for arg in command.args:
                operand(arg, at_root, value.line)

    def walk(nodes: tuple[Node, ...] | list[Node], at_root: bool) -> None:
        for node in nodes:
            pipeline(node.pipeline, at_root)
            walk(node.body, at_root and node.kind == "if")
            walk(node.otherwise, at_root)
            if node.kind == "template" and node.name in template.defines:
                if node.name not in seen_defines:
                    seen_defines.add(node.name)
                    walk(template.defines[node.name], at_root and _passes_dot(node))
            elif node.kind == "template":
                functions.setdefault(f'template "{node.name}"', node.line)

    walk(template.body, True)
    return names, functions


def _passes_dot(node: Node) -> bool:
    pipeline = node.pipeline
    if pipeline is None or len(pipeline.commands) != 1 or len(pipeline.commands[0].args) != 1:
        return False
    arg = pipeline.commands[0].args[0]
    return isinstance(arg, Field) and arg.root in ("dot", "$") and not arg.names


# -- execution -------------------------------------------------------------------------------


class SlotValue:
    """A capped value: prints as ``marker``; anything read from it is a part of it."""

    def __init__(self, whole: str, part: str) -> None:
        self.whole = whole
        self.part = part


class _Part:
    def __init__(self, marker: str) -> None:
        self.marker = marker


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


class _Missing:
    """No value (Go prints ``<no value>`` for a missing key; here it is not counted)."""


MISSING = _Missing()


@dataclass
class Execution:
    template: GoTemplate
    functions: Mapping[str, Any]  # application function -> its output (str | SlotValue)
    warn: Callable[[str, int], None]
    steps: int = 0
    size: int = 0
    out: list[str] = field(default_factory=list)

    def run(self, data: Mapping[str, Any]) -> str:
        self.nodes(self.template.body, data, {"$": data}, 0)
        return "".join(self.out)

    def emit(self, text: str, line: int) -> None:
        self.size += len(text)
        if self.size > MAX_OUTPUT_CHARS:
            raise GoTemplateError(
                f"rendering produced more than {MAX_OUTPUT_CHARS:,} characters", line
            )
        self.out.append(text)

    def tick(self, line: int) -> None:
        self.steps += 1
        check_deadline(line)
        if self.steps > MAX_STEPS:
            raise GoTemplateError(f"rendering took more than {MAX_STEPS:,} steps", line)

    def nodes(
        self, nodes: tuple[Node, ...] | list[Node], dot: Any, scope: dict[str, Any], depth: int
    ) -> None:
        for node in nodes:
            self.tick(node.line)
            self.node(node, dot, scope, depth)

    def node(self, node: Node, dot: Any, scope: dict[str, Any], depth: int) -> None:
        if node.kind == "text":
            self.emit(node.text, node.line)
        elif node.kind == "action":
            assert node.pipeline is not None
            value = self.pipeline(node.pipeline, dot, scope)
            if not node.pipeline.declare:
                self.emit(printed(value), node.line)
        elif node.kind in ("if", "with"):
            inner = dict(scope)
            assert node.pipeline is not None
            value = self.pipeline(node.pipeline, dot, inner)
            if truthy(value):
                self.nodes(node.body, value if node.kind == "with" else dot, inner, depth)
            else:
                self.nodes(node.otherwise, dot, inner, depth)
        elif node.kind == "range":
            self.range(node, dot, scope, depth)
        elif node.kind == "template":
            if depth >= MAX_DEPTH:
                raise GoTemplateError(f"exceeded maximum template depth ({MAX_DEPTH})", node.line)
            body = self.template.defines.get(node.name)
            if body is None:
                output = self.functions.get(f'template "{node.name}"')
                if output is not None:
                    self.emit(printed(output), node.line)
                return
            value = self.pipeline(node.pipeline, dot, scope) if node.pipeline else None
            self.nodes(body, value, {"$": value}, depth + 1)
        elif node.kind == "break":
            raise _Break
        elif node.kind == "continue":
            raise _Continue

    def range(self, node: Node, dot: Any, scope: dict[str, Any], depth: int) -> None:
        assert node.pipeline is not None
        inner = dict(scope)
        value = self.pipeline(replace_declare(node.pipeline), dot, inner)
        items: Iterator[tuple[Any, Any]]
        if isinstance(value, SlotValue | _Part):
            marker = value.part if isinstance(value, SlotValue) else value.marker
            items = iter([(0, _Part(marker))])
        elif isinstance(value, Mapping):
            items = iter(sorted(value.items(), key=lambda kv: str(kv[0])))
        elif isinstance(value, list | tuple):
            items = enumerate(value)
        elif isinstance(value, int) and not isinstance(value, bool):
            items = ((i, i) for i in range(min(value, MAX_STEPS)))
        else:
            items = iter(())
        ran = False
        for key, item in items:
            ran = True
            declared = node.pipeline.declare
            if len(declared) == 1:
                inner[declared[0]] = item
            elif len(declared) == 2:
                inner[declared[0]], inner[declared[1]] = key, item
            try:
                self.nodes(node.body, item, inner, depth)
            except _Break:
                break
            except _Continue:
                continue
        if not ran:
            self.nodes(node.otherwise, dot, inner, depth)

    def pipeline(self, pipeline: Pipeline, dot: Any, scope: dict[str, Any]) -> Any:
        value: Any = MISSING
        for number, command in enumerate(pipeline.commands):
            extra = (value,) if number else ()
            value = self.command(command, dot, scope, extra, pipeline.line)
        for name in pipeline.declare:
            scope[name] = value
        return value

    def command(
        self, command: Command, dot: Any, scope: dict[str, Any], extra: tuple[Any, ...], line: int
    ) -> Any:
        first = command.args[0]
        if isinstance(first, Identifier):
            args = [self.operand(arg, dot, scope, line) for arg in command.args[1:]]
            return self.call(first.name, [*args, *extra], line)
        # A field given arguments would be a method call: sample data has no methods.
        return self.operand(first, dot, scope, line)

    def operand(self, arg: Any, dot: Any, scope: dict[str, Any], line: int) -> Any:
        if isinstance(arg, Literal):
            return arg.value
        if isinstance(arg, Pipeline):
            return self.pipeline(arg, dot, dict(scope))
        if isinstance(arg, Identifier):
            return self.call(arg.name, [], line)
        base = dot if arg.root == "dot" else scope.get(arg.root, MISSING)
        return lookup(base, arg.names)

    def call(self, name: str, args: list[Any], line: int) -> Any:
        if name not in BUILTINS:
            return self.functions.get(name, MISSING)
        if name in ("print", "printf", "println"):
            return _print(name, args)
        if name == "len":
            if len(args) != 1:
                raise GoTemplateError("wrong number of args for len: want 1", line)
            value = args[0]
            if isinstance(value, SlotValue | _Part):
                return 1
            return len(value) if isinstance(value, str | list | tuple | Mapping) else 0
        if name == "index":
            value = args[0] if args else MISSING
            for key in args[1:]:
                value = lookup(value, (key,))
            return value
        if name == "not":
            return not truthy(args[0]) if args else True
        if name == "and":
            result: Any = True
            for value in args:
                result = value
                if not truthy(value):
                    break
            return result
        if name == "or":
            result = False
            for value in args:
                result = value
                if truthy(value):
                    break
            return result
        if name in ("eq", "ne", "lt", "le", "gt", "ge"):
            return _compare(name, args)
        if name in ("html", "js", "urlquery"):
            return "".join(printed(value) for value in args)
        if name == "slice":
            return args[0] if args else MISSING
        return MISSING  # call: a function value only the application has


def replace_declare(pipeline: Pipeline) -> Pipeline:
    """A range's pipeline without its declarations (they take items, not the list)."""
    return Pipeline(pipeline.commands, (), pipeline.line)


def lookup(value: Any, names: tuple[Any, ...]) -> Any:
    for name in names:
        if isinstance(value, SlotValue):
            return _Part(value.part)
        if isinstance(value, _Part):
            return value
        is_key = isinstance(value, Mapping) and name in value
        is_index = isinstance(value, list | tuple) and isinstance(name, int)
        if not (is_key or (is_index and 0 <= name < len(value))):
            return MISSING
        value = value[name]
    return value


def truthy(value: Any) -> bool:
    if isinstance(value, SlotValue | _Part):
        return True
    if value is MISSING or value is None:
        return False
    return bool(value)


def printed(value: Any) -> str:
    """``value`` as Go's ``fmt.Print`` writes it."""
    if isinstance(value, SlotValue):
        return value.whole
    if isinstance(value, _Part):
        return value.marker
    if value is MISSING:
        return ""
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return repr(value).removesuffix(".0") if value.is_integer() else repr(value)
    if isinstance(value, Mapping):
        inner = " ".join(f"{key}:{printed(item)}" for key, item in sorted(value.items()))
        return f"map[{inner}]"
    if isinstance(value, list | tuple):
        return "[" + " ".join(printed(item) for item in value) + "]"
    return str(value)


_VERB = re.compile(r"%[-+# 0]*(\d+|\*)?(?:\.(\d+|\*))?([a-zA-Z%])")


def _print(name: str, args: list[Any]) -> str:
    if name == "println":
        return " ".join(printed(value) for value in args) + "\n"
    if name == "print":
        parts = []
        for index, value in enumerate(args):
            is_text = isinstance(value, str)
            if index and not is_text and not isinstance(args[index - 1], str):
                parts.append(" ")
            parts.append(printed(value))
        return "".join(parts)
    if not args:
        return ""
    pattern, rest = printed(args[0]), list(args[1:])

    def verb(match: re.Match[str]) -> str:
        if match.group(3) == "%":
            return "%"
        if not rest:
            return f"%!{match.group(3)}(MISSING)"
        value = rest.pop(0)
        width = match.group(1)
        text = f'"{printed(value)}"' if match.group(3) == "q" else printed(value)
        if width and width.isdigit() and int(width) <= 10_000:
            text = text.rjust(int(width)) if "-" not in match.group(0) else text.ljust(int(width))
        return text

    return _VERB.sub(verb, pattern)


def _compare(name: str, args: list[Any]) -> bool:
    if len(args) < 2:
        return False
    left = args[0]
    if name == "eq":
        return any(left == right for right in args[1:])
    right = args[1]
    try:
        if name == "ne":
            return bool(left != right)
        if name == "lt":
            return bool(left < right)
        if name == "le":
            return bool(left <= right)
        if name == "gt":
            return bool(left > right)
        return bool(left >= right)
    except TypeError:
        return False
