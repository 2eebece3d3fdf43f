"""Rules about templates themselves: parse errors, variables, estimated counts."""

from __future__ import annotations

from collections.abc import Iterator

from promptbudget.findings import Finding, Severity
from promptbudget.rules.base import Rule, RuleContext, rule
from promptbudget.tokenizers import TOKENIZERS


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
            yield self.finding(
                severity,
                f"variable '{name}' has no sample and no cap; counted as empty. Add "
                f"'variables: {{{name}: {{max_tokens: N}}}}' to budgets.yaml or a sample to "
                "the template's front matter",
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
                yield self.finding(
                    severity,
                    f"variable '{variable.name}' has no sample and no cap in step "
                    f"'{step.name}' of workflow '{workflow.name}'; counted as empty, so its "
                    f"cost is a lower bound. Add 'variables: {{{variable.name}: "
                    "{max_tokens: N}}' to the step or to the manifest",
                    path=step.template_path,
                    line=variable.line,
                    workflow=workflow.name,
                    step=step.name,
                )


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
        used = set(result.rendered.variables)
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
            used_names = {v.name for v in step.prompt.variables}
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
                )


@rule("PB301", "estimated-count", Severity.INFO, "counts for this model are estimates")
def estimated_count(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """Models without a public tokenizer are counted with a documented correction.

    Why: Claude 3+ and Gemini publish no tokenizer. promptbudget counts them as
    ``o200k_base`` times a per-family factor and says so, with the error band, instead of
    passing an estimate off as exact. Budgets near the limit deserve headroom.

    Fails (info):
        model: claude-sonnet-4-6     <- estimated, ±20%

    Passes:
        model: gpt-4.1-mini          <- exact (o200k_base)
    """
    for result in ctx.templates:
        spec = TOKENIZERS.get(result.count.tokenizer)
        if spec is None or spec.exact or result.count.prompt is None or result.in_workflow:
            continue
        yield self.finding(
            severity,
            f"token counts for {result.count.model} are estimates ({spec.error_band}): "
            f"{spec.source}",
            path=result.parsed.display_path,
            line=1,
        )
    seen: set[tuple[str, str]] = set()
    for workflow in ctx.workflows:
        for step in workflow.steps:
            spec = TOKENIZERS.get(step.tokenizer)
            if spec is None or spec.exact or step.model is None:
                continue
            key = (step.template_path, step.model)
            if key in seen:
                continue
            seen.add(key)
            yield self.finding(
                severity,
                f"token counts for {step.model} are estimates ({spec.error_band}): {spec.source}",
                path=step.template_path,
                line=1,
                workflow=workflow.name,
                step=step.name,
            )
