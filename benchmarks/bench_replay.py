#!/usr/bin/env python3
"""How long `promptbudget replay` takes on OTel span logs, and its peak memory. By hand:

    python benchmarks/bench_replay.py --spans 100000 1000000 [--dir /tmp/replay-bench]

Writes (once, then reuses) JSON lines of OTLP-shaped GenAI spans from the generator the tests
use (tests/replay/replay_logs.py): the support workflow of tests/replay/replay_project.py,
5 model calls and 2 tool spans per request, ~850 bytes a span. Sizes above 1M repeat the 1M
file with new trace ids (generating is slower than replaying). Then runs a fresh
`python -m promptbudget replay FILE --format json` per size and reports wall time, CPU time,
peak RSS (the child's ru_maxrss, DuckDB included) and spans per second.

These lines are read by DuckDB's JSON reader (src/promptbudget/replay/native.py). 10M spans
(`--spans 10000000`) is an 8.5 GB file: give --dir a disk with room, delete it afterwards,
and run it with `nice` on a shared machine (say the load average with the figures).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "replay"))

from replay_logs import StepTruth, WorkflowTruth, generate, write_otel_spans  # noqa: E402
from replay_project import BUDGETS  # noqa: E402

SPANS_PER_REQUEST = 7  # classify + 2 turns x (call, tool, call) of answer


def truth(spans: int) -> WorkflowTruth:
    return WorkflowTruth(
        "support",
        (
            StepTruth("classify", "gpt-4.1-nano", 300, 500, 3, 5),
            StepTruth(
                "answer", "gpt-4.1-mini", 2500, 9000, 200, 700, cache_hit=0.6, turns=2,
                tool_calls=1, escalate=0.05, escalate_model="gpt-5.4",
            ),
        ),
        requests=max(1, spans // SPANS_PER_REQUEST),
        success=0.9,
    )  # fmt: skip


def project(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "budgets.yaml").write_text(BUDGETS)
    (directory / "prompts").mkdir(exist_ok=True)
    (directory / "prompts" / "classify.j2").write_text("Classify this message: {{ message }}\n")
    (directory / "prompts" / "answer.j2").write_text("You are a support agent: {{ message }}\n")
    return directory


def log_file(directory: Path, spans: int) -> Path:
    path = directory / f"spans-{spans}.jsonl"
    million = directory / "spans-1000000.jsonl"
    if not path.exists() and spans > 1_000_000 and spans % 1_000_000 == 0:
        # generating is slower than replaying: repeat the 1M file with new trace ids
        log_file(directory, 1_000_000)
        started = time.perf_counter()
        partial = path.with_suffix(".partial")
        with partial.open("w", encoding="utf-8") as out:
            for copy in range(spans // 1_000_000):
                with million.open(encoding="utf-8") as source:
                    prefix = f'"traceId":"{copy:02x}'
                    out.writelines(line.replace('"traceId":"', prefix, 1) for line in source)
        partial.rename(path)
        print(f"  wrote {path.name}: {path.stat().st_size / 1e6:,.0f} MB in "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr)  # fmt: skip
    if not path.exists():
        started = time.perf_counter()
        partial = path.with_suffix(".partial")
        with partial.open("w", encoding="utf-8") as out:
            write_otel_spans(generate([truth(spans)], seed=1, days=30), out, content=False)
        partial.rename(path)
        print(f"  wrote {path.name}: {path.stat().st_size / 1e6:,.0f} MB in "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr)  # fmt: skip
    return path


def measure(directory: Path, path: Path) -> tuple[float, float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": ""}
    result = subprocess.run(
        [sys.executable, "-m", "promptbudget", "replay", str(path), "--format", "json",
         "--samples", "200"],
        cwd=directory, capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in (0, 1):
        raise SystemExit(result.stderr)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, after.ru_maxrss / 1024  # MiB (Linux reports KiB)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "replay-bench")
    args = parser.parse_args()
    directory = project(args.dir)
    load = os.getloadavg()[0]
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, load {load:.1f}")
    print(f"{'spans':>12} {'MB':>8} {'wall s':>8} {'cpu s':>8} {'peak MiB':>9} {'spans/s':>10}")
    for spans in args.spans:
        path = log_file(directory, spans)
        wall, cpu, rss = measure(directory, path)
        size = path.stat().st_size / 1e6
        print(f"{spans:>12,} {size:>8,.0f} {wall:>8.1f} {cpu:>8.1f} {rss:>9,.0f} "
              f"{spans / wall:>10,.0f}")  # fmt: skip


if __name__ == "__main__":
    main()
