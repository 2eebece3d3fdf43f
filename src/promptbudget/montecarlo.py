"""The Monte Carlo run over declared distributions, for the percentiles of a request's
cost: each sample's cost, in pure Python or, for long runs, over numpy arrays (the ``fast``
extra). The mean needs no sampling (``expectation.py``).

A lane whose calls' tiers are certain costs ``constant + sum(coefficient x drawn value)``
per sample (the coefficients are computed once); a lane with an uncertain tier is unrolled
call by call and its token sums per (lane, tier) are kept (estimates.py prices them, in
``Decimal``, as that lane's sample mean). Both engines read the same random numbers in the
same order (Python's Mersenne Twister, seeded once; numpy's ``RandomState`` is handed its
exact state), apply the same float operations in the same order and add the same integers,
so they return the same tally: the engine is a matter of speed only.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from math import exp
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from promptbudget.cache import active_store, cache_key
from promptbudget.expectation import (
    CALLS,
    HISTORY,
    OUTPUT,
    STATIC,
    TOOL_RESULTS,
    VARIABLES,
    DrawKey,
    Feature,
    LaneTerms,
    SampledVariable,
    affine_cost,
    call_tiers,
    expected_rows,
)
from promptbudget.manifest.model import Distribution
from promptbudget.quantiles import band, percentile

if TYPE_CHECKING:
    import numpy

__all__ = [
    "CALLS",
    "HISTORY",
    "OUTPUT",
    "STATIC",
    "TOOL_RESULTS",
    "VARIABLES",
    "LaneTerms",
    "Sampled",
    "SampledVariable",
    "Tally",
    "draw_keys",
    "run_samples",
    "sample_costs",
]

# Below this many draws (samples x scores per sample), pure Python finishes before numpy is
# imported (measured: ~0.4 us per draw in Python, ~0.1-0.2 s to import numpy).
NUMPY_MIN_DRAWS = 200_000

try:  # what NormalDist().inv_cdf calls after checking its argument (C-accelerated)
    from statistics import _normal_dist_inv_cdf as _normal_inv  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - another Python implementation

    def _normal_inv(p: float, mu: float, sigma: float) -> float:
        return NormalDist(mu, sigma).inv_cdf(p)


@dataclass
class Tally:
    """Token sums per (lane index, long-context tier) over all samples, for the lanes
    unrolled call by call (a call's tier uncertain), and each sample's cost (float, weight
    and semantic-cache keep applied)."""

    rows: dict[tuple[int, bool], list[int]]
    totals: list[float]


@dataclass(frozen=True)
class Sampled:
    """What a run yields: each lane's expected token rows per request (closed form), or,
    for the lanes in ``sampled``, token sums over ``runs`` samples; and the 50th and 95th
    percentile of a sample's cost (nearest rank), each with its 95% band (``quantiles.py``)."""

    rows: dict[tuple[int, bool], list[int]]  # sums over the run, lanes in ``sampled`` only
    expected: dict[tuple[int, bool], list[Decimal]]  # per request, every other priced lane
    sampled: frozenset[int]
    p50: float
    p95: float
    p50_band: tuple[float, float]
    p95_band: tuple[float, float]


Summary = tuple[float, float, tuple[float, float], tuple[float, float]]  # p50, p95, bands

# The cache entry's format: an entry written in another format reads as a miss (3: bands).
CACHE_FORMAT = 3


def sample_costs(lanes: Sequence[LaneTerms], runs: int, seed: int, keep: float) -> Sampled:
    """``run_samples``, summarised, with the mean in closed form wherever every call's tier
    is certain; the run is kept in the cache under every number it reads."""
    plans = [call_tiers(lane) for lane in lanes]
    expected: dict[tuple[int, bool], list[Decimal]] = {}
    for index, (lane, tiers) in enumerate(zip(lanes, plans, strict=True)):
        if tiers is not None and lane.is_priced:
            for long, row in expected_rows(lane, tiers).items():
                expected[(index, long)] = row
    sampled_lanes = frozenset(index for index, tiers in enumerate(plans) if tiers is None)
    store = active_store()
    key = cache_key(
        f"montecarlo/{CACHE_FORMAT}", repr(list(lanes)), str(runs), str(seed), repr(keep)
    )
    if store is not None:
        found = _decode_sampled(store.get(key), sampled_lanes)
        if found is not None:
            rows, summary = found
            return Sampled(rows, expected, sampled_lanes, *summary)
    tally = run_samples(lanes, runs, seed, keep)
    ordered = sorted(tally.totals)
    summary = summarise(ordered)
    p50, p95, p50_band, p95_band = summary
    if store is not None:
        store.put(
            key,
            {
                "format": CACHE_FORMAT,
                "rows": [[index, long, row] for (index, long), row in tally.rows.items()],
                "p50": p50,
                "p95": p95,
                "p50_band": list(p50_band),
                "p95_band": list(p95_band),
            },
        )
    return Sampled(tally.rows, expected, sampled_lanes, *summary)


def summarise(ordered: list[float]) -> Summary:
    """The p50 and p95 of sorted sample costs and their 95% bands."""
    return percentile(ordered, 50), percentile(ordered, 95), band(ordered, 50), band(ordered, 95)


def _band(value: Any) -> tuple[float, float] | None:
    if not (isinstance(value, list) and len(value) == 2):
        return None
    low, high = value
    if not (isinstance(low, float) and isinstance(high, float) and low <= high):
        return None
    return low, high


def _decode_sampled(
    value: Any, sampled: frozenset[int]
) -> tuple[dict[tuple[int, bool], list[int]], Summary] | None:
    """A cached run, or None if the entry is not one (an entry from another format, or from
    a cache file that was tampered with, reads as a miss)."""
    if not isinstance(value, dict) or value.get("format") != CACHE_FORMAT:
        return None
    p50, p95, rows = value.get("p50"), value.get("p95"), value.get("rows")
    p50_band, p95_band = _band(value.get("p50_band")), _band(value.get("p95_band"))
    if not isinstance(p50, float) or not isinstance(p95, float) or not isinstance(rows, list):
        return None
    if p50_band is None or p95_band is None:
        return None
    decoded: dict[tuple[int, bool], list[int]] = {}
    for entry in rows:
        if not (isinstance(entry, list) and len(entry) == 3):
            return None
        index, long, row = entry
        if not (
            isinstance(index, int)
            and index in sampled
            and isinstance(long, bool)
            and isinstance(row, list)
            and len(row) >= VARIABLES
            and all(isinstance(n, int) and not isinstance(n, bool) for n in row)
        ):
            return None
        decoded[(index, long)] = row
    return decoded, (p50, p95, p50_band, p95_band)


def run_samples(lanes: Sequence[LaneTerms], runs: int, seed: int, keep: float) -> Tally:
    """``runs`` samples of every lane (the first ``runs`` x draws of ``random.Random(seed)``)."""
    if runs * len(draw_keys(lanes)) >= NUMPY_MIN_DRAWS:
        try:
            import numpy
        except ImportError:  # the ``fast`` extra is not installed: the same numbers, slower
            pass
        else:
            return _run_numpy(numpy, lanes, runs, seed, keep)
    return _run_python(lanes, runs, seed, keep)


def draw_keys(lanes: Sequence[LaneTerms]) -> list[DrawKey]:
    """The standard-normal scores one sample draws, in the order it draws them: one per
    (class, variable) and per (class, step, call), shared by the lanes that name them."""
    keys: dict[DrawKey, None] = {}
    for lane in lanes:
        for variable in lane.sized:
            if isinstance(variable.size, Distribution):
                keys.setdefault((lane.traffic_class, "var", variable.name))
        if isinstance(lane.output, Distribution):
            for index in range(lane.calls_per_request):
                keys.setdefault((lane.traffic_class, "out", lane.step, str(index)))
    return list(keys)


@dataclass(frozen=True)
class _Plan:
    """A run's cost per sample: ``constant + sum(coefficient x value)`` over the drawn
    values of every lane whose tiers are certain, plus the ``unrolled`` lanes' calls."""

    constant: float
    features: list[tuple[Feature, float]]
    unrolled: list[int]


def _plan(lanes: Sequence[LaneTerms], keep: float) -> _Plan:
    constant = 0.0
    coefficients: dict[Feature, float] = {}
    unrolled = []
    for index, lane in enumerate(lanes):
        tiers = call_tiers(lane)
        if tiers is None:
            unrolled.append(index)
            continue
        lane_constant, features = affine_cost(lane, tiers, keep)
        constant += lane_constant
        for feature, coefficient in features:
            coefficients[feature] = coefficients.get(feature, 0.0) + coefficient
    return _Plan(constant, list(coefficients.items()), unrolled)


# -- pure Python ---------------------------------------------------------------------------


def _run_python(lanes: Sequence[LaneTerms], runs: int, seed: int, keep: float) -> Tally:
    rng = random.Random(seed)
    keys = draw_keys(lanes)
    width = len(keys)
    uniforms = [rng.random() for _ in range(runs * width)]
    # inv_cdf is deterministic: the same seed gives the same draws on every machine.
    scores = {
        key: [_normal_inv(min(max(u, 1e-12), 1 - 1e-12), 0.0, 1.0) for u in uniforms[column::width]]
        for column, key in enumerate(keys)
    }
    plan = _plan(lanes, keep)
    totals = [plan.constant] * runs
    for (key, amount, cap), coefficient in plan.features:
        p50, sigma = amount.p50, amount.sigma
        if sigma == 0.0:  # a draw is never negative: p50 >= 0, exp() > 0
            values = [p50] * runs
        else:
            values = [round(p50 * exp(sigma * z)) for z in scores[key]]
        if cap is not None:
            values = [x if x < cap else cap for x in values]
        totals = [t + coefficient * x for t, x in zip(totals, values, strict=True)]
    tally = Tally({}, totals)
    if plan.unrolled:
        for run in range(runs):
            z = {key: column[run] for key, column in scores.items()}
            for index in plan.unrolled:
                sizes, outputs = _sample(lanes[index], z)
                totals[run] += _add(tally, index, lanes[index], sizes, outputs, keep)
    return tally


def _sample(lane: LaneTerms, z: dict[DrawKey, float]) -> tuple[dict[str, int], list[int]]:
    cls = lane.traffic_class
    sizes = {}
    for variable in lane.sized:
        amount = variable.size
        if isinstance(amount, Distribution):
            drawn = max(0, amount.at(z[(cls, "var", variable.name)]))
            sizes[variable.name] = min(drawn, variable.cap) if variable.cap is not None else drawn
        else:
            sizes[variable.name] = amount
    outputs = []
    for index in range(lane.calls_per_request):
        amount = lane.output
        drawn = (
            amount.at(z[(cls, "out", lane.step, str(index))])
            if isinstance(amount, Distribution)
            else amount
        )
        outputs.append(lane.clip_output(max(0, drawn)))
    return sizes, outputs


def _add(
    tally: Tally,
    index: int,
    lane: LaneTerms,
    sizes: dict[str, int],
    outputs: list[int],
    keep: float,
) -> float:
    """Count one sample of ``lane``: the conversation of ``Lane.calls``, unrolled (this is the
    inner loop, so it adds integers and nothing else)."""
    if not lane.is_priced:
        return 0.0
    uses = {v.name: v.uses for v in lane.sized}
    values = [sizes[name] * uses[name] if name in uses else t for name, t in lane.bound_vars]
    static, cached, threshold = lane.static, lane.cached, lane.threshold
    dynamic = static + sum(values)
    history = results = position = 0
    cost = 0.0
    for turn in range(lane.turns):
        if turn:
            history += lane.user_message_tokens
        for call in range(lane.tool_calls + 1):
            output = outputs[position]
            position += 1
            input_tokens = dynamic + history + results
            long = threshold is not None and input_tokens > threshold
            row = tally.rows.get((index, long))
            if row is None:
                row = tally.rows[(index, long)] = [0] * (VARIABLES + len(values))
            row[CALLS] += 1
            row[STATIC] += static - cached
            row[HISTORY] += history
            row[TOOL_RESULTS] += results
            row[OUTPUT] += output
            for slot, value in enumerate(values, VARIABLES):
                row[slot] += value
            in_rate, cached_rate, out_rate = lane.long_rates if long else lane.base_rates
            cost += (input_tokens - cached) * in_rate + cached * cached_rate + output * out_rate
            history += output + lane.reply_framing
            if call < lane.tool_calls:
                results += lane.tool_result_message_tokens
    return cost * lane.weight * keep / 1_000_000


# -- numpy ---------------------------------------------------------------------------------


def _run_numpy(np: Any, lanes: Sequence[LaneTerms], runs: int, seed: int, keep: float) -> Tally:
    """The same run with every sample at once: one array of ``runs`` values per quantity,
    the same float operations in the same order as the Python engine."""
    keys = draw_keys(lanes)
    state = random.Random(seed).getstate()[1]
    generator = np.random.RandomState()
    generator.set_state(("MT19937", np.array(state[:624], dtype=np.uint32), state[624]))
    uniform = generator.random_sample(runs * len(keys)).reshape(runs, len(keys))
    scores = _inv_cdf(np, np.clip(uniform, 1e-12, 1 - 1e-12))
    z = {key: scores[:, column] for column, key in enumerate(keys)}
    plan = _plan(lanes, keep)
    totals = np.full(runs, plan.constant)
    for (key, amount, cap), coefficient in plan.features:
        values = np.maximum(0, _at(np, amount, z[key]))
        if cap is not None:
            values = np.minimum(values, cap)
        totals += coefficient * values
    tally = Tally({}, [])
    for index in plan.unrolled:
        if lanes[index].is_priced:
            totals += _add_arrays(np, tally, index, lanes[index], z, runs, keep)
    tally.totals = totals.tolist()
    return tally


def _at(np: Any, amount: Distribution, z: numpy.ndarray) -> numpy.ndarray:
    """``Distribution.at`` over an array (half to even, as Python's ``round``)."""
    if amount.sigma == 0.0:
        fixed: numpy.ndarray = np.full(z.shape, amount.p50, dtype=np.int64)
        return fixed
    drawn: numpy.ndarray = np.rint(amount.p50 * np.exp(amount.sigma * z)).astype(np.int64)
    return drawn


def _add_arrays(
    np: Any,
    tally: Tally,
    index: int,
    lane: LaneTerms,
    z: dict[DrawKey, numpy.ndarray],
    runs: int,
    keep: float,
) -> numpy.ndarray:
    cls = lane.traffic_class
    sizes: dict[str, Any] = {}
    uses: dict[str, int] = {}
    for variable in lane.sized:
        uses[variable.name] = variable.uses
        amount = variable.size
        if isinstance(amount, Distribution):
            drawn = np.maximum(0, _at(np, amount, z[(cls, "var", variable.name)]))
            sizes[variable.name] = (
                np.minimum(drawn, variable.cap) if variable.cap is not None else drawn
            )
        else:
            sizes[variable.name] = np.full(runs, amount, dtype=np.int64)
    values = [
        sizes[name] * uses[name] if name in uses else np.full(runs, t, dtype=np.int64)
        for name, t in lane.bound_vars
    ]
    static, cached, threshold = lane.static, lane.cached, lane.threshold
    dynamic = np.full(runs, static, dtype=np.int64)
    for value in values:
        dynamic = dynamic + value
    history = np.zeros(runs, dtype=np.int64)
    results = np.zeros(runs, dtype=np.int64)
    cost = np.zeros(runs)
    position = 0
    for turn in range(lane.turns):
        if turn:
            history = history + lane.user_message_tokens
        for call in range(lane.tool_calls + 1):
            if isinstance(lane.output, Distribution):
                drawn = _at(np, lane.output, z[(cls, "out", lane.step, str(position))])
            else:
                drawn = np.full(runs, lane.output, dtype=np.int64)
            output = np.maximum(0, drawn)
            if lane.output_cap is not None:
                output = np.minimum(output, lane.output_cap)
            position += 1
            input_tokens = dynamic + history + results
            long = input_tokens > threshold if threshold is not None else np.zeros(runs, dtype=bool)
            for tier in (False, True):
                mask = long if tier else ~long
                count = int(np.count_nonzero(mask))
                if not count:
                    continue
                row = tally.rows.get((index, tier))
                if row is None:
                    row = tally.rows[(index, tier)] = [0] * (VARIABLES + len(values))
                row[CALLS] += count
                row[STATIC] += (static - cached) * count
                row[HISTORY] += int(history[mask].sum())
                row[TOOL_RESULTS] += int(results[mask].sum())
                row[OUTPUT] += int(output[mask].sum())
                for slot, value in enumerate(values, VARIABLES):
                    row[slot] += int(value[mask].sum())
            in_rate = np.where(long, lane.long_rates[0], lane.base_rates[0])
            cached_rate = np.where(long, lane.long_rates[1], lane.base_rates[1])
            out_rate = np.where(long, lane.long_rates[2], lane.base_rates[2])
            cost += (input_tokens - cached) * in_rate + cached * cached_rate + output * out_rate
            history = history + output + lane.reply_framing
            if call < lane.tool_calls:
                results = results + lane.tool_result_message_tokens
    result: numpy.ndarray = cost * lane.weight * keep / 1_000_000
    return result


def _inv_cdf(np: Any, p: numpy.ndarray) -> numpy.ndarray:
    """``NormalDist().inv_cdf`` over an array: Wichura's AS241, the same operations in the
    same order as CPython (``np.log`` may differ from libm's in the last bit for 1 draw in
    ~60,000; a token count moves only if that draw sits on a rounding boundary)."""
    flat = p.ravel()
    q = flat - 0.5
    # The central formula for every value (cheaper than selecting), then the tails redone.
    r = 0.180625 - q * q
    out = _horner(r, _CENTRAL_NUM) * q / _horner(r, _CENTRAL_DEN)
    tail = np.flatnonzero(np.abs(q) > 0.425)
    qt = q[tail]
    pt = flat[tail]
    r = np.sqrt(-np.log(np.where(qt <= 0.0, pt, 1.0 - pt)))
    near = r <= 5.0
    x = np.empty_like(r)
    s = r[near] - 1.6
    x[near] = _horner(s, _NEAR_NUM) / _horner(s, _NEAR_DEN)
    s = r[~near] - 5.0
    x[~near] = _horner(s, _FAR_NUM) / _horner(s, _FAR_DEN)
    out[tail] = np.where(qt < 0.0, -x, x)
    result: numpy.ndarray = out.reshape(p.shape)
    return result


def _horner(x: numpy.ndarray, coefficients: tuple[float, ...]) -> numpy.ndarray:
    """``((c0 * x + c1) * x + c2) ...``, the order AS241 is written in."""
    value: numpy.ndarray = coefficients[0] * x
    value += coefficients[1]
    for coefficient in coefficients[2:]:
        value *= x
        value += coefficient
    return value


# Wichura (1988), Algorithm AS241, Applied Statistics 37(3): 477-484 (as in CPython).
_CENTRAL_NUM = (
    2.5090809287301226727e3,
    3.3430575583588128105e4,
    6.7265770927008700853e4,
    4.5921953931549871457e4,
    1.3731693765509461125e4,
    1.9715909503065514427e3,
    1.3314166789178437745e2,
    3.3871328727963666080e0,
)
_CENTRAL_DEN = (
    5.2264952788528545610e3,
    2.8729085735721942674e4,
    3.9307895800092710610e4,
    2.1213794301586595867e4,
    5.3941960214247511077e3,
    6.8718700749205790830e2,
    4.2313330701600911252e1,
    1.0,
)
_NEAR_NUM = (
    7.74545014278341407640e-4,
    2.27238449892691845833e-2,
    2.41780725177450611770e-1,
    1.27045825245236838258e0,
    3.64784832476320460504e0,
    5.76949722146069140550e0,
    4.63033784615654529590e0,
    1.42343711074968357734e0,
)
_NEAR_DEN = (
    1.05075007164441684324e-9,
    5.47593808499534494600e-4,
    1.51986665636164571966e-2,
    1.48103976427480074590e-1,
    6.89767334985100004550e-1,
    1.67638483018380384940e0,
    2.05319162663775882187e0,
    1.0,
)
_FAR_NUM = (
    2.01033439929228813265e-7,
    2.71155556874348757815e-5,
    1.24266094738807843860e-3,
    2.65321895265761230930e-2,
    2.96560571828504891230e-1,
    1.78482653991729133580e0,
    5.46378491116411436990e0,
    6.65790464350110377720e0,
)
_FAR_DEN = (
    2.04426310338993978564e-15,
    1.42151175831644588870e-7,
    1.84631831751005468180e-5,
    7.86869131145613259100e-4,
    1.48753612908506148525e-2,
    1.36929880922735805310e-1,
    5.99832206555887937690e-1,
    1.0,
)
