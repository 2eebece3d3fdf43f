"""The commands that write or explain: lock, baseline, compress, models, rules, explain,
schema, init."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from promptbudget.cli.app import (
    ColorOption,
    ConfigOption,
    NoCacheOption,
    NoColorOption,
    OutputOption,
    PricesOption,
    QuietOption,
    SamplesOption,
    SeedOption,
    TextJsonFormatOption,
    VerboseOption,
    app,
    make_options,
)
from promptbudget.cli.output import (
    ColorMode,
    emit_report,
    stderr_line,
    write_text,
)
from promptbudget.errors import UsageError
from promptbudget.options import OutputFormat


@app.command()
def lock(
    check_only: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Write nothing; exit 1 if promptbudget.lock is missing or out of date.",
        ),
    ] = False,
    config: ConfigOption = None,
    prices: PricesOption = None,
) -> int:
    """Write promptbudget.lock: each template's version, content hash and tokens per model.

    'check' then reports PB206 when a versioned template changes but its version does not.
    """
    from promptbudget.commands import lock as command

    options = make_options(config=config, fmt=OutputFormat.TEXT, output=None, prices=prices)
    result = command.run(replace(options, check_only=check_only))
    path, changes = result.path, result.changes
    shown = os.path.relpath(path, Path.cwd()) if path.is_relative_to(Path.cwd()) else str(path)
    if check_only:
        if not changes:
            write_text(f"{shown} is up to date\n", None)
            return 0
        write_text("".join(f"{line}\n" for line in changes), None)
        stderr_line(f"{shown} is out of date; run 'promptbudget lock'")
        return 1
    if changes:
        stderr_line(f"wrote {shown}: " + "; ".join(changes))
    else:
        stderr_line(f"{shown} is up to date")
    return 0


@app.command()
def baseline(
    headroom: Annotated[
        str,
        typer.Option(
            "--headroom",
            metavar="PERCENT",
            help="Room above today's values, e.g. 25% (size-limit's advice); values are then "
            "rounded up to two significant digits.",
        ),
    ] = "25%",
    workflow: Annotated[
        str | None, typer.Option("--workflow", "-w", metavar="WORKFLOW", help="Only this workflow.")
    ] = None,
    diff: Annotated[
        bool, typer.Option("--diff", help="Print the change to budgets.yaml; write nothing.")
    ] = False,
    raise_limits: Annotated[
        bool,
        typer.Option(
            "--raise",
            help="Also raise the limits you wrote (workflow, step, template) that break "
            "today; without it they are listed and kept.",
        ),
    ] = False,
    config: ConfigOption = None,
    prices: PricesOption = None,
    samples: SamplesOption = 1000,
    seed: SeedOption = 1,
) -> int:
    """Write limits at today's values plus headroom into budgets.yaml: enforce from day one.

    Adds the limits a workflow lacks; a limit that holds is never lowered, and a limit you
    wrote that breaks today is listed and kept (--raise raises it). Comments and formatting
    in budgets.yaml are kept.
    """
    from promptbudget.baseline import describe, describe_kept, parse_headroom
    from promptbudget.commands import baseline as command
    from promptbudget.compression import unified_diff

    share = parse_headroom(headroom)
    options = make_options(
        config=config,
        fmt=OutputFormat.TEXT,
        output=None,
        prices=prices,
        workflow=workflow,
        samples=samples,
        seed=seed,
    )
    result = command.run(replace(options, headroom=share, diff=diff, raise_limits=raise_limits))
    shown = os.path.relpath(result.path, Path.cwd())
    for kept in result.kept:
        stderr_line(f"promptbudget: {describe_kept(kept)}")
    if result.kept:
        stderr_line(
            f"promptbudget: {len(result.kept)} limit{'s' if len(result.kept) != 1 else ''} "
            "you wrote break today and were kept; 'promptbudget baseline --raise' raises them"
        )
    for skipped in result.skipped:
        stderr_line(f"promptbudget: skipped {skipped.kind} {skipped.workflow!r}: {skipped.reason}")
    if diff:
        write_text(unified_diff(shown, result.before, result.after), None)
    else:
        write_text("".join(describe(change) + "\n" for change in result.changes), None)
    if not result.changes and not result.kept:
        stderr_line(f"{shown}: every limit already holds; nothing to change")
    elif not result.changes:
        stderr_line(f"{shown}: nothing written")
    elif not diff:
        added = sum(1 for c in result.changes if c.before is None)
        stderr_line(
            f"wrote {shown}: {added} limit{'s' if added != 1 else ''} added, "
            f"{len(result.changes) - added} raised, at today's values + {headroom.strip()}"
        )
    return 0


@app.command()
def compress(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="PATH",
            help="Template files or directories (default: the manifest's prompts/).",
        ),
    ] = None,
    pass_: Annotated[
        list[str] | None,
        typer.Option(
            "--pass",
            "-p",
            metavar="PASS",
            help="Run this pass (repeatable). Default: the safe passes json, markdown, "
            "duplicates, whitespace. Lossy passes run only when named: examples, filler, "
            "indentation, stopwords, paragraphs.",
        ),
    ] = None,
    keep_examples: Annotated[
        int | None,
        typer.Option(
            "--keep-examples", min=0, metavar="N", help="Few-shot examples the examples pass keeps."
        ),
    ] = None,
    diff: Annotated[
        bool, typer.Option("--diff", help="Print a unified diff of the changes.")
    ] = False,
    write: Annotated[
        bool,
        typer.Option("--write", help="Rewrite the files that change (atomically)."),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="With --write: also rewrite read-only files (they stay read-only)."
        ),
    ] = False,
    fmt: TextJsonFormatOption = "text",
    output: OutputOption = None,
    config: ConfigOption = None,
    no_color: NoColorOption = False,
    color: ColorOption = ColorMode.AUTO,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    no_cache: NoCacheOption = False,
) -> int:
    """Find the waste in templates, show it, and remove it: tokens and dollars saved."""
    from promptbudget.commands import compress as command

    if diff and write:
        raise UsageError("use --diff to look or --write to change, not both")
    if force and not write:
        raise UsageError("--force only applies to --write")
    options = make_options(
        config=config,
        fmt=fmt,
        output=output,
        no_color=no_color,
        color=color,
        quiet=quiet,
        verbose=verbose,
        paths=paths or (),
        no_cache=no_cache,
    )
    options = replace(
        options,
        passes=tuple(pass_ or ()),
        keep_examples=keep_examples,
        diff=diff,
        write=write,
        force=force,
    )
    report = command.run(options)
    emit_report(report, options)
    failures = [c.error for c in report.compressions if c.error]
    for failure in failures:
        stderr_line(f"promptbudget: error: {failure}")
    return 2 if failures else 0


@app.command()
def models(
    query: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="WORD...", help="Search words: every word must be part of a name or alias."
        ),
    ] = None,
    provider: Annotated[
        str | None,
        typer.Option(
            "--provider",
            metavar="PROVIDER",
            help="Only this vendor (openai) or host (bedrock, azure).",
        ),
    ] = None,
    family: Annotated[
        str | None,
        typer.Option(
            "--family",
            metavar="FAMILY",
            help="Only this tokenizer family (o200k_base, claude, ...).",
        ),
    ] = None,
    diff: Annotated[
        Path | None,
        typer.Option(
            "--diff",
            metavar="FILE",
            help="Compare the bundled catalog with a LiteLLM-format price file: what changed.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    fmt: TextJsonFormatOption = "text",
    output: OutputOption = None,
    config: ConfigOption = None,
    no_color: NoColorOption = False,
    color: ColorOption = ColorMode.AUTO,
    quiet: QuietOption = False,
    verbose: VerboseOption = False,
    prices: PricesOption = None,
) -> int:
    """The price catalog (USD per million tokens), with the manifest's models: merged in;
    search it by name, filter by provider or tokenizer family. Deprecated models are marked."""
    from promptbudget.commands import models as command

    if as_json:
        fmt = "json"
    options = make_options(
        config=config,
        fmt=fmt,
        output=output,
        no_color=no_color,
        color=color,
        quiet=quiet,
        verbose=verbose,
        provider=provider,
        prices=prices,
    )
    report = command.run(replace(options, price_diff=diff, query=tuple(query or ()), family=family))
    emit_report(report, options)
    return 0


@app.command()
def rules(
    fmt: TextJsonFormatOption = "text",
    output: OutputOption = None,
) -> int:
    """List every rule: code, slug, default severity, what it checks."""
    import json

    from promptbudget.rules import RULES

    if fmt == "json":
        payload = [
            {
                "code": r.code,
                "slug": r.slug,
                "default_severity": r.default_severity.value,
                "summary": r.summary,
            }
            for r in RULES.values()
        ]
        write_text(json.dumps({"schema_version": 1, "rules": payload}, indent=2) + "\n", output)
        return 0
    lines = [
        f"{r.code}  {r.slug:<30} {r.default_severity.value:<8} {r.summary}" for r in RULES.values()
    ]
    write_text("\n".join(lines) + "\n", output)
    return 0


@app.command()
def explain(
    rule: Annotated[
        str, typer.Argument(metavar="RULE", help="A rule code (PB101) or slug (input-over-budget).")
    ],
) -> int:
    """Explain a rule: why it matters, failing and passing examples."""
    from promptbudget.rules import RULES, find_rule

    found = find_rule(rule)
    if found is None:
        raise UsageError(
            f"unknown rule {rule!r}; known rules: {', '.join(RULES)} (see 'promptbudget rules')"
        )
    header = f"{found.code} {found.slug} (default severity: {found.default_severity.value})"
    write_text(f"{header}\n{'=' * len(header)}\n\n{found.plain_doc}\n", None)
    return 0


@app.command()
def schema(output: OutputOption = None) -> int:
    """Print the JSON Schema of budgets.yaml (for editors and validators)."""
    import json

    from promptbudget.manifest.loader import load_schema

    write_text(json.dumps(load_schema(), indent=2) + "\n", output)
    return 0


@app.command()
def init(
    directory: Annotated[
        Path,
        typer.Argument(
            metavar="DIR", help="Where to create budgets.yaml and prompts/ (default: here)."
        ),
    ] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> int:
    """Create a budgets.yaml (and an example prompt) that pass 'promptbudget check'.

    In a project whose prompts/ already holds templates, budgets.yaml gets one commented
    workflow stub per template instead, and no example file is written.
    """
    from promptbudget.scaffold import write_scaffold

    scaffold = write_scaffold(directory, force=force)
    for written in scaffold.written:
        stderr_line(f"created {written}")
    if scaffold.templates:
        stubs = "a commented workflow stub" if scaffold.templates == 1 else "commented stubs"
        stderr_line(
            f"found {scaffold.templates} template{'s' if scaffold.templates != 1 else ''} in "
            f"prompts/ ({stubs} in budgets.yaml; no example file written)"
        )
        stderr_line(
            "next: uncomment the workflows you run, then 'promptbudget baseline' writes their "
            "limits at today's values + 25%; 'promptbudget check' gates on them"
        )
    else:
        stderr_line("next: edit budgets.yaml, then run 'promptbudget check'")
    return 0
