#!/usr/bin/env python3
"""How long `promptbudget check` and `count` take. Run by hand; numbers go in the README.

    python benchmarks/bench_check.py [--runs 10]

cold: a fresh `python -m promptbudget ... --no-cache` process each time (imports, tokenizer
      load, run), with bytecode caching on, as in an installed package (PYTHONDONTWRITEBYTECODE
      is cleared for the child; one unmeasured run writes the .pyc files first).
cached: a fresh process with the cache (.promptbudget_cache/) filled by a previous run and
      nothing changed since (what pre-commit meets most often).
warm: the same command again inside one process (tokenizer and catalog already loaded), i.e.
      the cost of the work itself.
Wall and CPU (user + system) time are medians; CPU time moves far less on a shared machine.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
CORPUS = ROOT / "tests" / "corpus"

CASES = [
    (
        "estimate --samples 100000",
        EXAMPLES,
        ["estimate", "--samples", "100000", "--format", "json"],
    ),
    ("check examples/", EXAMPLES, ["check", "--format", "json"]),
    (
        "check one template (pre-commit)",
        EXAMPLES,
        ["check", "prompts/support/classify.j2", "--format", "json"],
    ),
    ("estimate --why examples/", EXAMPLES, ["estimate", "--why", "--format", "json"]),
    ("count examples/", EXAMPLES, ["count", "--format", "json"]),
    ("count tests/corpus (109 files)", ROOT, ["count", str(CORPUS), "--format", "json"]),
]


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def cold(cwd: Path, args: list[str], runs: int) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of a fresh process per run; the first (unmeasured) run writes the
    bytecode caches and fills .promptbudget_cache/ for cached runs."""
    times = []
    for run in range(runs + 1):
        start = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "promptbudget", *args],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=ENV,
        )
        _, _, usage = os.wait4(process.pid, 0)
        if run:
            times.append((time.perf_counter() - start, usage.ru_utime + usage.ru_stime))
    return times


def warm(cwd: Path, args: list[str], runs: int) -> list[float]:
    from promptbudget.cli import main

    previous = Path.cwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            main(args)  # load encodings and catalog once
            times = []
            for _ in range(runs):
                start = time.perf_counter()
                main(args)
                times.append(time.perf_counter() - start)
    finally:
        os.chdir(previous)
    return times


def import_time() -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import promptbudget.cli"], check=True, env=ENV)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"import promptbudget.cli: {import_time() * 1000:.0f} ms")
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(
        f"{'case':34} {'cold wall':>10} {'cold CPU':>9} {'cached wall':>12} {'cached CPU':>11}"
        f" {'warm':>8}"
    )
    for name, cwd, args in CASES:
        uncached = cold(cwd, [*args, "--no-cache"], runs)
        cached = cold(cwd, args, runs)
        w = sorted(warm(cwd, args, runs))
        print(
            f"{name:34} {_median(uncached, 0):>8.0f}ms {_median(uncached, 1):>7.0f}ms "
            f"{_median(cached, 0):>10.0f}ms {_median(cached, 1):>9.0f}ms "
            f"{statistics.median(w) * 1000:>6.0f}ms"
        )
    print(f"load average {os.getloadavg()[0]:.1f}")


def _median(times: list[tuple[float, float]], index: int) -> float:
    return statistics.median(t[index] for t in times) * 1000


if __name__ == "__main__":
    main()
