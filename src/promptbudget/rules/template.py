"""Rules about templates themselves: parse errors, variables, estimated counts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal

from promptbudget.findings import Finding, Severity
from promptbudget.lane import Lane
from promptbudget.rules.base import Rule, RuleContext, rule
from promptbudget.simulation import cached_prefix_tokens, select_rates
from promptbudget.tokenizers import TOKENIZERS, TokenizerSpec
from promptbudget.tokenizers.textclass import estimate_for
from promptbudget.units import format_share, format_tokens, format_usd


@rule("PB001", "template-error", Severity.ERROR, "a template cannot be read, parsed or rendered")
def template_error(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """A template that cannot be read, parsed or rendered is counted as raw text.

    Why: a broken template means the numbers for it are approximate (front matter and
    template syntax counted as text, no variables filled), and the application would fail
    on it too. The rest of the project is still checked.

    Fails:
        Hello {{ name }          <- unclosed expression (Jinja2 syntax error)
        {{ ''.__class__.__mro__ }}   <- blocked by the sandbox
        {% include "../../etc/passwd" %}   <- outside the project

    Passes:
        Hello {{ name }}
    """
    for result in ctx.templates:
        parsed, rendered = result.parsed, result.rendered
        problems: list[tuple[str, int | None]] = []
        if parsed.text_problem is not None:
            problems.append((f"file {parsed.text_problem}", parsed.text_problem_line))
        if rendered.problem is not None and rendered.problem != parsed.text_problem:
            problem = rendered.problem.rstrip(".")
            if "raw text" not in problem:
                problem += "; counted as raw text, so the count is approximate"
            problems.append((problem, rendered.problem_line))
        for message, line in problems:
            yield self.finding(severity, message, path=parsed.display_path, line=line)


@rule("PB201", "unbounded-variable", Severity.ERROR, "a variable has no sample and no cap")
def unbounded_variable(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """Every variable needs a sample or a cap, or the budget is not a budget.

    Why: a template's cost depends on what fills its variables. A variable with neither a
    sample (front matter ``sample:``, Prompty ``sample``/``inputs.x.default``, manifest
    ``sample:``) nor a cap (manifest ``max_tokens:``) renders as nothing, so every number
    for the template is a lower bound.

    Fails:
        # prompts/answer.j2 uses {{ context }}, and budgets.yaml says nothing about it

    Passes:
        # budgets.yaml
        variables:
          context: {max_tokens: 3000}   # the application truncates retrieval to 3,000 tokens
    """
    for result in ctx.templates:
        if result.in_workflow:
            continue  # reported per step, with the step's own variables
        for name in result.rendered.unbounded:
            what = (
                _function_output(name)
                if name in result.rendered.functions
                else f"variable '{name}' has no sample and no cap"
            )
            yield self.finding(
                severity,
                f"{what}; counted as empty. "
                + _advice(name, "to budgets.yaml or a sample to the template's front matter"),
                path=result.parsed.display_path,
                line=result.rendered.variable_lines.get(name, result.parsed.body_line),
            )
    for workflow in ctx.workflows:
        for step in workflow.steps:
            if step.prompt is None:
                continue
            for variable in step.prompt.variables:
                if variable.source != "none":
                    continue
                what = (
                    _function_output(variable.name)
                    if variable.is_function
                    else f"variable '{variable.name}' has no sample and no cap"
                )
                yield self.finding(
                    severity,
                    f"{what} in step "
                    f"'{step.name}' of workflow '{workflow.name}'; counted as empty, so its "
                    "cost is a lower bound. "
                    + _advice(variable.name, "to the step or to the manifest"),
                    path=step.template_path,
                    line=variable.line,
                    workflow=workflow.name,
                    step=step.name,
                )


_CAPPABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


def _function_output(name: str) -> str:
    return (
        f"'{name}' is provided by your application (a helper, function or partial that is "
        "not built in or not in the project), and its output has no sample and no cap"
    )


def _advice(name: str, where: str) -> str:
    """How to bound ``name``: a cap by its name, when a manifest variable can be named so."""
    if _CAPPABLE.fullmatch(name):
        return f"Add 'variables: {{{name}: {{max_tokens: N}}}}' {where}"
    return "Add the partial to the project, or suppress this finding where it is"


@rule(
    "PB003",
    "template-warning",
    Severity.WARNING,
    "a template renders, but part of it probably does not do what was meant",
)
def template_warning(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """The template renders, but its engine will treat part of it differently from how it
    reads: text meant as a comment that is sent to the model, or a block whose text the
    runtime drops.

    Why: these are the bugs a reviewer does not see. The count follows what the author
    evidently meant where the runtime would otherwise send nothing, and says so; fix the
    template so that the two agree.

    Fails:
        {{! greet them with {{name}} first }}     <- " first }}" is sent to the model

    Passes:
        {{!-- greet them with {{name}} first --}}
    """
    seen: set[tuple[str, str, int]] = set()
    for result in ctx.templates:
        for message, line in result.rendered.warnings:
            key = (result.parsed.display_path, message, line)
            if key in seen:
                continue
            seen.add(key)
            yield self.finding(severity, message, path=result.parsed.display_path, line=line)


@rule(
    "PB202",
    "undeclared-variable",
    Severity.WARNING,
    "a template uses a variable it does not declare, or declares one it never uses",
)
def undeclared_variable(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """Declared inputs and used variables should match.

    Why: a template whose front matter lists its inputs documents its contract; a variable
    used but not declared is usually a typo or a forgotten sample, and a declared input that
    is never used (or a manifest variable the template never reads) is dead weight that
    hides the real inputs.

    Fails:
        ---
        inputs: [question]
        ---
        {{ question }} {{ contxt }}     <- 'contxt' is not declared

    Passes:
        ---
        inputs: [question, context]
        ---
        {{ question }} {{ context }}
    """
    for result in ctx.templates:
        declared = result.parsed.meta.declared_inputs
        if declared is None or result.rendered.is_raw:
            continue
        used = set(result.rendered.variables) - result.rendered.functions
        for name in sorted(used - declared - result.manifest_variables):
            yield self.finding(
                severity,
                f"uses variable '{name}' that its front matter does not declare",
                path=result.parsed.display_path,
                line=result.rendered.variable_lines.get(name, result.parsed.body_line),
            )
        for name in sorted(declared - used):
            yield self.finding(
                severity,
                f"declares input '{name}' but never uses it",
                path=result.parsed.display_path,
                line=result.parsed.meta.declared_lines.get(name, 1),
            )
    manifest = ctx.manifest
    for workflow in ctx.workflows:
        for step in workflow.steps:
            if step.prompt is None or step.prompt.is_raw:
                continue  # a template that does not render says nothing about its variables
            used_names = {v.name for v in step.prompt.variables}  # functions too: capped
            lines = ctx.step_variable_lines.get((workflow.name, step.name), {})
            for name in sorted(set(step.step.variables) - used_names):
                yield self.finding(
                    severity,
                    f"step '{step.name}' of workflow '{workflow.name}' declares variable "
                    f"'{name}', but {step.template_path} never uses it",
                    path=manifest.display_path if manifest else None,
                    line=lines.get(name),
                    workflow=workflow.name,
                    step=step.name,
                    message_paths=(step.template_path,),
                )


def _estimate_message(model: str | None, spec: TokenizerSpec, text_class: str | None) -> str:
    """``token counts for M are estimates (code text, ±10%): SOURCE``; the family's own band
    and source when the class is not known (or the family has no per-class figures)."""
    estimate = estimate_for(spec.name, text_class) if text_class else None
    if estimate is None:
        return f"token counts for {model} are estimates ({spec.error_band}): {spec.source}"
    return (
        f"token counts for {model} are estimates ({text_class} text, {estimate.band}, "
        f"{estimate.basis}): o200k_base x {estimate.factor}, {estimate.source}"
    )


@rule("PB301", "estimated-count", Severity.INFO, "counts for this model are estimates")
def estimated_count(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """Models without a public tokenizer are counted with a documented correction.

    Why: Claude 3+ and Gemini publish no tokenizer. promptbudget counts them as
    ``o200k_base`` times a factor for the model family and the kind of text (prose, code,
    CJK, mixed) and says so, with the class and its error band, instead of passing an
    estimate off as exact. Budgets near the limit deserve headroom.

    Fails (info):
        model: claude-sonnet-4-6     <- estimated, prose text, ±20%

    Passes:
        model: gpt-4.1-mini          <- exact (o200k_base)
    """
    classes: dict[str, str] = {}
    for result in ctx.templates:
        spec = TOKENIZERS.get(result.count.tokenizer)
        if result.count.text_class is not None:
            classes.setdefault(result.parsed.display_path, result.count.text_class)
        if spec is None or spec.exact or result.count.prompt is None or result.in_workflow:
            continue
        yield self.finding(
            severity,
            _estimate_message(result.count.model, spec, result.count.text_class),
            path=result.parsed.display_path,
            line=1,
        )
    seen: set[tuple[str, str]] = set()
    for workflow in ctx.workflows:
        for step in workflow.steps:
            for lane in step.lanes:
                spec = lane.tokenizer.spec
                key = (step.template_path, lane.model)
                if spec.exact or not lane.model or key in seen:
                    continue
                seen.add(key)
                yield self.finding(
                    severity,
                    _estimate_message(lane.model, spec, classes.get(step.template_path)),
                    path=step.template_path,
                    line=1,
                    workflow=workflow.name,
                    step=step.name,
                )


ASSUMED_HIT_RATE = Decimal("0.5")


@rule(
    "PB203",
    "cache-unfriendly-prefix",
    Severity.WARNING,
    "dynamic content comes before static text that provider prompt caching could reuse",
)
def cache_unfriendly_prefix(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """Put static text first: providers cache only an exact prefix of the prompt.

    Why: OpenAI, Anthropic, Gemini, Mistral and DeepSeek reuse a prompt's prefix up to the
    first token that changes, in the order tools, system, messages. A variable early in the
    prompt (a customer name in the first line of the system message) keeps every static
    token after it out of the cache, and you pay full input price for them on every call.
    The rule fires when moving the dynamic content after the static text would make at
    least the model's minimum cacheable length (1,024 tokens for most models) cacheable,
    and says how many tokens and dollars a month that saves (at the step's
    ``prompt_cache_hit_rate``, or 50% if none is declared).

    Fails:
        system:
        You are helping {{ customer_name }}.     <- dynamic, first
        (1,500 tokens of policy and examples)
        user:
        {{ question }}

    Passes:
        system:
        (1,500 tokens of policy and examples)
        You are helping {{ customer_name }}.
        user:
        {{ question }}
    """
    for workflow in ctx.workflows:
        per_month = workflow.workflow.requests_per_month
        keep = 1 - workflow.workflow.semantic_cache_hit_rate
        for step in workflow.steps:
            best: tuple[int, Decimal, Lane] | None = None
            for lane in step.lanes:
                price, structure = lane.price, lane.structure
                if price is None or structure is None or lane.routed.escalated:
                    continue
                now = cached_prefix_tokens(price, structure.prefix_tokens)
                could = cached_prefix_tokens(price, structure.static_tokens)
                gain = could - now
                if gain < (price.cache_min_tokens or 1024):
                    continue
                hit = step.step.prompt_cache_hit_rate
                hit = hit if hit is not None else ASSUMED_HIT_RATE
                rates = select_rates(price, lane.max_input_tokens)
                per_token = hit * (rates.input_per_mtok - rates.cache_read_per_mtok) + (1 - hit) * (
                    rates.input_per_mtok - rates.cache_write_per_mtok
                )
                calls = lane.weight * lane.calls_per_request * keep
                saving = gain * per_token / 1_000_000 * calls
                if saving > 0 and (best is None or saving > best[1]):
                    best = (gain, saving, lane)
            if best is None:
                continue
            gain, saving, lane = best
            first = min(
                (v for v in (lane.prompt.variables if lane.prompt else ()) if v.line),
                key=lambda v: v.line or 0,
                default=None,
            )
            where = f"'{{{{ {first.name} }}}}' on line {first.line}" if first else "dynamic content"
            money = (
                f"about {format_usd(saving * per_month)} a month"
                if per_month is not None
                else f"about {format_usd(saving * 1000)} per 1,000 requests"
            )
            hit_note = (
                f"at its {format_share(step.step.prompt_cache_hit_rate)} cache hit rate"
                if step.step.prompt_cache_hit_rate is not None
                else "at an assumed 50% cache hit rate (set prompt_cache_hit_rate)"
            )
            after = lane.structure.static_after_prefix if lane.structure else 0
            yield self.finding(
                severity,
                f"{where} comes before {format_tokens(after)} "
                f"static tokens, which provider caching cannot reuse; moving the dynamic content "
                f"after them would make {format_tokens(gain)} more tokens cacheable on "
                f"{lane.model}, saving {money} {hit_note} (step '{step.name}' of workflow "
                f"'{workflow.name}')",
                path=step.template_path,
                line=first.line if first else 1,
                workflow=workflow.name,
                step=step.name,
                measured=gain,
                unit="tokens",
            )


@rule(
    "PB302",
    "read-as-plain-text",
    Severity.INFO,
    "a file looks like a template, but no engine accepts it: counted as plain text",
)
def read_as_plain_text(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """A ``.txt``/``.md`` file with braces that no template engine reads is plain text.

    Why: promptbudget decides a generic file's engine by its content (see "How promptbudget
    reads a file" in the README). Braces that no engine accepts (a JSON example, a ``{{``
    that is just text) mean the file is most likely sent as it is; it is counted that way,
    and you are told, in case the application does use an engine: name it with
    ``engines:`` in budgets.yaml and its errors become PB001.

    Fails (info):
        Fill {{ answer: ... }} for {the question}.   <- Jinja2 and str.format reject it

    Passes:
        Return {"answer": "..."} exactly.         <- no template syntax: plain text
        Answer {question} using {context}.       <- str.format
    """
    reported: set[str] = set()
    for result in ctx.templates:
        parsed = result.parsed
        if parsed.engine_note is None or parsed.display_path in reported:
            continue
        reported.add(parsed.display_path)
        yield self.finding(
            severity, parsed.engine_note, path=parsed.display_path, line=parsed.engine_line
        )
