"""The README's "Enforce budgets at run time" example runs as printed, offline."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import readme_snippet
from promptbudget.manifest.loader import compose_yaml, validate
from promptbudget.tokenizers import load_encoding

pytest.importorskip("openai", reason="the openai package is not installed ([openai])")


def test_the_runtime_example_refuses_the_long_call_before_it_is_sent(tmp_path: Path) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "answer.j2").write_text("Hi\n", encoding="utf-8")
    manifest = readme_snippet("runtime-budgets")
    validate(*compose_yaml(manifest, "budgets.yaml"), "budgets.yaml")
    (tmp_path / "budgets.yaml").write_text(manifest, encoding="utf-8")
    (tmp_path / "example.py").write_text(readme_snippet("runtime-openai"), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == readme_snippet("runtime-openai-output")


def test_the_printed_figures_are_the_cookbook_count_and_the_list_price() -> None:
    # One user message: 3 framing + tokens("user") + content + 3 reply priming (OpenAI's
    # cookbook); gpt-4.1-mini lists $0.40 / $1.60 per million input / output tokens.
    encoding = load_encoding("o200k_base")
    content = len(encoding.encode_ordinary("ERROR timeout at db-7 " * 500))
    sent = 3 + len(encoding.encode_ordinary("user")) + content + 3
    output = readme_snippet("runtime-openai-output")
    assert f"{sent:,} input tokens, limit 2,000; cut {sent - 2000:,}" in output
    assert f"spent: ${24 * 0.40 / 1e6 + 6 * 1.60 / 1e6:.7f}" in output


def test_the_deadline_example_runs_with_the_time_left_as_timeout(tmp_path: Path) -> None:
    """The deadline snippet, run after the OpenAI example (which defines ``budgets`` and
    ``client`` against a fake endpoint): the call goes out and time is left of the 3 s."""
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "answer.j2").write_text("Hi\n", encoding="utf-8")
    (tmp_path / "budgets.yaml").write_text(readme_snippet("runtime-budgets"), encoding="utf-8")
    script = (
        readme_snippet("runtime-openai")
        + '\nmsgs = [{"role": "user", "content": "Where is my order?"}]\n'
        + "print('---')\n"
        + readme_snippet("runtime-deadline")
        + "print(sent[-1].extensions['timeout']['read'] <= 3.0)\n"
    )
    (tmp_path / "example.py").write_text(script, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "example.py"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    left, timeout_within = result.stdout.split("---\n")[1].splitlines()
    assert left.endswith(" ms left") and 0 < int(left.split()[0]) <= 3000
    assert timeout_within == "True"
