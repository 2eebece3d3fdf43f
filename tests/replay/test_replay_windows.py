"""``replay --since/--until --compare-to``: two windows of production compared, a planted
change flagged (PB119) and an unchanged distribution left alone.

The spans are generated here, seeded: the same output-length and input-size distributions in
both windows, and a retry rate (a failed attempt, span status ERROR, followed by the call
again) of 2% in the first window and 15% in the second.
"""

from __future__ import annotations

import json
import math
import random
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from replay_project import project_fixture  # noqa: F401  (the "project" fixture)

from conftest import readme_snippet

pytest.importorskip("duckdb", reason="replay needs duckdb (pip install -e '.[dev]')")

DAY_NS = 86_400 * 10**9
BASE_NS = 1_764_547_200 * 10**9  # 2025-12-01T00:00:00Z


def _attr(key: str, value: object) -> dict[str, Any]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": str(value)}}


def _span(trace: str, start: int, output: int | None, *, failed: bool = False) -> str:
    attributes = [
        _attr("gen_ai.operation.name", "chat"),
        _attr("gen_ai.response.model", "gpt-4.1-nano"),
        _attr("promptbudget.workflow", "support"),
        _attr("promptbudget.step", "classify"),
    ]
    if output is not None:
        attributes += [
            _attr("gen_ai.usage.input_tokens", 400),
            _attr("gen_ai.usage.output_tokens", output),
        ]
    if failed:
        attributes.append(_attr("error.type", "500"))
    return json.dumps(
        {
            "traceId": trace,
            "spanId": f"{start % 2**64:016x}",
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + 300_000_000),
            "attributes": attributes,
            "status": {"code": 2} if failed else {},
        }
    )


