"""Templates evaluated on their own: values for their variables, rendered, counted for a model;
what the safe compression passes would save on them; and the rules run over the results.

Every function takes the Project (or the parts it needs) and returns values; nothing here
reaches back to a command.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from promptbudget.cache import active_store, cache_key
from promptbudget.compression import (
    SAFE_PASSES,
    CompressionResult,
    PassOptions,
    PassSaving,
    compress_text,
    first_change_kept,
    first_changed_line,
)
from promptbudget.compression.passages import (
    IndexPart,
    PassageIndex,
    index_parts,
    paragraph_digest,
    passage_body,
)
from promptbudget.counting import TemplateCount, count_prompt
from promptbudget.estimates import WorkflowEstimate
from promptbudget.filecache import CHECK, context_key, through_cache
from promptbudget.findings import Finding, Severity
from promptbudget.lockfile import LockedTemplate, declared_version, text_sha256
from promptbudget.manifest.model import CompressionSettings, VariableSpec
from promptbudget.pathnames import known_real, real
from promptbudget.pricing.resolve import DEFAULT_TOKENIZER, ModelChoice, resolve_model
from promptbudget.progress import track
from promptbudget.project import Project
from promptbudget.rules import RULES, Rule, RuleContext, TemplateResult, run_rules
from promptbudget.suppressions import Suppression
from promptbudget.suppressions import apply as apply_suppressions
from promptbudget.templates.meta import ParsedTemplate
from promptbudget.templates.parse import engine_label, variants_of
from promptbudget.templates.rendered import RenderedPrompt, VariableValue
from promptbudget.templates.source import (
    FoundFile,
    display_path,
    list_prompt_files,
)
from promptbudget.tokenizers import Tokenizer, get_tokenizer, load_encoding
from promptbudget.tokenizers.textclass import classify


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
    text_class = None
    if not tokenizer.exact:
        text_class = classify("\n".join(message.text for message in rendered.messages))
    return TemplateCount(
        path=parsed.display_path,
        format=engine_label(parsed),
        model=choice.name,
        tokenizer=tokenizer.name,
        encoding=tokenizer.spec.encoding,
        exact=prompt.exact if prompt is not None else False,
        error_band=tokenizer.error_band(text_class),
        prompt=prompt,
        variant=parsed.variant,
        text_class=text_class,
    )


def evaluate_template(
    project: Project,
    parsed: ParsedTemplate,
    model_name: str | None,
    *,
    include_root: Path | None = None,
    manifest_variables: frozenset[str] = frozenset(),
    in_workflow: bool = False,
) -> TemplateResult:
    """One template rendered with its samples and the manifest's variables, counted for
    ``model_name``."""
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
        closest_models=(
            tuple(project.catalog.closest(model_name)) if model_name and not choice.is_known else ()
        ),
        manifest_variables=manifest_variables,
        in_workflow=in_workflow,
    )


def _step_inputs(project: Project) -> dict[Path, set[str]]:
    """Every step's template, with the variables the steps give it."""
    manifest = project.manifest
    assert manifest is not None
    used: dict[Path, set[str]] = {}
    for workflow in manifest.workflows:
        for step in workflow.steps:
            used.setdefault(step.prompt_path, set()).update(step.variables)
    return used


def template_paths(project: Project) -> list[Path]:
    """The project's templates: the prompts directory, then every step's prompt outside it
    (the manifest itself is not one)."""
    return [found.path for found in template_files(project)]


def template_files(project: Project) -> list[FoundFile]:
    """``template_paths`` with each file's real path and display path; listed once a run."""
    if project.listing is not None:
        return project.listing
    manifest = project.manifest
    assert manifest is not None
    found: list[FoundFile] = []
    if manifest.prompts_dir.is_dir():
        found.extend(list_prompt_files(manifest.prompts_dir, project.root))
    walked = {file.resolved for file in found}
    found.extend(
        _found(path, project.root)
        for path in _step_inputs(project)
        if os.fspath(path) not in walked
    )
    stdin = project.stdin_path  # check -: the template piped in, wherever it stands
    if stdin is not None and all(file.resolved != os.fspath(stdin) for file in found):
        found.append(_found(stdin, project.root))
    manifest_path = os.fspath(manifest.path)
    project.listing = [file for file in found if file.resolved != manifest_path]
    return project.listing


