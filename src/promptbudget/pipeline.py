"""``run_*(options) -> Report``: wires the stages together; holds no domain logic of its own."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateSyntaxError

from promptbudget import __version__
from promptbudget.bounded import load_json
from promptbudget.compression import (
    PASSES,
    SAFE_PASSES,
    CompressionResult,
    FileCompression,
    PassOptions,
    compress_text,
    unified_diff,
)
from promptbudget.compression.passages import Passage, find_passages
from promptbudget.compression.rewrite import (
    WriteError,
    compress_file,
    read_template_file,
    split_head,
    write_atomically,
)
from promptbudget.confine import confinement_root
from promptbudget.counting import TemplateCount, count_prompt, structure_prompt
from promptbudget.errors import (
    ManifestError,
    PromptBudgetError,
    TemplateNotFoundError,
    UsageError,
)
from promptbudget.estimates import (
    Lane,
    SizedVariable,
    WorkflowEstimate,
    estimate_workflow,
    output_bound,
    template_token_rates,
)
from promptbudget.fileio import atomic_write
from promptbudget.findings import Finding, Report, Severity
from promptbudget.lockfile import (
    LOCK_NAME,
    Lock,
    LockedTemplate,
    declared_version,
    read_lock,
    text_sha256,
)
from promptbudget.manifest.loader import find_manifest, load_manifest
from promptbudget.manifest.model import (
    CompressionSettings,
    CostLimit,
    Manifest,
    Step,
    TrafficClass,
    VariableSpec,
    Workflow,
)
from promptbudget.options import Options
from promptbudget.pricing.catalog import (
    ModelPrice,
    PriceCatalog,
    diff_prices,
    load_catalog,
    overlay_prices,
)
from promptbudget.pricing.litellm import load_price_file
from promptbudget.routing import RoutedModel, expand_route
from promptbudget.rules import (
    RULES,
    Rule,
    RuleContext,
    TemplateResult,
    find_rule,
    parse_severity,
    run_rules,
)
from promptbudget.simulation import CacheTerms
from promptbudget.suppressions import Suppression
from promptbudget.suppressions import apply as apply_suppressions
from promptbudget.suppressions import scan as scan_suppressions
from promptbudget.templates.parse import ParsedTemplate, parse_template, variants_of

if TYPE_CHECKING:
    from promptbudget.baseline import LimitChange, Skipped
from promptbudget.templates.render import RenderedPrompt, TemplateRenderer, VariableValue
from promptbudget.templates.source import (
    TemplateFormat,
    detect_format,
    display_path,
    iter_prompt_files,
    read_prompt_text,
)
from promptbudget.tokenizers import get_tokenizer, guess_tokenizer

DEFAULT_TOKENIZER = "o200k_base"


_SNAPSHOT_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4})$")


@dataclass(frozen=True)
class ModelChoice:
    """A model name resolved against the catalog.

    ``price`` is the catalog entry (None: cannot be priced). ``family`` is the catalog entry
    of a dated snapshot's model (``gpt-4-0613`` -> ``gpt-4``): good enough to count tokens,
    not to price, since snapshots can have their own prices.
    """

    name: str | None
    price: ModelPrice | None
    tokenizer: str
    family: ModelPrice | None = None

    @property
    def is_known(self) -> bool:
        """Known well enough to count: in the catalog, or a snapshot of a catalog model."""
        return self.name is None or self.price is not None or self.family is not None


def resolve_model(name: str | None, catalog: PriceCatalog) -> ModelChoice:
    """Catalog entry and tokenizer for ``name``. An unknown name keeps a best-guess tokenizer
    (so its tokens are still counted) and is reported as PB110."""
    if name is None:
        return ModelChoice(None, None, DEFAULT_TOKENIZER)
    price = catalog.lookup(name)
    if price is not None:
        return ModelChoice(price.name, price, price.tokenizer)
    family = catalog.lookup(_SNAPSHOT_SUFFIX.sub("", name))
    if family is not None:
        return ModelChoice(name, None, family.tokenizer, family=family)
    return ModelChoice(name, None, guess_tokenizer(name) or "approximate")


@dataclass
class Project:
    """What a run knows about the repository: root, manifest, catalog, loaded templates."""

    root: Path
    manifest: Manifest | None
    catalog: PriceCatalog
    renderer: TemplateRenderer
    templates: dict[Path, ParsedTemplate] = field(default_factory=dict)

    @classmethod
    def open(
        cls, options: Options, *, require_manifest: bool, overrides: tuple[str, ...] = ()
    ) -> Project:
        manifest_path = options.config or find_manifest(options.cwd) or _manifest_of(options)
        if options.config is not None and not options.config.exists():
            raise ManifestError("no such file", path=str(options.config))
        if manifest_path is None:
            if require_manifest:
                raise PromptBudgetError(
                    "no budgets.yaml in this directory or any parent; run 'promptbudget init' "
                    "to create one, or pass --config PATH"
                )
            catalog = load_catalog()
            if options.prices is not None:
                catalog = overlay_prices(
                    catalog, load_price_file(options.prices), label=options.prices.name
                )
            return cls(
                root=options.cwd.resolve(),
                manifest=None,
                catalog=catalog,
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

    def load(self, path: Path, *, confine_to: Path | None) -> ParsedTemplate:
        """Read and parse ``path`` once. A file whose real path is outside ``confine_to`` (a
        symlink out of the repository) is not read; ``None`` reads any file named by the
        user."""
        resolved = path.resolve()
        cached = self.templates.get(resolved)
        if cached is not None:
            return cached
        shown = display_path(path, self.root)
        fmt = detect_format(path)
        root = confine_to or confinement_root(path, self.root)
        read = read_prompt_text(path, root=root)
        parsed = parse_template(path, shown, fmt, read, root=root)
        parsed = _with_sample_file(parsed, confine_to)
        self.templates[resolved] = parsed
        return parsed

    @property
    def manifest_variables(self) -> Mapping[str, VariableSpec]:
        return self.manifest.variables if self.manifest else {}

    def step_variables_for(self, path: Path) -> dict[str, VariableSpec]:
        """Variables the manifest's steps declare for the template at ``path``, merged; where
        steps disagree, the largest cap (the worst case) wins."""
        merged: dict[str, VariableSpec] = {}
        if self.manifest is None:
            return merged
        resolved = path.resolve()
        for workflow in self.manifest.workflows:
            for step in workflow.steps:
                if step.prompt_path != resolved:
                    continue
                for name, spec in step.variables.items():
                    current = merged.get(name)
                    if current is None or (spec.bound_tokens or 0) > (current.bound_tokens or 0):
                        merged[name] = spec
        return merged

    @property
    def default_model(self) -> str | None:
        return self.manifest.default_model if self.manifest else None


def _manifest_of(options: Options) -> Path | None:
    """The manifest of the files named, when none is found from the working directory (a
    pre-commit hook runs from the repository root; the project may be in a subdirectory)."""
    found: dict[Path, None] = {}
    for given in options.paths:
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


def variable_values(
    parsed: ParsedTemplate,
    layers: list[tuple[Mapping[str, VariableSpec], str]],
) -> dict[str, VariableValue]:
    """Each variable's value: template samples, overridden by each layer in turn (manifest
    variables, then the step's, then the traffic class's)."""
    values = {
        name: VariableValue(name, "sample in the template", sample=sample)
        for name, sample in parsed.meta.samples.items()
    }
    for layer, origin in layers:
        for name, spec in layer.items():
            if spec.is_sized:
                kind = "cap" if spec.max_tokens is not None else "size"
                values[name] = VariableValue(
                    name,
                    f"{kind} in {origin}",
                    max_tokens=spec.bound_tokens,
                    size=spec.tokens if spec.tokens is not None else spec.max_tokens,
                    hard_cap=spec.max_tokens,
                )
            elif spec.has_sample:
                values[name] = VariableValue(name, f"sample in {origin}", sample=spec.sample)
    return values


def count_template(
    parsed: ParsedTemplate, rendered: RenderedPrompt, choice: ModelChoice
) -> TemplateCount:
    tokenizer = get_tokenizer(choice.tokenizer)
    prompt = count_prompt(rendered, tokenizer, parsed.meta.tools) if parsed.is_readable else None
    return TemplateCount(
        path=parsed.display_path,
        format=parsed.format.value,
        model=choice.name,
        tokenizer=tokenizer.name,
        encoding=tokenizer.spec.encoding,
        exact=prompt.exact if prompt is not None else False,
        error_band=tokenizer.spec.error_band,
        prompt=prompt,
        variant=parsed.variant,
    )


def _template_result(
    project: Project,
    parsed: ParsedTemplate,
    model_name: str | None,
    *,
    include_root: Path | None = None,
    manifest_variables: frozenset[str] = frozenset(),
    in_workflow: bool = False,
) -> TemplateResult:
    choice = resolve_model(model_name, project.catalog)
    values = variable_values(
        parsed,
        [
            (project.manifest_variables, "budgets.yaml variables"),
            (project.step_variables_for(parsed.path), "budgets.yaml steps"),
        ],
    )
    rendered = project.renderer.render(parsed, values, include_root=include_root)
    return TemplateResult(
        parsed=parsed,
        rendered=rendered,
        count=count_template(parsed, rendered, choice),
        model_known=choice.is_known,
        closest_models=tuple(project.catalog.closest(model_name)) if model_name else (),
        manifest_variables=manifest_variables,
        in_workflow=in_workflow,
    )


# -- commands --------------------------------------------------------------------------------


def run_count(options: Options) -> Report:
    """``promptbudget count``: tokens per template (and per message), per model."""
    project = Project.open(options, require_manifest=False)
    for model in options.models:
        # A model of a known family (an older Claude, an OpenAI snapshot) is counted with its
        # family's tokenizer and reported as PB110; a name nothing is known of is an error.
        if not resolve_model(model, project.catalog).is_known and guess_tokenizer(model) is None:
            near = project.catalog.closest(model)
            hint = f" (did you mean {', '.join(near)}?)" if near else ""
            raise PromptBudgetError(
                f"unknown model {model!r}{hint}; see 'promptbudget models', or declare it under "
                "models: in budgets.yaml"
            )
    results: list[TemplateResult] = []
    for argument, path in _template_arguments(options, project):
        include_root = _include_root(project.root, argument, path)
        # Files found by walking a directory stay inside it; a file named explicitly is
        # read wherever it points.
        parsed = project.load(path, confine_to=include_root if argument.is_dir() else None)
        names: Iterable[str | None] = options.models or (
            parsed.meta.model or project.default_model,
        )
        results.extend(
            _template_result(
                project,
                part,
                name,
                include_root=include_root,
                manifest_variables=frozenset(project.manifest_variables),
            )
            for part in variants_of(parsed)
            for name in names
        )
    context = RuleContext(templates=tuple(results), manifest=project.manifest)
    severities = _severities(project.manifest)
    findings = _suppress(
        project, run_rules(_count_rules(), context, severities), context, severities, unused=False
    )
    return Report(
        command="count",
        findings=_sorted(findings),
        templates=tuple(r.count for r in results),
        fail_on=options.fail_on,
        exit_zero=options.exit_zero,
        catalog_as_of=project.catalog.as_of,
        root=str(project.root),
    )


def _include_root(root: Path, argument: Path, path: Path) -> Path:
    """Includes resolve inside the project root, or inside the argument for outside files."""
    if path.resolve().is_relative_to(root):
        return root
    return argument.resolve() if argument.is_dir() else path.parent.resolve()


def _count_rules() -> dict[str, Rule]:
    return {code: RULES[code] for code in ("PB001", "PB003", "PB110", "PB201", "PB202", "PB301")}


def _project_templates(project: Project) -> list[TemplateResult]:
    """Every template of the project (the prompts directory and every step's prompt), each
    evaluated for its own model."""
    manifest = project.manifest
    assert manifest is not None
    used: dict[Path, set[str]] = {}
    for workflow in manifest.workflows:
        for step in workflow.steps:
            used.setdefault(step.prompt_path, set()).update(step.variables)

    template_paths: list[Path] = []
    if manifest.prompts_dir.is_dir():
        template_paths.extend(iter_prompt_files([manifest.prompts_dir]))
    walked = {path.resolve() for path in template_paths}
    template_paths.extend(path for path in used if path not in walked)
    results: list[TemplateResult] = []
    manifest_names = frozenset(manifest.variables)
    for path in template_paths:
        if path.resolve() == manifest.path:
            continue
        parsed = project.load(path, confine_to=project.root)
        results.extend(
            _template_result(
                project,
                part,
                parsed.meta.model or manifest.default_model,
                manifest_variables=manifest_names | frozenset(used.get(path.resolve(), ())),
                in_workflow=path.resolve() in used,
            )
            for part in variants_of(parsed)
        )
    return results


def run_check(options: Options) -> Report:
    """``promptbudget check``: every workflow and template against its limits and rules."""
    project = Project.open(options, require_manifest=True)
    manifest = project.manifest
    assert manifest is not None
    severities = _severities(manifest)
    results = _project_templates(project)
    settings = manifest.compression
    compressions, bodies = _compress_templates(results, settings)
    passages = tuple(
        find_passages(bodies, get_tokenizer(DEFAULT_TOKENIZER), settings.duplicate_min_tokens)
    )
    selection = _selection(project, options) if options.paths else None
    # check PATH...: only the workflows the files touch are simulated (each workflow's
    # numbers do not depend on the others), and those whose templates share a pasted
    # passage with them (PB204 says what every copy costs).
    only = selection.priced_workflows(project, passages) if selection is not None else None
    estimates = estimate_workflows(project, options, only=only)
    lock = _read_lock(project)
    locked = [r for r in results if selection is None or r.parsed.display_path in selection.paths]
    step_lines = {
        (workflow.name, step.name): {
            name: spec.line for name, spec in step.variables.items() if spec.line is not None
        }
        for workflow in manifest.workflows
        for step in workflow.steps
    }
    context = RuleContext(
        templates=tuple(results),
        workflows=estimates,
        manifest=manifest,
        step_variable_lines=step_lines,
        compressions=compressions,
        passages=passages,
        token_rates=template_rates(project, estimates),
        min_savings=settings.min_savings,
        lock=lock,
        locked_now=lock_entries(project, locked, estimates) if lock is not None else {},
    )
    findings = _sorted(
        _suppress(project, run_rules(RULES, context, severities), context, severities)
    )
    templates = tuple(r.count for r in results)
    if selection is not None:
        findings, templates, estimates = selection.apply(findings, templates, estimates)
    return Report(
        command="check",
        findings=findings,
        templates=templates,
        workflows=estimates,
        scoped=bool(options.paths),
        fail_on=options.fail_on,
        exit_zero=options.exit_zero,
        catalog_as_of=project.catalog.as_of,
        root=str(project.root),
    )


@dataclass(frozen=True)
class _Selection:
    """What ``check PATH...`` reports on: the templates named, and the workflows whose steps
    use them (directly or through an include)."""

    paths: frozenset[str]
    workflows: frozenset[str]

    def priced_workflows(self, project: Project, passages: Iterable[Passage]) -> frozenset[str]:
        """The workflows to simulate: the selected ones, and those that send a template
        sharing a pasted passage with a selected template."""
        shared = {
            path
            for passage in passages
            if self.paths & set(passage.paths)
            for path in passage.paths
        }
        manifest = project.manifest
        assert manifest is not None
        if not shared:
            return self.workflows
        return self.workflows | {
            workflow.name
            for workflow in manifest.workflows
            for step in workflow.steps
            if display_path(step.prompt_path, project.root) in shared
        }

    def apply(
        self,
        findings: tuple[Finding, ...],
        templates: tuple[TemplateCount, ...],
        workflows: tuple[WorkflowEstimate, ...],
    ) -> tuple[tuple[Finding, ...], tuple[TemplateCount, ...], tuple[WorkflowEstimate, ...]]:
        return (
            tuple(
                f
                for f in findings
                if (f.workflow is not None and f.workflow in self.workflows)
                or (f.workflow is None and f.path in self.paths)
            ),
            tuple(t for t in templates if t.path in self.paths),
            tuple(w for w in workflows if w.name in self.workflows),
        )


_PROJECT_FILES = frozenset({"pyproject.toml", "promptbudget.lock"})


def _selection(project: Project, options: Options) -> _Selection | None:
    """The part of the project ``check PATH...`` is about; None: all of it (the manifest,
    the lock file or a directory holding the manifest was named)."""
    manifest = project.manifest
    assert manifest is not None
    root = project.root.resolve()
    named: set[Path] = set()
    for given in options.paths:
        path = (given if given.is_absolute() else options.cwd / given).resolve()
        if not path.exists():
            raise TemplateNotFoundError(f"{given}: no such file or directory")
        if path == manifest.path or (path.is_dir() and manifest.path.is_relative_to(path)):
            return None
        if path.parent == root and path.name in _PROJECT_FILES:
            return None
        if path.is_relative_to(root):
            named.update(p.resolve() for p in iter_prompt_files([path]) if p.is_file())
            named.add(path)
    shown = {display_path(path, project.root) for path in named}
    workflows = {
        workflow.name
        for workflow in manifest.workflows
        for step in workflow.steps
        if named & {step.prompt_path.resolve(), *_included(project, step.prompt_path)}
    }
    return _Selection(frozenset(shown), frozenset(workflows))


def _included(project: Project, path: Path) -> set[Path]:
    """Every file ``path`` includes, transitively."""
    found: set[Path] = set()
    pending = [path]
    while pending:
        current = pending.pop()
        if not current.is_file():
            continue
        parsed = project.load(current, confine_to=project.root)
        for include in project.renderer.includes_of(parsed):
            if include not in found:
                found.add(include)
                pending.append(include)
    return found


def _read_lock(project: Project) -> Lock | None:
    path = project.root / LOCK_NAME
    if not path.is_file():
        return None
    return read_lock(path, display_path(path, Path.cwd()))


def lock_entries(
    project: Project, results: list[TemplateResult], estimates: tuple[WorkflowEstimate, ...]
) -> dict[str, LockedTemplate]:
    """What ``promptbudget.lock`` holds for each readable template: its version, the hash of
    its text and its request tokens for its own model and every model a step sends it to."""
    models: dict[str, set[str]] = {}
    for estimate in estimates:
        for step in estimate.steps:
            models.setdefault(step.template_path, set()).update(step.models)
    entries: dict[str, LockedTemplate] = {}
    for result in results:
        parsed = result.parsed
        if not parsed.is_readable or result.count.request_tokens is None:
            continue
        if parsed.display_path in entries:
            continue  # one entry per file: a multi-prompt file is locked by its first prompt
        own = result.count.model or result.count.encoding
        tokens = {own: result.count.request_tokens}
        for model in sorted(models.get(parsed.display_path, set()) - {own}):
            other = _template_result(project, parsed, model).count.request_tokens
            if other is not None:
                tokens[model] = other
        entries[parsed.display_path] = LockedTemplate(
            version=declared_version(parsed.text, parsed.body_line, parsed.meta.version),
            sha256=text_sha256(parsed.text),
            tokens=tokens,
        )
    return entries


def run_lock(options: Options, *, check_only: bool) -> tuple[Path, list[str]]:
    """``promptbudget lock``: write ``promptbudget.lock`` (or, with ``check_only``, only say
    what would change). Returns the lock's path and the changes, one line each."""
    project = Project.open(options, require_manifest=True)
    results = _project_templates(project)
    estimates = estimate_workflows(project, options)
    fresh = Lock(lock_entries(project, results, estimates))
    path = project.root / LOCK_NAME
    current = _read_lock(project) if path.is_file() else None
    changes = _lock_changes(current, fresh)
    if not check_only and (current is None or not current.same_as(fresh)):
        data = fresh.to_json(generated_by=f"promptbudget {__version__}").encode("utf-8")
        try:
            atomic_write(path, data)
        except OSError as err:
            raise PromptBudgetError(f"cannot write {LOCK_NAME}: {err.strerror or err}") from err
    return path, changes


def _lock_changes(current: Lock | None, fresh: Lock) -> list[str]:
    if current is None:
        return [f"new lock: {len(fresh.templates)} templates"]
    before, after = current.templates, fresh.templates
    lines = [f"added {name}" for name in sorted(set(after) - set(before))]
    lines += [f"removed {name}" for name in sorted(set(before) - set(after))]
    for name in sorted(set(before) & set(after)):
        old, new = before[name], after[name]
        what = []
        if old.version != new.version:
            what.append(f"version {old.version} -> {new.version}")
        if old.sha256 != new.sha256:
            what.append("content")
        if old.tokens != new.tokens:
            what.append("tokens")
        if what:
            lines.append(f"changed {name}: {', '.join(what)}")
    return lines


@dataclass(frozen=True)
class BaselineResult:
    path: Path
    changes: tuple[LimitChange, ...]
    skipped: tuple[Skipped, ...]
    before: str
    after: str


def run_baseline(options: Options, headroom: Decimal, *, write: bool) -> BaselineResult:
    """``promptbudget baseline``: add missing limits and raise broken ones to today's values
    plus ``headroom``, editing budgets.yaml in place (``write``) or only planning it."""
    from promptbudget.baseline import (
        edit_manifest,
        encode_manifest,
        plan_limits,
        read_manifest_text,
    )

    project = Project.open(options, require_manifest=True)
    manifest = project.manifest
    assert manifest is not None
    if manifest.path.suffix not in {".yaml", ".yml"}:
        raise UsageError(
            f"baseline edits budgets.yaml; {manifest.display_path} is not one. Run it with "
            "--diff and copy the limits by hand"
        )
    estimates = estimate_workflows(project, options)
    planned = plan_limits(estimates, headroom)
    text, bom, crlf = read_manifest_text(manifest.path)
    edited, skipped = edit_manifest(text, planned)
    skipped_names = {s.workflow for s in skipped}
    changes = tuple(c for c in planned if c.workflow not in skipped_names)
    _check_baseline(manifest.path, edited, changes, options)
    if write and edited != text:
        try:
            atomic_write(manifest.path, encode_manifest(edited, bom=bom, crlf=crlf))
        except OSError as err:
            raise PromptBudgetError(
                f"cannot write {manifest.display_path}: {err.strerror or err}"
            ) from err
    return BaselineResult(manifest.path, changes, tuple(skipped), text, edited)


def _check_baseline(
    path: Path, edited: str, changes: tuple[LimitChange, ...], options: Options
) -> None:
    """The edited manifest must load and hold exactly the planned limits (else it is a bug,
    and budgets.yaml is left as it was)."""
    probe = path.with_name(f".{path.name}.baseline")
    try:
        probe.write_text(edited, encoding="utf-8")
        loaded = load_manifest(probe, cwd=options.cwd)
    finally:
        probe.unlink(missing_ok=True)
    workflows = {w.name: w for w in loaded.workflows}
    for change in changes:
        value = getattr(workflows[change.workflow].limits, change.key)
        amount = value.amount if isinstance(value, CostLimit) else value
        if amount is None or Decimal(amount) != change.after:
            raise PromptBudgetError(
                f"baseline could not write {change.key} for {change.workflow} safely "
                f"(it reads back as {amount}); budgets.yaml was not changed. This is a bug: "
                "please report it with your budgets.yaml"
            )


def estimate_workflows(
    project: Project, options: Options, *, only: frozenset[str] | None = None
) -> tuple[WorkflowEstimate, ...]:
    """Every workflow of the manifest (or only ``options.workflow``, or those in ``only``),
    priced."""
    manifest = project.manifest
    assert manifest is not None
    workflows = manifest.workflows
    if only is not None:
        workflows = tuple(w for w in workflows if w.name in only)
    if options.workflow is not None:
        workflows = tuple(w for w in workflows if w.name == options.workflow)
        if not workflows:
            names = ", ".join(w.name for w in manifest.workflows) or "none"
            raise UsageError(f"no workflow named {options.workflow!r}; workflows: {names}")
    return tuple(
        estimate_workflow(
            workflow,
            [(step, *_step_lanes(project, workflow, step)) for step in workflow.steps],
            samples=options.samples,
            seed=options.seed,
        )
        for workflow in workflows
    )


def _step_lanes(project: Project, workflow: Workflow, step: Step) -> tuple[str, list[Lane]]:
    """The template's path and the lanes of ``step``: one per traffic class and routed model."""
    manifest = project.manifest
    assert manifest is not None
    parsed = project.load(step.prompt_path, confine_to=project.root)
    target = step.route or step.model or parsed.meta.model or project.default_model
    lanes: list[Lane] = []
    for traffic_class in workflow.classes:
        label = f"step {workflow.name}.{step.name}"
        layers: list[tuple[Mapping[str, VariableSpec], str]] = [
            (project.manifest_variables, "budgets.yaml variables"),
            (step.variables, f"budgets.yaml {label}"),
        ]
        if traffic_class.variables:
            layers.append((traffic_class.variables, f"traffic class {traffic_class.name}"))
        values = variable_values(parsed, layers)
        rendered = project.renderer.render(parsed, values)
        structural = project.renderer.render(parsed, values, as_slots=True)
        if target is None:
            routed: tuple[RoutedModel, ...] = (RoutedModel("", Decimal(1)),)
        else:
            signals = dict(traffic_class.signals)
            if "context_tokens" not in signals and parsed.is_readable:
                signals["context_tokens"] = count_prompt(
                    rendered, get_tokenizer(DEFAULT_TOKENIZER)
                ).request_tokens
            where = f"traffic class {traffic_class.name!r} of workflow {workflow.name!r}"
            routed = expand_route(
                target, manifest.routes, signals, where=where, source=manifest.display_path
            )
        lanes.extend(
            _lane(project, workflow, step, traffic_class, entry, parsed, rendered, structural)
            for entry in routed
        )
    return parsed.display_path, lanes


def _lane(
    project: Project,
    workflow: Workflow,
    step: Step,
    traffic_class: TrafficClass,
    routed: RoutedModel,
    parsed: ParsedTemplate,
    rendered: RenderedPrompt,
    structural: RenderedPrompt,
) -> Lane:
    choice = resolve_model(routed.model or None, project.catalog)
    tokenizer = get_tokenizer(choice.tokenizer)
    tools = (*parsed.meta.tools, *step.tools)
    prompt = count_prompt(rendered, tokenizer, tools) if parsed.is_readable else None
    structure = (
        structure_prompt(structural, tokenizer, prompt.tool_tokens if prompt else 0)
        if parsed.is_readable
        else None
    )
    sized = []
    for variable in prompt.variables if prompt else ():
        value = rendered.values.get(variable.name)
        if value is None or not value.is_cap:
            continue
        uses = structure.uses.get(variable.name, variable.uses) if structure else variable.uses
        sized.append(
            SizedVariable(
                name=variable.name,
                uses=variable.uses or uses,
                bound=value.max_tokens or 0,
                size=value.size if value.size is not None else (value.max_tokens or 0),
                cap=value.hard_cap,
            )
        )
    framing = tokenizer.spec.tokens_per_message
    if step.user_turn_tokens is not None:
        user_tokens = step.user_turn_tokens + framing + tokenizer.count("user")
    else:
        user_tokens = prompt.last_user_tokens if prompt else 0
    return Lane(
        traffic_class=traffic_class,
        step=step,
        routed=routed,
        price=choice.price,
        tokenizer=tokenizer,
        prompt=prompt,
        structure=structure,
        sized=tuple(sized),
        output=output_bound(step, parsed.meta.max_output_tokens, choice.price),
        user_message_tokens=user_tokens,
        reply_framing=framing + tokenizer.count("assistant"),
        tool_result_message_tokens=(
            step.tool_result_tokens + framing + tokenizer.count("tool") if step.tool_calls else 0
        ),
        cache=(
            CacheTerms(step.prompt_cache_hit_rate)
            if step.prompt_cache_hit_rate is not None
            else None
        ),
        batch_share=step.batch_share if step.batch_share is not None else workflow.batch_share,
        template_path=parsed.display_path,
    )


def run_estimate(options: Options) -> Report:
    """``promptbudget estimate``: cost per call, request, outcome and month, and why; with
    ``--set``, the what-if scenario next to the baseline."""
    baseline_project = Project.open(options, require_manifest=True)
    baseline = estimate_workflows(baseline_project, options)
    project = baseline_project
    workflows = baseline
    if options.sets:
        project = Project.open(options, require_manifest=True, overrides=options.sets)
        workflows = estimate_workflows(project, options)
    manifest = project.manifest
    assert manifest is not None
    context = RuleContext(workflows=workflows, manifest=manifest)
    findings = run_rules(_estimate_rules(), context, _severities(manifest))
    return Report(
        command="estimate",
        findings=_sorted(findings),
        workflows=workflows,
        baseline=baseline if options.sets else (),
        exit_zero=True,
        catalog_as_of=project.catalog.as_of,
        root=str(project.root),
        why=options.why,
        sets=options.sets,
    )


def template_rates(
    project: Project, estimates: tuple[WorkflowEstimate, ...]
) -> dict[str, tuple[Decimal, tuple[str, ...]]]:
    """``template_token_rates``, with each partial charged what its includers pay: a token
    saved in ``partials/policy.j2`` is saved in every prompt that includes it."""
    rates = template_token_rates(estimates)
    pending = [(path, rate) for path, rate in rates.items()]
    seen: set[tuple[str, str]] = set()
    while pending:
        path, (rate, workflows) = pending.pop()
        parsed = project.templates.get((project.root / path).resolve())
        if parsed is None:
            continue
        for include in project.renderer.includes_of(parsed):
            included = project.load(include, confine_to=project.root)
            key = (path, included.display_path)
            if key in seen:
                continue
            seen.add(key)
            total, names = rates.get(included.display_path, (Decimal(0), ()))
            merged = (total + rate, tuple(dict.fromkeys((*names, *workflows))))
            rates[included.display_path] = merged
            pending.append((included.display_path, (rate, workflows)))
    return rates


def _compress_templates(
    results: list[TemplateResult], settings: CompressionSettings
) -> tuple[dict[str, CompressionResult], dict[str, tuple[str, int]]]:
    """What the safe passes save on each readable template (PB205), and each template's
    body with the line it starts on (PB204)."""
    compressions: dict[str, CompressionResult] = {}
    bodies: dict[str, tuple[str, int]] = {}
    options = PassOptions(keep_examples=settings.keep_examples)
    for result in results:
        parsed = result.parsed
        if not parsed.is_readable or parsed.text_problem or parsed.format is TemplateFormat.TEXT:
            continue
        if detect_format(parsed.path) is TemplateFormat.TEXT:
            continue  # a template inside YAML or JSON: compress never rewrites those
        if parsed.variant is not None and not parsed.variant.startswith("1 of "):
            continue  # a multi-prompt file is compressed (and reported) once
        head, body = split_head(parsed.text, parsed.format)
        bodies[parsed.display_path] = (body, head.count("\n") + 1)
        tokenizer = get_tokenizer(result.count.tokenizer)
        compressed = compress_text(body, SAFE_PASSES, tokenizer, options)
        compressions[parsed.display_path] = replace(
            compressed, original=parsed.text, text=head + compressed.text
        )
    return compressions, bodies


def _estimate_rules() -> dict[str, Rule]:
    """What makes an estimate partial or approximate (estimate is not a gate)."""
    return {code: RULES[code] for code in ("PB103", "PB110", "PB201", "PB301")}


def run_models(options: Options) -> Report:
    """``promptbudget models``: the catalog (with the manifest's additions, if any)."""
    manifest_path = options.config or find_manifest(options.cwd)
    if manifest_path is not None:
        catalog = load_manifest(manifest_path, cwd=options.cwd, prices=options.prices).catalog
    else:
        catalog = load_catalog()
        if options.prices is not None:
            catalog = overlay_prices(
                catalog, load_price_file(options.prices), label=options.prices.name
            )
    models = sorted(catalog.models.values(), key=lambda m: (m.provider, m.name))
    if options.provider:
        providers = sorted({m.provider for m in models})
        if options.provider.lower() not in providers:
            raise UsageError(
                f"unknown provider {options.provider!r}; providers: {', '.join(providers)}"
            )
        models = [m for m in models if m.provider == options.provider.lower()]
    return Report(command="models", models=tuple(models), catalog_as_of=catalog.as_of)


def compression_passes(options: Options, project: Project) -> list[str]:
    """The passes to run: ``--pass`` names, else the manifest's, else the safe ones."""
    names = list(options.passes)
    if not names and project.manifest and project.manifest.compression.passes is not None:
        names = list(project.manifest.compression.passes)
    if not names:
        names = list(SAFE_PASSES)
    unknown = [name for name in names if name not in PASSES]
    if unknown:
        raise UsageError(
            f"unknown compression pass {unknown[0]!r}; passes: {', '.join(PASSES)} "
            "(see 'promptbudget compress --help')"
        )
    return names


def run_compress(options: Options) -> Report:
    """``promptbudget compress``: what the passes save per file and per month; with
    ``--diff`` the changes, with ``--write`` the files rewritten."""
    project = Project.open(options, require_manifest=False)
    names = compression_passes(options, project)
    if options.keep_examples is not None and "examples" not in names:
        raise UsageError("--keep-examples applies to the examples pass; add --pass examples")
    settings = project.manifest.compression if project.manifest else CompressionSettings()
    pass_options = PassOptions(
        keep_examples=options.keep_examples
        if options.keep_examples is not None
        else settings.keep_examples
    )
    rates = (
        template_rates(project, estimate_workflows(project, replace(options, samples=1)))
        if project.manifest is not None and project.manifest.workflows
        else {}
    )
    files: list[FileCompression] = []
    for argument, path in _template_arguments(options, project):
        fmt = detect_format(path)
        shown = display_path(path, project.root)
        if fmt is TemplateFormat.TEXT:
            continue
        parsed = project.load(path, confine_to=_include_root(project.root, argument, path))
        choice = resolve_model(parsed.meta.model or project.default_model, project.catalog)
        tokenizer = get_tokenizer(choice.tokenizer)
        problem = _unparsable(project, parsed)
        if problem is None:
            try:
                template = read_template_file(path, fmt, shown)
                result = compress_file(template, names, tokenizer, pass_options)
            except WriteError as err:
                problem = str(err).removeprefix(f"{shown}: ")
        if problem is not None:
            # Asked to write, a file left as it is is a failure; asked to look, a note.
            if options.write:
                reason = problem.removesuffix("; not read").removesuffix("; not compressed")
                refused = f"{shown}: {reason}; not written"
                files.append(FileCompression(shown, tokenizer.name, None, error=refused))
            else:
                files.append(FileCompression(shown, tokenizer.name, None, skipped=problem))
            continue
        rate, workflows = rates.get(shown, (None, ()))
        saving = rate * result.tokens_saved if rate is not None else None
        diff = unified_diff(shown, result.original, result.text) if options.diff else None
        written = False
        failure: str | None = None
        if options.write and result.changed:
            try:
                write_atomically(template, result.text, root=project.root)
                written = True
            except WriteError as err:
                failure = str(err)
        files.append(
            FileCompression(
                shown, tokenizer.name, result, saving, workflows, written, failure, diff
            )
        )
    return Report(
        command="compress",
        compressions=tuple(files),
        passes=tuple(names),
        catalog_as_of=project.catalog.as_of,
        root=str(project.root),
        exit_zero=True,
    )


def _template_arguments(options: Options, project: Project) -> Iterable[tuple[Path, Path]]:
    """(argument, file) for every template the command was pointed at."""
    if options.paths:
        arguments = options.paths
    elif project.manifest is not None:
        arguments = (project.manifest.prompts_dir,)
    else:
        arguments = (options.cwd,)
    for given in arguments:
        argument = given if given.is_absolute() else options.cwd / given
        if not argument.exists():
            raise TemplateNotFoundError(f"{given}: no such file or directory")
        for path in iter_prompt_files([argument]):
            yield argument, path


def _unparsable(project: Project, parsed: ParsedTemplate) -> str | None:
    """Why a template is not compressed: a template that does not parse could be damaged,
    since its syntax cannot be told from its text."""
    if not parsed.is_readable:
        return parsed.text_problem or "cannot be read"
    if parsed.problem is not None:
        return f"not compressed: {parsed.problem}"
    if parsed.meta.engine == "jinja2" and parsed.format is not TemplateFormat.TEXT:
        try:
            project.renderer.environment(project.root, (project.root,)).parse(parsed.body)
        except TemplateSyntaxError as err:
            line = parsed.body_line + (err.lineno or 1) - 1
            return f"not compressed: Jinja2 syntax error on line {line}: {err.message}"
    return None


def run_models_diff(options: Options, path: Path) -> Report:
    """``promptbudget models --diff FILE``: which bundled prices a price file changes."""
    catalog = load_catalog()
    changes, missing = diff_prices(catalog, load_price_file(path))
    return Report(
        command="models-diff",
        catalog_as_of=catalog.as_of,
        price_file=str(path),
        price_changes=tuple(changes),
        missing_models=tuple(missing),
    )


def _suppress(
    project: Project,
    findings: list[Finding],
    context: RuleContext,
    severities: dict[str, Severity | None],
    *,
    unused: bool = True,
) -> list[Finding]:
    """Drop suppressed findings; with ``unused`` (``check``: every rule ran), report the
    suppressions that silenced nothing (PB002)."""
    suppressions = _suppressions(project)
    if not suppressions:
        return findings
    outcome = apply_suppressions(findings, suppressions)
    kept = list(outcome.kept)
    if unused:
        pb002 = {"PB002": RULES["PB002"]}
        kept.extend(run_rules(pb002, replace(context, suppressions=outcome), severities))
    return kept


def _rule_code(name: str) -> str | None:
    found = find_rule(name)
    return found.code if found is not None else None


def _suppressions(project: Project) -> list[Suppression]:
    """Every suppression: comments in the templates read and in the manifest, and the
    manifest's ``per_file_ignores``."""
    found: list[Suppression] = []
    for parsed in project.templates.values():
        if not parsed.is_readable or "promptbudget:" not in parsed.text:
            continue
        engine = parsed.meta.engine
        if parsed.format is TemplateFormat.DOTPROMPT:
            engine = "handlebars"
        elif parsed.format is TemplateFormat.TEXT:
            engine = "none"
        found.extend(
            scan_suppressions(
                parsed.text,
                parsed.display_path,
                engine=engine,
                yaml_lines=parsed.body_line - 1,
                resolve=_rule_code,
            )
        )
    manifest = project.manifest
    if manifest is None:
        return found
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
                    f"unknown rule {name!r} in per_file_ignores; see 'promptbudget rules' for "
                    "codes and slugs",
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
    return found


def _severities(manifest: Manifest | None) -> dict[str, Severity | None]:
    """Rule severities from the manifest's ``rules:`` (codes or slugs)."""
    severities: dict[str, Severity | None] = {}
    if manifest is None:
        return severities
    configured_as: dict[str, str] = {}
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
            raise fail(f"unknown rule {name!r}; see 'promptbudget rules' for codes and slugs")
        if found.code in configured_as:
            raise fail(
                f"{found.code} is configured twice (as {configured_as[found.code]!r} and "
                f"{name!r}); keep one"
            )
        configured_as[found.code] = name
        severities[found.code] = parse_severity(value)
    return severities


def _sorted(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(findings, key=lambda f: f.sort_key))


__all__ = ["Project", "resolve_model", "run_check", "run_count", "run_estimate", "run_models"]
