"""The one loaded model of a project: manifest, catalog, templates, samples, suppressions,
severities and lock, each loaded when first asked for and then kept; and the answer to
"what does this path affect" (``check PATH...``).

Stages receive the Project (or the parts they need) as an argument and never reach back for
more: everything a run knows about the repository is here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from promptbudget.bounded import load_json
from promptbudget.cache import FileEntry, active_store, file_keep, open_cache
from promptbudget.confine import confinement_root
from promptbudget.errors import (
    ManifestError,
    PromptBudgetError,
    TemplateNotFoundError,
    UsageError,
)
from promptbudget.findings import Severity
from promptbudget.lockfile import LOCK_NAME, Lock, read_lock
from promptbudget.manifest.loader import find_manifest, load_manifest
from promptbudget.manifest.model import Manifest, VariableSpec
from promptbudget.manifest.validation import raise_all
from promptbudget.options import Options
from promptbudget.pathnames import forget_real, real
from promptbudget.pricing.catalog import PriceCatalog, load_catalog, overlay_prices
from promptbudget.pricing.litellm import load_price_file
from promptbudget.rules import find_rule, parse_severity
from promptbudget.runmemo import include_reads, note_includes, note_use
from promptbudget.suppressions import Suppression, glob_matches
from promptbudget.suppressions import scan as scan_suppressions
from promptbudget.templates.facts import IncludeFacts
from promptbudget.templates.meta import ParsedTemplate
from promptbudget.templates.parse import parse_file, parse_template
from promptbudget.templates.render import TemplateRenderer
from promptbudget.templates.source import (
    STDIN_ARGUMENT,
    STDIN_NAME,
    FoundFile,
    TemplateFormat,
    detect_format,
    display_path,
    iter_prompt_files,
    read_prompt_text,
    stream_prompt_text,
)
from promptbudget.textscan import includes_nothing
from promptbudget.touches import Touches, retouch, touching

if TYPE_CHECKING:
    pass


@dataclass
class Project:
    """What a run knows about the repository: root, manifest, catalog, loaded templates."""

    root: Path
    manifest: Manifest | None
    catalog: PriceCatalog
    renderer: TemplateRenderer
    templates: dict[Path, ParsedTemplate] = field(default_factory=dict)
    # count/check -: the path the template piped in stands for, and its bytes
    stdin_path: Path | None = None
    stdin_data: bytes = b""
    # the project's template files, listed once a run (evaluation.template_files)
    listing: list[FoundFile] | None = field(default=None, repr=False, compare=False)
    _facts: IncludeFacts | None = field(default=None, repr=False, compare=False)
    # The suppression comments of templates released (``release``) once evaluated
    _released: dict[Path, list[Suppression]] = field(default_factory=dict, repr=False)
    # What loading each template used (touches.py), noted again when it is used again
    _touched: dict[Path, Touches | None] = field(default_factory=dict, repr=False)

    @classmethod
    def open(
        cls, options: Options, *, require_manifest: bool, overrides: tuple[str, ...] = ()
    ) -> Project:
        # The cache is open before the manifest is read: a manifest validated before is not
        # validated again.
        forget_real()  # a new run: paths are resolved again
        manifest_path = options.config or find_manifest(options.cwd) or manifest_of(options)
        where = manifest_path.parent if manifest_path is not None else options.cwd
        opened = open_cache(where.resolve(), enabled=options.use_cache)
        project = cls._open(options, require_manifest=require_manifest, overrides=overrides)
        if opened is None or project.root != where.resolve():
            open_cache(project.root, enabled=options.use_cache)
        if options.stdin_data is not None:
            given = options.stdin_filename
            project.stdin_data = options.stdin_data
            project.stdin_path = (
                (options.cwd / given).resolve() if given else project.root / STDIN_NAME
            )
        return project

    @classmethod
    def _open(
        cls, options: Options, *, require_manifest: bool, overrides: tuple[str, ...]
    ) -> Project:
        manifest_path = options.config or find_manifest(options.cwd) or manifest_of(options)
        if options.config is not None and not options.config.exists():
            raise ManifestError("no such file", path=str(options.config))
        if manifest_path is None:
            if require_manifest:
                raise PromptBudgetError(
                    "no budgets.yaml in this directory or any parent; run 'promptbudget init' "
                    "to create one, or pass --config PATH"
                )
            return cls(
                root=options.cwd.resolve(),
                manifest=None,
                catalog=open_catalog(options.prices),
                renderer=TemplateRenderer(options.cwd.resolve()),
            )
        manifest = load_manifest(
            manifest_path,
            cwd=options.cwd,
            prices=options.prices,
            overrides=overrides,
            workflow=options.workflow,
        )
        search = tuple(dict.fromkeys((manifest.prompts_dir, manifest.root)))
        return cls(
            root=manifest.root,
            manifest=manifest,
            catalog=manifest.catalog,
            renderer=TemplateRenderer(manifest.root, search),
        )

    # -- templates ---------------------------------------------------------------------------

    def load(self, path: Path, *, confine_to: Path | None) -> ParsedTemplate:
        """Read and parse ``path`` once. A file whose real path is outside ``confine_to`` (a
        symlink out of the repository) is not read; ``None`` reads any file named by the
        user."""
        resolved = real(path)
        cached = self.templates.get(resolved)
        if cached is not None:
            note_use(resolved)  # a run memo: used again, maybe for more than PB204
            retouch(self._touched.get(resolved))  # and its samples, its promptfoo config
            return cached
        shown = display_path(path, self.root)
        root = confine_to or confinement_root(path, self.root)
        engine = self.engine_for(shown)
        with touching() as touched:
            if self.is_stdin(path):  # count -: what was piped in stands for this path
                read = stream_prompt_text(self.stdin_data)
                fmt = detect_format(path)
                parsed = parse_template(path, shown, fmt, read, root=root, engine=engine)
            else:
                parsed = parse_file(path, shown, root=root, engine=engine)
            parsed = _with_sample_file(parsed, confine_to)
        self.templates[resolved] = parsed
        self._touched[resolved] = touched
        self._released.pop(resolved, None)  # scanned again with the rest
        return parsed

    def release(self, path: Path) -> None:
        """Forget ``path``'s parsed template (its text is the bulk of a run's memory in a
        large project) once it is evaluated, keeping its suppression comments; a later
        ``load`` reads it again."""
        resolved = real(path)
        parsed = self.templates.pop(resolved, None)
        self._touched.pop(resolved, None)
        if parsed is not None:
            self._released[resolved] = _suppressions_in(parsed)

    def released(self, path: Path) -> list[Suppression] | None:
        """What ``release`` kept of ``path`` (None: it is not released)."""
        return self._released.get(real(path))

    def keep_released(self, path: Path, suppressions: list[Suppression]) -> None:
        """``release`` of ``path`` done in a worker process (parallel.py), which kept
        ``suppressions``: as if it was loaded and released here."""
        resolved = real(path)
        self.templates.pop(resolved, None)
        self._touched.pop(resolved, None)
        self._released.pop(resolved, None)
        self._released[resolved] = suppressions

    def is_stdin(self, path: Path) -> bool:
        """``path`` is the one a template read from stdin stands for (``-``)."""
        return self.stdin_path is not None and path.resolve() == self.stdin_path

    def engine_for(self, shown: str) -> str | None:
        """The engine the manifest's ``engines:`` names for a file (the first glob that
        matches its path from the project root); None: decided by content."""
        if self.manifest is None:
            return None
        for setting in self.manifest.engines:
            if glob_matches(setting.pattern, shown):
                return setting.engine
        return None

    def included(self, path: Path) -> set[Path]:
        """Every file ``path`` includes, transitively."""
        found: set[Path] = set()
        pending = [path]
        while pending:
            current = pending.pop()
            if not current.is_file() and not self.is_stdin(current):
                continue
            for include in self.includes_of(current):
                if include not in found:
                    found.add(include)
                    pending.append(include)
        return found

    def includes_of(self, path: Path) -> tuple[Path, ...]:
        """The files ``path`` includes directly. A file not loaded yet whose bytes the cache
        has seen is neither read nor parsed (``templates/facts.py``): only its names are
        resolved again."""
        with include_reads(path):  # a run memo: read for this question alone
            found = self._includes_of(path)
        note_includes(path, found)
        return found

    def known_includes(
        self, path: Path, *, by_stat: bool = False
    ) -> tuple[FileEntry | None, tuple[Path, ...] | None]:
        """(where the names ``path`` includes are kept, the files they are: None when the
        cache does not know them by the file's bytes, ``templates/facts.py``; ``by_stat``:
        by its stat only, without reading it)."""
        store = active_store()
        if store is None or self.is_stdin(path):
            return None, None
        if self._facts is None:
            self._facts = IncludeFacts(self.root)
        entry, names = self._facts.lookup(store, path, self.engine_for, by_stat=by_stat)
        return entry, None if names is None else self.renderer.resolve_includes(path, names)

    def _includes_of(self, path: Path) -> tuple[Path, ...]:
        store = active_store()
        entry, known = self.known_includes(path)
        if known is not None:
            return known
        if not self.is_stdin(path) and self._includes_nothing(path):
            if store is not None and entry is not None:
                file_keep(store, entry, [])
            return ()
        parsed = self.load(path, confine_to=self.root)
        if (
            store is not None
            and entry is not None
            and parsed.format is not TemplateFormat.DOTPROMPT
        ):
            file_keep(store, entry, self.renderer.include_names(parsed))
        return self.renderer.includes_of(parsed)

    def _includes_nothing(self, path: Path) -> bool:
        """Whether ``path`` (not loaded yet) surely includes nothing, known from its text
        without parsing it (``textscan.includes_nothing``: most templates of a large
        repository hold no include statement); False when it must be parsed to tell."""
        if real(path) in self.templates or detect_format(path) is TemplateFormat.TEXT:
            return False  # parsed already; or a data prompt, whose strings may be escaped
        read = read_prompt_text(path, root=self.root)  # as the parse reads it
        return read.is_readable and includes_nothing(read.text)  # unreadable: the parse says why

    def template_arguments(self, options: Options) -> Iterator[tuple[Path, Path]]:
        """(argument, file) for every template a command was pointed at: the paths named,
        else the manifest's prompts directory, else the working directory."""
        if options.paths:
            arguments: Iterable[Path] = options.paths
        elif self.manifest is not None:
            arguments = (self.manifest.prompts_dir,)
        else:
            arguments = (options.cwd,)
        for given in arguments:
            if given == STDIN_ARGUMENT and self.stdin_path is not None:
                yield self.stdin_path, self.stdin_path
                continue
            argument = given if given.is_absolute() else options.cwd / given
            if not argument.exists():
                raise TemplateNotFoundError(f"{given}: no such file or directory")
            for path in iter_prompt_files([argument]):
                yield argument, path

    def include_root(self, argument: Path, path: Path) -> Path:
        """Includes resolve inside the project root, or inside the argument for outside
        files."""
        if path.resolve().is_relative_to(self.root):
            return self.root
        return argument.resolve() if argument.is_dir() else path.parent.resolve()

    # -- variables ---------------------------------------------------------------------------

    @property
    def manifest_variables(self) -> Mapping[str, VariableSpec]:
        return self.manifest.variables if self.manifest else {}

    @cached_property
    def _step_variables(self) -> dict[Path, dict[str, VariableSpec]]:
        merged: dict[Path, dict[str, VariableSpec]] = {}
        if self.manifest is None:
            return merged
        for workflow in self.manifest.workflows:
            for step in workflow.steps:
                into = merged.setdefault(step.prompt_path, {})
                for name, spec in step.variables.items():
                    current = into.get(name)
                    if current is None or (spec.bound_tokens or 0) > (current.bound_tokens or 0):
                        into[name] = spec
        return merged

    def step_variables_for(self, path: Path) -> dict[str, VariableSpec]:
        """Variables the manifest's steps declare for the template at ``path``, merged; where
        steps disagree, the largest cap (the worst case) wins."""
        return dict(self._step_variables.get(real(path), {}))

    @property
    def default_model(self) -> str | None:
        return self.manifest.default_model if self.manifest else None

    # -- configuration -----------------------------------------------------------------------

    @cached_property
    def severities(self) -> dict[str, Severity | None]:
        """Rule severities from the manifest's ``rules:`` (codes or slugs); None: off."""
        severities: dict[str, Severity | None] = {}
        manifest = self.manifest
        if manifest is None:
            return severities
        configured_as: dict[str, str] = {}
        problems: list[ManifestError] = []
        for name, value in manifest.rules.items():
            found = find_rule(name)

            def fail(message: str, key: str = name) -> ManifestError:
                return ManifestError(
                    message,
                    path=manifest.display_path,
                    line=manifest.rule_lines.get(key),
                    json_path=f"$.rules.{key}",
                )

            if found is None:
                problems.append(
                    fail(f"unknown rule {name!r}; see 'promptbudget rules' for codes and slugs")
                )
                continue
            if found.code in configured_as:
                problems.append(
                    fail(
                        f"{found.code} is configured twice (as {configured_as[found.code]!r} "
                        f"and {name!r}); keep one"
                    )
                )
                continue
            configured_as[found.code] = name
            severities[found.code] = parse_severity(value)
        raise_all(problems)
        return severities

    @cached_property
    def lock(self) -> Lock | None:
        """``promptbudget.lock`` as committed (None: the project has none)."""
        path = self.root / LOCK_NAME
        if not path.is_file():
            return None
        return read_lock(path, display_path(path, Path.cwd()))

    @cached_property
    def _manifest_suppressions(self) -> tuple[Suppression, ...]:
        """Suppression comments in the manifest and its ``per_file_ignores``."""
        manifest = self.manifest
        if manifest is None:
            return ()
        found: list[Suppression] = []
        try:
            text = manifest.path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError):
            text = ""
        if "promptbudget:" in text:
            found.extend(
                scan_suppressions(
                    text.replace("\r\n", "\n"),
                    manifest.display_path,
                    engine="yaml",
                    yaml_lines=None,
                    resolve=_rule_code,
                )
            )
        for ignore in manifest.per_file_ignores:
            codes = []
            for name in ignore.rules:
                code = _rule_code(name)
                if code is None:
                    raise ManifestError(
                        f"unknown rule {name!r} in per_file_ignores; see 'promptbudget rules' "
                        "for codes and slugs",
                        path=manifest.display_path,
                        line=ignore.line,
                        json_path=f"$.per_file_ignores[{json.dumps(ignore.pattern)}]",
                    )
                codes.append(code)
            found.append(
                Suppression(
                    path=manifest.display_path,
                    line=ignore.line,
                    scope="path",
                    names=ignore.rules,
                    codes=tuple(codes),
                    pattern=ignore.pattern,
                )
            )
        return tuple(found)

    def suppressions(self) -> list[Suppression]:
        """Every suppression: comments in the templates loaded so far (released or not) and
        in the manifest, and the manifest's ``per_file_ignores``."""
        found: list[Suppression] = []
        for scanned in self._released.values():
            found.extend(scanned)
        for parsed in self.templates.values():
            found.extend(_suppressions_in(parsed))
        found.extend(self._manifest_suppressions)
        return found