def _found(path: Path, root: Path) -> FoundFile:
    return FoundFile(os.fspath(path), os.fspath(path.resolve()), display_path(path, root))


def project_templates(
    project: Project, *, only: frozenset[str] | None = None
) -> list[TemplateResult]:
    """Every template of the project (the prompts directory and every step's prompt), each
    evaluated for its own model; with ``only``, just the templates with those display
    paths (``check PATH...``: the rest is neither rendered nor counted)."""
    manifest = project.manifest
    assert manifest is not None
    used = _step_inputs(project)
    results: list[TemplateResult] = []
    manifest_names = frozenset(manifest.variables)
    paths = [file.path for file in template_files(project) if only is None or file.shown in only]
    for path in track(paths, "rendering and counting templates"):
        parsed = project.load(path, confine_to=project.root)
        results.extend(
            evaluate_template(
                project,
                part,
                parsed.meta.model or manifest.default_model,
                manifest_variables=manifest_names | frozenset(used.get(path.resolve(), ())),
                in_workflow=path.resolve() in used,
            )
            for part in variants_of(parsed)
        )
    return results


@dataclass
class TemplateRun:
    """Every template of a ``check``, evaluated one file at a time: each rendered, counted
    and compressed, then kept only as the rules and the report read it (``settled``)."""

    results: list[TemplateResult] = field(default_factory=list)
    # What the safe passes save on each readable template (PB205); its texts cut after the
    # first changed line (``first_change_kept``: all the rule reads of them)
    compressions: dict[str, CompressionResult] = field(default_factory=dict)
    # Each compressed template's body and the line it starts on (``check PATH``: PB204 looks
    # for the named templates' paragraphs in the others' fingerprints)
    bodies: dict[str, tuple[str, int]] = field(default_factory=dict)
    # The paragraphs of every body (a full check: PB204 over the whole project)
    index: PassageIndex = field(default_factory=PassageIndex)