def generate(
    rng: random.Random, first_day: int, days: int, requests: int, retry: float
) -> list[str]:
    lines = []
    for index in range(requests):
        trace = f"{rng.getrandbits(128):032x}"
        start = BASE_NS + first_day * DAY_NS + index * (days * DAY_NS // requests)
        if rng.random() < retry:
            lines.append(_span(trace, start, None, failed=True))
            start += 500_000_000
        output = max(1, round(3 * math.exp(0.3 * rng.gauss(0.0, 1.0))))
        lines.append(_span(trace, start, output))
    return lines


def test_a_planted_change_in_retry_rate_is_flagged_and_nothing_else(
    project: Path, run_cli: Callable[..., Any]
) -> None:
    rng = random.Random(5)
    earlier = generate(rng, 0, 3, 1500, 0.02)
    lines = earlier + generate(rng, 3, 3, 1500, 0.15)
    log = project / "spans.jsonl"
    log.write_text("\n".join(lines) + "\n")
    failed_before = sum('"error.type"' in line for line in earlier)
    result = run_cli(
        "replay", str(log), "--since", "2025-12-04", "--until", "2025-12-06",
        "--compare-to", "2025-12-01..2025-12-03", "--format", "json", cwd=project,
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr  # PB119 is a warning
    report = result.json()
    flagged = [f for f in report["findings"] if f["rule"] == "PB119"]
    assert len(flagged) == 1, [f["message"] for f in flagged]
    assert "retry rate" in flagged[0]["message"]
    assert flagged[0]["step"] == "classify"
    changes = {c["measure"]: c for c in report["replay"]["comparison"]["changes"]}
    retry = changes["retry_rate"]
    assert retry["is_flagged"]
    # the windows hold exactly the requests generated in them: 1,500 each, plus the failures
    assert retry["calls_before"] == 1500 + failed_before
    assert retry["before"] == pytest.approx(failed_before / (1500 + failed_before))
    assert retry["before"] == pytest.approx(0.02, abs=0.01)
    assert retry["after"] == pytest.approx(0.15 / 1.15, abs=0.02)
    assert not changes["output_tokens"]["is_flagged"]
    assert not changes["input_tokens"]["is_flagged"]
    assert report["replay"]["window"] == "2025-12-04..2025-12-06"
    assert report["replay"]["workflows"][0]["requests"] == 1500

    text = run_cli(
        "replay", str(log), "--since", "2025-12-04", "--compare-to", "..2025-12-03", cwd=project
    ).stdout
    assert "Changes between …..2025-12-03 and 2025-12-04..…: 1 flagged (PB119)" in text
    assert "PB119 sudden-change" in text


def test_too_few_calls_in_a_window_are_never_flagged(
    project: Path, run_cli: Callable[..., Any]
) -> None:
    rng = random.Random(6)
    lines = generate(rng, 0, 1, 20, 0.0) + generate(rng, 3, 1, 20, 0.5)
    log = project / "spans.jsonl"
    log.write_text("\n".join(lines) + "\n")
    result = run_cli(
        "replay", str(log), "--since", "2025-12-04", "--compare-to", "2025-12-01..2025-12-02",
        "--format", "json", cwd=project,
    )  # fmt: skip
    report = result.json()
    assert not [f for f in report["findings"] if f["rule"] == "PB119"]
    retry = {c["measure"]: c for c in report["replay"]["comparison"]["changes"]}["retry_rate"]
    assert retry["too_few"] and not retry["is_flagged"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "--since/--until 'yesterday': expected an ISO 8601 date"),
        (["--compare-to", "2025-12-01"], "expected SINCE..UNTIL"),
        (["--since", "2025-12-05", "--until", "2025-12-01"], "ends before it starts"),
    ],
)
def test_bad_windows_are_one_line_and_exit_2(
    project: Path, run_cli: Callable[..., Any], args: list[str], message: str
) -> None:
    (project / "empty.jsonl").write_text("")
    result = run_cli("replay", "empty.jsonl", *args, cwd=project)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_the_readme_command_flags_the_planted_change(
    project: Path, run_cli: Callable[..., Any]
) -> None:
    rng = random.Random(5)
    (project / "logs").mkdir()
    lines = generate(rng, 0, 3, 1500, 0.02) + generate(rng, 3, 3, 1500, 0.15)
    (project / "logs" / "spans.jsonl").write_text("\n".join(lines) + "\n")
    (command,) = readme_snippet("replay-compare").strip().splitlines()
    args = shlex.split(command)
    assert args[:2] == ["promptbudget", "replay"]
    result = run_cli(*args[1:], cwd=project)
    assert result.exit_code == 0, result.stderr
    assert "PB119 sudden-change" in result.stdout
    assert "retry rate 1.4% → 13.5%" in result.stdout


def test_thresholds_come_from_replay_changes_in_budgets_yaml(
    project: Path, run_cli: Callable[..., Any]
) -> None:
    """With ``rate_change: 20%`` the planted 2% -> 15% retry rate (about +12 points) is no
    longer a change; ``min_calls`` below 2 is refused. The README's example loads."""
    from promptbudget.manifest.loader import compose_yaml, validate

    example = readme_snippet("replay-changes")
    validate(*compose_yaml("version: 1\n" + example, "budgets.yaml"), "budgets.yaml")
    budgets = project / "budgets.yaml"
    budgets.write_text(
        budgets.read_text() + "replay:\n  changes: {rate_change: 20%, min_calls: 2}\n"
    )
    rng = random.Random(5)
    lines = generate(rng, 0, 3, 1500, 0.02) + generate(rng, 3, 3, 1500, 0.15)
    (project / "spans.jsonl").write_text("\n".join(lines) + "\n")
    result = run_cli(
        "replay", "spans.jsonl", "--since", "2025-12-04", "--compare-to", "..2025-12-03",
        "--format", "json", cwd=project,
    )  # fmt: skip
    report = result.json()
    assert not [f for f in report["findings"] if f["rule"] == "PB119"]
    retry = {c["measure"]: c for c in report["replay"]["comparison"]["changes"]}["retry_rate"]
    assert not retry["too_few"] and not retry["is_flagged"]
    budgets.write_text(budgets.read_text().replace("min_calls: 2", "min_calls: 1"))
    bad = run_cli("replay", "spans.jsonl", cwd=project)
    assert bad.exit_code == 2 and "min_calls" in bad.stderr