def open_catalog(prices: Path | None) -> PriceCatalog:
    """The bundled catalog, with a LiteLLM-format price file laid over it when given."""
    catalog = load_catalog()
    if prices is not None:
        catalog = overlay_prices(catalog, load_price_file(prices), label=prices.name)
    return catalog


def manifest_of(options: Options) -> Path | None:
    """The manifest of the files named, when none is found from the working directory (a
    pre-commit hook runs from the repository root; the project may be in a subdirectory)."""
    found: dict[Path, None] = {}
    for given in options.paths:
        if given == STDIN_ARGUMENT and options.stdin_filename is not None:
            given = options.stdin_filename.parent  # the piped template's folder
        path = given if given.is_absolute() else options.cwd / given
        if not path.exists():
            continue
        manifest = find_manifest(path if path.is_dir() else path.parent)
        if manifest is not None:
            found[manifest] = None
    if len(found) > 1:
        names = ", ".join(display_path(path, options.cwd) for path in found)
        raise UsageError(
            f"the files named belong to {len(found)} projects ({names}); run once per "
            "project, with --config or from its directory"
        )
    return next(iter(found), None)


def split_projects(options: Options) -> list[Options]:
    """``check PATH...`` from a directory with no manifest (a pre-commit hook at the root of a
    monorepo): one run per project the files belong to. Files of no project are dropped."""
    if options.config is not None or not options.paths or find_manifest(options.cwd):
        return [options]
    groups: dict[Path, list[Path]] = {}
    for given in options.paths:
        path = given if given.is_absolute() else options.cwd / given
        manifest = find_manifest(path if path.is_dir() else path.parent) if path.exists() else None
        if manifest is not None:
            groups.setdefault(manifest, []).append(given)
    if len(groups) <= 1:
        return [options]
    return [
        replace(options, config=manifest, paths=tuple(paths)) for manifest, paths in groups.items()
    ]


