"""Render a parsed template into chat messages, with every variable accounted for.

A variable gets its value from a sample (rendered as real text and counted exactly) or from a
cap (rendered as a *slot*: a placeholder that the counter replaces by the cap's tokens). A
variable with neither renders as nothing and is reported as unbounded. Role marker lines
(``system:``, ``# user:``) split the output into messages.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from jinja2 import Template, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError, TemplateNotFound

from promptbudget.cache import active_store, cache_key
from promptbudget.confine import ConfinementError, is_regular_file, resolve_path
from promptbudget.templates.cycles import find_cycle
from promptbudget.templates.deadline import RenderDeadline, RenderTimeoutError
from promptbudget.templates.meta import ParsedTemplate
from promptbudget.templates.rendercache import keep, lookup, render_key
from promptbudget.templates.rendered import (
    MISSING,
    Message,
    RenderedPrompt,
    VariableValue,
    bind_value,
    messages_of,
    raw_prompt,
    remap_lines,
    slot_marker,
    split_parts,
)
from promptbudget.templates.sandbox import (
    RENDER_TIMEOUT_SECONDS,
    BoundedEnvironment,
    LoadOutcome,
    Loads,
    ProjectLoader,
    RenderBudget,
    Unbounded,
    loads_recorded,
    note_loads,
    render_bounded,
)
from promptbudget.templates.simple import (
    DOTPROMPT_ROLES,
    HANDLEBARS_ENGINES,
    dotprompt_partial_file,
    handlebars_context,
    handlebars_variables,
    hosted_tool_notes,
    liquid_to_jinja,
    read_dotprompt_partial,
    render_simple,
)
from promptbudget.templates.source import TemplateFormat
from promptbudget.touches import Touches, retouch, touching

COMPILED_KEPT = 32  # compiled templates kept by a renderer (each can weigh tens of KB)


class TemplateRenderer:
    """Renders templates for one run. Environments are built once per include root."""

    def __init__(
        self,
        root: Path,
        search_dirs: tuple[Path, ...] = (),
        *,
        timeout_seconds: float = RENDER_TIMEOUT_SECONDS,
    ) -> None:
        self.root = root
        self.search_dirs = search_dirs or (root,)
        self.timeout_seconds = timeout_seconds
        self.budget = RenderBudget()
        self._environments: dict[tuple[Path, tuple[Path, ...]], BoundedEnvironment] = {}
        # (search directories, name) -> the file it resolves to, once a run
        self._includes: dict[tuple[tuple[Path, ...], str], Path | None] = {}
        # an include statement -> the names it gives, parsed alone (None: it does not parse)
        self._statements: dict[str, tuple[str, ...] | None] = {}
        # ... -> the compiled template, the loader's answers and the files they used
        self._compiled: dict[
            tuple[int, Path, str, int, str, str],
            tuple[
                tuple[nodes.Template, tuple[str, ...], Template] | RenderedPrompt,
                Loads,
                Touches | None,
            ],
        ] = {}
        # (environment, name) -> what its loader says of the name (rendercache.py), once a
        # run, and the files that answer used (touches.py)
        self._answers: dict[tuple[int, str], tuple[LoadOutcome, Touches | None]] = {}

    def environment(self, root: Path, search_dirs: tuple[Path, ...]) -> BoundedEnvironment:
        key = (root, search_dirs)
        env = self._environments.get(key)
        if env is None:
            env = BoundedEnvironment(
                self.budget,
                loader=ProjectLoader(search_dirs, root),
                undefined=Unbounded,
                keep_trailing_newline=True,
                autoescape=False,
            )
            env.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": str}
            self._environments[key] = env
        return env

    def _compile(
        self, env: BoundedEnvironment, parsed: ParsedTemplate
    ) -> tuple[nodes.Template, tuple[str, ...], Template] | RenderedPrompt:
        """The template parsed, its variables and its compiled code, or the raw prompt its
        problem makes. A step's template is rendered again for its lanes (with the
        manifest's values, then as slots): the last ``COMPILED_KEPT`` are kept, keyed by
        everything the answer depends on (the environment, the file, its text and body: a
        problem's raw prompt holds the text)."""
        key = (
            id(env),
            parsed.path,
            parsed.display_path,
            parsed.body_line,
            parsed.body,
            parsed.text,
        )
        known = self._compiled.pop(key, None)
        if known is None:
            with loads_recorded() as loads, touching() as touched:  # the cycle check's reads
                known = (self._compile_now(env, parsed), loads, touched)
        else:
            retouch(known[2])
        self._compiled[key] = known  # the most recent last
        while len(self._compiled) > COMPILED_KEPT:
            del self._compiled[next(iter(self._compiled))]
        note_loads(known[1])
        return known[0]

    def _compile_now(
        self, env: BoundedEnvironment, parsed: ParsedTemplate
    ) -> tuple[nodes.Template, tuple[str, ...], Template] | RenderedPrompt:
        try:
            ast = env.parse(parsed.body)
            used = tuple(sorted(_read_variables(ast)))
            template = env.from_string(ast)
        except TemplateSyntaxError as err:
            line = parsed.body_line + (err.lineno or 1) - 1
            return raw_prompt(parsed, f"Jinja2 syntax error: {err.message}", line)
        except TemplateError as err:  # e.g. an unknown filter, found while compiling
            return raw_prompt(parsed, f"Jinja2 error: {err.message or err}", parsed.body_line)
        except (RecursionError, SyntaxError) as err:  # nesting past depth.py's estimate
            return raw_prompt(
                parsed, f"template nests too deeply to compile ({err})", parsed.body_line
            )
        cycle = find_cycle(env, ast, parsed.path, parsed.display_path)
        if cycle is not None:
            return raw_prompt(parsed, cycle.describe(), parsed.body_line + cycle.line - 1)
        return ast, used, template

    def includes_of(self, parsed: ParsedTemplate) -> tuple[Path, ...]:
        """The files ``parsed`` includes, imports or extends (literal names only), resolved
        the way the loader would; names that do not resolve inside the root are left out."""
        if parsed.format is TemplateFormat.DOTPROMPT and parsed.is_readable:
            return self._dotprompt_includes(parsed) if parsed.problem is None else ()
        return self.resolve_includes(parsed.path, self.include_names(parsed))

    def include_names(self, parsed: ParsedTemplate) -> list[str]:
        """The literal names a (non-Dotprompt) template includes, imports or extends, as
        written; what ``includes_of`` resolves."""
        if parsed.problem is not None or parsed.meta.engine != "jinja2" or not parsed.is_readable:
            return []
        search_dirs = tuple(dict.fromkeys((parsed.path.parent, *self.search_dirs)))
        return self._referenced_names(parsed.body, search_dirs)

    def resolve_includes(self, path: Path, names: list[str]) -> tuple[Path, ...]:
        """``names`` (included by the template at ``path``) resolved the way the loader
        would: the template's directory first, then the search path; names that do not
        resolve to a file inside the root are left out."""
        search_dirs = tuple(dict.fromkeys((path.parent, *self.search_dirs)))
        found = []
        for name in names:
            key = (search_dirs, name)
            if key not in self._includes:  # the same partial, included from many templates
                self._includes[key] = None
                for directory in search_dirs:
                    candidate = _resolved(directory / name)
                    if candidate is not None and candidate.is_relative_to(self.root.resolve()):
                        self._includes[key] = candidate
                        break
            include = self._includes[key]
            if include is not None:
                found.append(include)
        return tuple(found)

    def statement_names(self, statements: list[str]) -> list[str] | None:
        """The literal names ``statements`` (``textscan.include_statements`` of a file)
        include, each parsed alone (once a run: many templates hold the same statement): all
        the names the whole file's parse would find, and maybe more; None when one does not
        parse alone. (Parsing does not depend on where the loader looks: one environment.)"""
        names: list[str] = []
        for text in statements:
            if text not in self._statements:
                self._statements[text] = self._parsed_alone(text)
            found = self._statements[text]
            if found is None:
                return None
            names.extend(found)
        return names

    def _parsed_alone(self, statement: str) -> tuple[str, ...] | None:
        env = self.environment(self.root, self.search_dirs)
        try:
            return tuple(
                name for name in meta.find_referenced_templates(env.parse(statement)) if name
            )
        except (TemplateSyntaxError, RecursionError, ValueError):
            return None

    def _referenced_names(self, body: str, search_dirs: tuple[Path, ...]) -> list[str]:
        """The literal names a Jinja2 body includes, imports or extends (none if it does not
        parse); kept in the cache under the body, so an unchanged file is not parsed again to
        answer "what does this path affect". Resolving them stays with the caller."""
        store = active_store()
        key = cache_key("jinja2 includes", body)
        if store is not None:
            cached = store.get(key)
            if isinstance(cached, list) and all(isinstance(name, str) for name in cached):
                return cached
        env = self.environment(self.root, search_dirs)
        try:
            names = [name for name in meta.find_referenced_templates(env.parse(body)) if name]
        except (TemplateSyntaxError, RecursionError, ValueError):  # ValueError: int() of a
            # number literal past Python's 4,300 digits (parse only: nothing else runs here)
            names = []
        if store is not None:
            store.put(key, names)
        return names

    def render(
        self,
        parsed: ParsedTemplate,
        values: Mapping[str, VariableValue],
        *,
        include_root: Path | None = None,
        as_slots: bool = False,
    ) -> RenderedPrompt:
        """Render ``parsed`` with ``values``. Never raises for problems in the template.

        ``as_slots`` renders every variable, sampled or not, as an empty slot: the prompt's
        static skeleton, used to find the cacheable prefix.
        """
        rendered = self._render(parsed, values, include_root, as_slots)
        if parsed.line_map:
            rendered = remap_lines(rendered, parsed)
        hosted = [tool for tool in parsed.meta.tools if tool.hosted is not None]
        if hosted:
            rendered = replace(
                rendered, warnings=(*rendered.warnings, *hosted_tool_notes(parsed, hosted))
            )
        if parsed.text_problem is not None:
            return replace(rendered, has_exact_text=False)
        return rendered

    def _render(
        self,
        parsed: ParsedTemplate,
        values: Mapping[str, VariableValue],
        include_root: Path | None,
        as_slots: bool,
    ) -> RenderedPrompt:
        if not parsed.is_readable:
            return RenderedPrompt(messages=(), variables=(), problem=parsed.text_problem)
        if parsed.problem is not None:
            return raw_prompt(parsed, parsed.problem, parsed.problem_line)
        if parsed.format is TemplateFormat.TEXT or parsed.meta.engine == "none":
            return RenderedPrompt(
                messages=(Message("user", (parsed.text,)),) if parsed.text else (),
                variables=(),
            )
        if parsed.meta.engine == "text":  # a generic file with no template syntax
            split = _is_chat_template(parsed)
            return RenderedPrompt(
                messages=messages_of(parsed, parsed.body, [], split_roles=split),
                variables=(),
            )
        if parsed.meta.engine in ("format", "go-template"):
            return self._render_engine(parsed, values, as_slots)
        if parsed.format is TemplateFormat.DOTPROMPT or parsed.meta.engine in HANDLEBARS_ENGINES:
            return self._render_handlebars(parsed, values, include_root, as_slots)
        if parsed.meta.engine in ("semantic-kernel", "fstring"):
            return render_simple(parsed, values, as_slots)
        if parsed.meta.engine == "liquid":  # close enough to Jinja2 once its tags are mapped
            parsed = replace(
                parsed,
                body=liquid_to_jinja(parsed.body),
                meta=replace(parsed.meta, engine="jinja2"),
            )
        if parsed.meta.engine != "jinja2":
            return raw_prompt(
                parsed,
                f"{parsed.meta.engine} templates are not rendered yet; counted as raw text",
                parsed.body_line,
            )

        root = include_root or self.root
        search_dirs = tuple(dict.fromkeys((parsed.path.parent, *self.search_dirs)))
        env = self.environment(root, search_dirs)
        store = active_store()
        if store is None:
            return self._render_jinja(env, parsed, values, as_slots)
        key = render_key(parsed, values, (root, search_dirs, as_slots, self.timeout_seconds))
        if key is not None:
            kept = lookup(store, key, values, lambda name: self._answer(env, name))
            if kept is not None:
                return kept
        with loads_recorded() as loads:
            rendered = self._render_jinja(env, parsed, values, as_slots)
        if key is not None:
            keep(store, key, rendered, loads)
        return rendered

    def _answer(self, env: BoundedEnvironment, name: str) -> LoadOutcome:
        """What ``env``'s loader says of ``name``, asked once a run (a partial is checked once,
        not once for each of the thousands of templates that include it)."""
        key = (id(env), name)
        known = self._answers.get(key)
        if known is not None:
            retouch(known[1])
            return known[0]
        assert isinstance(env.loader, ProjectLoader)
        with touching() as touched:
            answer = env.loader.answer(name)
        self._answers[key] = (answer, touched)
        return answer

    def _render_jinja(
        self,
        env: BoundedEnvironment,
        parsed: ParsedTemplate,
        values: Mapping[str, VariableValue],
        as_slots: bool,
    ) -> RenderedPrompt:
        compiled = self._compile(env, parsed)
        if isinstance(compiled, RenderedPrompt):
            return compiled
        ast, used, template = compiled

        slots: list[VariableValue] = []
        context: dict[str, Any] = {}
        for name in used:
            bound = bind_value(name, values, slots, as_slots=as_slots)
            if bound is not MISSING:
                context[name] = bound

        self.budget.reset()
        deadline = RenderDeadline(self.timeout_seconds)
        try:
            with deadline:
                output = render_bounded(template.generate(context))
        except RenderTimeoutError as err:  # at the line the render was running
            return raw_prompt(parsed, str(err), _error_line(err, parsed))
        except TemplateNotFound as err:
            return raw_prompt(parsed, f"include not found: {err.message}", _error_line(err, parsed))
        except SecurityError as err:
            return raw_prompt(parsed, f"unsafe template: {err}", _error_line(err, parsed))
        except RecursionError as err:
            return raw_prompt(parsed, "rendering recursed too deeply", _error_line(err, parsed))
        except Exception as err:  # template code can raise anything: it is data, not a crash
            return raw_prompt(
                parsed,
                f"rendering failed: {type(err).__name__}: {err}",
                _error_line(err, parsed),
            )

        split_roles = parsed.format is TemplateFormat.PROMPTY or _is_chat_template(parsed)
        messages = messages_of(parsed, output, slots, split_roles=split_roles)
        unbounded = tuple(name for name in used if name not in values)
        return RenderedPrompt(
            messages=messages,
            variables=used,
            values={name: values[name] for name in used if name in values},
            unbounded=unbounded,
            variable_lines=_first_uses(ast, set(used), parsed.body_line),
        )

    # -- Python str.format and Go text/template ------------------------------------------------

    def _render_engine(
        self, parsed: ParsedTemplate, values: Mapping[str, VariableValue], as_slots: bool
    ) -> RenderedPrompt:
        from promptbudget.templates.render_engines import EngineError, render_format, render_go

        render = render_format if parsed.meta.engine == "format" else render_go
        deadline = RenderDeadline(self.timeout_seconds)
        try:
            with deadline:
                out = render(
                    parsed.body, parsed.body_line, values, as_slots=as_slots, marker=slot_marker
                )
        except RenderTimeoutError as err:  # at the line the engine was running
            return raw_prompt(parsed, str(err), err.line or parsed.body_line)
        except EngineError as err:
            return raw_prompt(parsed, err.message, err.line)
        slots = [
            values.get(name) or VariableValue(name, "structure", max_tokens=0)
            for name in out.slot_names
        ]
        if as_slots:
            slots = [VariableValue(name, "structure", max_tokens=0) for name in out.slot_names]
        messages = messages_of(parsed, out.text, slots, split_roles=_is_chat_template(parsed))
        used = tuple(sorted(out.lines))
        return RenderedPrompt(
            messages=messages,
            variables=used,
            values={name: values[name] for name in used if name in values},
            unbounded=tuple(name for name in used if name not in values),
            variable_lines=out.lines,
            functions=out.functions,
            warnings=tuple(out.warnings),
        )

    # -- Dotprompt (Handlebars), and Prompty's Mustache/Handlebars templates ------------------

    def _render_handlebars(
        self,
        parsed: ParsedTemplate,
        values: Mapping[str, VariableValue],
        include_root: Path | None,
        as_slots: bool,
    ) -> RenderedPrompt:
        """Dotprompt, and Prompty's ``template: mustache|handlebars``. Parsing, reading the
        variables and rendering all run under the render deadline."""
        from promptbudget.templates.handlebars import (  # only projects that use it pay for it
            BUILTIN_HELPERS,
            DOTPROMPT_HELPERS,
            SEMANTIC_KERNEL_HELPERS,
            Dialect,
            HandlebarsError,
            parse_handlebars,
            read_variables,
            render_handlebars,
            split_dotprompt_messages,
        )

        is_dotprompt = parsed.format is TemplateFormat.DOTPROMPT
        is_semantic_kernel = parsed.format is TemplateFormat.SEMANTIC_KERNEL
        dialect = Dialect.MUSTACHE if parsed.meta.engine == "mustache" else Dialect.HANDLEBARS
        engine = "Mustache" if dialect is Dialect.MUSTACHE else "Handlebars"
        partials = self._dotprompt_partials(parsed, include_root) if is_dotprompt else None
        deadline = RenderDeadline(self.timeout_seconds)
        try:
            with deadline:
                template = parse_handlebars(
                    parsed.body,
                    dialect=dialect,
                    helpers=(
                        DOTPROMPT_HELPERS
                        if is_dotprompt
                        else SEMANTIC_KERNEL_HELPERS
                        if is_semantic_kernel
                        else BUILTIN_HELPERS
                    ),
                    escape_html=not is_dotprompt,
                    first_line=parsed.body_line,
                    # Genkit's defineHelper; Semantic Kernel's plugin functions
                    app_helpers=is_dotprompt or is_semantic_kernel,
                    plugin_functions=is_semantic_kernel,
                )
                reads = read_variables(template, partials=partials)
                lines = handlebars_variables(parsed, reads)
                slots: list[VariableValue] = []
                context, functions = handlebars_context(
                    parsed, lines, reads.functions, values, slots, as_slots=as_slots
                )
                chunks = render_handlebars(
                    template, context, partials=partials, functions=functions
                )
        except RenderTimeoutError as err:  # at the line the engine was running
            return raw_prompt(parsed, str(err), err.line or parsed.body_line)
        except HandlebarsError as err:
            return raw_prompt(parsed, f"{engine} template error: {err.message}", err.line)

        if is_dotprompt:
            messages = tuple(
                Message(
                    DOTPROMPT_ROLES.get(message.role, message.role),
                    tuple(part for text in message.texts for part in split_parts(text, slots)),
                )
                for message in split_dotprompt_messages(chunks)
            )
        else:  # Prompty: role lines split the text, as for its Jinja2 templates
            output = "".join(chunk for chunk in chunks if isinstance(chunk, str))
            split = parsed.format is not TemplateFormat.JINJA2 or _is_chat_template(parsed)
            messages = messages_of(parsed, output, slots, split_roles=split)
        all_lines = {**reads.functions, **lines}
        for name, line in reads.functions.items():
            all_lines[name] = min(line, all_lines[name])
        used = tuple(sorted(all_lines))
        given = {name: values[name] for name in used if name in values}
        for name in sorted(reads.block_functions - set(lines) - set(given)):
            # a block helper's output is its block, counted in the text: no value needed
            given[name] = VariableValue(name, "its block, rendered once")
        return RenderedPrompt(
            messages=messages,
            variables=used,
            values=given,
            unbounded=tuple(name for name in used if name not in given),
            variable_lines=all_lines,
            functions=frozenset(reads.functions),
            warnings=reads.warnings,
        )

    def _dotprompt_includes(self, parsed: ParsedTemplate) -> tuple[Path, ...]:
        from promptbudget.templates.handlebars import (
            HandlebarsError,
            parse_handlebars,
            partial_names,
        )

        try:
            with RenderDeadline(self.timeout_seconds):
                names = partial_names(parse_handlebars(parsed.body))
        except (HandlebarsError, RenderTimeoutError):
            return ()
        root = self.root.resolve()
        search_dirs = tuple(dict.fromkeys((parsed.path.parent, *self.search_dirs)))
        found = []
        for name in names:
            relative = dotprompt_partial_file(name)
            for directory in search_dirs if relative is not None else ():
                candidate = _resolved(directory / str(relative))
                if candidate is not None and candidate.is_relative_to(root):
                    found.append(candidate)
                    break
        return tuple(found)

    def _dotprompt_partials(
        self, parsed: ParsedTemplate, include_root: Path | None
    ) -> Callable[[str], str | None]:
        """Dotprompt partials: ``{{> name}}`` is the file ``_name.prompt`` (``{{> dir/name}}``:
        ``dir/_name.prompt``) next to the template or in the prompts directory, read only if
        it resolves inside the project root. With no such file, the partial is the
        application's (Genkit's ``definePartial``): None."""
        root = (include_root or self.root).resolve()
        search_dirs = tuple(dict.fromkeys((parsed.path.parent, *self.search_dirs)))

        def load(name: str) -> str | None:
            return read_dotprompt_partial(name, search_dirs, root)

        return load


def _resolved(path: Path) -> Path | None:
    """``path`` resolved if it is a regular file; None for anything else, including a name no
    file system accepts (a NUL, a component over 255 bytes, a symlink loop)."""
    try:
        os.lstat(path)  # most names are looked up where they are not: one system call
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError):
        pass  # said below, the long way
    try:
        resolved = resolve_path(path)
    except ConfinementError:
        return None
    return resolved if is_regular_file(resolved) else None


def _is_chat_template(parsed: ParsedTemplate) -> bool:
    """Role markers are read in Jinja2 files, and in .md/.txt files that have front matter."""
    suffix = parsed.path.suffix.lower()
    return suffix in {".j2", ".jinja", ".jinja2"} or parsed.body_line > 1


def _read_variables(ast: nodes.Template) -> set[str]:
    return set(meta.find_undeclared_variables(ast)) - {
        "range",
        "loop",
        "dict",
        "cycler",
        "joiner",
        "namespace",
    }


def _first_uses(ast: nodes.Template, names: set[str], body_line: int) -> dict[str, int]:
    """The file line where each variable is first read."""
    lines: dict[str, int] = {}
    for node in ast.find_all(nodes.Name):
        if node.ctx == "load" and node.name in names:
            line = body_line + node.lineno - 1
            lines[node.name] = min(lines.get(node.name, line), line)
    return lines


def _error_line(err: BaseException, parsed: ParsedTemplate) -> int:
    """The template line where a render error happened, from Jinja2's rewritten traceback."""
    line = None
    tb: TracebackType | None = err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    lineno = getattr(err, "lineno", None)
    if line is None and isinstance(lineno, int):
        line = lineno
    return parsed.body_line + (line or 1) - 1
