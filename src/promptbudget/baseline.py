"""``promptbudget baseline``: limits at today's values plus headroom, written into budgets.yaml.

Adopting budgets on an existing repository should not start with a wall of failures. For each
workflow this measures what ``check`` measures, adds the headroom (25% by default, size-limit's
advice) and rounds up to two significant digits. A missing limit is added; a limit the
workflow breaks today is raised; a limit that holds is never lowered.

budgets.yaml is edited as text, so comments, key order and formatting stay as they were: values
are replaced where they stand and new keys are added under ``limits:`` with the indentation
around them. Workflows whose limits come from a YAML anchor or merge key, or that are written
in flow style, are reported and left for a human to edit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

import yaml

from promptbudget.errors import PromptBudgetError
from promptbudget.estimates import WorkflowEstimate
from promptbudget.headroom import LimitCheck
from promptbudget.manifest.model import CostLimit, Limits
from promptbudget.rules.budget import UNBOUNDED
from promptbudget.units import format_tokens, format_usd, parse_percent_option

LIMIT_KEYS = (
    "max_input_tokens",
    "max_output_tokens",
    "max_turns",
    "max_tool_calls",
    "max_cost_per_request",
    "max_cost_per_outcome",
    "max_monthly_spend",
)


def parse_headroom(value: str) -> Decimal:
    """``25%`` -> ``Decimal("0.25")`` (any share from 0%; 150% is allowed)."""
    return parse_percent_option(value, "--headroom", "25%") / 100


def round_up(value: Decimal, *, integer: bool) -> Decimal:
    """Up to two significant digits: 5,326 -> 5,400; $0.01363 -> $0.014; 7 turns stay 7."""
    if value <= 0:
        return Decimal(0)
    if integer and value < 100:
        return Decimal(math.ceil(value))
    exponent = value.adjusted() - 1
    step = Decimal(1).scaleb(exponent)
    rounded = (value / step).to_integral_value(rounding=ROUND_CEILING) * step
    return rounded.quantize(Decimal(1)) if integer else rounded.normalize()


@dataclass(frozen=True)
class LimitChange:
    workflow: str  # a template limit: ""
    key: str
    before: Decimal | None  # the limit as written; None: absent
    after: Decimal
    measured: Decimal
    statistic: str | None = None  # cost limits: "mean", "p95"...
    step: str | None = None  # a step limit: the step's name
    template: str | None = None  # a template limit: the template's path
    counted_with: str | None = None  # a template limit per model or encoding: its name
    line: int | None = None  # a step or template limit: the line where it is written

    @property
    def verb(self) -> str:
        return "added" if self.before is None else "raised"

    @property
    def subject(self) -> str:
        if self.template is not None:
            return self.template + (f" ({self.counted_with})" if self.counted_with else "")
        return f"{self.workflow}/{self.step}" if self.step else self.workflow


def _measured(estimate: WorkflowEstimate) -> Iterator[tuple[str, Decimal, str | None]]:
    """(limit key, today's value, statistic) for every limit this workflow can have."""
    workflow = estimate.workflow
    limits = workflow.limits
    if estimate.steps:
        yield "max_input_tokens", Decimal(max(s.max_input_tokens for s in estimate.steps)), None
        bounds = [
            lane.output.bound
            for step in estimate.steps
            for lane in step.lanes
            if lane.output.source not in UNBOUNDED
        ]
        if bounds:
            yield "max_output_tokens", Decimal(max(bounds)), None
        yield "max_turns", Decimal(estimate.max_turns), None
    if estimate.tool_calls_per_request or limits.max_tool_calls is not None:
        yield "max_tool_calls", Decimal(estimate.tool_calls_per_request), None
    if not estimate.is_complete or not estimate.steps:
        return  # an unpriced model: its cost is not known, so neither is a fair limit
    request = limits.max_cost_per_request.statistic if limits.max_cost_per_request else "mean"
    yield "max_cost_per_request", estimate.cost.get(request), request
    if workflow.success_rate != 1 or limits.max_cost_per_outcome is not None:
        outcome = limits.max_cost_per_outcome.statistic if limits.max_cost_per_outcome else "mean"
        yield "max_cost_per_outcome", estimate.outcome.get(outcome), outcome
    if estimate.monthly_spend_usd is not None:
        yield "max_monthly_spend", estimate.monthly_spend_usd, None


def _current(limits: Limits, key: str) -> Decimal | None:
    value = getattr(limits, key)
    if value is None:
        return None
    if isinstance(value, CostLimit):
        return value.amount
    return Decimal(value)


def plan_limits(estimates: tuple[WorkflowEstimate, ...], headroom: Decimal) -> list[LimitChange]:
    """The workflow limits to add or raise: never lower a limit that holds. (Whether a
    limit someone wrote is raised is the caller's choice: ``--raise``.)"""
    changes = []
    for estimate in estimates:
        for key, measured, statistic in _measured(estimate):
            target = _target(key, measured, headroom)
            before = _current(estimate.workflow.limits, key)
            if before is not None and before >= measured:
                continue  # holds today: the team's number stands
            if before is not None and target <= before:
                continue
            changes.append(LimitChange(estimate.name, key, before, target, measured, statistic))
    return changes


def _target(key: str, measured: Decimal, headroom: Decimal) -> Decimal:
    integer = "cost" not in key and "spend" not in key
    return round_up(measured * (1 + headroom), integer=integer)


def plan_broken(checks: Iterable[LimitCheck], headroom: Decimal) -> list[LimitChange]:
    """Step and template limits broken today, at today's value plus headroom: baseline never
    adds these (a step or template limit is a deliberate choice), it only raises those that
    break, and only with ``--raise``."""
    changes = []
    seen: set[tuple[int | None, str | None]] = set()
    for check in checks:
        if check.level == "workflow" or check.status != "over" or check.measured is None:
            continue
        if (check.line, check.counted_with) in seen:  # a pattern matching several templates
            continue
        seen.add((check.line, check.counted_with))
        measured = Decimal(check.measured)
        counted = check.counted_with if check.level == "template" else None
        changes.append(
            LimitChange(
                workflow=check.workflow or "",
                key=check.key,
                before=Decimal(check.limit),
                after=_target(check.key, measured, headroom),
                measured=measured,
                statistic=check.statistic,
                step=check.step,
                template=check.template,
                counted_with=counted,
                line=check.line,
            )
        )
    return changes


def format_limit(key: str, value: Decimal, *, flow: bool = False) -> str:
    """A limit as a person would write it in budgets.yaml: ``5.4k``, ``$0.014``, ``$6,200``."""
    if "cost" in key or "spend" in key:
        if value == value.to_integral_value():
            text = f"${value:,.0f}"
        elif value >= 1:
            text = f"${value:,.2f}"
        else:
            text = f"${value.normalize():f}"
        return f"'{text}'" if flow and "," in text else text
    number = int(value)
    if number >= 1000 and number % 100 == 0:
        return f"{Decimal(number) / 1000:f}".rstrip("0").rstrip(".") + "k"
    return str(number)


# -- editing budgets.yaml as text ------------------------------------------------------------


class BaselineError(PromptBudgetError):
    """budgets.yaml cannot be edited safely."""


@dataclass(frozen=True)
class Skipped:
    workflow: str  # or, for a step or template limit, its subject
    reason: str
    kind: str = "workflow"  # "limit": one step or template limit


def _key(mapping: yaml.MappingNode, name: str) -> tuple[yaml.Node, yaml.Node] | None:
    for key, value in mapping.value:
        if isinstance(key, yaml.ScalarNode) and key.value == name:
            return key, value
    return None


def _last_line(node: yaml.Node) -> int:
    """The 0-based line of the last character of ``node``'s content."""
    if isinstance(node, yaml.MappingNode) and node.value and not node.flow_style:
        return _last_line(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and node.value and not node.flow_style:
        return _last_line(node.value[-1])
    end = node.end_mark
    return end.line - 1 if end.column == 0 and end.line > node.start_mark.line else end.line


def _shared(root: yaml.Node) -> set[int]:
    """ids of nodes reached more than once (anchors and aliases)."""
    seen: set[int] = set()
    shared: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            shared.add(id(node))
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack.extend((key, value))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return shared


@dataclass
class _Edit:
    start: int
    end: int
    text: str


def _line_start(text: str, line: int) -> int:
    """Offset of the start of 0-based ``line`` (the end of the text past the last line)."""
    offset = 0
    for _ in range(line):
        found = text.find("\n", offset)
        if found < 0:
            return len(text)
        offset = found + 1
    return offset


def edit_manifest(text: str, changes: list[LimitChange]) -> tuple[str, list[Skipped]]:
    """``text`` (LF line ends) with ``changes`` applied; workflows that cannot be edited
    safely are skipped and returned."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        raise BaselineError("budgets.yaml is not a mapping")
    found = _key(root, "workflows")
    if found is None or not isinstance(found[1], yaml.MappingNode):
        raise BaselineError("budgets.yaml has no workflows: mapping")
    workflows = found[1]
    shared = _shared(root)
    by_workflow: dict[str, list[LimitChange]] = {}
    edits: list[_Edit] = []
    skipped: list[Skipped] = []
    for change in changes:
        if change.step is None and change.template is None:
            by_workflow.setdefault(change.workflow, []).append(change)
            continue
        edit = _edit_in_place(root, shared, change)
        if isinstance(edit, str):
            skipped.append(Skipped(change.subject, edit, "limit"))
        else:
            edits.append(edit)
    for name, wanted in by_workflow.items():
        entry = _key(workflows, name)
        if entry is None or not isinstance(entry[1], yaml.MappingNode):
            skipped.append(Skipped(name, "not found as a mapping under workflows:"))
            continue
        workflow = entry[1]
        reason = _unsafe(workflow, shared)
        if reason is not None:
            skipped.append(Skipped(name, reason))
            continue
        edits.extend(_workflow_edits(text, workflow, wanted))
    for edit in sorted(edits, key=lambda e: e.start, reverse=True):
        text = text[: edit.start] + edit.text + text[edit.end :]
    return text, skipped


def _edit_in_place(root: yaml.Node, shared: set[int], change: LimitChange) -> _Edit | str:
    """A step or template limit replaced where it is written (found by its line and key);
    the reason when it cannot be edited safely."""
    # A template limit is ``max_tokens: N`` or ``max_tokens: {MODEL: N}``: the model's key
    # first, else the scalar max_tokens on that line.
    names = [n for n in (change.counted_with, change.key) if n]
    found: dict[str, tuple[yaml.MappingNode, yaml.Node, bool]] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, in_shared = stack.pop()
        in_shared = in_shared or id(node) in shared
        if isinstance(node, yaml.SequenceNode):
            stack.extend((item, in_shared) for item in node.value)
        if not isinstance(node, yaml.MappingNode):
            continue
        for key, value in node.value:
            on_line = change.line is not None and key.start_mark.line == change.line - 1
            if isinstance(key, yaml.ScalarNode) and key.value in names and on_line:
                found.setdefault(key.value, (node, value, in_shared))
            stack.append((value, in_shared))
    for name in names:
        if name not in found:
            continue
        mapping, value, in_shared = found[name]
        if change.template is not None and not isinstance(value, yaml.ScalarNode):
            continue
        if in_shared or id(value) in shared:
            return "it comes from a YAML anchor shared with others; edit it by hand"
        return _replace_value(change, value, flow=mapping.flow_style is True)
    return f"{change.key} not found at line {change.line}; edit it by hand"


def _unsafe(workflow: yaml.MappingNode, shared: set[int]) -> str | None:
    if id(workflow) in shared:
        return "it is a YAML alias of another workflow; edit its limits by hand"
    if workflow.flow_style:
        return "it is written in flow style ({...}); add its limits by hand"
    limits = _key(workflow, "limits")
    if limits is None:
        return None
    node = limits[1]
    if id(node) in shared:
        return "its limits come from a YAML anchor shared with others; edit them by hand"
    if not isinstance(node, yaml.MappingNode):
        return "its limits: is not a mapping"
    if any(isinstance(k, yaml.ScalarNode) and k.value == "<<" for k, _ in node.value):
        return "its limits use a YAML merge key (<<); edit them by hand"
    for key, value in node.value:
        if isinstance(value, yaml.MappingNode) and id(value) in shared:
            return f"its {key.value} comes from a YAML anchor; edit it by hand"
    return None


def _value_text(change: LimitChange, *, flow: bool) -> str:
    """The new value; a cost limit on another statistic than the mean is ``{p95: $0.01}``."""
    if change.statistic not in (None, "mean"):
        return (
            "{" + f"{change.statistic}: {format_limit(change.key, change.after, flow=True)}" + "}"
        )
    return format_limit(change.key, change.after, flow=flow)


def _replace_value(change: LimitChange, value: yaml.Node, *, flow: bool) -> _Edit:
    """Replace a limit's value where it stands; in ``{p95: $0.01}`` (block or flow), only the
    amount."""
    if isinstance(value, yaml.MappingNode):
        inner = _key(value, change.statistic or "mean")
        if inner is not None:
            value = inner[1]
            text = format_limit(change.key, change.after, flow=True)
            return _Edit(value.start_mark.index, value.end_mark.index, text)
    return _Edit(value.start_mark.index, value.end_mark.index, _value_text(change, flow=flow))


def _workflow_edits(
    text: str, workflow: yaml.MappingNode, wanted: list[LimitChange]
) -> list[_Edit]:
    limits = _key(workflow, "limits")
    if limits is None:
        indent = workflow.value[0][0].start_mark.column
        child = " " * (indent + 2)
        lines = [" " * indent + "limits:  # promptbudget baseline\n"]
        lines += [f"{child}{c.key}: {_value_text(c, flow=False)}\n" for c in wanted]
        at = _line_start(text, _last_line(workflow) + 1)
        prefix = "" if at == 0 or text[at - 1] == "\n" else "\n"
        return [_Edit(at, at, prefix + "".join(lines))]
    node = limits[1]
    assert isinstance(node, yaml.MappingNode)
    if node.flow_style:
        items = []
        present = {k.value: (k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode)}
        by_key = {c.key: c for c in wanted}
        for key_name, (key, value) in present.items():
            if key_name in by_key:
                edit = _replace_value(by_key.pop(key_name), value, flow=True)
                items.append(
                    text[key.start_mark.index : edit.start]
                    + edit.text
                    + text[edit.end : value.end_mark.index]
                )
            else:
                items.append(text[key.start_mark.index : value.end_mark.index])
        items += [f"{c.key}: {_value_text(c, flow=True)}" for c in by_key.values()]
        return [_Edit(node.start_mark.index, node.end_mark.index, "{" + ", ".join(items) + "}")]
    edits = []
    missing = []
    for change in wanted:
        entry = _key(node, change.key)
        if entry is None:
            missing.append(change)
            continue
        edits.append(_replace_value(change, entry[1], flow=False))
    if missing:
        indent = " " * node.value[0][0].start_mark.column
        at = _line_start(text, _last_line(node) + 1)
        prefix = "" if at == 0 or text[at - 1] == "\n" else "\n"
        added = "".join(f"{indent}{c.key}: {_value_text(c, flow=False)}\n" for c in missing)
        edits.append(_Edit(at, at, prefix + added))
    return edits


def decode_manifest(raw: bytes) -> tuple[str, bool, bool]:
    """(text with LF line ends, had a BOM, used CRLF) of a manifest's bytes."""
    bom = raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    crlf = "\r\n" in text
    return text.replace("\r\n", "\n"), bom, crlf


def encode_manifest(text: str, *, bom: bool, crlf: bool) -> bytes:
    if crlf:
        text = text.replace("\n", "\r\n")
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")


def describe(change: LimitChange) -> str:
    """``support-reply: max_input_tokens 8k -> 12k (raised; measured 8,951)``."""
    before = "absent" if change.before is None else format_limit(change.key, change.before)
    what = f" ({change.statistic})" if change.statistic not in (None, "mean") else ""
    money = "cost" in change.key or "spend" in change.key
    measured = format_usd(change.measured) if money else format_tokens(int(change.measured))
    return (
        f"{change.subject}: {change.key}{what} {before} -> "
        f"{format_limit(change.key, change.after)} ({change.verb}; measured {measured})"
    )


def describe_kept(change: LimitChange) -> str:
    """``support-reply: max_monthly_spend $1,500 kept; measured $4,213 (--raise: $5,300)``."""
    assert change.before is not None
    what = f" ({change.statistic})" if change.statistic not in (None, "mean") else ""
    money = "cost" in change.key or "spend" in change.key
    measured = format_usd(change.measured) if money else format_tokens(int(change.measured))
    return (
        f"{change.subject}: {change.key}{what} {format_limit(change.key, change.before)} kept; "
        f"measured {measured} (--raise would write {format_limit(change.key, change.after)})"
    )


__all__ = [
    "LIMIT_KEYS",
    "BaselineError",
    "LimitChange",
    "Skipped",
    "decode_manifest",
    "describe",
    "describe_kept",
    "edit_manifest",
    "encode_manifest",
    "format_limit",
    "parse_headroom",
    "plan_broken",
    "plan_limits",
    "round_up",
]