def _rule_code(name: str) -> str | None:
    found = find_rule(name)
    return found.code if found is not None else None


def _with_sample_file(parsed: ParsedTemplate, root: Path | None) -> ParsedTemplate:
    """Prompty ``sample: sample.json`` (or ``${file:sample.json}``, or ``inputs:
    ${file:...}``): samples from that JSON file (an object, or a list whose first item is
    one) if it is inside the project. The file's names are declared inputs; when a file
    cannot be read, which inputs it declares is unknown, so PB202 does not guess."""
    if not parsed.meta.sample_files:
        return parsed
    samples: dict[str, Any] = {}
    declared = parsed.meta.declared_inputs
    for sample_file in parsed.meta.sample_files:
        data = _sample_file_data(parsed.path.parent / sample_file, root or parsed.path.parent)
        if data is None:
            declared = None
            continue
        samples.update(data)
        if declared is not None:
            declared = declared | frozenset(data)
    meta = replace(
        parsed.meta, samples={**samples, **parsed.meta.samples}, declared_inputs=declared
    )
    return replace(parsed, meta=meta)


def _sample_file_data(path: Path, root: Path) -> dict[str, Any] | None:
    read = read_prompt_text(path, root=root)
    if not read.is_readable:
        return None
    try:
        data = load_json(read.text)
    except ValueError:
        return None
    if isinstance(data, list) and data:
        data = data[0]
    return {str(key): value for key, value in data.items()} if isinstance(data, dict) else None


def _suppressions_in(parsed: ParsedTemplate) -> list[Suppression]:
    """The suppression comments in a template's text."""
    if not parsed.is_readable or "promptbudget:" not in parsed.text:
        return []
    engine = parsed.meta.engine
    if parsed.format is TemplateFormat.DOTPROMPT:
        engine = "handlebars"
    elif parsed.format is TemplateFormat.TEXT:
        engine = "none"
    return scan_suppressions(
        parsed.text,
        parsed.display_path,
        engine=engine,
        yaml_lines=parsed.body_line - 1,
        resolve=_rule_code,
    )
