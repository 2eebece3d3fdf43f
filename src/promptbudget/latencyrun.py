"""The latency run: ``runs`` simulated requests of a compiled ``Layout``, in pure Python or,
for long runs, over numpy arrays (the ``fast`` extra), with the same numbers.

Every request reads the same ``width`` uniforms of its own, whatever it decides: column
``k`` always feeds the same decision (the traffic class, a semantic-cache hit, a route's
split or escalation, one call's reply size, time to first token or attempts, a tool's or a
retrieval's time), used or not. So the draws do not depend on the path a request takes, and
a run can be evaluated for every request at once. Both engines read the same Mersenne Twister
stream (numpy's ``RandomState`` is handed Python's exact state), turn a uniform into a score
with CPython's own ``NormalDist().inv_cdf`` (numpy computes its central branch with the same
float operations in the same order; the tails, which need ``log``, go through Python's) and
take ``exp`` from Python's ``math`` (numpy's own ``exp`` and ``log`` may round differently in
the last bit); every other operation is a float ``+ - * /``, done in the same order, and sums
over a run are correctly rounded whatever their order (``math.fsum``), so the engine is a
matter of speed only.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from math import exp, fsum
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from promptbudget.cache import active_store, cache_key
from promptbudget.montecarlo import _CENTRAL_DEN, _CENTRAL_NUM, _horner
from promptbudget.quantiles import band, percentile

try:  # what NormalDist().inv_cdf calls after checking its argument (C-accelerated)
    from statistics import _normal_dist_inv_cdf as _normal_inv  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - another Python implementation

    def _normal_inv(p: float, mu: float, sigma: float) -> float:
        return NormalDist(mu, sigma).inv_cdf(p)


if TYPE_CHECKING:
    import numpy

PARTS = ("ttft", "output", "tools", "retrieval", "backoff")
TTFT, OUTPUT, TOOLS, RETRIEVAL, BACKOFF = range(len(PARTS))

# Below this many uniforms (runs x width), pure Python finishes before numpy is imported
# (measured: ~0.3 us per uniform in Python, ~0.1-0.2 s to import numpy).
NUMPY_MIN_DRAWS = 200_000
BLOCK = 1024  # requests whose uniforms the Python engine draws at once

FIXED = -1  # a column index meaning "no draw: the value is fixed"


@dataclass(frozen=True)
class Timing:
    """Milliseconds: ``p50`` when ``column`` is FIXED, else ``p50 x exp(sigma x z)`` with
    ``z`` the score of that column (``Duration.at``)."""

    p50: float
    sigma: float
    column: int


@dataclass(frozen=True)
class Call:
    """One model call's columns: its reply size, its time to first token, its attempts and
    the tool call after it (FIXED: no draw; ``tool``: whether a tool call follows)."""

    output: int
    ttft: int
    retry: int
    tool: bool
    tool_column: int


@dataclass(frozen=True)
class Conversation:
    """One model's conversation in a step: ``calls`` in order, each ``ttft + output tokens /
    tokens per second``, attempted ``1 + #(u < threshold)`` times (``always_fails``: always
    ``most`` times), a tool's time after each tool call."""

    reply_p50: int
    reply_sigma: float
    cap: int | None
    ttft_p50: float
    ttft_sigma: float
    per_second: float
    tool: tuple[float, float] | None  # p50, sigma
    backoff: float
    most: int
    always_fails: bool
    thresholds: tuple[float, ...]
    calls: tuple[Call, ...]


@dataclass(frozen=True)
class Split:
    """One of ``options`` by share: the first whose bound the column's uniform is under,
    else the last (``bounds``: the cumulative shares of all but the last option)."""

    column: int
    bounds: tuple[float, ...]
    options: tuple[Node, ...]


@dataclass(frozen=True)
class Escalation:
    """``first``, then ``then`` too when the column's uniform is under ``rate`` (FIXED
    column: always)."""

    first: Node
    column: int
    rate: float
    then: Node


Node = Conversation | Split | Escalation


