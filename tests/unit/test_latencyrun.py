"""The latency run's engines: every request reads the same columns of uniforms whatever it
decides, numpy and pure Python return the same numbers, and the figures agree with an
independent, request-by-request simulation of the README's latency model."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from statistics import NormalDist
from typing import Any

import pytest

from conftest import Run
from promptbudget import latencyrun
from promptbudget.latencyrun import Conversation, Escalation, Layout, Split

AGENT = """\
version: 1
models:
  small:
    {input_per_mtok: 0.1, output_per_mtok: 0.4, ttft_ms: {p50: 300, p95: 900},
     output_tokens_per_second: 120}
  mid: {input_per_mtok: 1, output_per_mtok: 4, ttft_ms: 500, output_tokens_per_second: 80}
  big:
    {input_per_mtok: 2, output_per_mtok: 8, ttft_ms: {p50: 900, p95: 2500},
     output_tokens_per_second: 50}
routes:
  by-risk:
    rules:
      - {when: {risk: high}, route: careful}
    default: everyday
  everyday:
    split:
      - {model: small, share: 70%}
      - {model: mid, share: 30%}
    escalation: {to: big, rate: 15%}
  careful:
    model: mid
    escalation: {to: big, rate: 40%}
workflows:
  agent:
    semantic_cache_hit_rate: 10%
    traffic:
      classes:
        everyday: {share: 80%, signals: {risk: low}}
        risky: {share: 20%, signals: {risk: high}}
    steps:
      - name: lookup
        prompt: a.j2
        model: small
        output_tokens: 20
        retrieval_latency_ms: {p50: 120, p95: 400}
      - name: answer
        prompt: a.j2
        route: by-risk
        turns: 2
        tool_calls: 1
        tool_latency_ms: {p50: 250, p95: 900}
        output_tokens: {p50: 180, p95: 450}
        max_output_tokens: 400
        retry: {failure_rate: 10%, max_attempts: 3, backoff_ms: 500}
"""


def _layout(
    make_project: Callable[..., Path],
    run_cli: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch,
    samples: int,
) -> tuple[Layout, dict[str, Any]]:
    """The layout ``estimate`` compiles for AGENT (caught on its way to the run), and the
    workflow's JSON."""
    seen: list[Layout] = []
    real = latencyrun.run

    def spy(layout: Layout, runs: int, seed: int) -> latencyrun.RunResult:
        seen.append(layout)
        return real(layout, runs, seed)

    monkeypatch.setattr("promptbudget.latency.run", spy)
    root = make_project({"budgets.yaml": AGENT, "prompts/a.j2": "Answer.\n"})
    result = run_cli("estimate", "--format", "json", "--samples", str(samples), cwd=root)
    assert result.exit_code == 0, result.stderr
    (layout,) = seen
    return layout, json.loads(result.stdout)["workflows"][0]