def check_templates(
    project: Project,
    settings: CompressionSettings,
    *,
    only: frozenset[str] | None = None,
    keep_text: bool = False,
    keep_messages: Callable[[TemplateResult], bool] = lambda _result: False,
    cached_as: Sequence[str] | None = None,
) -> TemplateRun:
    """``project_templates`` with what the safe passes save on each readable template and its
    paragraphs for PB204; with ``only`` (``check PATH``), the bodies instead of the paragraphs.
    A file is released once done (``Project.release``) and its results ``settled``, keeping
    the template text with ``keep_text`` (the lock reads it) and the rendered messages where
    ``keep_messages`` says (``templates:`` limits recount them). A large tree is done on every
    core (``parallel.in_order``), with the same results in the same order. With
    ``cached_as`` (a full check: the options that shape the project), each file's share is
    kept in the cache and a file whose inputs did not change is not evaluated
    (``filecache.py``)."""
    manifest = project.manifest
    assert manifest is not None
    used = _step_inputs(project)
    options = PassOptions(keep_examples=settings.keep_examples)
    manifest_names = frozenset(manifest.variables)
    bodies = only is not None

    def check_file(path: Path) -> FileCheck:
        """One file's share of the run (in a worker process, or here)."""
        run = TemplateRun(index=PassageParts())
        parsed = project.load(path, confine_to=project.root)
        resolved = real(path)
        for part in variants_of(parsed):
            result = evaluate_template(
                project,
                part,
                parsed.meta.model or manifest.default_model,
                manifest_variables=manifest_names | frozenset(used.get(resolved, ())),
                in_workflow=resolved in used,
            )
            _compress(result, options, run, bodies=bodies)
            run.results.append(settled(result, keep_text, keep_messages(result)))
        released = None
        if resolved not in used:  # the workflows' templates are rendered again for each lane
            project.release(path)
            released = project.released(path)
        assert isinstance(run.index, PassageParts)
        return FileCheck(run.results, run.compressions, run.bodies, run.index.parts, released)

    files = [file for file in template_files(project) if only is None or file.shown in only]
    for file in files:
        known_real(file.walked, file.resolved)
    context = None
    if only is None and cached_as is not None:
        context = context_key(CHECK, (*cached_as, str(keep_text)))

    def kept_apart(done: FileCheck) -> tuple[FileCheck, Any]:
        # PB204's paragraphs are kept without their texts (most are in one template only):
        # the few found in two are read again (``_recover_texts``)
        return replace(done, paragraphs=[]), _digests(done.paragraphs)

    def read_back(kept: FileCheck, digests: Any) -> FileCheck:
        kept.paragraphs = _digests_read(digests)  # (as each file is merged, not all at once)
        return kept

    checked = through_cache(
        files,
        lambda index: check_file(files[index].path),
        FileCheck,
        cache_kind=CHECK,
        contexts=None if context is None else [context] * len(files),
        label="rendering, counting and compressing templates",
        prepare=build_default_encoding,
        apart=kept_apart,
        together=read_back,
    )
    run = TemplateRun()
    for file, done in zip(files, checked, strict=True):
        run.results.extend(done.results)
        for shown, compression in done.compressions.items():
            if shown in run.compressions:  # compressed (and reported) once
                continue
            run.compressions[shown] = compression
            if shown in done.bodies:
                run.bodies[shown] = done.bodies[shown]
            for added, parts in done.paragraphs:
                if added == shown:
                    run.index.add_parts(shown, parts)
        if done.released is None:  # kept loaded (in a worker, it was loaded there)
            project.load(file.path, confine_to=project.root)
        else:
            project.keep_released(file.path, done.released)
    unknown = run.index.unknown_texts()
    if unknown:
        _recover_texts(project, {file.shown: file.path for file in files}, run.index, unknown)
    return run


def _digests(paragraphs: list[tuple[str, list[IndexPart]]]) -> list[list[str]]:
    """PB204's paragraphs of a file as the cache keeps them: [display path, "digest:line,..."]
    for each part, without the texts (``_recover_texts``)."""
    return [
        [shown, ",".join(f"{key}:{line}" for key, line, _ in parts)] for shown, parts in paragraphs
    ]


def _digests_read(kept: object) -> list[tuple[str, list[IndexPart]]]:
    """``_digests`` read back (each text empty); ValueError for anything it does not write."""
    if not isinstance(kept, list):
        raise ValueError("not a list of paragraphs")
    found: list[tuple[str, list[IndexPart]]] = []
    for item in kept:
        if not (isinstance(item, list) and len(item) == 2):
            raise ValueError("not [path, paragraphs]")
        shown, packed_parts = item
        if not (isinstance(shown, str) and isinstance(packed_parts, str)):
            raise ValueError("not [path, paragraphs]")
        parts: list[IndexPart] = []
        for part in packed_parts.split(",") if packed_parts else ():
            key, _, line = part.partition(":")
            if len(key) != _DIGEST_HEX or not line.isdigit() or len(line) > 9:
                raise ValueError("not digest:line")
            parts.append((key, int(line), ""))
        found.append((shown, parts))
    return found


_DIGEST_HEX = 32  # a paragraph's digest (``paragraph_digest``)


def _recover_texts(
    project: Project, paths: Mapping[str, Path], index: PassageIndex, unknown: dict[str, str]
) -> None:
    """The texts of paragraphs found in two templates that only kept evaluations held (by
    digest): from the cache (a text is kept under its digest, which vouches for it), else
    read again from one template that holds each, as ``_compress`` indexed it."""
    store = active_store()
    if store is not None:
        for key in list(unknown):
            text = store.get(cache_key("paragraph", key))
            if isinstance(text, str) and paragraph_digest(text) == key:
                index.know_text(key, text)
                del unknown[key]
    for shown in sorted(set(unknown.values())):
        path = paths.get(shown)
        if path is None:  # not a file of this run (cannot be: its part was added by its name)
            continue
        loaded = real(path) in project.templates
        for part in variants_of(project.load(path, confine_to=project.root)):
            split = passage_body(part)
            if split is not None:
                head, body = split
                for key, _, text in index_parts(body, head.count("\n") + 1):
                    if key in unknown:
                        index.know_text(key, text)
                        if store is not None:
                            store.put(cache_key("paragraph", key), text)
        if not loaded:
            project.release(path)


