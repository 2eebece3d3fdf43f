"""``promptbudget replay``: production usage logs measured against budgets.yaml.

Readers turn each log format into normalized call records (:mod:`records`); the mapper
assigns them to workflows and steps; one SQL aggregation (:mod:`query`), run by DuckDB or by
the user's warehouse, reduces them to per-step and per-workflow statistics; judgement, drift
and calibration work on those statistics only.
"""
