"""The console script's exit (launcher.run): output flushed whole, exit code kept, a closed
pipe is not an error, and the collector settings stay out of in-process callers."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

from promptbudget.launcher import START_UP_THRESHOLD, main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUN = [sys.executable, "-m", "promptbudget"]


def _many_templates(root: Path, count: int) -> Path:
    (root / "prompts").mkdir()
    for index in range(count):
        (root / "prompts" / f"t{index:03d}.j2").write_text(f"Template {index}.\n", "utf-8")
    return root


def test_large_output_reaches_a_pipe_whole(tmp_path: Path) -> None:
    """``os._exit`` skips the interpreter's own flush: a report much larger than a pipe's
    buffer must still arrive whole and parse."""
    result = subprocess.run(
        [*RUN, "count", "--format", "json", "--no-cache"],
        cwd=_many_templates(tmp_path, 300),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout) > 65_536
    assert json.loads(result.stdout)["summary"]["exit_code"] == 0


def test_exit_code_of_a_failing_check_is_kept(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "a.j2").write_text("Say hello to {{ name }}.\n", encoding="utf-8")
    (tmp_path / "budgets.yaml").write_text(
        "version: 1\n"
        "workflows:\n"
        "  w:\n"
        "    limits: {max_input_tokens: 1}\n"
        "    steps:\n"
        "      - {name: s, prompt: a.j2, model: gpt-4o, output_tokens: 5}\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [*RUN, "check", "--no-cache"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 1, result.stderr
    assert "PB101" in result.stdout


def test_a_reader_that_goes_away_is_not_an_error(tmp_path: Path) -> None:
    """``promptbudget count | head -1``: no "Exception ignored ... BrokenPipeError" on stderr
    (the interpreter printed one at exit before)."""
    process = subprocess.Popen(
        [*RUN, "count", "--format", "json", "--no-cache"],
        cwd=_many_templates(tmp_path, 300),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.read(10)
    process.stdout.close()  # before the report is written whole
    with process.stderr:
        stderr = process.stderr.read().decode()
    process.wait(timeout=60)
    assert "BrokenPipeError" not in stderr
    assert "Traceback" not in stderr


def test_in_process_main_leaves_the_collector_alone() -> None:
    before = gc.get_threshold()
    assert before != START_UP_THRESHOLD
    main(["--version"])
    assert gc.get_threshold() == before
