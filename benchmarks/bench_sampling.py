#!/usr/bin/env python3
"""CPU time of the sampling in `estimate --samples N --no-cache` (examples/): the cost Monte
Carlo (`montecarlo.run_samples`) and the latency run (`latencyrun.run`), timed in-process
around those two calls, for each engine. Run by hand; numbers go in the README.

    python benchmarks/bench_sampling.py [--samples 100000] [--runs 5]

The first (unmeasured) run imports everything (numpy included); figures are medians of
`time.process_time()` (CPU, user + system), next to the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from promptbudget import latency, latencyrun, montecarlo
from promptbudget.cli import main

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def timed(spent: dict[str, float], name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any) -> Any:
        start = time.process_time()
        try:
            return function(*args)
        finally:
            spent[name] += time.process_time() - start

    return wrapper


SPENT = {"cost": 0.0, "latency": 0.0}


def measure(samples: int, engine: str) -> tuple[float, float, float]:
    """(cost, latency, whole command) CPU seconds of one in-process estimate."""
    limit = 0 if engine == "numpy" else 10**18
    montecarlo.NUMPY_MIN_DRAWS = latencyrun.NUMPY_MIN_DRAWS = limit
    SPENT.update(cost=0.0, latency=0.0)
    os.chdir(EXAMPLES)
    start = time.process_time()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        main(["estimate", "--samples", str(samples), "--no-cache", "--format", "json"])
    return SPENT["cost"], SPENT["latency"], time.process_time() - start


def main_() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    # the names the callers look up at call time
    latency.run = timed(SPENT, "latency", latencyrun.run)  # type: ignore[attr-defined]
    montecarlo.run_samples = timed(SPENT, "cost", montecarlo.run_samples)  # type: ignore[assignment]
    for engine in ("numpy", "python"):
        rows = [measure(args.samples, engine) for _ in range(args.runs + 1)][1:]
        cost, lat, command = (statistics.median(column) for column in zip(*rows, strict=True))
        print(
            f"{engine:6} {args.samples:,} samples: cost {cost:.3f} s, latency {lat:.3f} s, "
            f"sampling {cost + lat:.3f} s; estimate in-process {command:.3f} s CPU "
            f"(median of {args.runs}; load {os.getloadavg()[0]:.1f})"
        )


if __name__ == "__main__":
    main_()
