"""SARIF 2.1.0 for code scanning (GitHub, GitLab, Azure DevOps): one run, every rule described.

Every rule in ``RULES`` is listed in ``tool.driver.rules`` with its documentation as help, so
GitHub shows why a rule matters and how to fix a finding next to the alert. Each result names
its rule by ``ruleId`` and ``ruleIndex``, sits in the file of the finding (relative to the
workspace, ``uriBaseId: %SRCROOT%``) and carries ``partialFingerprints`` that do not depend on
line numbers or measured values, so an alert survives edits and stays one alert across runs.

A finding without a path (possible only when there is no manifest to point at) has no
``locations``: SARIF allows it (§3.27.12), but GitHub code scanning rejects such a result.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from promptbudget import __version__
from promptbudget.findings import Finding, Severity, assert_never
from promptbudget.headroom import LimitCheck, used_json
from promptbudget.report import Report
from promptbudget.reporters.base import ReportSettings, usd_number
from promptbudget.reporters.jsontext import Items, dumps
from promptbudget.reporters.locations import workspace_path
from promptbudget.rules import RULES, Rule
from promptbudget.units import quantize

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
INFORMATION_URI = "https://github.com/promptbudget/promptbudget"
# reportingDescriptor.helpUri (SARIF 2.1.0: where its primary documentation is): the
# README's Rules section (a table of every rule; `promptbudget explain CODE` for the rest)
RULES_URI = f"{INFORMATION_URI}#rules"
URI_BASE_ID = "%SRCROOT%"
FINGERPRINT_KEY = "promptbudget/v1"


def sarif_level(severity: Severity) -> str:
    match severity:
        case Severity.ERROR:
            return "error"
        case Severity.WARNING:
            return "warning"
        case Severity.INFO:
            return "note"
        case _:
            assert_never(severity)


def pascal_case(slug: str) -> str:
    """``input-over-budget`` -> ``InputOverBudget`` (SARIF's rule ``name``)."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", slug))


# -- rule documentation --------------------------------------------------------------------

_SECTION = re.compile(r"^([A-Z][A-Za-z]*(?: \([^)]*\))?):$")  # "Fails:", "Fails (info):"
_LABEL = re.compile(r"^([A-Z][a-z]+):\s")  # "Why: ..."


def _inline_markdown(text: str) -> str:
    """reStructuredText literals (````x````) as Markdown code (```x```)."""
    return re.sub(r"``(.+?)``", r"`\1`", text)


def _fence(lines: list[str]) -> list[str]:
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence, *lines, fence]


def doc_markdown(doc: str) -> str:
    """A rule docstring as Markdown: prose as paragraphs, ``Why:`` in bold, and each indented
    example under ``Fails:``/``Passes:`` as a fenced block."""
    out: list[str] = []
    lines = doc.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        section = _SECTION.match(line)
        if section and i + 1 < len(lines) and lines[i + 1].startswith((" ", "\t")):
            block: list[str] = []
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
                block.append(lines[i])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            indent = min(len(b) - len(b.lstrip()) for b in block if b.strip())
            out.append(f"**{section.group(1)}:**")
            out.append("")
            out.extend(_fence([b[indent:] for b in block]))
            out.append("")
            continue
        label = _LABEL.match(line)
        if label:
            line = f"**{label.group(1)}:** {line[label.end() :]}"
        out.append(_inline_markdown(line))
        i += 1
    return "\n".join(out).strip() + "\n"


def _first_paragraph(doc: str) -> str:
    return " ".join(doc.strip().split("\n\n", 1)[0].split())


_MAX_DESCRIPTION = 1024  # GitHub code scanning truncates (and warns) beyond this


def _capped(text: str) -> str:
    return text if len(text) <= _MAX_DESCRIPTION else text[: _MAX_DESCRIPTION - 1] + "…"


def rule_descriptor(rule: Rule) -> dict[str, Any]:
    doc = rule.doc or rule.summary
    first = _first_paragraph(doc)
    return {
        "id": rule.code,
        "name": pascal_case(rule.slug),
        "shortDescription": {"text": _capped(rule.summary)},
        "fullDescription": {
            "text": _capped(first.replace("``", "")),
            "markdown": _capped(_inline_markdown(first)),
        },
        "helpUri": RULES_URI,
        "help": {"text": rule.plain_doc or doc, "markdown": doc_markdown(doc)},
        "defaultConfiguration": {"level": sarif_level(rule.default_severity)},
        "properties": {"slug": rule.slug, "tags": ["promptbudget", _family(rule.code)]},
    }


