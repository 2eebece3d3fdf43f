"""``promptbudget diff --base REF``: the project at a git ref against the working tree.

The base is read straight from git's object store (``ls-tree`` + ``cat-file --batch``) into a
temporary directory: the user's checkout, index and worktrees are never touched. Both sides
are evaluated by the same ``check`` pipeline; the diff compares what they measured.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Literal

from promptbudget.errors import PromptBudgetError, UsageError
from promptbudget.estimates import WorkflowEstimate
from promptbudget.findings import Finding, Report
from promptbudget.manifest.loader import find_manifest
from promptbudget.options import Options
from promptbudget.units import parse_percent_option

Status = Literal["added", "removed", "changed", "unchanged"]


class GitError(PromptBudgetError):
    """git is missing, this is not a repository, or the ref does not exist."""


# -- what is compared ------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One quantity at the base and at the head (None: not measured on that side). What it
    measures may exist on one side only (``in_base``, ``in_head``): a new template."""

    base: Decimal | None
    head: Decimal | None
    in_base: bool = True
    in_head: bool = True

    @property
    def delta(self) -> Decimal | None:
        if self.base is None or self.head is None:
            return None
        return self.head - self.base

    @property
    def percent(self) -> Decimal | None:
        """The change in percent of the base; None when there is no base to compare with."""
        delta = self.delta
        if delta is None or not self.base:
            return None
        return delta / self.base * 100

    @property
    def status(self) -> Status:
        if not self.in_base:
            return "added"
        if not self.in_head:
            return "removed"
        return "unchanged" if self.base == self.head else "changed"


@dataclass(frozen=True)
class WorkflowDiff:
    name: str
    cost_per_request: Change  # mean, USD
    cost_per_request_p95: Change
    monthly_spend: Change  # USD; None when the workflow declares no traffic
    tokens_per_request: Change  # every token sent and received, weighted like the cost

    @property
    def status(self) -> Status:
        changes = (
            self.cost_per_request,
            self.cost_per_request_p95,
            self.monthly_spend,
            self.tokens_per_request,
        )
        first = self.cost_per_request.status
        if first in ("added", "removed"):
            return first
        return "changed" if any(c.status == "changed" for c in changes) else "unchanged"

    @property
    def weight(self) -> Decimal:
        """How much this row moved, for sorting the biggest movers first."""
        change = self.monthly_spend
        if change.delta is None and change.head is None and change.base is None:
            change = self.cost_per_request
        return _moved(change)


def _moved(change: Change) -> Decimal:
    """The size of a change; an added or removed row moved by its whole value."""
    if change.delta is not None:
        return abs(change.delta)
    return abs(change.head if change.head is not None else (change.base or Decimal(0)))


@dataclass(frozen=True)
class TemplateDiff:
    path: str
    model: str | None
    tokens: Change  # request tokens (messages and chat framing) for its model

    @property
    def status(self) -> Status:
        return self.tokens.status

    @property
    def weight(self) -> Decimal:
        return _moved(self.tokens)


@dataclass(frozen=True)
class Breach:
    """A rise above ``--fail-on-increase``."""

    subject: str  # "workflow 'support-reply'" or "prompts/a.j2"
    quantity: str  # "cost per request", "monthly spend", "tokens"
    change: Change


@dataclass(frozen=True)
class DiffResult:
    base_ref: str
    base_commit: str
    workflows: tuple[WorkflowDiff, ...]
    templates: tuple[TemplateDiff, ...]
    new_findings: tuple[Finding, ...]  # in the head, not in the base
    fixed_findings: tuple[Finding, ...]  # in the base, gone from the head
    threshold: Decimal | None = None  # --fail-on-increase, in percent
    breaches: tuple[Breach, ...] = ()
    base_problem: str | None = None  # why the base could not be evaluated, if it could not

    @property
    def monthly_total(self) -> Change:
        return _total(w.monthly_spend for w in self.workflows)

    @property
    def changed_workflows(self) -> tuple[WorkflowDiff, ...]:
        return tuple(w for w in self.workflows if w.status != "unchanged")

    @property
    def changed_templates(self) -> tuple[TemplateDiff, ...]:
        return tuple(t for t in self.templates if t.status != "unchanged")


def _total(changes: Iterator[Change] | tuple[Change, ...]) -> Change:
    base: Decimal | None = None
    head: Decimal | None = None
    in_base = in_head = False
    for change in changes:
        in_base = in_base or change.in_base
        in_head = in_head or change.in_head
        if change.base is not None:
            base = (base or Decimal(0)) + change.base
        if change.head is not None:
            head = (head or Decimal(0)) + change.head
    return Change(base, head, in_base, in_head)


def parse_increase(value: str) -> Decimal:
    """``--fail-on-increase 10%`` -> ``Decimal(10)`` (percent; more than 100% is allowed)."""
    return parse_percent_option(value, "--fail-on-increase", "10%")


