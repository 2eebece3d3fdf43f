"""``promptbudget init``: the example scaffold in an empty project; in a project that already
has prompts, a manifest with one commented workflow stub per template, and no example file."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from conftest import Run
from promptbudget.manifest.loader import load_manifest

RunCli = Callable[..., Run]


def test_existing_prompts_get_one_commented_stub_each(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    root = make_project(
        {
            "prompts/support/answer.j2": "You answer questions about Acme's products.\n",
            "prompts/ops/answer.txt": "Summarize the ticket in one sentence.\n",
            "prompts/my rewrite.md": "Rewrite the question as a search query.\n",
        }
    )
    before = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    run = run_cli("init", cwd=root)
    assert run.exit_code == 0, run.stderr
    after = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert after == sorted([*before, "budgets.yaml"])  # no example template
    assert "found 3 templates in prompts/" in run.stderr
    assert "'promptbudget baseline'" in run.stderr
    text = (root / "budgets.yaml").read_text(encoding="utf-8")
    assert "summarize" not in text  # no unrelated example workflow
    prompts = re.findall(r"^#       - prompt: (.+)$", text, flags=re.MULTILINE)
    assert prompts == ['"my rewrite.md"', "ops/answer.txt", "support/answer.j2"]
    names = re.findall(r"^#   (\S+):$", text, flags=re.MULTILINE)
    assert names == ["my-rewrite", "answer", "support-answer"]
    # As written it passes check; uncommented (as an editor toggles comments), it loads,
    # names every template, and baseline then writes limits that check holds.
    assert run_cli("check", cwd=root).exit_code == 0
    (root / "budgets.yaml").write_text(
        re.sub(r"^# (workflows:)|^#  ( .*)$", r"\1\2", text, flags=re.MULTILINE),
        encoding="utf-8",
    )
    manifest = load_manifest(root / "budgets.yaml", cwd=root)
    assert sorted(s.prompt for w in manifest.workflows for s in w.steps) == [
        "my rewrite.md",
        "ops/answer.txt",
        "support/answer.j2",
    ]
    assert run_cli("baseline", cwd=root).exit_code == 0
    assert run_cli("check", cwd=root).exit_code == 0


def test_without_prompts_the_example_scaffold_as_before(run_cli: RunCli, tmp_path: Path) -> None:
    run = run_cli("init", cwd=tmp_path)
    assert run.exit_code == 0, run.stderr
    assert (tmp_path / "prompts" / "summarize.j2").is_file()
    assert "summarize:" in (tmp_path / "budgets.yaml").read_text(encoding="utf-8")
    assert "next: edit budgets.yaml, then run 'promptbudget check'" in run.stderr


def test_an_existing_manifest_is_not_overwritten(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    root = make_project({"prompts/a.j2": "Hello\n", "budgets.yaml": "version: 1\n"})
    run = run_cli("init", cwd=root)
    assert run.exit_code == 2
    assert "already exists; use --force" in run.stderr
    assert (root / "budgets.yaml").read_text(encoding="utf-8") == "version: 1\n"
