"""``diff`` without ``--base`` finds the base as CI runs it, in real repositories with a
local ``file://`` remote (no network): the CI variables, then the merge-base with the
remote's default branch; a shallow clone gets a fetch command that works."""

from __future__ import annotations

import json
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from test_diff import commit_all, git, grow

from conftest import EXAMPLES, Run

RunCli = Callable[..., Run]

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="diff needs git")


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A remote: main with the example project, a feature branch that grows a prompt, and
    a later commit on main (so the merge-base is not main's tip)."""
    work = tmp_path / "work"
    shutil.copytree(EXAMPLES, work, ignore=shutil.ignore_patterns("over-budget"))
    git(work, "init", "-q", "-b", "main")
    commit_all(work, "base")
    git(work, "checkout", "-q", "-b", "feature")
    grow(work)
    commit_all(work, "grow")
    git(work, "checkout", "-q", "main")
    (work / "NOTES.md").write_text("later on main\n", encoding="utf-8")
    commit_all(work, "later")
    bare = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(bare))
    return bare


def clone(origin: Path, target: Path, *extra: str) -> Path:
    git(origin.parent, "clone", "-q", *extra, f"file://{origin}", str(target))
    git(target, "checkout", "-q", "feature")
    return target


def commit_of(repo: Path, ref: str) -> str:
    return git(repo, "rev-parse", ref).strip()


def test_merge_base_with_the_default_branch(run_cli: RunCli, origin: Path, tmp_path: Path) -> None:
    repo = clone(origin, tmp_path / "clone")
    fork = git(repo, "merge-base", "HEAD", "origin/main").strip()
    assert fork != commit_of(repo, "origin/main")  # main moved on after the branch
    run = run_cli("diff", "--format", "json", cwd=repo)
    assert run.exit_code == 0, run.stderr
    assert f"diff base: origin/main ({fork[:7]}, merge-base of HEAD and origin/main)" in (
        run.stderr
    )
    explicit = run_cli("diff", "--base", fork, "--format", "json", cwd=repo)
    assert "diff base:" not in explicit.stderr  # named on the command line: nothing to say
    found = json.loads(run.stdout)["diff"]["base"]
    assert found == {
        "ref": "origin/main",
        "commit": fork,
        "problem": None,
        "found": "merge-base of HEAD and origin/main",
    }
    assert json.loads(explicit.stdout)["diff"]["base"]["found"] is None
    assert (
        run.stdout.replace('"origin/main"', f'"{fork}"').replace(
            '"merge-base of HEAD and origin/main"', "null"
        )
        == explicit.stdout
    )


def test_origin_head_names_the_default_branch(
    run_cli: RunCli, origin: Path, tmp_path: Path
) -> None:
    git(origin, "branch", "-q", "trunk", "main")
    git(origin, "symbolic-ref", "HEAD", "refs/heads/trunk")
    repo = clone(origin, tmp_path / "clone")
    assert git(repo, "symbolic-ref", "refs/remotes/origin/HEAD").strip().endswith("/trunk")
    run = run_cli("diff", cwd=repo)
    assert "diff base: origin/trunk (" in run.stderr


def test_github_base_ref_is_the_base_branch_tip(
    run_cli: RunCli, origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = clone(origin, tmp_path / "clone")
    run_cli("diff", cwd=repo)  # the fixture's environment is set up by run_cli
    monkeypatch.setenv("GITHUB_BASE_REF", "main")
    run = run_cli("diff", cwd=repo)
    tip = commit_of(repo, "origin/main")
    assert f"diff base: origin/main ({tip[:7]}, GITHUB_BASE_REF)" in run.stderr


def test_gitlab_target_branch_uses_the_merge_base(
    run_cli: RunCli, origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = clone(origin, tmp_path / "clone")
    run_cli("diff", cwd=repo)
    monkeypatch.setenv("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main")
    run = run_cli("diff", cwd=repo)
    fork = git(repo, "merge-base", "HEAD", "origin/main").strip()
    assert f"diff base: origin/main ({fork[:7]}, merge-base of HEAD and origin/main)" in (
        run.stderr
    )


def _hint(stderr: str) -> list[str]:
    """The git command a message suggests (after 'fetch it first: ' or 'history: ')."""
    line = stderr.strip().splitlines()[-1]
    start = line.index("git fetch ")
    end = line.find(" (or", start)
    return shlex.split(line[start : end if end != -1 else len(line)])


def test_a_shallow_clone_gets_a_fetch_command_that_works(
    run_cli: RunCli, origin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As actions/checkout leaves it: one commit of the head branch, no other branch."""
    repo = clone(origin, tmp_path / "clone", "--depth", "1", "--branch", "feature")
    run_cli("diff", cwd=repo)
    monkeypatch.setenv("GITHUB_BASE_REF", "main")
    missing = run_cli("diff", cwd=repo)
    assert missing.exit_code == 2
    assert (
        "GITHUB_BASE_REF names the base 'origin/main', which is not here; fetch it first: "
        "git fetch --no-tags --depth=50 origin main:refs/remotes/origin/main"
    ) in missing.stderr
    git(repo, *_hint(missing.stderr)[1:])
    run = run_cli("diff", cwd=repo)
    assert run.exit_code == 0, run.stderr
    assert f"diff base: origin/main ({commit_of(repo, 'origin/main')[:7]}" in run.stderr
    assert "prompts/support/classify.j2" in run.stdout


def test_a_shallow_clone_without_the_merge_base_is_told_to_deepen(
    run_cli: RunCli, origin: Path, tmp_path: Path
) -> None:
    repo = clone(origin, tmp_path / "clone", "--depth", "1", "--branch", "feature")
    none = run_cli("diff", cwd=repo)
    assert none.exit_code == 2
    assert "git fetch --no-tags --depth=50 origin main:refs/remotes/origin/main" in none.stderr
    git(repo, *_hint(none.stderr)[1:])
    shallow = run_cli("diff", cwd=repo)
    assert shallow.exit_code == 2
    assert "HEAD and origin/main have no common commit here; the clone is shallow" in (
        shallow.stderr
    )
    git(repo, *_hint(shallow.stderr)[1:])
    run = run_cli("diff", cwd=repo)
    assert run.exit_code == 0, run.stderr
    fork = git(repo, "merge-base", "HEAD", "origin/main").strip()
    assert f"diff base: origin/main ({fork[:7]}, merge-base" in run.stderr


def test_no_remote_and_no_base(run_cli: RunCli, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES, repo, ignore=shutil.ignore_patterns("over-budget"))
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "base")
    run = run_cli("diff", cwd=repo)
    assert run.exit_code == 2
    assert "diff needs --base REF: no CI variable names the base" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_an_output_run_prints_one_summary_line(
    run_cli: RunCli, origin: Path, tmp_path: Path
) -> None:
    repo = clone(origin, tmp_path / "clone")
    run = run_cli(
        "diff", "--base", "origin/main", "--format", "markdown", "--output", "pr.md", cwd=repo
    )
    assert run.exit_code == 0, run.stderr
    assert run.stdout == ""
    lines = run.stderr.splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(
        f"promptbudget diff vs origin/main ({commit_of(repo, 'origin/main')[:7]}): "
    )
    assert "1 workflow and 1 template changed" in lines[0]
    assert lines[0].endswith("passes (exit 0); report written to pr.md")
    assert (repo / "pr.md").read_text(encoding="utf-8").startswith("<!-- promptbudget:diff -->")
