"""From validated manifest data to the model's dataclasses: units parsed, routes checked,
prompt paths confined, the catalog with the manifest's models, each value's line kept for
errors."""

from __future__ import annotations

import difflib
import stat
from collections.abc import Callable, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

from promptbudget.confine import ConfinementError, resolve_path
from promptbudget.errors import (
    ManifestError,
)
from promptbudget.manifest.latency import parse_duration, parse_latency_limit
from promptbudget.manifest.model import (
    ALL_TRAFFIC,
    DAYS_PER_MONTH,
    CostLimit,
    Distribution,
    EngineSetting,
    Escalation,
    Limits,
    Milliseconds,
    Retry,
    Route,
    RouteRule,
    Step,
    TemplateLimit,
    TokenAmount,
    TrafficClass,
    VariableSpec,
    Workflow,
    typical,
)
from promptbudget.manifest.paths import Lines, join_path, line_for
from promptbudget.pricing.catalog import (
    PriceCatalog,
)
from promptbudget.pricing.timeofday import TrafficProfile, is_time_zone
from promptbudget.templates.detect import ENGINES, engine_name
from promptbudget.templates.source import display_path, iter_prompt_files
from promptbudget.tokenizers import TOKENIZERS
from promptbudget.tools import Tool, ToolError, parse_tool
from promptbudget.units import format_share, parse_share, parse_tokens, parse_usd

# A step's model calls per request, turns x (1 + tool_calls): an agent loop far beyond any
# reviewed budget, and what bounds the simulation's work (SECURITY.md).
MAX_CALLS_PER_STEP = 1_000


