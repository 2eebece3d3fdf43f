#!/usr/bin/env python3
"""Save an edit while ``promptbudget compress --write`` runs, and count the edits lost.

    python benchmarks/bench_lost_update.py [--runs 150] [--files 40] [--seed 1]

Each run: a project of FILES loose prompt files; ``compress --write`` started in a fresh
process; after a random delay (uniform between the measured start-up time and the measured
length of a whole run) one prompt gets a line appended in place, as an editor that saves
in place does. Afterwards the edit must be in the file: either compress wrote first and the
edit landed on the compressed text, or compress saw the change and refused ("changed while
compressing; not written"). An edit missing from the file is a lost update. Prints the
outcomes; exits 1 if any edit was lost.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_kill import COMMAND, make_project, timed

EDIT = "A line the user saved while compress ran.\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=150)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="promptbudget-lost-") as scratch:
        project = Path(scratch) / "project"
        startup = timed(project, 0, write=False)
        whole = timed(project, args.files, write=True)
        print(f"start-up {startup:.2f} s, whole run {whole:.2f} s, {args.files} files")
        outcomes = {"kept, write refused": 0, "kept, compressed": 0, "kept, other": 0, "lost": 0}
        for _ in range(args.runs):
            make_project(project, args.files)
            victim = project / "prompts" / f"p{rng.randrange(args.files):03}.j2"
            original = victim.read_text(encoding="utf-8")
            child = subprocess.Popen(
                COMMAND, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            time.sleep(rng.uniform(startup, whole))
            with victim.open("a", encoding="utf-8") as handle:
                handle.write(EDIT)
            _, stderr = child.communicate()
            text = victim.read_text(encoding="utf-8")
            if not text.endswith(EDIT):
                outcomes["lost"] += 1
            elif b"changed while compressing" in stderr:
                outcomes["kept, write refused"] += 1
            elif text != original + EDIT:
                outcomes["kept, compressed"] += 1  # before the edit, or after (it read it)
            else:
                outcomes["kept, other"] += 1
        print(", ".join(f"{name}: {count}" for name, count in outcomes.items()))
        return 1 if outcomes["lost"] else 0


if __name__ == "__main__":
    sys.exit(main())
