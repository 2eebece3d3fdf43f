"""Where a step's calls go: a model, a split by shares, rules on traffic signals, and
escalations (cascades) of any depth. Pure functions over the manifest's ``Route``s.

``expand_route`` turns a target into weighted lanes: each lane is a model with the share of
the step's calls it serves. A split multiplies by the share; an escalation adds a lane for
the escalation target with weight ``rate`` times the weight of the route it escalates from
(so a three-stage cascade gives ``1``, ``p1`` and ``p1 x p2``). Escalated calls are marked:
caches are per model, so an escalated call pays its prompt in full.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from promptbudget.errors import ManifestError
from promptbudget.manifest.model import Route, RouteRule


@dataclass(frozen=True)
class RoutedModel:
    model: str
    weight: Decimal  # share of the step's calls that reach this model
    escalated: bool = False
    via: tuple[str, ...] = ()  # routes passed through, for explanations


class NoRouteError(ManifestError):
    """A rule-based route has no rule (and no default) for a traffic class."""


def matches(condition: object, value: object) -> bool:
    """``value`` (a signal) satisfies ``condition`` (a value, a list, or a comparison)."""
    if value is None:
        return False
    if isinstance(condition, dict):
        if not isinstance(value, int | float) or isinstance(value, bool):
            return False
        checks = {
            "gt": lambda bound: value > bound,
            "gte": lambda bound: value >= bound,
            "lt": lambda bound: value < bound,
            "lte": lambda bound: value <= bound,
        }
        return all(checks[op](bound) for op, bound in condition.items())
    if isinstance(condition, list):
        return any(matches(option, value) for option in condition)
    if isinstance(condition, str) or isinstance(value, str):
        return str(condition).lower() == str(value).lower()
    return condition == value


def select_rule(rules: tuple[RouteRule, ...], signals: Mapping[str, Any]) -> RouteRule | None:
    """The first rule whose every condition holds."""
    for candidate in rules:
        if all(matches(cond, signals.get(name)) for name, cond in candidate.when.items()):
            return candidate
    return None


def expand_route(
    target: str,
    routes: Mapping[str, Route],
    signals: Mapping[str, Any],
    *,
    where: str = "",
    source: str | None = None,
    weight: Decimal = Decimal(1),
    escalated: bool = False,
    via: tuple[str, ...] = (),
) -> tuple[RoutedModel, ...]:
    """The models ``target`` (a model or a route) sends calls to, with their shares.

    Raises ``NoRouteError`` when a rule-based route has nothing for these signals; ``where``
    names the traffic class and ``source`` the manifest for the message. Cycles are rejected
    when the manifest loads.
    """
    route = routes.get(target)
    if route is None:
        return (RoutedModel(target, weight, escalated, via),)
    path = (*via, route.name)
    lanes: list[RoutedModel] = []

    def add(next_target: str, share: Decimal, *, escalation: bool = escalated) -> None:
        lanes.extend(
            expand_route(
                next_target,
                routes,
                signals,
                where=where,
                source=source,
                weight=weight * share,
                escalated=escalation,
                via=path,
            )
        )

    if route.model is not None:
        add(route.model, Decimal(1))
    elif route.split:
        for split_target, share in route.split:
            add(split_target, share)
    else:
        chosen = select_rule(route.rules, signals)
        fallback = route.default
        if chosen is None and fallback is None:
            shown = ", ".join(f"{k}={v}" for k, v in sorted(signals.items())) or "no signals"
            raise NoRouteError(
                f"route {route.name!r} has no rule for {where or 'this traffic'} ({shown}) and "
                "no default; add a rule or 'default: MODEL'",
                path=source,
                line=route.line,
                json_path=f"$.routes.{route.name}",
            )
        add(chosen.target if chosen is not None else str(fallback), Decimal(1))
    if route.escalation is not None:
        add(route.escalation.to, route.escalation.rate, escalation=True)
    return tuple(lanes)


@dataclass(frozen=True)
class Pick:
    """One of several targets, by share (a split)."""

    options: tuple[tuple[Decimal, RouteNode], ...]


@dataclass(frozen=True)
class Cascade:
    """``first``; then, for a share ``rate`` of its calls, ``then`` as well (an escalation)."""

    first: RouteNode
    rate: Decimal
    then: RouteNode


RouteNode = str | Pick | Cascade  # a str is a model


def route_tree(target: str, routes: Mapping[str, Route], signals: Mapping[str, Any]) -> RouteNode:
    """``target`` as the choices one request makes (``expand_route`` gives their expected
    shares): the latency simulation walks it to find which models one request calls, in
    order. Rule-based routes are resolved with ``signals``; a route with no rule for them has
    already been reported by ``expand_route``."""
    route = routes.get(target)
    if route is None:
        return target
    node: RouteNode
    if route.model is not None:
        node = route_tree(route.model, routes, signals)
    elif route.split:
        node = Pick(tuple((share, route_tree(t, routes, signals)) for t, share in route.split))
    else:
        chosen = select_rule(route.rules, signals)
        node = route_tree(chosen.target if chosen else str(route.default), routes, signals)
    if route.escalation is not None:
        then = route_tree(route.escalation.to, routes, signals)
        node = Cascade(node, route.escalation.rate, then)
    return node
