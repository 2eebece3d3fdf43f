from __future__ import annotations

from decimal import Decimal as D

import pytest

from promptbudget.manifest.model import Escalation, Route, RouteRule
from promptbudget.routing import NoRouteError, RoutedModel, expand_route, matches


@pytest.mark.parametrize(
    ("condition", "value", "expected"),
    [
        ("high", "high", True),
        ("high", "HIGH", True),
        ("high", "low", False),
        (["gold", "platinum"], "gold", True),
        (["gold", "platinum"], "free", False),
        ({"gt": 8000}, 9000, True),
        ({"gt": 8000}, 8000, False),
        ({"gte": 8000, "lt": 10000}, 8000, True),
        ({"lte": 10}, "10", False),
        (True, True, True),
        ("high", None, False),
    ],
)
def test_conditions(condition: object, value: object, expected: bool) -> None:
    assert matches(condition, value) is expected


ROUTES = {
    "router": Route(name="router", split=(("cheap", D("0.6")), ("frontier", D("0.4")))),
    "cascade": Route(name="cascade", model="a", escalation=Escalation("second", D("0.3"))),
    "second": Route(name="second", model="b", escalation=Escalation("c", D("0.5"))),
    "rules": Route(
        name="rules",
        rules=(RouteRule({"risk": "high"}, "cascade"), RouteRule({"tier": "gold"}, "b")),
        default="router",
    ),
    "strict": Route(name="strict", rules=(RouteRule({"risk": "high"}, "b"),)),
}


def test_a_model_is_its_own_lane() -> None:
    assert expand_route("gpt-4o", ROUTES, {}) == (RoutedModel("gpt-4o", D(1)),)


def test_split_weights() -> None:
    lanes = expand_route("router", ROUTES, {})
    assert [(lane.model, lane.weight, lane.escalated) for lane in lanes] == [
        ("cheap", D("0.6"), False),
        ("frontier", D("0.4"), False),
    ]


def test_cascade_of_three_stages() -> None:
    lanes = expand_route("cascade", ROUTES, {})
    assert [(lane.model, lane.weight, lane.escalated) for lane in lanes] == [
        ("a", D(1), False),
        ("b", D("0.3"), True),
        ("c", D("0.15"), True),
    ]
    assert lanes[2].via == ("cascade", "second")


def test_rules_pick_the_first_match_then_the_default() -> None:
    assert [lane.model for lane in expand_route("rules", ROUTES, {"risk": "high"})] == [
        "a",
        "b",
        "c",
    ]
    assert [lane.model for lane in expand_route("rules", ROUTES, {"tier": "gold"})] == ["b"]
    assert [lane.model for lane in expand_route("rules", ROUTES, {})] == ["cheap", "frontier"]


def test_no_rule_and_no_default_is_an_error() -> None:
    with pytest.raises(NoRouteError, match="route 'strict' has no rule for class 'faq'"):
        expand_route("strict", ROUTES, {"risk": "low"}, where="class 'faq'")
