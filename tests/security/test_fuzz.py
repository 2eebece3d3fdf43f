"""The fuzz suite's short profile: a few dozen hostile projects (mutated budgets.yaml and one
template of each format), each run in-process under an alarm, the whole run in a child
process under a timeout and an address-space limit. The long campaign (>= 100,000 cases) is
``benchmarks/fuzz_campaign.py``, run by hand (SECURITY.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

CASES = 30


@pytest.mark.parametrize("seed", [11])
def test_short_fuzz_profile_has_no_crash_and_no_hang(seed: int, tmp_path: Path) -> None:
    log = tmp_path / "failures.jsonl"
    try:
        done = subprocess.run(
            [
                sys.executable,
                str(REPO / "benchmarks" / "fuzz_campaign.py"),
                "--cases",
                str(CASES),
                "--seed",
                str(seed),
                "--alarm",
                "20",
                "--memory-gb",
                "3",
                "--progress",
                str(CASES),
                "--log",
                str(log),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the short fuzz profile ran longer than 300 s")
    failures = log.read_text(encoding="utf-8") if log.exists() else ""
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:], failures[:4000])
    assert f"cases {CASES}" in done.stdout
    assert "crashes 0  hangs 0" in done.stdout