def build_default_encoding() -> None:
    """The encoding most templates are counted with, built before worker processes are
    forked (``parallel.in_order``): each would build its own (~0.15 s and ~76 MB apiece).
    Not with a cache that holds entries: a warm run may count nothing (a worker that must
    builds it then)."""
    store = active_store()
    if store is not None:
        store.load_all()
        if not store.is_empty():
            return
    load_encoding(get_tokenizer(DEFAULT_TOKENIZER).spec.encoding)


@dataclass
class FileCheck:
    """What ``check_templates`` keeps of one file."""

    results: list[TemplateResult]
    compressions: dict[str, CompressionResult]
    bodies: dict[str, tuple[str, int]]
    paragraphs: list[tuple[str, list[IndexPart]]]  # PassageIndex.add_parts, in order
    released: list[Suppression] | None  # what Project.release kept; None: not released


class PassageParts(PassageIndex):
    """A ``PassageIndex`` that keeps what is added to it, to be added to another."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[tuple[str, list[IndexPart]]] = []

    def add(self, path: str, body: str, first_line: int) -> None:
        self.parts.append((path, index_parts(body, first_line)))


def _compress(
    result: TemplateResult, options: PassOptions, run: TemplateRun, *, bodies: bool
) -> None:
    parsed = result.parsed
    split = passage_body(parsed)
    if split is None or parsed.display_path in run.compressions:
        return
    head, body = split
    first_line = head.count("\n") + 1
    if bodies:
        run.bodies[parsed.display_path] = (body, first_line)
    else:
        run.index.add(parsed.display_path, body, first_line)
    tokenizer = get_tokenizer(result.count.tokenizer)
    run.compressions[parsed.display_path] = safe_savings(
        parsed.text, head, body, tokenizer, options
    )


def safe_savings(
    text: str, head: str, body: str, tokenizer: Tokenizer, options: PassOptions
) -> CompressionResult:
    """What the safe passes do to ``body`` (the template ``text`` is ``head`` + ``body``), its
    texts cut after the first changed line (``first_change_kept``). Kept in the cache under
    all of that, the tokenizer and the options, as the first changed line and the compressed
    lines from it: the rest of the cut texts is the template's own."""
    store = active_store()
    if store is None:
        return _safe_savings(text, head, body, tokenizer, options)
    key = cache_key(
        "safe savings",
        text,
        head,
        body,
        ",".join(SAFE_PASSES),
        repr(options),
        tokenizer.identity,
        repr(tokenizer.spec),
    )
    kept = _savings_from(store.get(key), text)
    if kept is not None:
        return kept
    result = _safe_savings(text, head, body, tokenizer, options)
    store.put(key, _savings_entry(result))
    return result


def _savings_entry(result: CompressionResult) -> list[Any]:
    first = first_changed_line(result.original, result.text)
    return [
        first,
        result.text.split("\n")[first - 1 :],
        result.tokens_before,
        result.tokens_after,
        [[saving.name, saving.tokens_saved] for saving in result.passes],
    ]


def _safe_savings(
    text: str, head: str, body: str, tokenizer: Tokenizer, options: PassOptions
) -> CompressionResult:
    compressed = compress_text(body, SAFE_PASSES, tokenizer, options)
    original, cut = first_change_kept(text, head + compressed.text)
    return replace(compressed, original=original, text=cut)