# -- comparing two reports -------------------------------------------------------------------


def _finding_key(finding: Finding) -> tuple[str, str, str, str]:
    """Findings match across commits by rule and place, not by line or numbers (an edit
    above a finding moves it; a budget that is broken by more is still the same finding)."""
    return (finding.rule, finding.path or "", finding.workflow or "", finding.step or "")


def _workflow_change(
    base: WorkflowEstimate | None, head: WorkflowEstimate | None, measure: str
) -> Change:
    def value(estimate: WorkflowEstimate | None) -> Decimal | None:
        if estimate is None:
            return None
        if measure == "mean":
            return estimate.cost.mean
        if measure == "p95":
            return estimate.cost.p95
        if measure == "monthly":
            return estimate.monthly_spend_usd
        return sum((c.tokens for c in estimate.components), Decimal(0))

    return Change(value(base), value(head), base is not None, head is not None)


def compare(
    base: Report,
    head: Report,
    *,
    base_ref: str,
    base_commit: str,
    threshold: Decimal | None = None,
    base_problem: str | None = None,
) -> DiffResult:
    """What changed from ``base`` to ``head`` (both ``check`` reports)."""
    base_workflows = {w.name: w for w in base.workflows}
    head_workflows = {w.name: w for w in head.workflows}
    names = [*head_workflows, *(n for n in base_workflows if n not in head_workflows)]
    workflows = [
        WorkflowDiff(
            name=name,
            cost_per_request=_workflow_change(
                base_workflows.get(name), head_workflows.get(name), "mean"
            ),
            cost_per_request_p95=_workflow_change(
                base_workflows.get(name), head_workflows.get(name), "p95"
            ),
            monthly_spend=_workflow_change(
                base_workflows.get(name), head_workflows.get(name), "monthly"
            ),
            tokens_per_request=_workflow_change(
                base_workflows.get(name), head_workflows.get(name), "tokens"
            ),
        )
        for name in names
    ]
    base_templates = {t.label: t for t in base.templates}
    head_templates = {t.label: t for t in head.templates}
    paths = sorted({*base_templates, *head_templates})
    templates = []
    for path in paths:
        before, after = base_templates.get(path), head_templates.get(path)
        shown = after or before
        templates.append(
            TemplateDiff(
                path=path,
                model=shown.model if shown is not None else None,
                tokens=Change(
                    _tokens(before.request_tokens) if before else None,
                    _tokens(after.request_tokens) if after else None,
                    in_base=before is not None,
                    in_head=after is not None,
                ),
            )
        )
    base_keys = {_finding_key(f) for f in base.findings}
    head_keys = {_finding_key(f) for f in head.findings}
    workflows.sort(key=lambda w: (-w.weight, w.name))
    templates.sort(key=lambda t: (-t.weight, t.path))
    result = DiffResult(
        base_ref=base_ref,
        base_commit=base_commit,
        workflows=tuple(workflows),
        templates=tuple(templates),
        new_findings=tuple(f for f in head.findings if _finding_key(f) not in base_keys),
        fixed_findings=tuple(f for f in base.findings if _finding_key(f) not in head_keys),
        threshold=threshold,
        base_problem=base_problem,
    )
    if threshold is None:
        return result
    return replace(result, breaches=tuple(_breaches(result, threshold)))


