"""The latency simulation's parts: sourced catalog speeds, route trees, traffic classes,
cost figures untouched by speeds, the same numbers under both cost engines."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from conftest import Run
from promptbudget import latencyrun, montecarlo
from promptbudget.manifest.model import Escalation, Route
from promptbudget.pricing.catalog import load_catalog
from promptbudget.routing import Cascade, Pick, route_tree
from promptbudget.units import format_ms


def test_every_catalog_speed_is_sourced_and_dated() -> None:
    data = json.loads(resources.files("promptbudget.pricing").joinpath("speeds.json").read_text())
    catalog = load_catalog()
    assert data["speeds"], "speeds.json lists no model"
    for entry in data["speeds"]:
        model = catalog.models[entry["model"]]  # a catalog name, not an alias
        assert entry["speed_source"].startswith("https://"), entry
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", entry["speed_date"]), entry
        assert entry["speed_date"] <= catalog.as_of
        assert entry["ttft_ms"] > 0 and entry["output_tokens_per_second"] > 0
        assert entry["notes"]
        assert (model.ttft_ms, model.output_tokens_per_second) == (
            entry["ttft_ms"],
            entry["output_tokens_per_second"],
        )
        assert model.speed_source == entry["speed_source"]


def test_a_model_without_a_sourced_figure_has_no_speed() -> None:
    model = load_catalog().models["gpt-4.1-nano"]
    assert model.ttft_ms is None and model.output_tokens_per_second is None


def test_route_tree_mirrors_split_rules_and_escalation() -> None:
    routes = {
        "front": Route(
            "front",
            rules=(),
            default="split",
            escalation=Escalation("careful", Decimal("0.1")),
        ),
        "split": Route("split", split=(("a", Decimal("0.7")), ("b", Decimal("0.3")))),
        "careful": Route("careful", model="c", escalation=Escalation("d", Decimal("0.5"))),
    }
    tree = route_tree("front", routes, {})
    assert tree == Cascade(
        Pick(((Decimal("0.7"), "a"), (Decimal("0.3"), "b"))),
        Decimal("0.1"),
        Cascade("c", Decimal("0.5"), "d"),
    )
    assert route_tree("plain-model", routes, {}) == "plain-model"


def test_format_ms() -> None:
    assert format_ms(4700.2) == "4,700 ms"
    assert format_ms(1500.5, exact=True) == "1,500.5 ms"
    assert format_ms(3000.4, other=3000) == "3,000.4 ms"  # never shown equal to the limit
    assert format_ms(3000, other=3000) == "3,000 ms"


CLASSES = """\
version: 1
models:
  small: {input_per_mtok: 0.1, output_per_mtok: 0.4, ttft_ms: 300, output_tokens_per_second: 100}
  big: {input_per_mtok: 2, output_per_mtok: 8, ttft_ms: 800, output_tokens_per_second: 50}
routes:
  by-risk:
    rules:
      - {when: {risk: high}, model: big}
    default: small
workflows:
  answer:
    traffic:
      classes:
        everyday: {share: 70%, signals: {risk: low}}
        risky: {share: 30%, signals: {risk: high}}
    steps:
      - prompt: a.j2
        route: by-risk
        output_tokens: {p50: 200, p95: 400}
        batch_share: 50%
"""


def _estimate(run_cli: Callable[..., Run], root: Path, *args: str) -> Any:
    result = run_cli("estimate", "--format", "json", *args, cwd=root)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["workflows"][0]


def test_traffic_classes_are_drawn_per_request(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    """70% of requests are small's (300 ms + 200/100 s = 2,300 ms at the median output), 30%
    big's (800 + 200/50 s = 4,800 ms): the median request is small's, the p95 big's, above
    its median. A 50% batch share leaves the interactive calls' latency as it is."""
    root = make_project({"budgets.yaml": CLASSES, "prompts/a.j2": "Answer.\n"})
    latency = _estimate(run_cli, root, "--samples", "4000")["latency"]
    assert latency["p50_ms"] < 4000 < latency["p95_ms"]
    assert latency["batch_steps"] == []
    # Output is log-normal (median 200, p95 400): E[tokens] = 200 exp(sigma^2 / 2).
    sigma = math.log(2) / 1.6448536269514722
    tokens = 200 * math.exp(sigma**2 / 2)
    mean = 0.7 * (300 + tokens * 10) + 0.3 * (800 + tokens * 20)
    assert abs(latency["mean_ms"] - mean) / mean < 0.02


def test_speeds_leave_every_cost_figure_unchanged(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    without = CLASSES.replace(", ttft_ms: 300, output_tokens_per_second: 100", "").replace(
        ", ttft_ms: 800, output_tokens_per_second: 50", ""
    )
    assert "ttft_ms" not in without
    fast = _estimate(run_cli, make_project({"budgets.yaml": CLASSES, "prompts/a.j2": "A.\n"}))
    slow = _estimate(run_cli, make_project({"budgets.yaml": without, "prompts/a.j2": "A.\n"}))
    for key in ("cost_per_request_usd", "cost_per_request_p50_usd", "cost_per_request_p95_usd"):
        assert fast[key] == slow[key]
    assert slow["latency"]["p50_ms"] is None
    assert slow["latency"]["unknown_models"] == ["small", "big"]


def test_latency_is_the_same_under_both_cost_engines(
    make_project: Callable[..., Path],
    run_cli: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("numpy", reason="the numpy engine needs the fast extra")
    root = make_project({"budgets.yaml": CLASSES, "prompts/a.j2": "Answer.\n"})
    python = _estimate(run_cli, root, "--no-cache")
    monkeypatch.setattr(montecarlo, "NUMPY_MIN_DRAWS", 0)
    monkeypatch.setattr(latencyrun, "NUMPY_MIN_DRAWS", 0)
    vectorised = _estimate(run_cli, root, "--no-cache")
    assert python["latency"] == vectorised["latency"]  # the p50/p95 bands too
    assert python["latency"]["p95_ms_band"] is not None
    for key in ("cost_per_request_p95_usd", "cost_per_request_p95_usd_band"):
        assert python[key] == vectorised[key]


def test_latency_headroom_in_junit_and_sarif(run_cli: Callable[..., Run]) -> None:
    from conftest import EXAMPLES

    junit = run_cli("check", "--format", "junit", cwd=EXAMPLES).stdout
    rows = [line for line in junit.splitlines() if "limit:max_latency_ms:" in line]
    assert len(rows) == 2  # p50 and p95 of support-reply
    assert all(" ms ±" in row and "% of " in row and "ms ms" not in row for row in rows), rows
    sarif = json.loads(run_cli("check", "--format", "sarif", cwd=EXAMPLES).stdout)
    assert "max_latency_ms" in json.dumps(sarif)
