from __future__ import annotations

from typing import Any

import pytest

from promptbudget.errors import UsageError
from promptbudget.manifest.overrides import apply_overrides, parse_override

DATA: dict[str, Any] = {
    "version": 1,
    "defaults": {"model": "gpt-4.1-mini"},
    "workflows": {
        "support-reply": {
            "traffic": {"requests_per_day": 100},
            "steps": [{"prompt": "support/classify.j2"}, {"name": "answer", "prompt": "a.j2"}],
        },
        "v2.summary": {"steps": [{"prompt": "s.j2"}]},
    },
}


def test_values_are_yaml() -> None:
    assert parse_override("traffic.requests_per_day=50000") == ("traffic.requests_per_day", 50000)
    assert parse_override("a.b=80%") == ("a.b", "80%")
    assert parse_override("a.b={p50: 200, p95: 400}") == ("a.b", {"p50": 200, "p95": 400})
    assert parse_override("a.model=gpt-5.4-mini") == ("a.model", "gpt-5.4-mini")


def test_step_by_name_or_prompt_stem() -> None:
    result = apply_overrides(
        DATA,
        ["support-reply.steps.answer.model=gpt-5.4-mini", "support-reply.steps.classify.turns=2"],
    )
    steps = result["workflows"]["support-reply"]["steps"]
    assert steps[1]["model"] == "gpt-5.4-mini"
    assert steps[0]["turns"] == 2
    assert "model" not in DATA["workflows"]["support-reply"]["steps"][1]  # a copy


def test_workflow_keys_apply_to_every_workflow_or_the_selected_one() -> None:
    every = apply_overrides(DATA, ["traffic.requests_per_day=5"])
    assert every["workflows"]["support-reply"]["traffic"]["requests_per_day"] == 5
    assert every["workflows"]["v2.summary"]["traffic"]["requests_per_day"] == 5
    one = apply_overrides(DATA, ["traffic.requests_per_day=5"], workflow="v2.summary")
    assert one["workflows"]["support-reply"]["traffic"]["requests_per_day"] == 100


def test_dotted_workflow_names_and_top_level_keys() -> None:
    result = apply_overrides(DATA, ["v2.summary.success_rate=90%", "defaults.model=gpt-4o"])
    assert result["workflows"]["v2.summary"]["success_rate"] == "90%"
    assert result["defaults"]["model"] == "gpt-4o"
    explicit = apply_overrides(DATA, ["workflows.v2.summary.batch_share=50%"])
    assert explicit["workflows"]["v2.summary"]["batch_share"] == "50%"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nothing", "expected PATH=VALUE"),
        ("support-reply.steps.nope.model=x", "no step named 'nope' (steps: classify, answer)"),
        ("whatever.model=x", "'whatever' is neither a workflow"),
        ("support-reply.steps.model=x", "set a field of a step"),
        ("workflows.nope.model=x", "no such workflow"),
    ],
)
def test_bad_overrides(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        apply_overrides(DATA, [text])


def test_a_what_if_replaces_what_it_contradicts() -> None:
    """A routed step sent to one model is no longer routed; a split route made one model no
    longer splits. Otherwise the manifest would hold both, which it refuses."""
    data: dict[str, Any] = {
        "version": 1,
        "routes": {
            "mix": {"split": [{"model": "a", "share": "50%"}, {"model": "b", "share": "50%"}]}
        },
        "workflows": {"w": {"steps": [{"name": "s", "prompt": "s.j2", "route": "mix"}]}},
    }
    step = apply_overrides(data, ["w.steps.s.model=gpt-5.4-mini"])["workflows"]["w"]["steps"][0]
    assert step == {"name": "s", "prompt": "s.j2", "model": "gpt-5.4-mini"}
    route = apply_overrides(data, ["routes.mix.model=gpt-5.4-mini"])["routes"]["mix"]
    assert route == {"model": "gpt-5.4-mini"}
    routed = apply_overrides(
        {**data, "workflows": {"w": {"steps": [{"prompt": "s.j2", "model": "x"}]}}},
        ["w.steps.s.route=mix"],
    )
    assert routed["workflows"]["w"]["steps"][0] == {"prompt": "s.j2", "route": "mix"}