@dataclass(frozen=True)
class StepLayout:
    retrieval: Timing | None
    trees: tuple[Node | None, ...]  # by traffic class index (None: the class has no call)


@dataclass(frozen=True)
class Layout:
    width: int  # uniforms per request
    class_column: int  # FIXED: always ``classes[0]``
    class_bounds: tuple[float, ...]  # as ``Split.bounds``, over ``classes``
    classes: tuple[int, ...]  # the traffic classes a request can be (indices of the trees)
    hit_column: int  # FIXED: ``always_hit`` decides
    hit_rate: float
    always_hit: bool
    steps: tuple[StepLayout, ...]


# mean, p50, p95 and the 95% bands of p50 and p95 (``quantiles.py``)
Stats = tuple[float, float, float, tuple[float, float], tuple[float, float]]


@dataclass(frozen=True)
class RunResult:
    total: Stats
    steps: tuple[Stats, ...]
    parts: tuple[dict[str, float], ...]  # per step, the sum over the run by part


# The cache entry's format: an entry written in another format reads as a miss.
CACHE_FORMAT = 1


def run(layout: Layout, runs: int, seed: int) -> RunResult:
    """``runs`` requests (the first ``runs x width`` uniforms of the latency stream), kept in
    the content cache under the layout (every number the run reads), the runs and the seed."""
    store = active_store()
    if store is None:
        return _run(layout, runs, seed)
    key = cache_key(f"latency/{CACHE_FORMAT}", repr(layout), str(runs), str(seed))
    found = _decoded(store.get(key), len(layout.steps))
    if found is not None:
        return found
    result = _run(layout, runs, seed)
    store.put(
        key,
        {
            "total": _stats_json(result.total),
            "steps": [_stats_json(stats) for stats in result.steps],
            "parts": [dict(parts) for parts in result.parts],
        },
    )
    return result


def _stats_json(stats: Stats) -> list[Any]:
    mean, p50, p95, p50_band, p95_band = stats
    return [mean, p50, p95, list(p50_band), list(p95_band)]


def _decoded(value: Any, steps: int) -> RunResult | None:
    """A cached run, or None for anything ``run`` does not keep (a miss)."""
    try:
        total = _stats_of(value["total"])
        by_step = tuple(_stats_of(item) for item in value["steps"])
        parts = tuple(dict(item) for item in value["parts"])
    except (KeyError, TypeError, ValueError):
        return None
    numbers = [n for part in parts for n in part.values()]
    names = [name for part in parts for name in part]
    if len(by_step) != steps or len(parts) != steps:
        return None
    if not all(type(n) is float for n in numbers) or not all(n in PARTS for n in names):
        return None
    return RunResult(total, by_step, parts)


def _stats_of(value: Any) -> Stats:
    mean, p50, p95, (low50, high50), (low95, high95) = value
    numbers = (mean, p50, p95, low50, high50, low95, high95)
    if not all(type(n) is float for n in numbers):
        raise TypeError("not a number")
    return mean, p50, p95, (low50, high50), (low95, high95)


def _run(layout: Layout, runs: int, seed: int) -> RunResult:
    if runs * layout.width >= NUMPY_MIN_DRAWS:
        try:
            import numpy
        except ImportError:  # the ``fast`` extra is not installed: the same numbers, slower
            pass
        else:
            return _run_numpy(numpy, layout, runs, seed)
    return _run_python(layout, runs, seed)


def stream(seed: int) -> random.Random:
    return random.Random(f"promptbudget latency {seed}")


def _stats(values: list[float]) -> Stats:
    return _summary(fsum(values) / len(values), sorted(values))


def _summary(mean: float, ordered: Sequence[float]) -> Stats:
    """Nearest-rank percentiles and their bands, as the cost run (a list, or a sorted array)."""
    return (
        mean,
        percentile(ordered, 50),
        percentile(ordered, 95),
        band(ordered, 50),
        band(ordered, 95),
    )


LOWEST, HIGHEST = 1e-12, 1 - 1e-12  # the uniforms a score is taken of are clipped to these


