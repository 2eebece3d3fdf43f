"""``promptbudget replay LOG...``: production usage logs measured against budgets.yaml."""

from __future__ import annotations

import glob
import tempfile
from pathlib import Path

from promptbudget.errors import UsageError
from promptbudget.evaluation import sort_findings
from promptbudget.options import Options
from promptbudget.project import Project
from promptbudget.replay import drift as drifts
from promptbudget.replay import windows
from promptbudget.replay.calibration import calibrate
from promptbudget.replay.engine import (
    EXACT_QUANTILES_UP_TO,
    aggregate,
    read_aggregates,
    scan_logs,
)
from promptbudget.replay.judgement import judge
from promptbudget.replay.latency import compare_speeds, judge_latency
from promptbudget.replay.query import DIALECTS, build_query, parameters, transpile
from promptbudget.replay.readers import ScanTally
from promptbudget.replay.result import ReplayResult
from promptbudget.replay.stats import collect
from promptbudget.report import Report


def _logs(options: Options) -> list[tuple[Path, str]]:
    """The log files named (globs expanded here too, for shells and CI that do not)."""
    found: list[tuple[Path, str]] = []
    for argument in options.paths:
        text = str(argument)
        matches = sorted(glob.glob(text)) if glob.has_magic(text) else [text]
        if not matches:
            raise UsageError(f"no log file matches {text}")
        for match in matches:
            path = Path(match)
            if path.is_dir():
                raise UsageError(
                    f"{match} is a directory; name the log files (e.g. {match}/*.jsonl)"
                )
            if not path.exists():
                raise UsageError(f"{match}: no such log file")
            found.append((path, match))
    return found


def _project(options: Options) -> Project:
    project = Project.open(options, require_manifest=True)
    assert project.manifest is not None
    return project


def run(options: Options) -> Report:
    project = _project(options)
    manifest = project.manifest
    assert manifest is not None
    tally = ScanTally()
    approximate = False
    current = windows.parse_window(options.since, options.until, "--since/--until")
    baseline = windows.parse_range(options.compare_to) if options.compare_to else None
    selected = current.bounds if current.bounds != (None, None) else None
    baseline_rows: list[dict[str, object]] | None = None
    if options.aggregates is not None:
        if options.paths:
            raise UsageError("give either log files or --aggregates FILE, not both")
        if selected is not None or baseline is not None:
            raise UsageError(
                "--since, --until and --compare-to need the logs; --aggregates holds no times"
            )
        rows = read_aggregates(options.aggregates, str(options.aggregates))
    else:
        logs = _logs(options)
        if not logs:
            raise UsageError("name the usage logs to replay, e.g. promptbudget replay logs/*.jsonl")
        with tempfile.TemporaryDirectory(prefix="promptbudget-replay-") as workdir:
            calls = Path(workdir) / "calls.csv"
            scan = scan_logs(manifest, logs, tally, calls, input_format=options.input_format)
            approximate = tally.records > EXACT_QUANTILES_UP_TO
            wanted = (selected, *([baseline.bounds] if baseline is not None else []))
            results = aggregate(manifest, scan, workdir, approximate=approximate, windows=wanted)
            rows = results[0]
            baseline_rows = results[1] if baseline is not None else None
    observed = collect(rows)
    if options.workflow is not None:
        observed = tuple(w for w in observed if w.name == options.workflow)
    comparison = None
    if baseline is not None and baseline_rows is not None:
        comparison = windows.compare_windows(
            manifest, collect(baseline_rows), observed, (baseline, current)
        )
    findings = sort_findings(
        [
            *judge(manifest, observed, project.severities),
            *judge_latency(manifest, observed, project.severities),
            *(
                windows.judge_changes(manifest, comparison, project.severities)
                if comparison is not None
                else ()
            ),
        ]
    )
    found_drift = drifts.with_impact(drifts.compare(manifest, observed), options)
    calibration = None
    if options.calibrate:
        calibration = calibrate(manifest.path, found_drift, write=not options.diff, cwd=options.cwd)
    known = tuple(w.name for w in manifest.workflows)
    result = ReplayResult(
        observed=observed,
        known_workflows=known,
        files=tuple(tally.files),
        records=tally.records,
        malformed=tally.malformed,
        malformed_examples=tuple(tally.examples),
        drift=tuple(found_drift),
        speeds=tuple(compare_speeds(manifest, observed)),
        comparison=comparison,
        window=current if selected is not None else None,
        calibration=calibration,
        aggregates=str(options.aggregates) if options.aggregates is not None else None,
        approximate=approximate,
        manifest=str(manifest.path.relative_to(options.cwd.resolve()))
        if manifest.path.is_relative_to(options.cwd.resolve())
        else str(manifest.path),
    )
    return Report(
        command="replay",
        findings=findings,
        fail_on=options.fail_on,
        exit_zero=options.exit_zero,
        catalog_as_of=project.catalog.as_of,
        root=str(project.root),
        replay=result,
    )


def emit_sql(options: Options, dialect: str) -> str:
    """The aggregation query for ``dialect``, with this manifest's limits and the prices of
    the models it names (and ``--model`` names: the models the logs will hold)."""
    if dialect not in DIALECTS:
        raise UsageError(f"--dialect {dialect!r}: expected one of {', '.join(DIALECTS)}")
    manifest = _project(options).manifest
    assert manifest is not None
    models = set(options.models)
    for workflow in manifest.workflows:
        for step in workflow.steps:
            if step.model:
                models.add(step.model)
    for route in manifest.routes.values():
        models.update(t for t in route.targets if t not in manifest.routes)
    if manifest.default_model:
        models.add(manifest.default_model)
    query = build_query(parameters(manifest, models), approximate=dialect == "bigquery")
    return transpile(query, dialect)
