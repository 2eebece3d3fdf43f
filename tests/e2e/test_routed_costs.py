"""Routed costs against hand computation, through `promptbudget estimate --format json`.

Each project uses custom-priced models and a template that is a single capped variable, so
a prompt is exactly `cap + 7` tokens (one user message: 3 framing tokens, 1 for the role,
3 to prime the reply). The README's cost-model section works the same examples.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conftest import Run
from promptbudget.tokenizers import get_tokenizer

FRAMING = 7
MODELS = """\
models:
  cheap: {tokenizer: o200k_base, input_per_mtok: 0.15, output_per_mtok: 0}
  frontier: {tokenizer: o200k_base, input_per_mtok: 5, output_per_mtok: 0}
  mini: {tokenizer: o200k_base, input_per_mtok: 0.75, output_per_mtok: 4.50}
  big: {tokenizer: o200k_base, input_per_mtok: 5, output_per_mtok: 30}
  one: {tokenizer: o200k_base, input_per_mtok: 1, output_per_mtok: 0}
  two: {tokenizer: o200k_base, input_per_mtok: 2, output_per_mtok: 0}
  four: {tokenizer: o200k_base, input_per_mtok: 4, output_per_mtok: 0}
"""


def project(
    make_project: Callable[..., Path],
    body: str,
    *,
    template: str = "{{ doc }}",
) -> Path:
    manifest = "version: 1\n" + MODELS + textwrap.dedent(body)
    return make_project({"budgets.yaml": manifest, "prompts/doc.j2": template}, dedent=False)


def estimate(run_cli: Callable[..., Run], root: Path, *args: str) -> dict[str, Any]:
    result = run_cli("estimate", "--format", "json", *args, cwd=root)
    assert result.exit_code == 0, result.stderr
    payload: dict[str, Any] = result.json()
    return payload


def one_step(
    route_or_model: str,
    *,
    tokens: int,
    output: int = 0,
    extra_step: str = "",
    extra_workflow: str = "",
) -> str:
    return f"""\
workflows:
  w:
    traffic: {{requests_per_day: 1000}}
{textwrap.indent(textwrap.dedent(extra_workflow), "    ")}    steps:
      - prompt: doc.j2
        {route_or_model}
        output_tokens: {output}
        variables:
          doc: {{max_tokens: {tokens - FRAMING}}}
{textwrap.indent(textwrap.dedent(extra_step), "        ")}"""


def test_sixty_forty_router_blends_to_two_oh_nine_per_million(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    # 60% at $0.15/M + 40% at $5/M = $0.09 + $2.00 = $2.09 per million input tokens.
    body = textwrap.dedent("""\
    routes:
      router:
        split:
          - {model: cheap, share: 60%}
          - {model: frontier, share: 40%}
    """) + one_step("route: router", tokens=1_000_000)
    payload = estimate(run_cli, project(make_project, body))
    (workflow,) = payload["workflows"]
    assert workflow["cost_per_request_usd"] == 2.09
    # A 58% saving against sending everything to the $5 model.
    assert 1 - Decimal("2.09") / 5 == Decimal("0.582")
    mix = {m["model"]: m["call_share"] for m in workflow["model_mix"]}
    assert mix == {"cheap": 0.6, "frontier": 0.4}


def test_two_stage_cascade_and_its_break_even_rate(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    # 2,000 in / 500 out: mini = 2,000 x $0.75 + 500 x $4.50 = $0.00375 per call;
    # big = 2,000 x $5 + 500 x $30 = $0.025. At a 30% escalation rate:
    # $0.00375 + 0.3 x $0.025 = $0.01125 (55% cheaper than big alone).
    # Break-even: $0.00375 + p x $0.025 = $0.025  ->  p = 0.85.
    body = textwrap.dedent("""\
    routes:
      cascade:
        model: mini
        escalation: {to: big, rate: 30%}
    """) + one_step("route: cascade", tokens=2000, output=500)
    payload = estimate(run_cli, project(make_project, body))
    (workflow,) = payload["workflows"]
    assert workflow["cost_per_request_usd"] == 0.01125
    (step,) = workflow["steps"]
    assert step["break_even_escalation_rate"] == 0.85
    lanes = {(lane["model"], lane["escalated"]): lane["share"] for lane in step["lanes"]}
    assert lanes == {("mini", False): 1, ("big", True): 0.3}


def test_three_stage_cascade(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    # one -> two at 30% -> four at 50% of those: weights 1, 0.3, 0.15.
    # 1M tokens: $1 + 0.3 x $2 + 0.15 x $4 = $1 + $0.60 + $0.60 = $2.20
    body = textwrap.dedent("""\
    routes:
      first:
        model: one
        escalation: {to: second, rate: 30%}
      second:
        model: two
        escalation: {to: four, rate: 50%}
    """) + one_step("route: first", tokens=1_000_000)
    payload = estimate(run_cli, project(make_project, body))
    assert payload["workflows"][0]["cost_per_request_usd"] == 2.2


def test_retries_multiply_by_expected_attempts(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    # q = 0.1, r = 3: (1 - 0.1^3) / (1 - 0.1) = 0.999 / 0.9 = 1.11 attempts; 1M x $1 x 1.11.
    body = one_step(
        "model: one",
        tokens=1_000_000,
        extra_step="retry: {failure_rate: 10%, max_attempts: 3}\n",
    )
    payload = estimate(run_cli, project(make_project, body))
    assert payload["workflows"][0]["cost_per_request_usd"] == 1.11
    assert payload["workflows"][0]["calls_per_request"] == 1.11


def test_semantic_cache_and_success_rate(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    # $1 per request; 35% answered from the semantic cache: $0.65; at 80% success,
    # $0.65 / 0.8 = $0.8125 per successful outcome; 1,000 a day: $0.65 x 30,000 = $19,500.
    body = one_step(
        "model: one",
        tokens=1_000_000,
        extra_workflow="semantic_cache_hit_rate: 35%\nsuccess_rate: 80%\n",
    )
    (workflow,) = estimate(run_cli, project(make_project, body))["workflows"]
    assert workflow["cost_per_request_usd"] == 0.65
    assert workflow["cost_per_outcome_usd"] == 0.8125
    assert workflow["monthly_spend_usd"] == 19500


STATIC = "You are a careful assistant. " * 400  # a long static prefix, then the variable
CACHE_MODELS = """\
  sonnet:
    tokenizer: o200k_base
    billing: anthropic
    input_per_mtok: 3
    output_per_mtok: 0
    cache_read_per_mtok: 0.30
    cache_write_per_mtok: 3.75
    cache_min_tokens: 1024
  batchy:
    tokenizer: o200k_base
    input_per_mtok: 2
    output_per_mtok: 0
    cache_read_per_mtok: 0.50
    batch_input_per_mtok: 1
    batch_output_per_mtok: 0
    cache_min_tokens: 1024