def test_numpy_and_python_engines_return_the_same_run(
    make_project: Callable[..., Path],
    run_cli: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    np = pytest.importorskip("numpy", reason="the fast extra (numpy) is not installed")
    layout, _ = _layout(make_project, run_cli, monkeypatch, 1000)
    python = latencyrun._run_python(layout, 20_000, 11)
    vectorised = latencyrun._run_numpy(np, layout, 20_000, 11)
    assert vectorised == python  # every float, bit for bit
    assert all(python.parts[1][part] > 0 for part in latencyrun.PARTS if part != "retrieval")
    assert python.parts[0]["retrieval"] > 0


def test_every_decision_has_its_own_column(
    make_project: Callable[..., Path],
    run_cli: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The class, the hit, lookup's retrieval, then answer's: both routes' first decisions
    share a column, and so do the n-th conversations' calls (a request has one class); a
    fixed figure (mid's TTFT, lookup's reply) draws nothing; every column is used."""
    layout, _ = _layout(make_project, run_cli, monkeypatch, 1000)
    lookup, answer = layout.steps
    everyday, risky = answer.trees
    assert isinstance(everyday, Escalation) and isinstance(everyday.first, Split)
    assert isinstance(risky, Escalation) and isinstance(risky.first, Conversation)
    assert everyday.column == risky.column  # the first decision of either route
    assert everyday.first.column != everyday.column
    assert (layout.class_column, layout.hit_column) == (0, 1)
    assert lookup.retrieval is not None and lookup.retrieval.column == 2
    columns = {layout.class_column, layout.hit_column, lookup.retrieval.column}
    mid = risky.first
    assert all(call.ttft == latencyrun.FIXED for call in mid.calls)  # 500 ms, fixed
    assert [call.tool for call in mid.calls] == [True, False, True, False]
    small = everyday.first.options[0]
    assert isinstance(small, Conversation)
    assert [call.output for call in small.calls] == [call.output for call in mid.calls]
    for tree in (*lookup.trees, everyday, risky):
        for node in _conversations(tree) if tree is not None else []:
            for call in node.calls:
                columns |= {call.output, call.ttft, call.retry, call.tool_column}
    columns.discard(latencyrun.FIXED)
    assert columns | {everyday.column, everyday.first.column} == set(range(layout.width))


def _conversations(node: latencyrun.Node) -> list[Conversation]:
    if isinstance(node, Conversation):
        return [node]
    if isinstance(node, Split):
        return [c for option in node.options for c in _conversations(option)]
    return _conversations(node.first) + _conversations(node.then)


def _reference(requests: int, seed: int) -> list[float]:
    """AGENT's latency, request by request, straight from the README's formulas: Python's
    own ``random.gauss`` for the log-normals and a loop of failures for the retries."""
    rng = random.Random(seed)
    z95 = NormalDist().inv_cdf(0.95)

    def lognormal(p50: float, p95: float) -> float:
        return p50 * math.exp(math.log(p95 / p50) / z95 * rng.gauss(0.0, 1.0))

    speeds = {"small": (300.0, 900.0, 120.0), "mid": (500.0, 500.0, 80.0)}
    speeds["big"] = (900.0, 2500.0, 50.0)

    def call(model: str, reply: int, retry: bool) -> float:
        ttft_p50, ttft_p95, per_second = speeds[model]
        ttft = lognormal(ttft_p50, ttft_p95) if ttft_p95 > ttft_p50 else ttft_p50
        one = ttft + reply / per_second * 1000
        attempts = 1
        while retry and attempts < 3 and rng.random() < 0.10:
            attempts += 1
        return attempts * one + (attempts - 1) * 500

    def conversation(model: str) -> float:
        total = 0.0
        for position in range(4):  # 2 turns x (1 + 1 tool call)
            drawn = round(180 * math.exp(math.log(450 / 180) / z95 * rng.gauss(0.0, 1.0)))
            reply = min(400, max(0, drawn))
            total += call(model, reply, retry=True)
            if position % 2 == 0:
                total += lognormal(250, 900)
        return total

    totals = []
    for _ in range(requests):
        risky = rng.random() < 0.2
        if rng.random() < 0.1:
            totals.append(0.0)
            continue
        lookup = lognormal(120, 400) + call("small", 20, retry=False)
        if risky:
            answer = conversation("mid")
            if rng.random() < 0.4:
                answer += conversation("big")
        else:
            answer = conversation("small" if rng.random() < 0.7 else "mid")
            if rng.random() < 0.15:
                answer += conversation("big")
        totals.append(lookup + answer)
    return totals


def test_percentiles_agree_with_an_independent_simulation(
    make_project: Callable[..., Path],
    run_cli: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The engine's p50 and p95 at 100,000 requests sit where the reference's distribution
    puts them: the share of 40,000 reference requests below each is 50% (95%) within four
    standard errors of both runs; the means agree within four standard errors."""
    _, workflow = _layout(make_project, run_cli, monkeypatch, 100_000)
    found = workflow["latency"]
    assert found["samples"] == 100_000
    reference = _reference(40_000, 3)
    count = len(reference)
    for percent, key in ((0.5, "p50_ms"), (0.95, "p95_ms")):
        tolerance = (
            4 * math.sqrt(percent * (1 - percent)) * (1 / math.sqrt(count) + 1 / math.sqrt(100_000))
        )
        below = sum(1 for value in reference if value < found[key]) / count
        at_most = sum(1 for value in reference if value <= found[key]) / count
        assert below - tolerance <= percent <= at_most + tolerance, (key, found[key], below)
    mean = math.fsum(reference) / count
    spread = math.sqrt(math.fsum((value - mean) ** 2 for value in reference) / count)
    error = 4 * spread * math.sqrt(1 / count + 1 / 100_000)
    assert abs(found["mean_ms"] - mean) < error, (found["mean_ms"], mean, error)
