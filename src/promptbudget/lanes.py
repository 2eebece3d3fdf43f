"""A workflow's steps as lanes for the simulation: one per traffic class and routed model, with the
template rendered and counted for that model; then every workflow priced.

The simulation itself (``estimates.py``) is pure: it receives lanes and returns estimates.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal

from promptbudget.counting import count_prompt, structure_prompt
from promptbudget.errors import UsageError
from promptbudget.estimates import WorkflowEstimate, estimate_workflow, template_token_rates
from promptbudget.evaluation import variable_values
from promptbudget.lane import Lane, SizedVariable, output_bound
from promptbudget.manifest.model import Step, TrafficClass, VariableSpec, Workflow
from promptbudget.pricing.catalog import blend_time_of_day
from promptbudget.pricing.resolve import DEFAULT_TOKENIZER, resolve_model
from promptbudget.progress import track
from promptbudget.project import Project
from promptbudget.routing import RoutedModel, RouteNode, expand_route, route_tree
from promptbudget.simulation import CacheTerms
from promptbudget.templates.meta import ParsedTemplate
from promptbudget.templates.rendered import RenderedPrompt
from promptbudget.tokenizers import get_tokenizer


def estimate_workflows(
    project: Project,
    *,
    samples: int,
    seed: int,
    workflow: str | None = None,
    only: frozenset[str] | None = None,
) -> tuple[WorkflowEstimate, ...]:
    """Every workflow of the manifest (or only ``workflow``, or those in ``only``), priced
    with ``samples`` Monte Carlo draws from ``seed``."""
    manifest = project.manifest
    assert manifest is not None
    workflows = manifest.workflows
    if only is not None:
        workflows = tuple(w for w in workflows if w.name in only)
    if workflow is not None:
        workflows = tuple(w for w in workflows if w.name == workflow)
        if not workflows:
            names = ", ".join(w.name for w in manifest.workflows) or "none"
            raise UsageError(f"no workflow named {workflow!r}; workflows: {names}")
    return tuple(
        estimate_workflow(
            each,
            [(step, *_step_lanes(project, each, step)) for step in each.steps],
            samples=samples,
            seed=seed,
        )
        for each in track(workflows, "simulating workflows")
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
        tree: RouteNode | None = None
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
            tree = route_tree(target, manifest.routes, signals)
        lanes.extend(
            replace(
                _lane(project, workflow, step, traffic_class, entry, parsed, rendered, structural),
                route=tree,
            )
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
    price, time_of_day = (
        blend_time_of_day(choice.price, workflow.traffic_profile)
        if choice.price is not None
        else (None, None)
    )
    return Lane(
        traffic_class=traffic_class,
        step=step,
        routed=routed,
        price=price,
        time_of_day=time_of_day,
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