class Converter:
    def __init__(self, lines: Lines, shown: str, root: Path) -> None:
        self.lines = lines
        self.shown = shown
        self.root = root
        self.tools: dict[str, Tool] = {}
        self._real_dirs: dict[Path, Path | None] = {}  # a directory -> its real path

    def named_tools(self, data: object) -> dict[str, Tool]:
        """The top-level ``tools:``: name -> definition (its name defaults to the key)."""
        tools: dict[str, Tool] = {}
        if not isinstance(data, dict):
            return tools
        for key, value in data.items():
            where = join_path("$.tools", str(key))
            spec = dict(value) if isinstance(value, dict) else value
            if isinstance(spec, dict) and "function" not in spec:
                spec.setdefault("name", str(key))
            try:
                tools[str(key)] = parse_tool(spec, where)
            except ToolError as err:
                raise self.fail(str(err), where) from err
        return tools

    def step_tools(self, data: object, path: str) -> tuple[Tool, ...]:
        if not isinstance(data, list):
            return ()
        tools = []
        for index, item in enumerate(data):
            where = f"{path}.tools[{index}]"
            if isinstance(item, str):
                if item not in self.tools:
                    known = ", ".join(sorted(self.tools)) or "none"
                    raise self.fail(
                        f"no tool named {item!r} under tools: (defined: {known})", where
                    )
                tools.append(self.tools[item])
                continue
            try:
                tools.append(parse_tool(item, where))
            except ToolError as err:
                raise self.fail(str(err), where) from err
        return tuple(tools)

    def fail(self, message: str, json_path: str) -> ManifestError:
        return ManifestError(
            message, path=self.shown, line=line_for(self.lines, json_path), json_path=json_path
        )

    def unit(self, parse: Callable[[object], Any], value: object, json_path: str) -> Any:
        try:
            return parse(value)
        except ValueError as err:
            raise self.fail(str(err), json_path) from err

    def amount(self, value: object, json_path: str) -> TokenAmount:
        """A token count, or ``{p50, p95}``."""
        if isinstance(value, dict):
            p50 = self.unit(parse_tokens, value["p50"], f"{json_path}.p50")
            p95 = self.unit(parse_tokens, value["p95"], f"{json_path}.p95")
            if p95 < p50:
                raise self.fail(f"p95 ({p95:,}) is below p50 ({p50:,})", json_path)
            if p50 == 0 and p95 > 0:
                raise self.fail("p50 must be above 0 when p95 is", json_path)
            return Distribution(p50, p95) if p95 > p50 else p50
        value_tokens: int = self.unit(parse_tokens, value, json_path)
        return value_tokens

    def variables(self, data: Mapping[str, Any] | None, json_path: str) -> dict[str, VariableSpec]:
        out: dict[str, VariableSpec] = {}
        for name, spec in (data or {}).items():
            path = join_path(json_path, name)
            cap = None
            if "max_tokens" in spec:
                cap = self.unit(parse_tokens, spec["max_tokens"], f"{path}.max_tokens")
            tokens = self.amount(spec["tokens"], f"{path}.tokens") if "tokens" in spec else None
            if cap is not None and tokens is not None and typical(tokens) > cap:
                raise self.fail(
                    f"tokens ({typical(tokens):,}) is above max_tokens ({cap:,}), the cap",
                    f"{path}.tokens",
                )
            out[name] = VariableSpec(
                name=name,
                max_tokens=cap,
                tokens=tokens,
                sample=spec.get("sample"),
                has_sample="sample" in spec,
                line=self.lines.get(path),
            )
        return out

    def share(self, value: object, json_path: str) -> Decimal:
        share: Decimal = self.unit(parse_share, value, json_path)
        return share

    def engine(self, pattern: str, value: str) -> EngineSetting:
        """``engines: {glob: engine}``: an engine detection would otherwise decide."""
        json_path = join_path("$.engines", pattern)
        engine = engine_name(value)
        if engine is None:
            raise self.fail(
                f"unknown engine {value!r}; valid engines: {', '.join(ENGINES)}", json_path
            )
        return EngineSetting(pattern, engine, self.lines.get(json_path))

    def shares_sum_to_one(self, shares: list[Decimal], what: str, json_path: str) -> None:
        total = sum(shares, Decimal(0))
        if total != 1:
            raise self.fail(
                f"{what} shares sum to {format_share(total)}; they must sum to 100%", json_path
            )

    def route(self, name: str, data: Mapping[str, Any]) -> Route:
        path = join_path("$.routes", name)
        split = tuple(
            (
                item.get("model") or item["route"],
                self.share(item["share"], f"{path}.split[{i}].share"),
            )
            for i, item in enumerate(data.get("split") or ())
        )
        if split:
            self.shares_sum_to_one([share for _, share in split], "split", f"{path}.split")
        rules = tuple(
            RouteRule(
                when=dict(item["when"]),
                target=item.get("model") or item["route"],
                line=self.lines.get(f"{path}.rules[{i}]"),
            )
            for i, item in enumerate(data.get("rules") or ())
        )
        escalation = None
        if "escalation" in data:
            escalation = Escalation(
                to=data["escalation"]["to"],
                rate=self.share(data["escalation"]["rate"], f"{path}.escalation.rate"),
            )
        return Route(
            name=name,
            model=data.get("model"),
            split=split,
            rules=rules,
            default=data.get("default"),
            escalation=escalation,
            line=self.lines.get(path),
        )

    def check_routes(self, routes: Mapping[str, Route], catalog: PriceCatalog) -> None:
        """Every target is a route or a known model, and no route leads back to itself."""
        for name, route in routes.items():
            path = join_path("$.routes", name)
            if catalog.lookup(name) is not None:
                raise self.fail(
                    f"route {name!r} has the name of a model; give the route another name", path
                )
            for target in route.targets:
                if target not in routes and catalog.lookup(target) is None:
                    near = catalog.closest(target)
                    hint = f"; did you mean {', '.join(near)}?" if near else ""
                    raise self.fail(
                        f"route {name!r} sends calls to {target!r}, which is neither a route "
                        f"nor a model in the catalog{hint} (declare it under models:)",
                        path,
                    )
        for name in routes:
            cycle = find_cycle(name, routes, ())
            if cycle:
                raise self.fail(
                    f"routes form a cycle: {' -> '.join(cycle)}; a cascade must end at a model",
                    join_path("$.routes", cycle[0]),
                )

    def step(self, data: Mapping[str, Any], path: str, prompts_dir: Path) -> Step:
        prompt = data["prompt"]
        prompt_path = self.prompt_path(prompt, prompts_dir, f"{path}.prompt")
        name = data.get("name") or Path(prompt).name.split(".", 1)[0]

        def tokens(key: str) -> int | None:
            if key not in data:
                return None
            value: int = self.unit(parse_tokens, data[key], f"{path}.{key}")
            return value

        def share(key: str) -> Decimal | None:
            return self.share(data[key], f"{path}.{key}") if key in data else None

        def duration(key: str) -> Milliseconds | None:
            return self.unit(parse_duration, data[key], f"{path}.{key}") if key in data else None

        max_output = tokens("max_output_tokens")
        if max_output == 0:
            raise self.fail("max_output_tokens must be 1 or more", f"{path}.max_output_tokens")
        retry = None
        if "retry" in data:
            retry = Retry(
                failure_rate=self.share(
                    data["retry"]["failure_rate"], f"{path}.retry.failure_rate"
                ),
                max_attempts=int(data["retry"]["max_attempts"]),
                backoff_ms=float(data["retry"].get("backoff_ms", 0)),
            )
        output = (
            self.amount(data["output_tokens"], f"{path}.output_tokens")
            if "output_tokens" in data
            else None
        )
        turns, tool_calls = int(data.get("turns", 1)), int(data.get("tool_calls", 0))
        if turns * (1 + tool_calls) > MAX_CALLS_PER_STEP:
            raise self.fail(
                f"turns: {turns} with tool_calls: {tool_calls} is {turns * (1 + tool_calls):,} "
                f"model calls per request; a step makes at most {MAX_CALLS_PER_STEP:,} "
                "(turns x (1 + tool_calls))",
                f"{path}.turns",
            )
        limits, limit_lines = self.limits(data.get("limits") or {}, f"{path}.limits")
        return Step(
            name=name,
            prompt=prompt,
            prompt_path=prompt_path,
            model=data.get("model"),
            route=data.get("route"),
            output_tokens=output,
            max_output_tokens=max_output,
            turns=turns,
            tool_calls=tool_calls,
            tool_result_tokens=tokens("tool_result_tokens") or 0,
            tool_latency_ms=duration("tool_latency_ms"),
            retrieval_latency_ms=duration("retrieval_latency_ms"),
            user_turn_tokens=tokens("user_turn_tokens"),
            variables=self.variables(data.get("variables"), f"{path}.variables"),
            prompt_cache_hit_rate=share("prompt_cache_hit_rate"),
            retry=retry,
            batch_share=share("batch_share"),
            line=self.lines.get(path),
            tools=self.step_tools(data.get("tools"), path),
            limits=limits,
            limit_lines=limit_lines,
        )

    def resolved(self, base: Path, value: str, json_path: str) -> Path:
        """``base / value`` with symlinks resolved; a name no file system accepts (a NUL, a
        component over 255 bytes, a symlink loop) is an error at ``json_path``."""
        try:
            return resolve_path(base / value)
        except ConfinementError as err:
            raise self.fail(f"{value[:80]!r} {err.reason}", json_path) from err

    def prompt_path(self, prompt: str, prompts_dir: Path, path: str) -> Path:
        candidate = prompts_dir / prompt
        found = self.regular_file(candidate)  # the common case: one system call
        if found is not None and found.is_relative_to(self.root):
            return found
        resolved = self.resolved(prompts_dir, prompt, path)
        if not resolved.is_relative_to(self.root):
            raise self.fail(
                f"prompt {prompt!r} is outside the project root; templates must live inside it",
                path,
            )
        if not candidate.exists():
            shown_dir = display_path(prompts_dir, self.root)
            raise self.fail(
                f"prompt file {prompt!r} not found (looked in {shown_dir}/); paths are relative "
                "to the prompts directory",
                path,
            )
        if candidate.is_dir():
            raise self.fail(f"prompt {prompt!r} is a directory; name a template file", path)
        return resolved

    def regular_file(self, candidate: Path) -> Path | None:
        """The real path of ``candidate`` when it is a regular file (not a symlink): its
        directory's real path (resolved once a directory) and its name; None otherwise (the
        caller resolves it the long way and says what is wrong)."""
        try:
            found = candidate.lstat()
        except (OSError, ValueError):
            return None
        if not stat.S_ISREG(found.st_mode):
            return None
        parent = candidate.parent
        if parent not in self._real_dirs:
            try:
                self._real_dirs[parent] = resolve_path(parent)
            except ConfinementError:
                self._real_dirs[parent] = None
        real_dir = self._real_dirs[parent]
        return None if real_dir is None else real_dir / candidate.name

    def traffic_classes(self, data: Mapping[str, Any], path: str) -> tuple[TrafficClass, ...]:
        classes = data.get("classes")
        if not classes:
            return (ALL_TRAFFIC,)
        parsed = tuple(
            TrafficClass(
                name=name,
                share=self.share(spec["share"], f"{path}.classes.{name}.share"),
                signals=dict(spec.get("signals") or {}),
                variables=self.variables(spec.get("variables"), f"{path}.classes.{name}.variables"),
                line=self.lines.get(join_path(f"{path}.classes", name)),
            )
            for name, spec in classes.items()
        )
        self.shares_sum_to_one([c.share for c in parsed], "traffic class", f"{path}.classes")
        return parsed

    def limits(
        self, limits_data: Mapping[str, Any], limits_path: str
    ) -> tuple[Limits, dict[str, int]]:
        """A workflow's or a step's ``limits:`` and the line of each."""
        parsed: dict[str, Any] = {}
        for key, value in limits_data.items():
            key_path = f"{limits_path}.{key}"
            if key in {"max_cost_per_request", "max_cost_per_outcome"}:
                parsed[key] = self.cost_limit(value, key_path)
            elif key in {"max_monthly_spend", "max_daily_spend"}:
                parsed[key] = self.unit(parse_usd, value, key_path)
            elif key in {"max_input_tokens", "max_output_tokens"}:
                parsed[key] = self.unit(parse_tokens, value, key_path)
            elif key == "max_latency_ms":
                parsed[key] = self.unit(parse_latency_limit, value, key_path)
            else:
                parsed[key] = int(value)
        limit_lines = {
            key: line
            for key in limits_data
            if (line := self.lines.get(f"{limits_path}.{key}")) is not None
        }
        return Limits(**parsed), limit_lines

    def template_limits(
        self, data: Mapping[str, Any] | None, catalog: PriceCatalog
    ) -> tuple[TemplateLimit, ...]:
        """``templates:``: each pattern's ``max_tokens``, for its own model or per model or
        encoding (each key must be a model of the catalog or a bundled encoding)."""
        found = []
        for pattern, spec in (data or {}).items():
            path = join_path("$.templates", str(pattern))
            value = spec["max_tokens"]
            limits: dict[str | None, int] = {}
            lines: dict[str | None, int] = {}
            if isinstance(value, dict):
                for key, tokens in value.items():
                    key_path = join_path(f"{path}.max_tokens", str(key))
                    name = str(key)
                    if name not in TOKENIZERS and catalog.lookup(name) is None:
                        near = catalog.closest(name) + difflib.get_close_matches(
                            name, list(TOKENIZERS), n=2
                        )
                        hint = f"; did you mean {', '.join(near)}?" if near else ""
                        raise self.fail(
                            f"{name!r} is neither a model in the catalog nor an encoding "
                            f"({', '.join(TOKENIZERS)}){hint}",
                            key_path,
                        )
                    limits[name] = self.unit(parse_tokens, tokens, key_path)
                    if (line := self.lines.get(key_path)) is not None:
                        lines[name] = line
            else:
                limits[None] = self.unit(parse_tokens, value, f"{path}.max_tokens")
                if (line := self.lines.get(f"{path}.max_tokens")) is not None:
                    lines[None] = line
            found.append(
                TemplateLimit(str(pattern), limits, line=self.lines.get(path), lines=lines)
            )
        return tuple(found)

    def matched(
        self, limits: tuple[TemplateLimit, ...], prompts_dir: Path
    ) -> tuple[TemplateLimit, ...]:
        """Every ``templates:`` pattern matches a file in the prompts directory (a typo
        would otherwise limit nothing, silently)."""
        if not limits:
            return limits
        from promptbudget.suppressions import glob_matches

        files = list(iter_prompt_files([prompts_dir])) if prompts_dir.is_dir() else []
        names = [(display_path(p, self.root), p.relative_to(prompts_dir).as_posix()) for p in files]
        for limit in limits:
            if any(glob_matches(limit.pattern, name) for pair in names for name in pair):
                continue
            near = difflib.get_close_matches(limit.pattern, [pair[0] for pair in names], n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            shown_dir = display_path(prompts_dir, self.root)
            raise self.fail(
                f"templates: {limit.pattern!r} matches no file in {shown_dir}/ (paths and globs "
                f"are relative to the project root or the prompts directory){hint}",
                join_path("$.templates", limit.pattern),
            )
        return limits

    def cost_limit(self, value: object, json_path: str) -> CostLimit:
        if isinstance(value, dict):
            ((statistic, amount),) = value.items()
            return CostLimit(self.unit(parse_usd, amount, f"{json_path}.{statistic}"), statistic)
        return CostLimit(self.unit(parse_usd, value, json_path))

    def traffic_profile(self, data: Mapping[str, Any], path: str) -> TrafficProfile | None:
        """``traffic: {timezone, hourly}``: when requests are sent (time-of-day prices)."""
        if "hourly" not in data:
            if "timezone" in data:
                raise self.fail("timezone needs hourly: a list of 24 or 168 weights", path)
            return None
        hourly = tuple(Decimal(str(value)) for value in data["hourly"])
        if len(hourly) not in (24, 168):
            raise self.fail(
                f"hourly has {len(hourly)} weights; give 24 (one per hour of the day) or 168 "
                "(Monday 00:00 to Sunday 23:00)",
                f"{path}.hourly",
            )
        if not any(hourly):
            raise self.fail("hourly needs at least one hour with traffic", f"{path}.hourly")
        timezone = str(data.get("timezone", "UTC"))
        if not is_time_zone(timezone):
            raise self.fail(
                f"unknown time zone {timezone!r}; use an IANA name such as UTC or Europe/Berlin",
                f"{path}.timezone",
            )
        return TrafficProfile(timezone=timezone, hourly=hourly)

    def workflow(
        self, name: str, data: Mapping[str, Any], prompts_dir: Path, routes: Mapping[str, Route]
    ) -> Workflow:
        path = join_path("$.workflows", name)
        steps = tuple(
            self.step(step, f"{path}.steps[{index}]", prompts_dir)
            for index, step in enumerate(data["steps"])
        )
        seen: set[str] = set()
        for index, step in enumerate(steps):
            if step.name in seen:
                raise self.fail(
                    f"two steps are named {step.name!r}; give one a different 'name:'",
                    f"{path}.steps[{index}]",
                )
            seen.add(step.name)
            if step.route is not None and step.route not in routes:
                near = difflib.get_close_matches(step.route, list(routes), n=3)
                hint = f"; did you mean {', '.join(near)}?" if near else ""
                raise self.fail(
                    f"step {step.name!r} uses route {step.route!r}, which is not under routes:"
                    f"{hint}",
                    f"{path}.steps[{index}].route",
                )
        traffic = data.get("traffic") or {}
        # Monthly traffic is kept as written, so a monthly limit compares exactly.
        per_month: Decimal | None = None
        if "requests_per_day" in traffic:
            per_month = Decimal(str(traffic["requests_per_day"])) * DAYS_PER_MONTH
        elif "requests_per_month" in traffic:
            per_month = Decimal(str(traffic["requests_per_month"]))
        success = Decimal(1)
        if "success_rate" in data:
            success = self.share(data["success_rate"], f"{path}.success_rate")
            if success == 0:
                raise self.fail(
                    "success_rate must be above 0% (cost per outcome divides by it)",
                    f"{path}.success_rate",
                )
        limits, limit_lines = self.limits(data.get("limits") or {}, f"{path}.limits")
        optional_shares = {
            key: self.share(data[key], f"{path}.{key}")
            for key in ("semantic_cache_hit_rate", "batch_share")
            if key in data
        }
        return Workflow(
            name=name,
            steps=steps,
            limits=limits,
            description=data.get("description"),
            requests_per_month=per_month,
            success_rate=success,
            classes=self.traffic_classes(traffic, f"{path}.traffic"),
            traffic_profile=self.traffic_profile(traffic, f"{path}.traffic"),
            line=self.lines.get(path),
            limit_lines=limit_lines,
            **optional_shares,
        )


def find_cycle(name: str, routes: Mapping[str, Route], stack: tuple[str, ...]) -> tuple[str, ...]:
    if name in stack:
        return (*stack[stack.index(name) :], name)
    route = routes.get(name)
    if route is None:
        return ()
    for target in route.targets:
        cycle = find_cycle(target, routes, (*stack, name))
        if cycle:
            return cycle
    return ()
