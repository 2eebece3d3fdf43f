"""The Monte Carlo engines: numpy and pure Python read the same draws and add the same
integers, so they return the same tally; the Python engine matches a by-hand sample."""

from __future__ import annotations

import math
import random
from statistics import NormalDist

import pytest

from promptbudget.manifest.model import Distribution
from promptbudget.montecarlo import (
    CALLS,
    OUTPUT,
    VARIABLES,
    LaneTerms,
    SampledVariable,
    _run_numpy,
    _run_python,
    draw_keys,
    run_samples,
)


def lane(**changes: object) -> LaneTerms:
    terms = {
        "traffic_class": "default",
        "step": "answer",
        "is_priced": True,
        "sized": (
            SampledVariable("doc", 1, Distribution(800, 6000), 5000),
            SampledVariable("question", 2, 40, None),
        ),
        "bound_vars": (("doc", 5000), ("question", 80)),
        "static": 1200,
        "cached": 1024,
        "threshold": 8000,
        "base_rates": (2.5, 1.25, 10.0),
        "long_rates": (5.0, 2.5, 15.0),
        "weight": 0.7,
        "turns": 2,
        "tool_calls": 1,
        "user_message_tokens": 30,
        "reply_framing": 4,
        "tool_result_message_tokens": 300,
        "output": Distribution(200, 900),
        "output_cap": 700,
    }
    terms.update(changes)
    return LaneTerms(**terms)  # type: ignore[arg-type]


LANES = [
    lane(),
    lane(step="route", weight=0.3, output=150, threshold=None, turns=1, tool_calls=0),
    lane(traffic_class="bulk", sized=(SampledVariable("doc", 1, Distribution(50, 4000), None),)),
    lane(is_priced=False),
]


def test_numpy_and_python_engines_return_the_same_tally() -> None:
    np = pytest.importorskip("numpy", reason="the fast extra (numpy) is not installed")
    python = _run_python(LANES, 3000, 7, 0.9)
    vectorised = _run_numpy(np, LANES, 3000, 7, 0.9)
    assert vectorised.rows == python.rows
    assert vectorised.totals == python.totals
    assert {long for _, long in python.rows} == {False, True}  # both tiers were exercised


def test_long_runs_use_the_same_numbers_as_short_ones() -> None:
    """run_samples picks the engine by size; the first samples do not depend on the choice."""
    short = run_samples(LANES, 10, 3, 1.0)
    assert short.totals == _run_python(LANES, 10, 3, 1.0).totals


def test_a_sample_draws_each_key_once_in_first_use_order() -> None:
    keys = draw_keys(LANES)
    assert keys[:3] == [
        ("default", "var", "doc"),
        ("default", "out", "answer", "0"),
        ("default", "out", "answer", "1"),
    ]
    assert len(keys) == len(set(keys))
    assert ("default", "out", "route", "0") not in keys  # a fixed reply draws nothing


def test_the_python_engine_matches_one_sample_worked_by_hand() -> None:
    one = [lane(turns=1, tool_calls=0, threshold=None)]
    tally = _run_python(one, 1, 5, 1.0)
    rng = random.Random(5)
    z_doc, z_out = (NormalDist().inv_cdf(rng.random()) for _ in range(2))
    doc = min(5000, Distribution(800, 6000).at(z_doc))
    reply = min(700, Distribution(200, 900).at(z_out))
    input_tokens = 1200 + doc + 80
    cost = ((input_tokens - 1024) * 2.5 + 1024 * 1.25 + reply * 10.0) * 0.7 / 1_000_000
    (total,) = tally.totals
    assert math.isclose(total, cost, rel_tol=1e-14)  # the same sum, in another order
    assert tally.rows == {}  # every tier is certain: no call is unrolled


def test_an_uncertain_lane_is_unrolled_by_both_engines() -> None:
    straddling = [lane(turns=1, tool_calls=0, threshold=3000)]  # 1,280 + doc vs 3,000
    tally = _run_python(straddling, 1, 5, 1.0)
    rng = random.Random(5)
    z_doc, z_out = (NormalDist().inv_cdf(rng.random()) for _ in range(2))
    doc = min(5000, Distribution(800, 6000).at(z_doc))
    reply = min(700, Distribution(200, 900).at(z_out))
    long = 1280 + doc > 3000
    row = tally.rows[(0, long)]
    assert row[CALLS] == 1 and row[OUTPUT] == reply and row[VARIABLES] == doc
