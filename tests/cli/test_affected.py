"""``check PATH`` does only the work the named files affect, however large the project: a
one-file check renders the file and the templates of the workflows it feeds, nothing else."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import POLICY, Run, templates_passed
from promptbudget.templates.render import TemplateRenderer

RunCli = Callable[..., Run]
TEMPLATES = 2000


@pytest.fixture
def big_project(make_project: Callable[..., Path]) -> Path:
    files: dict[str, str | bytes] = {
        f"prompts/bulk/t{index:04d}.j2": f"Template {index}: answer {{{{ question }}}} briefly.\n"
        for index in range(TEMPLATES)
    }
    files["prompts/partials/tone.j2"] = "Be kind and concise.\n"
    files["prompts/answer.j2"] = (
        f'{{% include "partials/tone.j2" %}}\n\n{POLICY}\n\nQ: {{{{ question }}}}\n'
    )
    files["prompts/route.j2"] = "Classify {{ question }} as billing or other.\n"
    # The same passage pasted into a template of another workflow: PB204 must still see it.
    files["prompts/bulk/t0007.j2"] = f"{POLICY}\n\nSummarise {{{{ question }}}}.\n"
    files["budgets.yaml"] = """\
        version: 1
        defaults: {model: gpt-4.1-mini}
        variables:
          question: {max_tokens: 200}
        workflows:
          support:
            steps:
              - {name: route, prompt: route.j2, output_tokens: 5}
              - {name: answer, prompt: answer.j2, output_tokens: 300}
          digest:
            steps:
              - {name: summary, prompt: bulk/t0007.j2, output_tokens: 100}
          other:
            steps:
              - {name: one, prompt: bulk/t0100.j2, output_tokens: 100}
    """
    return make_project(files)


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The display path of every template rendered, through TemplateRenderer.render."""
    yield templates_passed(monkeypatch, TemplateRenderer, "render", 1)


def test_a_one_file_check_renders_only_what_the_file_affects(
    run_cli: RunCli, big_project: Path, rendered: list[str]
) -> None:
    run = run_cli("check", "prompts/answer.j2", "--format", "json", cwd=big_project)
    assert run.exit_code in (0, 1), run.stderr
    data = run.json()
    # The file's workflow is simulated (route.j2 is rendered as its other step), and so is
    # the workflow of the template sharing its pasted policy, so PB204 can price every copy.
    assert {w["name"] for w in data["workflows"]} == {"support"}
    assert set(rendered) == {"prompts/answer.j2", "prompts/route.j2", "prompts/bulk/t0007.j2"}
    assert [t["path"] for t in data["templates"]] == ["prompts/answer.j2"]
    duplicated = [f for f in data["findings"] if f["rule"] == "PB204"]
    assert duplicated and "t0007.j2" in duplicated[0]["message"] + duplicated[0]["path"]


def test_a_full_check_renders_every_template(
    run_cli: RunCli, big_project: Path, rendered: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMPTBUDGET_JOBS", "1")  # renders counted in this process
    run_cli("check", "--format", "json", cwd=big_project)
    assert len(set(rendered)) == TEMPLATES + 3  # every file, the partial included


def test_the_other_templates_fingerprints_follow_their_edits(
    run_cli: RunCli, big_project: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """PB204 reads the other templates' paragraphs from the cache; an edit to one of them is
    seen (its bytes changed), exactly as without the cache."""
    monkeypatch.setenv("PROMPTBUDGET_CACHE_DIR", str(tmp_path / "cache"))

    def pb204(*extra: str) -> list[str]:
        run = run_cli("check", "prompts/answer.j2", "--format", "json", *extra, cwd=big_project)
        return [f["message"] for f in run.json()["findings"] if f["rule"] == "PB204"]

    assert pb204() == pb204() == pb204("--no-cache") != []
    pasted = big_project / "prompts/bulk/t0123.j2"
    pasted.write_text(f"{POLICY}\n\nAnswer {{{{ question }}}}.\n", encoding="utf-8")
    assert "t0123.j2" in pb204()[0]
    assert pb204() == pb204("--no-cache")
    pasted.write_text("Nothing pasted here.\n", encoding="utf-8")
    assert "t0123.j2" not in pb204()[0]
