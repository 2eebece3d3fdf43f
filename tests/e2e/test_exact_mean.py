"""The mean cost is exact (closed form, no sampling): checked against a hand computation of a
workflow with a capped distributed variable, a capped distributed reply, 2 turns x 1 tool
call, a cascade that escalates, provider cache hits and a semantic cache; and a lane whose
long-context tier is uncertain keeps (and says it keeps) its sample mean."""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from statistics import NormalDist

from test_routed_costs import CACHE_MODELS, MODELS, STATIC, estimate, prefix_tokens

from conftest import Run

Z95 = NormalDist().inv_cdf(0.95)


def capped_lognormal_mean(p50: float, p95: float, cap: float) -> float:
    """E[min(X, cap)] for the log-normal with that median and 95th percentile, by hand:
    E[X; X < c] + c P(X >= c), with E[X; X < c] = e^(mu + s^2/2) Phi((ln c - mu - s^2) / s)."""
    s = math.log(p95 / p50) / Z95
    mu = math.log(p50)
    phi = NormalDist().cdf
    below = math.exp(mu + s * s / 2) * phi((math.log(cap) - mu - s * s) / s)
    return below + cap * (1 - phi((math.log(cap) - mu) / s))


BODY = """\
routes:
  cascade:
    model: sonnet
    escalation: {to: big, rate: 25%}
workflows:
  w:
    traffic: {requests_per_day: 1000}
    semantic_cache_hit_rate: 10%
    steps:
      - prompt: doc.j2
        route: cascade
        turns: 2
        tool_calls: 1
        tool_result_tokens: 300
        user_turn_tokens: 50
        output_tokens: {p50: 200, p95: 900}
        max_output_tokens: 700
        prompt_cache_hit_rate: 50%
        variables:
          doc: {max_tokens: 3000, tokens: {p50: 800, p95: 2400}}
"""


def write(make_project: Callable[..., Path], body: str, models: str = "") -> Path:
    manifest = "version: 1\n" + MODELS + CACHE_MODELS + models + body
    template = f"system:\n{STATIC}\nuser:\n{{{{ doc }}}}"
    return make_project({"budgets.yaml": manifest, "prompts/doc.j2": template}, dedent=False)