def _score(u: float) -> float:
    """``NormalDist().inv_cdf`` of the clipped uniform, without checking its argument again."""
    if u < LOWEST:
        u = LOWEST
    elif u > HIGHEST:
        u = HIGHEST
    z: float = _normal_inv(u, 0.0, 1.0)
    return z


# -- pure Python ---------------------------------------------------------------------------


def _run_python(layout: Layout, runs: int, seed: int) -> RunResult:
    draw = stream(seed).random
    width = layout.width
    steps = layout.steps
    values: list[list[float]] = [[] for _ in steps]
    parts: list[list[list[float]]] = [[[] for _ in PARTS] for _ in steps]
    totals = []
    classes, bounds, class_column = layout.classes, layout.class_bounds, layout.class_column
    hit_column, hit_rate = layout.hit_column, layout.hit_rate
    block: list[float] = []
    for run in range(runs):
        start = run % BLOCK * width
        if not start:  # the next BLOCK requests' uniforms, drawn at once
            block = [draw() for _ in range(min(BLOCK, runs - run) * width)]
        u = block[start : start + width]
        cls = classes[0] if class_column == FIXED else classes[_pick(bounds, u[class_column])]
        hit = layout.always_hit if hit_column == FIXED else u[hit_column] < hit_rate
        total = 0.0
        for index, step in enumerate(steps):
            value = 0.0
            if not hit:
                sums = [0.0] * len(PARTS)
                if step.retrieval is not None:
                    retrieval = _timing(step.retrieval, u)
                    sums[RETRIEVAL] += retrieval
                    value += retrieval
                tree = step.trees[cls]
                if tree is not None:
                    value = _walk(tree, u, value, sums)
                for column, amount in zip(parts[index], sums, strict=True):
                    column.append(amount)
            values[index].append(value)
            total += value
        totals.append(total)
    return RunResult(
        _stats(totals),
        tuple(_stats(column) for column in values),
        tuple(dict(zip(PARTS, map(fsum, columns), strict=True)) for columns in parts),
    )


def _pick(bounds: tuple[float, ...], u: float) -> int:
    for index, bound in enumerate(bounds):
        if u < bound:
            return index
    return len(bounds)


def _timing(timing: Timing, u: list[float]) -> float:
    if timing.column == FIXED:
        return timing.p50
    return timing.p50 * exp(timing.sigma * _score(u[timing.column]))


def _walk(node: Node, u: list[float], value: float, sums: list[float]) -> float:
    """``value`` plus the conversations the request reaches, in order (their parts added to
    ``sums``, a conversation at a time)."""
    if isinstance(node, Conversation):
        total, ttft, output, tools, backoff = _conversation(node, u)
        sums[TTFT] += ttft
        sums[OUTPUT] += output
        sums[TOOLS] += tools
        sums[BACKOFF] += backoff
        return value + total
    if isinstance(node, Split):
        return _walk(node.options[_pick(node.bounds, u[node.column])], u, value, sums)
    value = _walk(node.first, u, value, sums)
    if node.column == FIXED or u[node.column] < node.rate:
        value = _walk(node.then, u, value, sums)
    return value


