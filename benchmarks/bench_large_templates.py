#!/usr/bin/env python3
"""How long ``count`` takes on templates built to be slow.

    python benchmarks/bench_large_templates.py

Each case is a project with one template, counted in a new process (``promptbudget count
--format json``), three times; prints the median wall time and the median CPU time of the
process (user + system, which a loaded machine inflates less than wall time).
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGETS = "version: 1\ndefaults: {model: gpt-4.1-mini}\n"
CASES = {
    "50,000 distinct variables (over the bound: PB001)": " ".join(
        f"{{{{ v{i} }}}}" for i in range(50_000)
    ),
    "5,000 distinct variables (the bound: rendered)": " ".join(
        f"{{{{ v{i} }}}}" for i in range(5_000)
    ),
    "a line of 100,000 blanks before a role line": " " * 100_000 + "\nuser:\nHello.\n",
}


def run_once(root: Path) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "promptbudget", "count", "--format", "json"],
        cwd=root,
        check=False,
        capture_output=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    print("| case | wall (median of 3) | CPU (median of 3) |\n|---|---|---|")
    with tempfile.TemporaryDirectory() as scratch:
        for index, (name, body) in enumerate(CASES.items()):
            root = Path(scratch) / f"case{index}"
            (root / "prompts").mkdir(parents=True)
            (root / "budgets.yaml").write_text(BUDGETS, encoding="utf-8")
            (root / "prompts" / "t.j2").write_text(body + "\n", encoding="utf-8")
            runs = [run_once(root) for _ in range(3)]
            wall = statistics.median(r[0] for r in runs)
            cpu = statistics.median(r[1] for r in runs)
            print(f"| {name} | {wall:.2f} s | {cpu:.2f} s |")


if __name__ == "__main__":
    main()
