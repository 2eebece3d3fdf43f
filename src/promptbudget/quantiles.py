"""Percentiles of a sampled run and how precise they are: the nearest-rank percentile of
``n`` sorted samples and its 95% confidence band, read off the same sorted samples.

The band is the distribution-free confidence interval for a quantile from order statistics
(W. J. Conover, *Practical Nonparametric Statistics*, 3rd ed., Wiley 1999, section 3.2,
"confidence interval for a quantile", large-sample approximation; also H. A. David and
H. N. Nagaraja, *Order Statistics*, 3rd ed., 2003, section 7.1). Of ``n`` independent draws
of a continuous distribution, the number below its ``p``-quantile is Binomial(n, p), so the
``r``-th and ``s``-th smallest draws enclose the quantile with probability
``sum(C(n, i) p^i (1 - p)^(n - i) for r <= i < s)``; with the normal approximation to that
binomial, the ranks ``n p -/+ 1.96 sqrt(n p (1 - p))`` enclose it 95% of the time. The ranks
are rounded outward (down, up) and clamped to ``1..n``. Exact binomial coverage: 95.8% for
the p95 and 95.0% for the p50 of 1,000 samples, at least 94.9% from 80 samples up; with
fewer the p95's band is clamped to the sample's top and claims less (94.4% at 60 samples,
63% at 20). Nothing about the distribution is assumed, and the band needs no extra draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Z_975 = 1.959963984540054  # the standard normal's 97.5th percentile: a two-sided 95% band


def rank(count: int, percent: int) -> int:
    """The nearest rank (1-based) of the ``percent``-th percentile of ``count`` samples:
    ``ceil(count x percent / 100)``, at least 1."""
    return max(1, -(-count * percent // 100))


def band_ranks(count: int, percent: int) -> tuple[int, int]:
    """The 1-based ranks of the sorted samples that bound the 95% band of the ``percent``-th
    percentile: ``n p -/+ 1.96 sqrt(n p (1 - p))`` rounded outward, clamped to ``1..n``."""
    p = percent / 100
    centre = count * p
    half = Z_975 * math.sqrt(centre * (1 - p))
    low = max(1, math.floor(centre - half))
    high = min(count, math.ceil(centre + half))
    return low, max(low, high)


def percentile(ordered: Sequence[float], percent: int) -> float:
    """The nearest-rank percentile of sorted values (a list, or a sorted numpy array)."""
    return float(ordered[rank(len(ordered), percent) - 1])


def band(ordered: Sequence[float], percent: int) -> tuple[float, float]:
    """The 95% band of the ``percent``-th percentile of sorted values (``band_ranks``)."""
    low, high = band_ranks(len(ordered), percent)
    return float(ordered[low - 1]), float(ordered[high - 1])