def _family(code: str) -> str:
    """The rule's family, as a code-scanning tag."""
    if code.startswith("PB0"):
        return "templates"
    if code.startswith("PB1"):
        return "budgets"
    if code.startswith("PB2"):
        return "prompt-quality"
    return "accuracy"


def _unregistered_descriptor(finding: Finding) -> dict[str, Any]:
    """A rule the registry does not know (yet): described by its slug."""
    return {
        "id": finding.rule,
        "name": pascal_case(finding.slug),
        "shortDescription": {"text": finding.slug},
        "defaultConfiguration": {"level": sarif_level(finding.severity)},
        "properties": {"slug": finding.slug},
    }


# -- results -------------------------------------------------------------------------------


def _number(value: int | Decimal) -> int | float | None:
    return usd_number(value) if isinstance(value, Decimal) else value


def fingerprint_key(finding: Finding, uri: str | None) -> str:
    """What identifies a finding across runs: rule, file, workflow and step (no line, no
    measured value, so an alert survives edits that move it or change its numbers)."""
    key = "\0".join((finding.rule, uri or "", finding.workflow or "", finding.step or ""))
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _result(
    finding: Finding, rule_index: int, settings: ReportSettings, seen: Counter[str]
) -> dict[str, Any]:
    result: dict[str, Any] = {
        "ruleId": finding.rule,
        "ruleIndex": rule_index,
        "level": sarif_level(finding.severity),
        "message": {"text": finding.message},
    }
    uri = quote(workspace_path(finding.path, settings), safe="/") if finding.path else None
    if uri is not None:
        physical: dict[str, Any] = {"artifactLocation": {"uri": uri, "uriBaseId": URI_BASE_ID}}
        if finding.line is not None and finding.line >= 1:
            physical["region"] = {"startLine": finding.line}
        result["locations"] = [{"physicalLocation": physical}]
    # GitHub's ``hash:n`` form: n tells apart findings that share the key (in report order).
    key = fingerprint_key(finding, uri)
    seen[key] += 1
    result["partialFingerprints"] = {FINGERPRINT_KEY: f"{key}:{seen[key]}"}
    properties: dict[str, Any] = {}
    if finding.workflow is not None:
        properties["workflow"] = finding.workflow
    if finding.step is not None:
        properties["step"] = finding.step
    if finding.measured is not None:
        properties["measured"] = _number(finding.measured)
    if finding.limit is not None:
        properties["limit"] = _number(finding.limit)
    if finding.unit is not None:
        properties["unit"] = finding.unit
    if finding.measured is not None and finding.limit:
        used = Decimal(finding.measured) / Decimal(finding.limit) * 100
        properties["used_pct"] = float(quantize(used, Decimal("0.01")))
    if properties:
        result["properties"] = properties
    return result


def _limit_property(check: LimitCheck) -> dict[str, Any]:
    """A limit of the run, passing or not (SARIF results are only the failing ones)."""
    return {
        "level": check.level,
        "workflow": check.workflow,
        "step": check.step,
        "template": check.template,
        "key": check.key,
        "statistic": check.statistic,
        "counted_with": check.counted_with,
        "measured": None if check.measured is None else _number(check.measured),
        "limit": _number(check.limit),
        "unit": check.unit,
        "used_pct": used_json(check),
        "status": check.status,
    }


def render_sarif(report: Report, settings: ReportSettings) -> str:
    descriptors = [rule_descriptor(rule) for rule in RULES.values()]
    index = {rule.code: i for i, rule in enumerate(RULES.values())}
    for finding in report.findings:
        if finding.rule not in index:
            index[finding.rule] = len(descriptors)
            descriptors.append(_unregistered_descriptor(finding))
    seen: Counter[str] = Counter()
    results = Items(_result(f, index[f.rule], settings, seen) for f in report.findings)
    log = {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "promptbudget",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": descriptors,
                    }
                },
                "invocations": [{"executionSuccessful": True}],
                "results": results,
                "properties": {"limits": [_limit_property(c) for c in report.limits]},
            }
        ],
    }
    return dumps(log)
