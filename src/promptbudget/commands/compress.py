"""``promptbudget compress``: what the passes save per file and per month; with ``--diff`` the
changes, with ``--write`` the files rewritten."""

from __future__ import annotations

from pathlib import Path

from jinja2 import TemplateSyntaxError

from promptbudget.compression import PASSES, SAFE_PASSES, FileCompression, PassOptions, unified_diff
from promptbudget.compression.rewrite import (
    WriteError,
    compress_file,
    read_template_file,
    write_atomically,
)
from promptbudget.errors import UsageError
from promptbudget.fileio import remove_stale_temporaries
from promptbudget.lanes import estimate_workflows, template_rates
from promptbudget.manifest.model import CompressionSettings
from promptbudget.options import Options
from promptbudget.pricing.resolve import resolve_model
from promptbudget.project import Project
from promptbudget.report import Report
from promptbudget.templates.meta import ParsedTemplate
from promptbudget.templates.source import TemplateFormat, detect_format, display_path
from promptbudget.tokenizers import get_tokenizer


def run(options: Options) -> Report:
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
        template_rates(project, estimate_workflows(project, samples=1, seed=options.seed))
        if project.manifest is not None and project.manifest.workflows
        else {}
    )
    files: list[FileCompression] = []
    swept: set[Path] = set()
    for argument, path in project.template_arguments(options):
        fmt = detect_format(path)
        shown = display_path(path, project.root)
        if fmt is TemplateFormat.TEXT:
            continue
        if options.write and path.parent not in swept:  # what killed runs left behind
            swept.add(path.parent)
            remove_stale_temporaries(path.parent)
        parsed = project.load(path, confine_to=project.include_root(argument, path))
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
                write_atomically(template, result.text, root=project.root, force=options.force)
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