def _savings_from(value: object, text: str) -> CompressionResult | None:
    """``safe_savings``'s result from its cache entry, or None for anything it does not keep."""
    if not (isinstance(value, list) and len(value) == 5):
        return None
    first, tail, before, after, passes = value
    numbers = (first, before, after)
    if not all(type(n) is int and n >= 0 for n in numbers) or first < 1:
        return None
    if not (isinstance(tail, list) and len(tail) <= 2 and all(isinstance(t, str) for t in tail)):
        return None
    if not isinstance(passes, list) or not all(
        isinstance(p, list) and len(p) == 2 and isinstance(p[0], str) and type(p[1]) is int
        for p in passes
    ):
        return None
    lines = text.split("\n", first + 1)  # the lines before the first change left empty
    return CompressionResult(
        original="\n" * (first - 1) + "\n".join(lines[first - 1 : first + 1]),
        text="\n" * (first - 1) + "\n".join(tail),
        tokens_before=before,
        tokens_after=after,
        passes=tuple(PassSaving(name, saved) for name, saved in passes),
    )


def settled(
    result: TemplateResult, keep_text: bool = False, keep_messages: bool = False
) -> TemplateResult:
    """``result`` as a run keeps it once counted (and compressed): without the rendered
    messages and the template's text (unless asked to keep them), which were most of a
    large run's memory; everything else the rules and reports read is kept."""
    parsed, rendered = result.parsed, result.rendered
    if not keep_text:
        parsed = replace(parsed, text="", body="", variants=())
    if not keep_messages:
        rendered = replace(rendered, messages=())
    return replace(result, parsed=parsed, rendered=rendered)


def lock_entries(
    project: Project, results: list[TemplateResult], estimates: tuple[WorkflowEstimate, ...]
) -> dict[str, LockedTemplate]:
    """What ``promptbudget.lock`` holds for each readable template: its version, the hash of
    its text and its request tokens for its own model and every model a step sends it to."""

    def canonical(name: str) -> str:  # an alias and its model are one entry, by its name
        price = project.catalog.lookup(name)
        return price.name if price is not None else name

    models: dict[str, set[str]] = {}
    for estimate in estimates:
        for step in estimate.steps:
            models.setdefault(step.template_path, set()).update(map(canonical, step.models))
    entries: dict[str, LockedTemplate] = {}
    for result in results:
        parsed = result.parsed
        if not parsed.is_readable or result.count.request_tokens is None:
            continue
        if parsed.display_path in entries:
            continue  # one entry per file: a multi-prompt file is locked by its first prompt
        own = canonical(result.count.model) if result.count.model else result.count.encoding
        tokens = {own: result.count.request_tokens}
        for model in sorted(models.get(parsed.display_path, set()) - {own}):
            other = evaluate_template(project, parsed, model).count.request_tokens
            if other is not None:
                tokens[model] = other
        entries[parsed.display_path] = LockedTemplate(
            version=declared_version(parsed.text, parsed.body_line, parsed.meta.version),
            sha256=text_sha256(parsed.text),
            tokens=tokens,
        )
    return entries


def lint(
    project: Project,
    rules: Mapping[str, Rule],
    context: RuleContext,
    *,
    unused: bool,
    defaults: Mapping[str, Severity] | None = None,
) -> tuple[Finding, ...]:
    """Run ``rules`` with the project's severities (else ``defaults``, a command's own, else
    each rule's), drop suppressed findings and sort them. With ``unused`` (``check``: every
    rule ran), suppressions that silenced nothing are reported (PB002)."""
    severities = {**(defaults or {}), **project.severities}
    findings = run_rules(dict(rules), context, severities)
    suppressions = project.suppressions()
    if suppressions:
        outcome = apply_suppressions(findings, suppressions)
        findings = list(outcome.kept)
        if unused:
            pb002 = {"PB002": RULES["PB002"]}
            findings.extend(run_rules(pb002, replace(context, suppressions=outcome), severities))
    return sort_findings(findings)


def sort_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(findings, key=lambda f: f.sort_key))


def select_rules(*codes: str) -> dict[str, Rule]:
    return {code: RULES[code] for code in codes}