def _conversation(c: Conversation, u: list[float]) -> tuple[float, float, float, float, float]:
    """One conversation (the inner loop): its total and its time to first token, output,
    tool and backoff milliseconds, with the float operations the numpy engine does."""
    total = ttft_sum = output_sum = tools_sum = backoff_sum = 0.0
    for call in c.calls:
        if call.output == FIXED:
            drawn = c.reply_p50
        else:
            drawn = round(c.reply_p50 * exp(c.reply_sigma * _score(u[call.output])))
        output = drawn if drawn > 0 else 0
        if c.cap is not None and output > c.cap:
            output = c.cap
        if call.ttft == FIXED:
            ttft = c.ttft_p50
        else:
            ttft = c.ttft_p50 * exp(c.ttft_sigma * _score(u[call.ttft]))
        generation = output * 1000.0 / c.per_second
        if call.retry != FIXED:
            v = u[call.retry]
            attempts = 1
            for threshold in c.thresholds:  # q, q^2, ...: decreasing
                if v >= threshold:
                    break
                attempts += 1
        else:
            attempts = c.most if c.always_fails else 1
        if attempts == 1:  # x 1 and + 0.0 change nothing: the same sums
            ttft_sum += ttft
            output_sum += generation
            total += ttft + generation
        else:
            ttft_sum += attempts * ttft
            output_sum += attempts * generation
            backoff_sum += (attempts - 1) * c.backoff
            total += attempts * (ttft + generation) + (attempts - 1) * c.backoff
        if call.tool and c.tool is not None:
            tool_p50, tool_sigma = c.tool
            tool = (
                tool_p50
                if call.tool_column == FIXED
                else tool_p50 * exp(tool_sigma * _score(u[call.tool_column]))
            )
            tools_sum += tool
            total += tool
    return total, ttft_sum, output_sum, tools_sum, backoff_sum


# -- numpy ---------------------------------------------------------------------------------


def _run_numpy(np: Any, layout: Layout, runs: int, seed: int) -> RunResult:
    """The same run with every request at once: each node of a route is evaluated for the
    requests that reach it (an array of their indices), with the Python engine's operations."""
    state = stream(seed).getstate()[1]
    generator = np.random.RandomState()
    generator.set_state(("MT19937", np.array(state[:624], dtype=np.uint32), state[624]))
    uniforms = generator.random_sample(runs * layout.width).reshape(runs, layout.width)
    everyone = np.arange(runs)
    if layout.class_column == FIXED:
        cls = np.full(runs, layout.classes[0], dtype=np.int64)
    else:
        chosen = _pick_array(np, layout.class_bounds, uniforms[:, layout.class_column])
        cls = np.array(layout.classes, dtype=np.int64)[chosen]
    if layout.hit_column == FIXED:
        hit = np.full(runs, layout.always_hit)
    else:
        hit = uniforms[:, layout.hit_column] < layout.hit_rate
    totals = np.zeros(runs)
    values = []
    parts = []
    served = everyone[~hit]
    for step in layout.steps:
        value = np.zeros(runs)
        sums = np.zeros((len(PARTS), runs))
        if step.retrieval is not None and served.size:
            retrieval = _timing_array(np, step.retrieval, uniforms, served)
            sums[RETRIEVAL, served] += retrieval
            value[served] += retrieval
        for index, tree in enumerate(step.trees):
            reached = served[cls[served] == index]
            if tree is not None and reached.size:
                _walk_array(np, tree, uniforms, reached, value, sums)
        values.append(value)
        parts.append({part: fsum(sums[index].tolist()) for index, part in enumerate(PARTS)})
        totals += value
    return RunResult(
        _stats_array(np, totals),
        tuple(_stats_array(np, column) for column in values),
        tuple(parts),
    )


def _stats_array(np: Any, values: numpy.ndarray) -> Stats:
    ordered: Any = np.sort(values)
    return _summary(fsum(values.tolist()) / len(values), ordered)


def _pick_array(np: Any, bounds: tuple[float, ...], u: numpy.ndarray) -> numpy.ndarray:
    """``_pick`` over an array: the first bound each uniform is under, else the last."""
    chosen: numpy.ndarray = np.full(u.shape, len(bounds), dtype=np.int64)
    for index in range(len(bounds) - 1, -1, -1):
        chosen[u < bounds[index]] = index
    return chosen


def _scores(np: Any, u: numpy.ndarray) -> numpy.ndarray:
    """``_score`` over an array: AS241's central branch as CPython computes it, the tails
    (``log``) by CPython itself."""
    p = np.clip(u, LOWEST, HIGHEST)
    q = p - 0.5
    r = 0.180625 - q * q
    z: numpy.ndarray = _horner(r, _CENTRAL_NUM) * q / _horner(r, _CENTRAL_DEN)
    tails = np.flatnonzero(np.abs(q) > 0.425)
    if tails.size:
        z[tails] = [_normal_inv(x, 0.0, 1.0) for x in p[tails].tolist()]
    return z


