#!/usr/bin/env python3
"""Kill ``promptbudget compress --write`` at random moments and check that nothing is lost.

    python benchmarks/bench_kill.py [--kills 220] [--files 60] [--seed 1]

Each round: a project of FILES loose prompt files; ``compress --write`` started in a fresh
process and SIGKILLed after a random delay (uniform between the measured start-up time and
the measured length of a whole run, so that most kills land while files are being written);
then every prompt must hold exactly its old or its new bytes. The next run (to completion)
must leave every prompt compressed and no temporary file behind. Prints one line per 20
rounds and a summary; exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGETS = "version: 1\ndefaults: {model: gpt-4.1-mini}\n"
COMMAND = [sys.executable, "-m", "promptbudget", "compress", "--write"]


def loose(index: int) -> str:
    paragraph = f"Prompt {index}:   answer   the question.\n\n\n\nBe   brief   and   kind.\n"
    return paragraph * 40


def tight(root: Path, files: int) -> dict[str, bytes]:
    """What each prompt is after a whole run (computed by running it once)."""
    reference = root / "reference"
    make_project(reference, files)
    subprocess.run(COMMAND, cwd=reference, check=True, capture_output=True)
    result = {p.name: p.read_bytes() for p in (reference / "prompts").iterdir()}
    shutil.rmtree(reference)
    return result


def make_project(root: Path, files: int) -> None:
    if root.exists():
        shutil.rmtree(root)
    (root / "prompts").mkdir(parents=True)
    (root / "budgets.yaml").write_text(BUDGETS, encoding="utf-8")
    for index in range(files):
        (root / "prompts" / f"p{index:03}.j2").write_text(loose(index), encoding="utf-8")


def temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob(".*") if p.name.endswith(".promptbudget-tmp")]


def timed(root: Path, files: int, *, write: bool) -> float:
    make_project(root, files)
    started = time.perf_counter()
    subprocess.run(COMMAND if write else COMMAND[:-1], cwd=root, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=220)
    parser.add_argument("--files", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    base = Path(tempfile.mkdtemp(prefix="promptbudget-kill-"))
    project = base / "project"
    new = tight(base, args.files)
    old = {f"p{i:03}.j2": loose(i).encode() for i in range(args.files)}
    startup = timed(project, 0, write=False)
    whole = timed(project, args.files, write=True)
    print(f"start-up {startup:.2f} s, whole run {whole:.2f} s, {args.files} files")
    mid_write = partly_written = violations = leftovers = 0
    for round_ in range(1, args.kills + 1):
        make_project(project, args.files)
        child = subprocess.Popen(
            COMMAND, cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(rng.uniform(startup, whole))
        child.send_signal(signal.SIGKILL)
        child.wait()
        found = {p.name: p.read_bytes() for p in (project / "prompts").iterdir() if p.is_file()}
        bad = [n for n in old if found.get(n) not in (old[n], new[n])]
        violations += len(bad)
        mid_write += bool(temporaries(project))
        written = sum(found.get(n) == new[n] for n in old)
        partly_written += 0 < written < len(old)
        for name in bad:
            print(f"round {round_}: {name} is neither its old nor its new bytes")
        subprocess.run(COMMAND, cwd=project, check=False, capture_output=True)
        left = temporaries(project)
        after = {p.name: p.read_bytes() for p in (project / "prompts").iterdir() if p.is_file()}
        if left or after != new:
            leftovers += 1
            print(f"round {round_}: after the next run: {len(left)} temporary file(s) left")
        if round_ % 20 == 0:
            print(f"{round_} kills: {mid_write} left a temporary file, {partly_written} mid-run")
    shutil.rmtree(base)
    print(
        f"{args.kills} SIGKILLs: {partly_written} between the first and the last file written, "
        f"{mid_write} with a temporary file on disk at the kill; files neither old nor new: "
        f"{violations}; rounds whose next run left a temporary file or an unwritten file: "
        f"{leftovers}"
    )
    return 1 if violations or leftovers else 0


if __name__ == "__main__":
    sys.exit(main())