def _tokens(value: int | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _breaches(result: DiffResult, threshold: Decimal) -> Iterator[Breach]:
    """Rises above the threshold. Added workflows and templates have no base to rise from:
    their budgets in budgets.yaml are what hold them."""
    for workflow in result.workflows:
        subject = f"workflow {workflow.name!r}"
        for quantity, change in (
            ("cost per request", workflow.cost_per_request),
            ("monthly spend", workflow.monthly_spend),
            ("tokens per request", workflow.tokens_per_request),
        ):
            if change.percent is not None and change.percent > threshold:
                yield Breach(subject, quantity, change)
    for template in result.templates:
        if template.tokens.percent is not None and template.tokens.percent > threshold:
            yield Breach(template.path, "tokens", template.tokens)


# -- git -------------------------------------------------------------------------------------


def _git(args: list[str], cwd: Path, *, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except FileNotFoundError as err:
        raise GitError("diff needs git, and git is not installed (or not on PATH)") from err
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(message[-1] if message else f"git {args[0]} failed")
    return done.stdout


def git_toplevel(cwd: Path) -> Path:
    try:
        out = _git(["rev-parse", "--show-toplevel"], cwd)
    except GitError as err:
        if "not a git repository" in str(err):
            raise GitError(
                f"{cwd} is not inside a git repository; diff compares against a git ref"
            ) from err
        raise
    return Path(out.decode("utf-8").strip()).resolve()


def resolve_ref(top: Path, ref: str) -> str:
    if ref.startswith("-"):
        raise UsageError(f"--base {ref!r} is not a git ref")
    try:
        out = _git(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], top
        )
    except GitError as err:
        raise GitError(
            f"unknown git ref {ref!r}: not a branch, tag or commit here (in a shallow CI "
            f"checkout, fetch it first: git fetch --depth=1 origin {ref})"
        ) from err
    return out.decode("ascii").strip()


def export_tree(top: Path, commit: str, subdir: str, destination: Path) -> int:
    """Write the files under ``subdir`` (relative to the repository root, ``""``: all) at
    ``commit`` into ``destination``, keeping their paths. Returns how many were written."""
    spec = ["--", subdir] if subdir else []
    listing = _git(["ls-tree", "-r", "-z", "--full-tree", commit, *spec], top)
    entries: list[tuple[str, str, str]] = []  # (mode, object, path)
    for record in listing.split(b"\0"):
        if not record:
            continue
        info, _, raw_name = record.partition(b"\t")
        mode, kind, obj = info.decode("ascii").split(" ")
        if kind != "blob":  # submodules
            continue
        entries.append((mode, obj, os.fsdecode(raw_name)))
    if not entries:
        return 0
    batch = _git(
        ["cat-file", "--batch"], top, stdin="".join(f"{obj}\n" for _, obj, _ in entries).encode()
    )
    root = destination.resolve()
    position = 0
    for mode, obj, name in entries:
        header_end = batch.index(b"\n", position)
        header = batch[position:header_end].decode("ascii").split(" ")
        if header[0] != obj or len(header) != 3:  # "<object> missing" (a partial clone)
            raise GitError(f"git has no contents for {name} at {commit[:12]}; fetch it first")
        size = int(header[2])
        content = batch[header_end + 1 : header_end + 1 + size]
        position = header_end + 1 + size + 1
        target = (root / name).resolve()
        if not target.is_relative_to(root):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if mode == "120000":
            _symlink(target, os.fsdecode(content))
        else:
            target.write_bytes(content)
    return len(entries)


def _symlink(target: Path, points_to: str) -> None:
    """Recreate a symlink as committed. Reading is confined to the project root as at the
    head, so a link out of the tree is refused by the same check, with the same finding."""
    try:
        target.symlink_to(points_to)
    except OSError:  # no symlinks here (Windows without the privilege): leave it out
        return


@contextmanager
def base_checkout(top: Path, commit: str, subdir: str) -> Iterator[Path]:
    """A temporary directory holding ``subdir`` of the repository at ``commit``."""
    directory = Path(tempfile.mkdtemp(prefix="promptbudget-base-"))
    try:
        export_tree(top, commit, subdir, directory)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# -- the command -----------------------------------------------------------------------------


def run_diff(options: Options, base_ref: str, fail_on_increase: str | None = None) -> Report:
    """``promptbudget diff --base REF``: base and head evaluated by ``check``, compared."""
    from promptbudget.pipeline import run_check

    threshold = parse_increase(fail_on_increase) if fail_on_increase is not None else None
    cwd = options.cwd.resolve()
    top = git_toplevel(cwd)
    commit = resolve_ref(top, base_ref)
    head_options = replace(options, paths=())
    head = run_check(head_options)
    manifest = options.config if options.config is not None else find_manifest(cwd)
    assert manifest is not None  # run_check found it, or raised
    manifest = (manifest if manifest.is_absolute() else cwd / manifest).resolve()
    project_root = Path(head.root or cwd).resolve()
    if not project_root.is_relative_to(top):
        raise GitError(f"the project at {project_root} is not inside the repository at {top}")
    subdir = project_root.relative_to(top).as_posix()
    subdir = "" if subdir == "." else subdir

    base_problem: str | None = None
    with base_checkout(top, commit, subdir) as directory:
        base_cwd = directory / cwd.relative_to(top) if cwd.is_relative_to(top) else directory
        base_cwd.mkdir(parents=True, exist_ok=True)
        base_manifest = directory / manifest.relative_to(top)
        if base_manifest.is_file():
            try:
                base = run_check(replace(head_options, cwd=base_cwd, config=base_manifest))
            except PromptBudgetError as err:
                base, base_problem = Report(command="check"), str(err)
        else:
            shown = manifest.relative_to(top).as_posix()
            base, base_problem = Report(command="check"), f"{shown} does not exist at {base_ref}"
    result = compare(
        base,
        head,
        base_ref=base_ref,
        base_commit=commit,
        threshold=threshold,
        base_problem=base_problem,
    )
    return Report(
        command="diff",
        findings=result.new_findings,
        templates=head.templates,
        workflows=head.workflows,
        fail_on=options.fail_on,
        exit_zero=options.exit_zero,
        catalog_as_of=head.catalog_as_of,
        root=head.root,
        diff=result,
    )
