"""A whole project priced with a custom model, against hand computation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import Run
from promptbudget.tokenizers import get_tokenizer

TEMPLATE = "system:\nYou are a terse assistant.\nuser:\n{{ question }}\n"


def test_request_month_and_outcome_match_hand_computation(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = make_project(
        {
            "budgets.yaml": """\
                version: 1
                models:
                  acme-small:
                    tokenizer: o200k_base
                    input_per_mtok: 0.10
                    output_per_mtok: 0.40
                    context_window: 100k
                    max_output_tokens: 4k
                    long_context:
                      threshold_tokens: 1100
                      input_per_mtok: 0.20
                      output_per_mtok: 0.80
                workflows:
                  qa:
                    traffic: {requests_per_day: 1000}
                    success_rate: 80%
                    steps:
                      - prompt: qa.j2
                        model: acme-small
                        output_tokens: 100
                        turns: 2
                        user_turn_tokens: 50
                        variables:
                          question: {max_tokens: 1000}
            """,
            "prompts/qa.j2": TEMPLATE,
        }
    )
    payload = run_cli("check", "--format", "json", cwd=root).json()
    (workflow,) = payload["workflows"]
    (step,) = workflow["steps"]

    o200k = get_tokenizer("o200k_base")
    # Messages: system "You are a terse assistant." and user (the 1,000-token cap), each with
    # 3 framing tokens plus its role, and 3 to prime the reply.
    prompt = o200k.count("You are a terse assistant.") + 1000 + 2 * (3 + 1) + 3
    assert step["prompt_tokens"] == prompt
    # Turn 2 re-sends the prompt, the first reply (100 + 4 framing) and the user turn (50 + 4).
    second = prompt + 104 + 54
    assert [c["input_tokens"] for c in step["calls"]] == [prompt, second]
    # The second call is above the 1,100-token threshold: the whole call at the tier's rates.
    assert second > 1100 >= prompt
    first_cost = (prompt * 0.10 + 100 * 0.40) / 1e6
    second_cost = (second * 0.20 + 100 * 0.80) / 1e6
    assert [c["long_context"] for c in step["calls"]] == [False, True]
    assert abs(workflow["cost_per_request_usd"] - (first_cost + second_cost)) < 1e-12
    assert abs(workflow["cost_per_outcome_usd"] - (first_cost + second_cost) / 0.8) < 1e-12
    assert abs(workflow["monthly_spend_usd"] - (first_cost + second_cost) * 30_000) < 1e-9


def test_a_50_mb_template_is_a_finding_not_a_stall(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = make_project({"budgets.yaml": "version: 1\n"})
    (root / "prompts").mkdir()
    with (root / "prompts" / "huge.txt").open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: the test writes no 50 MB
    result = run_cli("check", "--format", "json", cwd=root)
    assert result.exit_code == 1
    (finding,) = result.json()["findings"]
    assert finding["rule"] == "PB001"
    assert "50.0 MB" in finding["message"] and "not counted" in finding["message"]
