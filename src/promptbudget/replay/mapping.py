"""Which workflow and step a record belongs to.

In order: the ``promptbudget.workflow`` / ``promptbudget.step`` attributes (or metadata keys)
the application sets; the first ``replay.match`` rule of budgets.yaml whose conditions all
hold; the ``promptbudget.prompt`` name of a step's template. A workflow with one step needs no
step name. Spans with no workflow of their own inherit their trace's (in the aggregation).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from pathlib import PurePosixPath

from promptbudget.manifest.model import Manifest, ReplayMatch
from promptbudget.replay.records import Record


def _stem(prompt: str) -> str:
    """``support/answer.prompty`` -> ``support/answer``."""
    path = PurePosixPath(prompt.replace("\\", "/"))
    return str(path.with_suffix("")) if path.suffix else str(path)


class Mapper:
    def __init__(self, manifest: Manifest) -> None:
        self.rules = manifest.replay.match
        self.single_step = {
            w.name: w.steps[0].name for w in manifest.workflows if len(w.steps) == 1
        }
        self.by_prompt: dict[str, list[tuple[str, str]]] = {}
        for workflow in manifest.workflows:
            for step in workflow.steps:
                for key in {step.prompt, _stem(step.prompt), step.name}:
                    self.by_prompt.setdefault(key, []).append((workflow.name, step.name))

    def _rule_matches(self, rule: ReplayMatch, record: Record) -> bool:
        if rule.model is not None and not fnmatchcase(record.model or "", rule.model):
            return False
        if rule.prompt is not None and not fnmatchcase(record.prompt or "", rule.prompt):
            return False
        attributes = record.attributes or {}
        return all(
            key in attributes and fnmatchcase(str(attributes[key]), pattern)
            for key, pattern in rule.attributes.items()
        )

    def _by_prompt(self, record: Record, workflow: str | None) -> tuple[str, str] | None:
        if record.prompt is None:
            return None
        found = self.by_prompt.get(record.prompt) or self.by_prompt.get(_stem(record.prompt))
        if not found:
            return None
        if workflow is not None:
            found = [entry for entry in found if entry[0] == workflow]
        return found[0] if len(found) == 1 else None

    def assign(self, record: Record) -> tuple[str | None, str | None]:
        workflow, step = record.workflow, record.step
        if workflow is not None and step is not None:
            return workflow, step
        if workflow is None:
            for rule in self.rules:
                if self._rule_matches(rule, record):
                    workflow, step = rule.workflow, step or rule.step
                    break
        if step is None:
            found = self._by_prompt(record, workflow)
            if found is not None:
                workflow, step = found
        if step is None and workflow is not None:
            step = self.single_step.get(workflow)
        return workflow, step