"""


def cached_project(make_project: Callable[..., Path], model: str, extra: str) -> Path:
    body = f"""\
workflows:
  w:
    steps:
      - prompt: doc.j2
        model: {model}
        output_tokens: 0
{textwrap.indent(textwrap.dedent(extra), "        ")}        variables:
          doc: {{max_tokens: 1000}}
"""
    manifest = "version: 1\n" + MODELS + CACHE_MODELS + body
    template = f"system:\n{STATIC}\nuser:\n{{{{ doc }}}}"
    return make_project({"budgets.yaml": manifest, "prompts/doc.j2": template}, dedent=False)


def prefix_tokens() -> int:
    """System message (framing + text) and the user message's framing come before the slot."""
    o200k = get_tokenizer("o200k_base")
    return (3 + 1 + o200k.count(STATIC.strip())) + (3 + 1)


def test_anthropic_five_minute_write_pays_off_after_one_read(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    # Half the calls write the prefix (x1.25), half read it (x0.1): per prefix token
    # 0.5 x $3.75 + 0.5 x $0.30 = $2.025 < $3 uncached. The rest ($3) is never cached.
    prefix = prefix_tokens()
    root = cached_project(make_project, "sonnet", "prompt_cache_hit_rate: 50%\n")
    (workflow,) = estimate(run_cli, root)["workflows"]
    (step,) = workflow["steps"]
    assert step["lanes"][0]["cacheable_prefix_tokens"] == prefix
    total = step["prompt_tokens"]
    expected = (Decimal(prefix) * Decimal("2.025") + (total - prefix) * 3) / 1_000_000
    assert workflow["cost_per_request_usd"] == float(expected)
    uncached = Decimal(total) * 3 / 1_000_000
    assert expected < uncached


def test_batch_combined_with_cached_input(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    # Batch halves every input rate, cache reads included: all calls batched, all hits:
    # prefix x ($0.50 x 1/2) + rest x ($2 x 1/2).
    prefix = prefix_tokens()
    root = cached_project(
        make_project, "batchy", "prompt_cache_hit_rate: 100%\nbatch_share: 100%\n"
    )
    (workflow,) = estimate(run_cli, root)["workflows"]
    total = workflow["steps"][0]["prompt_tokens"]
    expected = (Decimal(prefix) * Decimal("0.25") + (total - prefix) * 1) / 1_000_000
    assert workflow["cost_per_request_usd"] == float(expected)


def test_prefix_below_the_minimum_is_not_cached(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    body = one_step(
        "model: sonnet", tokens=2000, extra_step="prompt_cache_hit_rate: 100%\n"
    ).replace("version", "version")
    manifest = "version: 1\n" + MODELS + CACHE_MODELS + body
    root = make_project({"budgets.yaml": manifest, "prompts/doc.j2": "{{ doc }}"}, dedent=False)
    (workflow,) = estimate(run_cli, root)["workflows"]
    # The prefix is only 4 framing tokens: under 1,024, so nothing is cached: 2,000 x $3.
    assert workflow["cost_per_request_usd"] == 0.006


DISTRIBUTED = one_step(
    "model: mini",
    tokens=2000,
    output=0,
).replace("output_tokens: 0", "output_tokens: {p50: 200, p95: 800}")


def test_monte_carlo_is_seeded_and_reproducible(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = project(make_project, DISTRIBUTED)
    first = estimate(run_cli, root)["workflows"][0]
    again = estimate(run_cli, root)["workflows"][0]
    other = estimate(run_cli, root, "--seed", "7")["workflows"][0]
    assert first["cost_per_request_p95_usd"] == again["cost_per_request_p95_usd"]
    assert first["monte_carlo"] == {"samples": 1000, "seed": 1, "mean": "exact"}
    assert other["cost_per_request_p95_usd"] != first["cost_per_request_p95_usd"]
    assert first["cost_per_request_p50_usd"] < first["cost_per_request_p95_usd"]
    # p50 of the output is 200 tokens: 2,000 x $0.75 + 200 x $4.50 = $0.0024 per request.
    assert abs(first["cost_per_request_p50_usd"] - 0.0024) < 0.0001
    # The log-normal's 95th percentile is 800 tokens: $0.0015 + 800 x $4.50 = $0.0051.
    assert abs(first["cost_per_request_p95_usd"] - 0.0051) < 0.0004
    # Its mean is above the median: exp(sigma^2 / 2) x 200 with sigma = ln(4) / 1.645, exact
    # (closed form, whatever the samples): $0.0015 + 200 e^(sigma^2/2) x $4.50 per million.
    sigma = math.log(4) / 1.6448536269514722
    mean = 0.0015 + 200 * math.exp(sigma * sigma / 2) * 4.50 / 1_000_000
    assert math.isclose(first["cost_per_request_usd"], mean, abs_tol=1e-12)
    assert first["cost_per_request_usd"] == other["cost_per_request_usd"]


def test_without_distributions_p50_equals_p95_equals_mean(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = project(make_project, one_step("model: mini", tokens=2000, output=500))
    (workflow,) = estimate(run_cli, root)["workflows"]
    assert (
        workflow["cost_per_request_usd"]
        == workflow["cost_per_request_p50_usd"]
        == workflow["cost_per_request_p95_usd"]
        == 0.00375
    )
    assert workflow["monte_carlo"]["samples"] == 1


def test_p95_limit_uses_the_p95(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    body = DISTRIBUTED + "    limits:\n      max_cost_per_request: {p95: $0.004}\n"
    root = project(make_project, body)
    result = run_cli("check", "--format", "json", cwd=root)
    assert result.exit_code == 1
    (finding,) = [f for f in result.json()["findings"] if f["rule"] == "PB106"]
    assert "at the p95" in finding["message"]
    mean_limit = body.replace("{p95: $0.004}", "$0.004")
    assert run_cli("check", cwd=project(make_project, mean_limit)).exit_code == 0


def test_why_parts_sum_exactly_to_the_total(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    from conftest import EXAMPLES

    payload = estimate(run_cli, EXAMPLES, "--why")
    for workflow in payload["workflows"]:
        parts = sum(Decimal(str(c["cost_usd"])) for c in workflow["why"])
        assert abs(parts - Decimal(str(workflow["cost_per_request_usd"]))) < Decimal("1e-11")


def test_why_text_tree(run_cli: Callable[..., Run]) -> None:
    from conftest import EXAMPLES

    result = run_cli("estimate", "--why", "-w", "support-reply", cwd=EXAMPLES)
    assert result.exit_code == 0
    assert "└── answer" in result.stdout
    assert "{{ context }}" in result.stdout


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        (
            "routes:\n  r:\n    split:\n      - {model: one, share: 60%}\n"
            "      - {model: two, share: 30%}\n",
            "split shares sum to 90%; they must sum to 100%",
        ),
        ("routes:\n  r:\n    model: gpt-4o-mni\n", "neither a route nor a model in the catalog"),
        (
            "routes:\n  r:\n    model: one\n    escalation: {to: s, rate: 10%}\n"
            "  s:\n    model: two\n    escalation: {to: r, rate: 10%}\n",
            "routes form a cycle: r -> s -> r",
        ),
        (
            "routes:\n  r:\n    model: one\n    escalation: {to: two, rate: 150%}\n",
            "is outside 0%..100%",
        ),
        (
            "routes:\n  r:\n    rules:\n      - {when: {risk: high}, model: two}\n",
            "route 'r' has no rule for traffic class 'all' of workflow 'w'",
        ),
    ],
    ids=["shares-not-100", "unknown-model", "cycle", "rate-above-100", "class-without-route"],
)
def test_bad_routing_input_is_exit_2_with_one_line(
    make_project: Callable[..., Path], run_cli: Callable[..., Run], routes: str, message: str
) -> None:
    root = project(make_project, routes + one_step("route: r", tokens=100))
    for command in ("check", "estimate"):
        result = run_cli(command, cwd=root)
        assert result.exit_code == 2, result
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("promptbudget: error: budgets.yaml:")
        assert message in lines[0], lines[0]


def test_traffic_class_shares_must_sum_to_100(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    body = one_step("model: one", tokens=100).replace(
        "traffic: {requests_per_day: 1000}",
        "traffic:\n      requests_per_day: 1000\n      classes:\n"
        "        a: {share: 50%}\n        b: {share: 40%}",
    )
    result = run_cli("check", cwd=project(make_project, body))
    assert result.exit_code == 2
    assert "traffic class shares sum to 90%" in result.stderr


def test_rules_route_by_class_signals(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    # 60% low-risk traffic on `one` ($1/M), 40% high-risk on `four` ($4/M), 1M tokens:
    # 0.6 x $1 + 0.4 x $4 = $2.20. context_tokens is a signal too.
    body = textwrap.dedent("""\
    routes:
      r:
        rules:
          - {when: {risk: high}, model: four}
          - {when: {context_tokens: {gt: 2000000}}, model: two}
        default: one
    """) + one_step("route: r", tokens=1_000_000).replace(
        "traffic: {requests_per_day: 1000}",
        "traffic:\n      requests_per_day: 1000\n      classes:\n"
        "        low: {share: 60%, signals: {risk: low}}\n"
        "        high: {share: 40%, signals: {risk: high}}",
    )
    (workflow,) = estimate(run_cli, project(make_project, body))["workflows"]
    assert workflow["cost_per_request_usd"] == 2.2


def test_what_if_is_shown_next_to_the_baseline(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = project(make_project, one_step("model: one", tokens=1_000_000))
    payload = estimate(
        run_cli, root, "--set", "w.steps.doc.model=two", "--set", "traffic.requests_per_day=2000"
    )
    assert payload["baseline"][0]["cost_per_request_usd"] == 1
    assert payload["workflows"][0]["cost_per_request_usd"] == 2
    assert payload["workflows"][0]["monthly_spend_usd"] == 120_000
    text = run_cli("estimate", "--set", "w.steps.doc.model=two", cwd=root)
    assert (
        "baseline" in text.stdout and "what-if" in text.stdout and "+$1.00 (+100.0%)" in text.stdout
    )


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("w.steps.nope.model=two", "no step named 'nope' (steps: doc)"),
        ("nosuch.model=two", "'nosuch' is neither a workflow"),
        ("w.steps.doc.model", "expected PATH=VALUE"),
        ("w.steps.doc.turns=zero", "expected a whole number of turns"),
    ],
)
def test_bad_what_if_is_exit_2(
    make_project: Callable[..., Path], run_cli: Callable[..., Run], setting: str, message: str
) -> None:
    root = project(make_project, one_step("model: one", tokens=100))
    result = run_cli("estimate", "--set", setting, cwd=root)
    assert result.exit_code == 2
    assert message in result.stderr


def test_breakdown_sums_to_the_mean_exactly_in_decimal() -> None:
    """The API behind `estimate --why`: the components are the mean, to the last digit."""
    from conftest import EXAMPLES
    from promptbudget.commands.estimate import run as run_estimate
    from promptbudget.options import Options

    report = run_estimate(Options(cwd=EXAMPLES, why=True))
    assert report.workflows
    for workflow in report.workflows:
        assert sum((c.cost_usd for c in workflow.components), Decimal(0)) == workflow.cost.mean
        for step in workflow.steps:
            parts = sum(
                (c.cost_usd for c in workflow.components if c.step == step.name), Decimal(0)
            )
            assert parts == step.cost_usd
