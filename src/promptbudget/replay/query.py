"""The one aggregation query, written once (DuckDB SQL) and transpiled with sqlglot for other
engines (``replay --emit-sql --dialect spark|bigquery|snowflake|duckdb``).

It reads a table ``promptbudget_calls`` with the columns of :data:`records.COLUMNS` and
returns one row per (level, workflow, step, model) with the same columns at every level
(:data:`OUTPUT_COLUMNS`); ``replay --aggregates FILE`` judges such a result.

Prices come in as a VALUES table built from the catalog by ``simulation.select_rates`` (the
rates ``estimate`` uses, per model, long-context tier and batch); the query only multiplies
tokens by them: ``(input - cache_read - cache_write) * in + cache_read * read + cache_write *
write + output * out``, the formula of ``simulation.price_call``. Batch calls: a record's own
flag, else the step's declared ``batch_share``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from promptbudget.manifest.model import CostLimit, Limits, Manifest
from promptbudget.pricing.catalog import ModelPrice, PriceCatalog
from promptbudget.simulation import select_rates

TABLE = "promptbudget_calls"
DIALECTS = ("duckdb", "spark", "bigquery", "snowflake")

# (metric, has a limit) in the order the columns appear
METRICS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost_usd",
    "turns",
    "tool_calls",
    "latency_ms",
    "ttft_ms",
    "output_tps",
)
# metrics a result file from an older --emit-sql may lack (read as not measured)
OPTIONAL_METRICS = frozenset({"latency_ms", "ttft_ms", "output_tps"})
STATS = ("n", "sum", "p50", "p95", "max", "over", "over_first_ns", "over_last_ns", "ex1", "ex2")
COUNTS = (
    "calls",
    "requests",
    "cache_hits",
    "escalated",
    "unpriced",
    "outcomes",
    "successes",
    "first_ns",
    "last_ns",
    "failed",
)
OPTIONAL_COUNTS = frozenset({"failed"})
KEYS = ("level", "workflow", "step", "model")
OUTPUT_COLUMNS = (
    *KEYS,
    *COUNTS,
    *(f"{metric}_{stat}" for metric in METRICS for stat in STATS),
)
TEXT_COLUMNS = frozenset({*KEYS, *(f"{m}_{s}" for m in METRICS for s in ("ex1", "ex2"))})

_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")


def resolve_model(catalog: PriceCatalog, name: str) -> ModelPrice | None:
    """A logged model name in the catalog: exact, alias, provider prefix dropped, then without
    a dated snapshot suffix (``gpt-4.1-mini-2025-04-14``, ``claude-sonnet-4-5-20250929``)."""
    found = catalog.lookup(name)
    if found is None and _DATE_SUFFIX.search(name):
        found = catalog.lookup(_DATE_SUFFIX.sub("", name))
    return found


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, Decimal, float)):
        return format(Decimal(str(value)), "f")
    return "'" + str(value).replace("'", "''") + "'"


def _values(name: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """``name(columns) AS (SELECT ... UNION ALL ...)``: portable where VALUES lists are not;
    an empty table is a SELECT with a false WHERE."""
    selects = [
        "SELECT " + ", ".join(f"{_literal(v)} AS {c}" for v, c in zip(row, columns, strict=True))
        for row in rows
    ]
    if not selects:
        selects = ["SELECT " + ", ".join(f"NULL AS {c}" for c in columns) + " WHERE 1 = 0"]
    return f"{name} AS (\n  " + "\n  UNION ALL ".join(selects) + "\n)"


@dataclass(frozen=True)
class Parameters:
    """What the query needs from budgets.yaml and the catalog."""

    rates: tuple[tuple[object, ...], ...]
    steps: tuple[tuple[object, ...], ...]
    limits: tuple[tuple[object, ...], ...]


RATE_COLUMNS = (
    "model",
    "threshold",
    "is_batch",
    "is_long",
    "in_rate",
    "out_rate",
    "read_rate",
    "write_rate",
)
STEP_COLUMNS = ("workflow", "step", "batch_share", "escalation_model", "max_latency_ms")
LIMIT_COLUMNS = (
    "workflow",
    "max_input_tokens",
    "max_output_tokens",
    "max_turns",
    "max_tool_calls",
    "max_cost_per_request",
    "max_latency_ms",
)
NO_THRESHOLD = 10**15


def rate_rows(price: ModelPrice, name: str) -> list[tuple[object, ...]]:
    """The rates of ``name`` online and in batch, below and above its long-context tier."""
    threshold = price.long_context.threshold_tokens if price.long_context else NO_THRESHOLD
    rows: list[tuple[object, ...]] = []
    for batch in (0, 1):
        for is_long in (0, 1):
            rates = select_rates(price, threshold + 1 if is_long else 0, batch=bool(batch))
            rows.append(
                (
                    name,
                    threshold,
                    batch,
                    is_long,
                    rates.input_per_mtok,
                    rates.output_per_mtok,
                    rates.cache_read_per_mtok,
                    rates.cache_write_per_mtok,
                )
            )
    return rows


def latency_limit(limits: Limits | None) -> float | None:
    """The latency a request (or a step's share of it) is counted over: the p95 of
    ``max_latency_ms``, or its p50 when only that is given."""
    limit = limits.max_latency_ms if limits is not None else None
    if limit is None:
        return None
    return limit.p95 if limit.p95 is not None else limit.p50


def parameters(manifest: Manifest, models: Iterable[str]) -> Parameters:
    """Rates for every logged model the catalog knows; steps and limits from budgets.yaml."""
    rates = []
    for name in sorted(set(models)):
        price = resolve_model(manifest.catalog, name)
        if price is not None:
            rates.extend(rate_rows(price, name))
    steps = []
    limits = []
    for workflow in manifest.workflows:
        for step in workflow.steps:
            share = step.batch_share if step.batch_share is not None else workflow.batch_share
            escalation = None
            route = manifest.routes.get(step.route) if step.route else None
            seen: set[str] = set()
            while route is not None and route.name not in seen:
                seen.add(route.name)
                if route.escalation is not None:
                    escalation = route.escalation.to
                    break
                route = manifest.routes.get(route.default or route.model or "")
            steps.append((workflow.name, step.name, share, escalation, latency_limit(step.limits)))
        limit = workflow.limits
        cost = limit.max_cost_per_request
        limits.append(
            (
                workflow.name,
                limit.max_input_tokens,
                limit.max_output_tokens,
                limit.max_turns,
                limit.max_tool_calls,
                cost.amount if isinstance(cost, CostLimit) else None,
                latency_limit(limit),
            )
        )
    return Parameters(tuple(rates), tuple(steps), tuple(limits))


def _metric_columns(metric: str, expr: str, over: str | None, quantile: str) -> list[str]:
    """The ``metric_*`` columns of one level: count, sum, quantiles, max, and how often, when
    and where (two example ids) ``over`` held."""
    columns = [
        f"CAST(COUNT({expr}) AS DOUBLE) AS {metric}_n",
        f"CAST(SUM({expr}) AS DOUBLE) AS {metric}_sum",
        f"CAST({quantile}({expr}, 0.5) AS DOUBLE) AS {metric}_p50",
        f"CAST({quantile}({expr}, 0.95) AS DOUBLE) AS {metric}_p95",
        f"CAST(MAX({expr}) AS DOUBLE) AS {metric}_max",
    ]
    if over is None:
        columns += [f"CAST(NULL AS DOUBLE) AS {metric}_{s}" for s in STATS[5:8]]
        columns += [f"CAST(NULL AS VARCHAR) AS {metric}_{s}" for s in STATS[8:]]
        return columns
    return [
        *columns,
        f"CAST(SUM(CASE WHEN {over} THEN 1 ELSE 0 END) AS DOUBLE) AS {metric}_over",
        f"CAST(MIN(CASE WHEN {over} THEN start_ns END) AS DOUBLE) AS {metric}_over_first_ns",
        f"CAST(MAX(CASE WHEN {over} THEN start_ns END) AS DOUBLE) AS {metric}_over_last_ns",
        f"MIN(CASE WHEN {over} THEN request_id END) AS {metric}_ex1",
        f"MAX(CASE WHEN {over} THEN request_id END) AS {metric}_ex2",
    ]


def _billed(column: str) -> str:
    """``column`` of a call, absent for a failed attempt that reported no usage (it counts as
    a call and a failure, not as a zero-token call in the token distributions)."""
    return (
        f"CASE WHEN failed = 1 AND input_tokens = 0 AND output_tokens = 0 THEN NULL "
        f"ELSE {column} END"
    )


def _none(metric: str) -> list[str]:
    return [
        f"CAST(NULL AS {'VARCHAR' if s.startswith('ex') else 'DOUBLE'}) AS {metric}_{s}"
        for s in STATS
    ]


def _select(
    level: str,
    keys: Sequence[str],
    counts: dict[str, str],
    metrics: dict[str, list[str]],
    source: str,
    group: Sequence[str],
) -> str:
    parts = [f"'{level}' AS level"]
    parts += [
        f"{keys[i] if i < len(keys) else 'CAST(NULL AS VARCHAR)'} AS {name}"
        for i, name in enumerate(KEYS[1:])
    ]
    parts += [f"CAST({counts.get(name, 'NULL')} AS DOUBLE) AS {name}" for name in COUNTS]
    for metric in METRICS:
        parts += metrics.get(metric, _none(metric))
    group_by = f"\nGROUP BY {', '.join(group)}" if group else ""
    return "SELECT\n  " + ",\n  ".join(parts) + f"\nFROM {source}{group_by}"


def _window_filter(table: str, window: tuple[int | None, int | None]) -> str:
    """The records of the requests whose first record starts in ``[since, until)``."""
    since, until = window
    conditions = ["MIN(start_ns) IS NOT NULL"]
    if since is not None:
        conditions.append(f"MIN(start_ns) >= {int(since)}")
    if until is not None:
        conditions.append(f"MIN(start_ns) < {int(until)}")
    return f"""pb_window AS (
  SELECT c.*
  FROM {table} AS c
  JOIN (
    SELECT request_id FROM {table} GROUP BY request_id
    HAVING {" AND ".join(conditions)}
  ) AS w ON w.request_id = c.request_id
)"""


def build_query(
    params: Parameters,
    *,
    table: str = TABLE,
    approximate: bool = False,
    window: tuple[int | None, int | None] | None = None,
) -> str:
    """The aggregation in DuckDB's dialect; ``approximate`` quantiles for engines whose exact
    percentile is a window function only (BigQuery); ``window``: only the requests that start
    in ``[since_ns, until_ns)`` (``replay --since/--until``)."""
    quantile = "APPROX_QUANTILE" if approximate else "QUANTILE_CONT"
    source = table
    if window is not None:
        source = "pb_window"

    def _stats(metric: str, expr: str, over: str | None) -> list[str]:
        return _metric_columns(metric, expr, over, quantile)

    ctes = [
        *([_window_filter(table, window)] if window is not None else []),
        _values("pb_rates", RATE_COLUMNS, params.rates),
        _values("pb_steps", STEP_COLUMNS, params.steps),
        _values("pb_limits", LIMIT_COLUMNS, params.limits),
        f"""pb_tagged AS (
  SELECT
    c.*,
    COALESCE(c.workflow, MAX(c.workflow) OVER (PARTITION BY c.request_id)) AS wf,
    COALESCE(
      c.step,
      LAST_VALUE(CASE WHEN c.kind = 'model' THEN c.step END IGNORE NULLS) OVER (
        PARTITION BY c.request_id ORDER BY c.start_ns, c.source
        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
      )
    ) AS st
  FROM {source} AS c
)""",
        """pb_priced AS (
  SELECT
    t.*,
    COALESCE(t.wf, '') AS wkey,
    COALESCE(t.st, '') AS skey,
    CASE WHEN t.model = s.escalation_model THEN 1 ELSE 0 END AS is_escalation,
    (1 - COALESCE(CAST(t.is_batch AS DOUBLE), CAST(s.batch_share AS DOUBLE), 0)) * (
      (t.input_tokens - t.cache_read_tokens - t.cache_write_tokens) * r0.in_rate
      + t.cache_read_tokens * r0.read_rate + t.cache_write_tokens * r0.write_rate
      + t.output_tokens * r0.out_rate
    ) / 1000000
    + COALESCE(CAST(t.is_batch AS DOUBLE), CAST(s.batch_share AS DOUBLE), 0) * (
      (t.input_tokens - t.cache_read_tokens - t.cache_write_tokens) * r1.in_rate
      + t.cache_read_tokens * r1.read_rate + t.cache_write_tokens * r1.write_rate
      + t.output_tokens * r1.out_rate
    ) / 1000000 AS cost_usd,
    CASE WHEN t.end_ns >= t.start_ns THEN (t.end_ns - t.start_ns) / 1000000.0 END AS latency_ms,
    CASE
      WHEN t.kind = 'model' AND t.output_tokens > 0 AND t.ttft_ms IS NOT NULL
        AND (t.end_ns - t.start_ns) / 1000000.0 > t.ttft_ms
      THEN t.output_tokens * 1000.0 / ((t.end_ns - t.start_ns) / 1000000.0 - t.ttft_ms)
    END AS output_tps,
    s.max_latency_ms AS step_max_latency_ms,
    l.max_input_tokens,
    l.max_output_tokens
  FROM pb_tagged AS t
  LEFT JOIN pb_steps AS s ON s.workflow = t.wf AND s.step = t.st
  LEFT JOIN pb_limits AS l ON l.workflow = t.wf
  LEFT JOIN pb_rates AS r0
    ON r0.model = t.model AND r0.is_batch = 0
    AND r0.is_long = CASE WHEN t.input_tokens > r0.threshold THEN 1 ELSE 0 END
  LEFT JOIN pb_rates AS r1
    ON r1.model = t.model AND r1.is_batch = 1
    AND r1.is_long = CASE WHEN t.input_tokens > r1.threshold THEN 1 ELSE 0 END
  WHERE t.kind <> 'context' OR t.outcome IS NOT NULL
)""",
        """pb_request_steps AS (
  SELECT
    wkey, skey, request_id,
    MIN(start_ns) AS start_ns,
    SUM(CASE WHEN kind = 'model' AND COALESCE(failed, 0) = 0 THEN 1 ELSE 0 END) AS model_calls,
    SUM(CASE WHEN kind = 'model' THEN is_escalation ELSE 0 END) AS escalation_calls,
    SUM(CASE WHEN kind = 'tool' THEN 1 ELSE 0 END) + SUM(tool_calls) AS tool_calls,
    SUM(CASE WHEN kind = 'model' THEN cost_usd ELSE 0 END) AS cost_usd,
    CASE WHEN SUM(CASE WHEN kind <> 'context' AND (start_ns IS NULL OR end_ns IS NULL
        OR end_ns < start_ns) THEN 1 ELSE 0 END) = 0
        AND MIN(CASE WHEN kind <> 'context' THEN start_ns END) IS NOT NULL
      THEN (MAX(CASE WHEN kind <> 'context' THEN end_ns END)
        - MIN(CASE WHEN kind <> 'context' THEN start_ns END)) / 1000000.0
    END AS latency_ms,
    MAX(step_max_latency_ms) AS max_latency_ms
  FROM pb_priced
  GROUP BY wkey, skey, request_id
)""",
        """pb_request_times AS (
  SELECT
    COALESCE(wf, '') AS wkey, request_id,
    CASE WHEN SUM(CASE WHEN start_ns IS NULL OR end_ns IS NULL OR end_ns < start_ns
        THEN 1 ELSE 0 END) = 0
      THEN (MAX(end_ns) - MIN(start_ns)) / 1000000.0
    END AS latency_ms
  FROM pb_tagged
  WHERE start_ns IS NOT NULL OR end_ns IS NOT NULL
  GROUP BY COALESCE(wf, ''), request_id
)""",
        """pb_step_requests AS (
  SELECT
    wkey, skey, request_id, start_ns, model_calls, tool_calls, cost_usd, latency_ms,
    max_latency_ms,
    CASE WHEN escalation_calls > 0 AND escalation_calls < model_calls
      THEN escalation_calls ELSE 0 END AS escalation_calls,
    CASE
      WHEN model_calls - tool_calls
        - CASE WHEN escalation_calls < model_calls THEN escalation_calls ELSE 0 END > 1
      THEN model_calls - tool_calls
        - CASE WHEN escalation_calls < model_calls THEN escalation_calls ELSE 0 END
      ELSE 1
    END AS turns
  FROM pb_request_steps
  WHERE model_calls > 0
)""",
        """pb_requests AS (
  SELECT
    q.wkey, q.request_id, q.start_ns, q.cost_usd, q.turns, q.tool_calls, q.unpriced,
    o.outcome, rt.latency_ms,
    l.max_turns, l.max_tool_calls, l.max_cost_per_request, l.max_latency_ms
  FROM (
    SELECT
      wkey, request_id,
      MIN(start_ns) AS start_ns,
      SUM(cost_usd) AS cost_usd,
      MAX(turns) AS turns,
      SUM(tool_calls) AS tool_calls,
      0 AS unpriced
    FROM pb_step_requests
    GROUP BY wkey, request_id
  ) AS q
  LEFT JOIN (
    SELECT wkey, request_id, MIN(outcome) AS outcome
    FROM pb_priced
    WHERE outcome IS NOT NULL
    GROUP BY wkey, request_id
  ) AS o ON o.wkey = q.wkey AND o.request_id = q.request_id
  LEFT JOIN pb_request_times AS rt ON rt.wkey = q.wkey AND rt.request_id = q.request_id
  LEFT JOIN pb_limits AS l ON l.workflow = q.wkey
)""",
    ]
    model_calls = "(SELECT * FROM pb_priced WHERE kind = 'model') AS m"
    step_calls = _select(
        "step",
        ("wkey", "skey"),
        {
            "calls": "COUNT(*)",
            "cache_hits": "SUM(CASE WHEN cache_read_tokens > 0 THEN 1 ELSE 0 END)",
            "unpriced": "SUM(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END)",
            "first_ns": "MIN(start_ns)",
            "last_ns": "MAX(start_ns)",
            "failed": "SUM(CASE WHEN failed = 1 THEN 1 ELSE 0 END)",
        },
        {
            "input_tokens": _stats(
                "input_tokens", _billed("input_tokens"), "input_tokens > max_input_tokens"
            ),
            "output_tokens": _stats(
                "output_tokens", _billed("output_tokens"), "output_tokens > max_output_tokens"
            ),
            "cache_read_tokens": _stats("cache_read_tokens", _billed("cache_read_tokens"), None),
            "cache_write_tokens": _stats("cache_write_tokens", _billed("cache_write_tokens"), None),
            "reasoning_tokens": _stats("reasoning_tokens", _billed("reasoning_tokens"), None),
            "cost_usd": _stats("cost_usd", _billed("cost_usd"), None),
            "latency_ms": _stats("latency_ms", "latency_ms", None),
            "ttft_ms": _stats("ttft_ms", "ttft_ms", None),
            "output_tps": _stats("output_tps", "output_tps", None),
        },
        model_calls,
        ("wkey", "skey"),
    )
    step_requests = _select(
        "step_requests",
        ("wkey", "skey"),
        {
            "requests": "COUNT(*)",
            "calls": "SUM(model_calls)",
            "escalated": "SUM(escalation_calls)",
        },
        {
            "turns": _stats("turns", "turns", None),
            "tool_calls": _stats("tool_calls", "tool_calls", None),
            "cost_usd": _stats("cost_usd", "cost_usd", None),
            "latency_ms": _stats("latency_ms", "latency_ms", "latency_ms > max_latency_ms"),
        },
        "pb_step_requests_view",
        ("wkey", "skey"),
    ).replace("pb_step_requests_view", "pb_step_requests")
    models = _select(
        "model",
        ("wkey", "skey", "model"),
        {
            "calls": "COUNT(*)",
            "requests": "COUNT(DISTINCT request_id)",
            "unpriced": "SUM(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END)",
        },
        {
            "cost_usd": _stats("cost_usd", _billed("cost_usd"), None),
            "input_tokens": _stats("input_tokens", _billed("input_tokens"), None),
            "output_tokens": _stats("output_tokens", _billed("output_tokens"), None),
            "latency_ms": _stats("latency_ms", "latency_ms", None),
            "ttft_ms": _stats("ttft_ms", "ttft_ms", None),
            "output_tps": _stats("output_tps", "output_tps", None),
        },
        model_calls,
        ("wkey", "skey", "model"),
    )
    workflows = _select(
        "workflow",
        ("wkey",),
        {
            "requests": "COUNT(*)",
            "outcomes": "COUNT(outcome)",
            "successes": "SUM(outcome)",
            "first_ns": "MIN(start_ns)",
            "last_ns": "MAX(start_ns)",
        },
        {
            "cost_usd": _stats("cost_usd", "cost_usd", "cost_usd > max_cost_per_request"),
            "turns": _stats("turns", "turns", "turns > max_turns"),
            "tool_calls": _stats("tool_calls", "tool_calls", "tool_calls > max_tool_calls"),
            "latency_ms": _stats("latency_ms", "latency_ms", "latency_ms > max_latency_ms"),
        },
        "pb_requests",
        ("wkey",),
    )
    body = "\nUNION ALL\n".join((step_calls, step_requests, models, workflows))
    return "WITH\n" + ",\n".join(ctes) + "\n" + body + "\nORDER BY level, workflow, step, model\n"


def transpile(sql: str, dialect: str) -> str:
    """``sql`` (DuckDB) in another engine's dialect."""
    if dialect == "duckdb":
        return sql
    try:
        import sqlglot
    except ImportError:
        from promptbudget.errors import UsageError
        from promptbudget.replay.readers import install_hint

        raise UsageError(f"--emit-sql --dialect {dialect} {install_hint('sqlglot')}") from None
    text = ";\n".join(sqlglot.transpile(sql, read="duckdb", write=dialect, pretty=True)) + "\n"
    if dialect == "spark":
        # sqlglot writes PERCENTILE_CONT(x, q), which Spark only accepts as WITHIN GROUP;
        # Spark's PERCENTILE(x, q) is the same exact, linearly interpolated percentile
        text = text.replace("PERCENTILE_CONT(", "PERCENTILE(")
    return text
