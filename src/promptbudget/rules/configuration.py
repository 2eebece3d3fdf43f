"""Settings that silently do nothing: a finding instead of a number that looks right."""

from __future__ import annotations

from collections.abc import Iterator

from promptbudget.findings import Finding, Severity
from promptbudget.manifest.model import Manifest, Step
from promptbudget.routing import select_rule
from promptbudget.rules.base import Rule, RuleContext, plural, rule
from promptbudget.simulation import cached_prefix_tokens
from promptbudget.tools import count_tools
from promptbudget.units import format_share, format_tokens


@rule(
    "PB112",
    "tools-not-sent",
    Severity.WARNING,
    "a template names tools the manifest defines, but its step does not send them",
)
def tools_not_sent(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """Tools a template uses are counted only when its step sends them.

    Why: a Dotprompt (or Prompty/Jinja2 front matter) ``tools: [lookup_account]`` names
    tools the application defines in code; budgets.yaml can define them under ``tools:`` so
    their schemas are counted. A step that uses the template but does not list them sends a
    request thousands of tokens smaller than the real one, and nothing says so. promptbudget
    does not link them by name behind your back: the step's ``tools:`` is the one place that
    says what a call carries.

    Fails:
        # prompts/support.prompt:  tools: [lookup_account]
        tools:
          lookup_account: {description: ..., parameters: {...}}
        workflows:
          support:
            steps:
              - prompt: support.prompt        <- sends no tools

    Passes:
              - prompt: support.prompt
                tools: [lookup_account]
    """
    manifest = ctx.manifest
    if manifest is None or not manifest.tools:
        return
    parsed_by_path = {result.parsed.display_path: result.parsed for result in ctx.templates}
    for workflow in ctx.workflows:
        for step in workflow.steps:
            parsed = parsed_by_path.get(step.template_path)
            if parsed is None or not parsed.meta.tool_names:
                continue
            sent = {tool.name for tool in step.step.tools}
            missing = [
                name
                for name in parsed.meta.tool_names
                if name in manifest.tools and manifest.tools[name].name not in sent
            ]
            if not missing:
                continue
            lane = step.lanes[0] if step.lanes else None
            tokens = (
                count_tools([manifest.tools[name] for name in missing], lane.tokenizer)
                if lane is not None
                else None
            )
            cost = f" ({format_tokens(tokens)} tokens per call)" if tokens else ""
            names = ", ".join(missing)
            yield self.finding(
                severity,
                f"{step.template_path} uses {plural(len(missing), 'tool')} budgets.yaml "
                f"defines ({names}), but step '{step.step.name}' of workflow "
                f"'{workflow.workflow.name}' does not send them: their definitions{cost} are "
                f"not counted. Add 'tools: [{names}]' to the step",
                path=manifest.display_path,
                line=step.step.line,
                workflow=workflow.workflow.name,
                step=step.step.name,
            )


@rule(
    "PB113",
    "cache-rate-without-effect",
    Severity.WARNING,
    "a prompt cache hit rate on a step whose prefix the model cannot cache",
)
def cache_rate_without_effect(
    self: Rule, ctx: RuleContext, severity: Severity
) -> Iterator[Finding]:
    """A ``prompt_cache_hit_rate`` only counts when the provider would cache the prefix.

    Why: providers cache a prompt's static prefix only from a minimum length (OpenAI: 1,024
    tokens; Anthropic: 1,024 or 2,048) and only on models with cache prices. Below that,
    the hit rate you wrote changes nothing in the estimate, which looks like it took effect.

    Fails:
        - prompt: short.j2            # 111 static tokens before the first variable
          model: gpt-4o
          prompt_cache_hit_rate: 60%  <- below the 1,024-token minimum: no effect

    Passes:
        - prompt: long_policy.j2      # 2,300 static tokens first
          model: gpt-4o
          prompt_cache_hit_rate: 60%
    """
    manifest = ctx.manifest
    for workflow in ctx.workflows:
        for step in workflow.steps:
            rate = step.step.prompt_cache_hit_rate
            if not rate:
                continue
            for lane in step.lanes:
                price, structure = lane.price, lane.structure
                if price is None or structure is None or lane.routed.escalated:
                    continue
                if cached_prefix_tokens(price, structure.prefix_tokens) > 0:
                    continue
                if price.cache_read_per_mtok is None:
                    why = f"{lane.model} has no prompt-cache price"
                else:
                    minimum = price.cache_min_tokens or 0
                    why = (
                        f"its cacheable prefix ({format_tokens(structure.prefix_tokens)} "
                        f"tokens) is below {lane.model}'s {format_tokens(minimum)}-token minimum"
                    )
                yield self.finding(
                    severity,
                    f"prompt_cache_hit_rate {format_share(rate)} on step '{step.step.name}' "
                    f"of workflow '{workflow.workflow.name}' has no effect: {why}",
                    path=manifest.display_path if manifest else None,
                    line=_step_line(
                        manifest, workflow.workflow.name, step.step, "prompt_cache_hit_rate"
                    ),
                    workflow=workflow.workflow.name,
                    step=step.step.name,
                )
                break


@rule(
    "PB114",
    "route-rule-never-matches",
    Severity.WARNING,
    "a route rule that no traffic class of the workflows using the route selects",
)
def route_rule_never_matches(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """A route rule fires only for traffic whose signals match it, first match first.

    Why: ``when: {customer_tier: enterprise}`` in a route used by workflows whose traffic
    classes never set ``customer_tier`` (or an earlier rule that always matches) never sends
    a call anywhere: the model it names is never priced, and the estimate looks complete.

    Fails:
        routes:
          answer:
            rules:
              - when: {customer_tier: enterprise}   <- no traffic class has customer_tier
                model: gpt-4.1
            default: gpt-4.1-mini

    Passes:
        workflows:
          support:
            traffic:
              classes:
                - {name: enterprise, share: 10%, signals: {customer_tier: enterprise}}
                - {name: rest, share: 90%}
    """
    manifest = ctx.manifest
    if manifest is None:
        return
    users: dict[str, list[str]] = {}  # route -> the workflows whose steps use it
    signals_of: dict[str, list[dict[str, object]]] = {}
    for workflow in manifest.workflows:
        names = {step.route for step in workflow.steps if step.route}
        reached = set(names)
        pending = list(names)
        while pending:
            route = manifest.routes.get(pending.pop())
            for target in route.targets if route else ():
                if target in manifest.routes and target not in reached:
                    reached.add(target)
                    pending.append(target)
        for name in reached:
            users.setdefault(name, []).append(workflow.name)
            signals_of.setdefault(name, []).extend(
                dict(traffic.signals) for traffic in workflow.classes
            )
    for name, route in manifest.routes.items():
        if not route.rules or name not in users:
            continue
        selected = {id(select_rule(route.rules, signals)) for signals in signals_of[name]}
        for number, candidate in enumerate(route.rules, start=1):
            if id(candidate) in selected:
                continue
            when = ", ".join(f"{key}: {value}" for key, value in candidate.when.items())
            yield self.finding(
                severity,
                f"rule {number} of route '{name}' (when {{{when}}}) never matches: no traffic "
                f"class of {', '.join(sorted(set(users[name])))} selects it, so "
                f"'{candidate.target}' is never priced. Add a traffic class with these "
                "signals, or remove the rule",
                path=manifest.display_path,
                line=candidate.line or route.line,
            )


@rule(
    "PB115",
    "tool-calls-without-tools",
    Severity.WARNING,
    "a step makes tool calls but sends no tool definitions",
)
def tool_calls_without_tools(self: Rule, ctx: RuleContext, severity: Severity) -> Iterator[Finding]:
    """``tool_calls`` needs tools the model can call, and their definitions cost tokens.

    Why: a step with ``tool_calls: 2`` and no ``tools:`` (and no tools in its template) is
    priced as if the model called tools it was never given: the tool results are counted,
    the definitions every call carries are not. Either the step sends tools and the manifest
    should say which, or it makes no tool calls.

    Fails:
        - prompt: agent.j2
          tool_calls: 2          <- no tools: on the step, none in agent.j2

    Passes:
        - prompt: agent.j2
          tool_calls: 2
          tools: [search_docs]
    """
    manifest = ctx.manifest
    parsed_by_path = {result.parsed.display_path: result.parsed for result in ctx.templates}
    for workflow in ctx.workflows:
        for step in workflow.steps:
            if step.step.tool_calls <= 0 or step.step.tools:
                continue
            parsed = parsed_by_path.get(step.template_path)
            if parsed is not None and (parsed.meta.tools or parsed.meta.tool_names):
                continue
            yield self.finding(
                severity,
                f"step '{step.step.name}' of workflow '{workflow.workflow.name}' makes "
                f"{plural(step.step.tool_calls, 'tool call')} but sends no tool definitions: "
                "the model has nothing to call, and what the definitions cost is not counted. "
                "Add the step's tools: (or tool_calls: 0)",
                path=manifest.display_path if manifest else None,
                line=_step_line(manifest, workflow.workflow.name, step.step, "tool_calls"),
                workflow=workflow.workflow.name,
                step=step.step.name,
            )


def _step_line(manifest: Manifest | None, workflow: str, step: Step, key: str) -> int | None:
    """The line of the step's ``key`` (the setting a finding is about), else of the step."""
    return manifest.step_line(workflow, step, key) if manifest else step.line
