#!/usr/bin/env python3
"""How long `promptbudget check` and `count` take. Run by hand; numbers go in the README.

    python benchmarks/bench_check.py [--runs 10]

cold: a fresh `python -m promptbudget ...` process each time (imports, tokenizer load, run),
      with bytecode caching on, as in an installed package (PYTHONDONTWRITEBYTECODE is
      cleared for the child; one unmeasured run writes the .pyc files first).
warm: the same command again inside one process (tokenizer and catalog already loaded), i.e.
      the cost of the work itself.
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


def cold(cwd: Path, args: list[str], runs: int) -> list[float]:
    times = []
    for run in range(runs + 1):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "promptbudget", *args],
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
            env=ENV,
        )
        if run:  # the first run writes the bytecode caches
            times.append(time.perf_counter() - start)
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
    print(f"{'case':34} {'cold median':>12} {'cold p90':>10} {'warm median':>12}")
    for name, cwd, args in CASES:
        c = sorted(cold(cwd, args, runs))
        w = sorted(warm(cwd, args, runs))
        p90 = c[min(len(c) - 1, int(len(c) * 0.9))]
        print(
            f"{name:34} {statistics.median(c) * 1000:>10.0f}ms {p90 * 1000:>8.0f}ms "
            f"{statistics.median(w) * 1000:>10.1f}ms"
        )


if __name__ == "__main__":
    main()