def _exp(np: Any, x: numpy.ndarray) -> numpy.ndarray:
    """``math.exp`` over an array (numpy's ``exp`` may differ in the last bit)."""
    result: numpy.ndarray = np.fromiter(map(exp, x.tolist()), dtype=float, count=len(x))
    return result


def _timing_array(
    np: Any, timing: Timing, uniforms: numpy.ndarray, rows: numpy.ndarray
) -> numpy.ndarray:
    result: numpy.ndarray
    if timing.column == FIXED:
        result = np.full(len(rows), timing.p50)
    else:
        scores = _scores(np, uniforms[rows, timing.column])
        result = timing.p50 * _exp(np, timing.sigma * scores)
    return result


def _walk_array(
    np: Any,
    node: Node,
    uniforms: numpy.ndarray,
    rows: numpy.ndarray,
    value: numpy.ndarray,
    sums: numpy.ndarray,
) -> None:
    """Add to ``value[rows]`` the conversations each request reaches, in order."""
    if isinstance(node, Conversation):
        total, ttft, output, tools, backoff = _conversation_array(np, node, uniforms, rows)
        sums[TTFT, rows] += ttft
        sums[OUTPUT, rows] += output
        sums[TOOLS, rows] += tools
        sums[BACKOFF, rows] += backoff
        value[rows] += total
    elif isinstance(node, Split):
        chosen = _pick_array(np, node.bounds, uniforms[rows, node.column])
        for index, option in enumerate(node.options):
            subset = rows[chosen == index]
            if subset.size:
                _walk_array(np, option, uniforms, subset, value, sums)
    else:
        _walk_array(np, node.first, uniforms, rows, value, sums)
        if node.column != FIXED:
            rows = rows[uniforms[rows, node.column] < node.rate]
        if rows.size:
            _walk_array(np, node.then, uniforms, rows, value, sums)


def _conversation_array(
    np: Any,
    c: Conversation,
    uniforms: numpy.ndarray,
    rows: numpy.ndarray,
) -> tuple[numpy.ndarray, ...]:
    """``_conversation`` for every request in ``rows``."""
    count = len(rows)
    total, ttft_sum, output_sum, tools_sum, backoff_sum = np.zeros((5, count))
    for call in c.calls:
        if call.output == FIXED:
            output = np.full(count, max(c.reply_p50, 0), dtype=np.int64)
        else:
            scale = _exp(np, c.reply_sigma * _scores(np, uniforms[rows, call.output]))
            output = np.maximum(np.rint(c.reply_p50 * scale).astype(np.int64), 0)
        if c.cap is not None:
            output = np.minimum(output, c.cap)
        if call.ttft == FIXED:
            ttft = np.full(count, c.ttft_p50)
        else:
            ttft = c.ttft_p50 * _exp(np, c.ttft_sigma * _scores(np, uniforms[rows, call.ttft]))
        generation = output * 1000.0 / c.per_second
        if call.retry != FIXED:
            u = uniforms[rows, call.retry]
            attempts = np.ones(count, dtype=np.int64)
            for threshold in c.thresholds:
                attempts += u < threshold
        else:
            attempts = np.full(count, c.most if c.always_fails else 1, dtype=np.int64)
        ttft_sum += attempts * ttft
        output_sum += attempts * generation
        backoff_sum += (attempts - 1) * c.backoff
        total += attempts * (ttft + generation) + (attempts - 1) * c.backoff
        if call.tool and c.tool is not None:
            tool_p50, tool_sigma = c.tool
            if call.tool_column == FIXED:
                tool = np.full(count, tool_p50)
            else:
                tool = tool_p50 * _exp(
                    np, tool_sigma * _scores(np, uniforms[rows, call.tool_column])
                )
            tools_sum += tool
            total += tool
    return total, ttft_sum, output_sum, tools_sum, backoff_sum