def test_the_mean_is_the_closed_form_worked_by_hand(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = write(make_project, BODY)
    (workflow,) = estimate(run_cli, root)["workflows"]
    (step,) = workflow["steps"]
    static = step["prompt_tokens"] - 3000  # the prompt is counted with the doc at its cap
    doc = Decimal(repr(capped_lognormal_mean(800, 2400, 3000)))
    reply = Decimal(repr(capped_lognormal_mean(200, 900, 700)))
    framing = 3 + 1  # o200k: tokens per message + the role
    user = 50 + framing
    tool = 300 + framing
    # Four calls: S+D; S+D+(O+f)+T; S+D+2(O+f)+U+T; S+D+3(O+f)+U+2T (tool results stay in
    # the conversation): 4(S+D) + 6(O+f) + 2U + 4T input tokens, 4 O output tokens.
    inputs = 4 * (static + doc) + 6 * (reply + framing) + 2 * user + 4 * tool
    cached = 4 * prefix_tokens()  # sonnet caches its static prefix; an escalation does not
    sonnet = (inputs - cached) * 3 + cached * (
        Decimal("0.5") * Decimal("0.30") + Decimal("0.5") * Decimal("3.75")
    )
    big = inputs * 5 + 4 * reply * 30
    expected = Decimal("0.9") * (sonnet + Decimal("0.25") * big) / 1_000_000
    assert math.isclose(
        workflow["cost_per_request_usd"], float(expected), rel_tol=1e-12, abs_tol=1e-12
    )
    assert workflow["monte_carlo"] == {"samples": 1000, "seed": 1, "mean": "exact"}
    # The breakdown adds up to the mean, and its tokens follow the same expectation.
    why = {(c["model"], c["component"]): c for c in workflow["why"]}
    assert math.isclose(
        why[("sonnet", "var:doc")]["tokens"], float(Decimal("0.9") * 4 * doc), rel_tol=1e-12
    )
    assert math.isclose(
        why[("big", "output")]["tokens"],
        float(Decimal("0.9") * Decimal("0.25") * 4 * reply),
        rel_tol=1e-12,
    )
    parts = sum(Decimal(str(c["cost_usd"])) for c in workflow["why"])
    assert abs(parts - Decimal(str(workflow["cost_per_request_usd"]))) < Decimal("1e-11")


def test_the_mean_does_not_depend_on_samples_or_seed(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = write(make_project, BODY)
    first = estimate(run_cli, root)["workflows"][0]
    other = estimate(run_cli, root, "--samples", "50", "--seed", "9")["workflows"][0]
    assert first["cost_per_request_usd"] == other["cost_per_request_usd"]
    assert first["cost_per_request_p95_usd"] != other["cost_per_request_p95_usd"]


LONG_MODEL = """\
  tiered:
    tokenizer: o200k_base
    input_per_mtok: 1
    output_per_mtok: 0
    long_context: {threshold_tokens: 5000, input_per_mtok: 2, output_per_mtok: 0}
"""


def tiered(make_project: Callable[..., Path], p50: int, p95: int) -> Path:
    body = f"""\
workflows:
  w:
    steps:
      - prompt: doc.j2
        model: tiered
        output_tokens: 0
        variables:
          doc: {{max_tokens: 40000, tokens: {{p50: {p50}, p95: {p95}}}}}
"""
    return make_project(
        {
            "budgets.yaml": "version: 1\nmodels:\n" + LONG_MODEL + body,
            "prompts/doc.j2": "{{ doc }}",
        },
        dedent=False,
    )


def test_an_uncertain_long_context_tier_keeps_the_sample_mean_and_says_so(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    # The doc straddles the 5,000-token threshold: a call is priced at $1 or $2 a million
    # depending on its draw, so the mean is not linear in the doc's mean.
    root = tiered(make_project, 4000, 9000)
    (workflow,) = estimate(run_cli, root)["workflows"]
    assert workflow["monte_carlo"]["mean"] == "sampled"
    # Between the all-short and the all-long price of the mean prompt.
    mean_prompt = capped_lognormal_mean(4000, 9000, 40000) + 7
    assert mean_prompt * 1e-6 < workflow["cost_per_request_usd"] < mean_prompt * 2e-6
    text = run_cli("estimate", cwd=root)
    assert "cost per request (mean, sampled)" in text.stdout
    # Far below the threshold even at |z| = 8.5, the tier is certain and the mean exact.
    root = tiered(make_project, 10, 12)
    (workflow,) = estimate(run_cli, root)["workflows"]
    assert workflow["monte_carlo"]["mean"] == "exact"
    expected = (capped_lognormal_mean(10, 12, 40000) + 7) * 1e-6
    assert math.isclose(workflow["cost_per_request_usd"], expected, abs_tol=1e-12)
    assert "cost per request (mean)" in run_cli("estimate", cwd=root).stdout


def test_a_heavy_tailed_mean_is_reported_however_large(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    # p95 a billion times the median and no cap: the mean is p50 e^(sigma^2/2) ~ 2.9e34
    # tokens, ~$5.9e28 a request; every format prints it (Decimal's 28 digits do not suffice).
    body = """\
workflows:
  w:
    traffic: {requests_per_day: 100}
    steps:
      - prompt: doc.j2
        model: mini
        output_tokens: 0
        variables:
          doc: {tokens: {p50: 1, p95: 1000000000}}
    limits:
      max_cost_per_request: $1
"""
    root = make_project(
        {"budgets.yaml": "version: 1\n" + MODELS + body, "prompts/doc.j2": "{{ doc }}"},
        dedent=False,
    )
    (workflow,) = estimate(run_cli, root)["workflows"]
    sigma = math.log(1e9) / Z95
    expected = (math.exp(sigma * sigma / 2) + 7) * 0.75 / 1e6
    assert math.isclose(workflow["cost_per_request_usd"], expected, rel_tol=1e-9)
    for fmt in ("text", "json", "markdown", "github", "sarif", "junit"):
        result = run_cli("check", "--format", fmt, cwd=root)
        assert result.exit_code == 1, (fmt, result.stderr)
