"""``diff``: a template that grew because a file it includes grew names the include chain and
points at the included file's first changed line, not at the includer."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from test_diff import commit_all, git, repo  # noqa: F401 - the fixture

from conftest import Run

RunCli = Callable[..., Run]

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="diff needs git")


def test_growth_in_an_included_file_names_the_chain_and_line(
    run_cli: RunCli,
    repo: Path,  # noqa: F811 - the fixture
) -> None:
    policy = repo / "prompts/partials/policy.j2"
    lines = policy.read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(2, "Always cite the policy section you relied on, by its number.\n")
    policy.write_text("".join(lines), encoding="utf-8")
    run = run_cli("diff", "--base", "HEAD", "--format", "json", cwd=repo)
    templates = {t["path"]: t for t in json.loads(run.stdout)["diff"]["templates"]}
    answer = templates["prompts/support/answer.prompty"]
    assert answer["status"] == "changed"
    assert answer["request_tokens"]["delta"] > 0
    assert answer["via"] == ["prompts/support/answer.prompty", "prompts/partials/policy.j2"]
    assert answer["line"] == 3
    assert templates["prompts/partials/policy.j2"]["via"] == []  # it changed itself
    text = run_cli("diff", "--base", "HEAD", cwd=repo).stdout
    assert (
        "prompts/support/answer.prompty grew through an include: "
        "prompts/support/answer.prompty → prompts/partials/policy.j2:3"
    ) in text
    markdown = run_cli("diff", "--base", "HEAD", "--format", "markdown", cwd=repo).stdout
    assert (
        "- `prompts/support/answer.prompty` grew through an include: "
        "`prompts/support/answer.prompty → prompts/partials/policy.j2:3`"
    ) in markdown


def test_a_template_that_changed_itself_is_not_attributed_to_an_include(
    run_cli: RunCli,
    repo: Path,  # noqa: F811 - the fixture
) -> None:
    answer = repo / "prompts/support/answer.prompty"
    answer.write_text(answer.read_text(encoding="utf-8") + "Be brief.\n", encoding="utf-8")
    policy = repo / "prompts/partials/policy.j2"
    policy.write_text(policy.read_text(encoding="utf-8") + "Be kind.\n", encoding="utf-8")
    run = run_cli("diff", "--base", "HEAD", "--format", "json", cwd=repo)
    templates = {t["path"]: t for t in json.loads(run.stdout)["diff"]["templates"]}
    assert templates["prompts/support/answer.prompty"]["via"] == []
    assert templates["prompts/support/answer.prompty"]["line"] is None
