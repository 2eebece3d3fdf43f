"""``promptbudget diff --base REF``: numbers equal ``check``/``count``/``estimate`` run at each
commit, the checkout is never touched, and the gate fails only on what the change did."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import EXAMPLES, Run

RunCli = Callable[..., Run]

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="diff needs git")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
        env={
            "GIT_AUTHOR_NAME": "t",
            "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t",
            "GIT_COMMITTER_EMAIL": "t@example.com",
            "GIT_CONFIG_GLOBAL": "/dev/null",
            "GIT_CONFIG_NOSYSTEM": "1",
            "PATH": "/usr/bin:/bin:/usr/local/bin",
        },
    )
    return done.stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The passing example as a git repository with one commit."""
    root = tmp_path / "repo"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("over-budget"))
    git(root, "init", "-q", "-b", "main")
    commit_all(root, "base")
    return root


def grow(repo: Path) -> None:
    """A change a pull request might make: a longer prompt and more traffic."""
    classify = repo / "prompts/support/classify.j2"
    classify.write_text(  # a versioned template (promptbudget.lock): the edit bumps it
        classify.read_text(encoding="utf-8").replace("version: 3\n", "version: 4\n")
        + "Always answer in a friendly, concise tone and cite the article you used.\n",
        encoding="utf-8",
    )
    manifest = repo / "budgets.yaml"
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace(
            "requests_per_day: 15000", "requests_per_day: 16000"
        ),
        encoding="utf-8",
    )


def _by(items: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    return {item[key]: item for item in items}


def test_numbers_match_check_and_count_at_each_commit(
    run_cli: RunCli, repo: Path, tmp_path: Path
) -> None:
    grow(repo)
    commit_all(repo, "grow")
    base_tree = tmp_path / "base"
    git(repo, "worktree", "add", "-q", "--detach", str(base_tree), "HEAD~1")
    base_check = run_cli("check", "--format", "json", cwd=base_tree).json()
    base_count = run_cli("count", "--format", "json", cwd=base_tree).json()
    git(repo, "worktree", "remove", "--force", str(base_tree))
    head_check = run_cli("check", "--format", "json", cwd=repo).json()
    head_count = run_cli("count", "--format", "json", cwd=repo).json()

    run = run_cli("diff", "--base", "HEAD~1", "--format", "json", cwd=repo)
    assert run.exit_code == 0, run.stderr
    diff = run.json()["diff"]
    assert diff["base"]["commit"] == git(repo, "rev-parse", "HEAD~1").strip()

    workflows = _by(diff["workflows"], "name")
    for side, check in (("base", base_check), ("head", head_check)):
        for workflow in check["workflows"]:
            row = workflows[workflow["name"]]
            assert row["cost_per_request_usd"][side] == workflow["cost_per_request_usd"]
            assert row["cost_per_request_p95_usd"][side] == workflow["cost_per_request_p95_usd"]
            assert row["monthly_spend_usd"][side] == workflow["monthly_spend_usd"]
    support = workflows["support-reply"]
    assert support["status"] == "changed"
    assert support["monthly_spend_usd"]["delta"] == pytest.approx(
        head_check_monthly(head_check) - head_check_monthly(base_check)
    )
    assert diff["workflows"][0]["name"] == "support-reply"  # the biggest mover first
    assert workflows["ticket-summary"]["status"] == "unchanged"

    templates = _by(diff["templates"], "path")
    for side, count in (("base", base_count), ("head", head_count)):
        for template in count["templates"]:
            row = templates[template["path"]]
            assert row["request_tokens"][side] == template["request_tokens"]
    classify = templates["prompts/support/classify.j2"]["request_tokens"]
    assert classify["delta"] == classify["head"] - classify["base"] > 0
    assert classify["delta_percent"] == pytest.approx(
        100 * classify["delta"] / classify["base"], abs=1e-4
    )
    assert templates["prompts/support/answer.prompty"]["status"] == "unchanged"


def head_check_monthly(check: dict[str, Any]) -> float:
    return next(w for w in check["workflows"] if w["name"] == "support-reply")["monthly_spend_usd"]


def test_the_checkout_is_not_touched(run_cli: RunCli, repo: Path) -> None:
    grow(repo)  # uncommitted: the working tree is the head
    before = (
        git(repo, "status", "--porcelain"),
        git(repo, "rev-parse", "HEAD"),
        git(repo, "stash", "list"),
        git(repo, "worktree", "list"),
    )
    files = sorted(p.relative_to(repo) for p in repo.rglob("*") if ".git" not in p.parts)
    run = run_cli("diff", "--base", "HEAD", "--format", "json", cwd=repo)
    assert run.exit_code == 0, run.stderr
    after = (
        git(repo, "status", "--porcelain"),
        git(repo, "rev-parse", "HEAD"),
        git(repo, "stash", "list"),
        git(repo, "worktree", "list"),
    )
    assert after == before
    assert sorted(p.relative_to(repo) for p in repo.rglob("*") if ".git" not in p.parts) == files
    classify = _by(run.json()["diff"]["templates"], "path")["prompts/support/classify.j2"]
    assert classify["status"] == "changed"  # the uncommitted edit is what was compared


def test_text_report_names_base_deltas_and_new_findings(run_cli: RunCli, repo: Path) -> None:
    manifest = repo / "budgets.yaml"
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace(
            "requests_per_day: 15000", "requests_per_day: 20000"
        ),
        encoding="utf-8",
    )
    run = run_cli("diff", "--base", "main", cwd=repo)
    assert run.exit_code == 1  # the change breaks max_monthly_spend: a new error
    assert "promptbudget diff: main (" in run.stdout
    assert "$4,919.21 → $6,558.95" in run.stdout  # the exact mean x 20,000/15,000
    assert "+$1,639.74 (+33.3%)" in run.stdout
    assert "new in the working tree:" in run.stdout
    assert "PB107 monthly-spend-over-budget" in run.stdout
    assert "1 new error" in run.stdout


def test_findings_the_base_had_do_not_fail_the_diff(run_cli: RunCli, tmp_path: Path) -> None:
    root = tmp_path / "over"
    shutil.copytree(EXAMPLES / "over-budget", root)
    git(root, "init", "-q")
    commit_all(root, "already over budget")
    assert run_cli("check", cwd=root).exit_code == 1
    run = run_cli("diff", "--base", "HEAD", "--format", "json", cwd=root)
    assert run.exit_code == 0
    assert run.json()["findings"] == []


def test_fixed_findings_are_listed(run_cli: RunCli, tmp_path: Path) -> None:
    root = tmp_path / "over"
    shutil.copytree(EXAMPLES / "over-budget", root)
    git(root, "init", "-q")
    commit_all(root, "over budget")
    manifest = root / "budgets.yaml"
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace(
            "max_monthly_spend: $6,000", "max_monthly_spend: $60,000"
        ),
        encoding="utf-8",
    )
    run = run_cli("diff", "--base", "HEAD", "--format", "json", cwd=root)
    fixed = {f["rule"] for f in run.json()["diff"]["fixed_findings"]}
    assert fixed == {"PB107"}
    text = run_cli("diff", "--base", "HEAD", cwd=root).stdout
    assert "fixed:" in text


@pytest.mark.parametrize(
    ("threshold", "exit_code"), [("50%", 0), ("30%", 1), ("150%", 0), ("0%", 1)]
)
def test_fail_on_increase(run_cli: RunCli, repo: Path, threshold: str, exit_code: int) -> None:
    manifest = repo / "budgets.yaml"
    manifest.write_text(  # +33% monthly spend on support-reply, still within its budget
        manifest.read_text(encoding="utf-8")
        .replace("requests_per_day: 15000", "requests_per_day: 20000")
        .replace("max_monthly_spend: $6,000", "max_monthly_spend: $9,000"),
        encoding="utf-8",
    )
    run = run_cli(
        "diff", "--base", "HEAD", "--fail-on-increase", threshold, "--format", "json", cwd=repo
    )
    assert run.exit_code == exit_code, run.stdout
    breaches = run.json()["diff"]["breaches"]
    assert bool(breaches) == bool(exit_code)
    if breaches:
        assert breaches[0]["subject"] == "workflow 'support-reply'"
        assert breaches[0]["quantity"] == "monthly spend"


def test_added_and_removed_templates_and_workflows(run_cli: RunCli, repo: Path) -> None:
    shutil.move(repo / "prompts/support/classify.j2", repo / "prompts/support/triage.j2")
    manifest = repo / "budgets.yaml"
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace("support/classify.j2", "support/triage.j2"),
        encoding="utf-8",
    )
    run = run_cli("diff", "--base", "HEAD", "--format", "json", cwd=repo)
    templates = _by(run.json()["diff"]["templates"], "path")
    assert templates["prompts/support/classify.j2"]["status"] == "removed"
    assert templates["prompts/support/triage.j2"]["status"] == "added"
    assert templates["prompts/support/triage.j2"]["request_tokens"]["delta"] is None


def test_project_in_a_subdirectory_and_a_new_manifest(run_cli: RunCli, tmp_path: Path) -> None:
    root = tmp_path / "mono"
    (root / "docs").mkdir(parents=True)
    (root / "docs/readme.md").write_text("hello\n", encoding="utf-8")
    git(root, "init", "-q")
    commit_all(root, "before promptbudget")
    shutil.copytree(
        EXAMPLES, root / "services/support", ignore=shutil.ignore_patterns("over-budget")
    )
    run = run_cli("diff", "--base", "HEAD", "--format", "json", cwd=root / "services/support")
    assert run.exit_code == 0, run.stderr
    diff = run.json()["diff"]
    assert "does not exist at HEAD" in diff["base"]["problem"]
    assert {w["status"] for w in diff["workflows"]} == {"added"}
    commit_all(root, "add promptbudget")
    run = run_cli(
        "diff", "--base", "HEAD", "--format", "json", cwd=root / "services/support/prompts"
    )
    diff = run.json()["diff"]
    assert diff["base"]["problem"] is None
    assert {w["status"] for w in diff["workflows"]} == {"unchanged"}


def test_a_symlink_out_of_the_tree_is_not_followed_at_the_base(
    run_cli: RunCli, repo: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read\n", encoding="utf-8")
    (repo / "prompts/leak.txt").symlink_to(secret)
    (repo / "prompts/inside.txt").symlink_to("support/classify.j2")
    commit_all(repo, "symlinks")
    run = run_cli("diff", "--base", "HEAD", "--format", "json", cwd=repo)
    assert run.exit_code == 0, run.stderr  # the base refuses the link just as the head does
    assert run.json()["findings"] == []
    templates = _by(run.json()["diff"]["templates"], "path")
    assert templates["prompts/inside.txt"]["status"] == "unchanged"
    assert templates["prompts/inside.txt"]["request_tokens"]["head"] > 0
    assert templates["prompts/leak.txt"]["request_tokens"] == {
        "base": None,
        "head": None,
        "delta": None,
        "delta_percent": None,
        "status": "unchanged",
    }
    assert "do not read" not in run.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--base", "no-such-ref"], "unknown git ref 'no-such-ref'"),
        (["--base", "--upload-pack=x"], "is not a git ref"),
        (["--base", "HEAD", "--fail-on-increase", "ten"], "write a percentage such as 10%"),
        (["--base", "HEAD", "--fail-on-increase", "-5%"], "write a percentage such as 10%"),
        ([], "diff needs --base REF: no CI variable names the base"),
    ],
)
def test_bad_arguments(run_cli: RunCli, repo: Path, args: list[str], message: str) -> None:
    run = run_cli("diff", *args, cwd=repo)
    assert run.exit_code == 2
    assert message in run.stderr
    assert "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_outside_a_git_repository(run_cli: RunCli, tmp_path: Path) -> None:
    root = tmp_path / "plain"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("over-budget"))
    run = run_cli("diff", "--base", "HEAD", cwd=root)
    assert run.exit_code == 2
    assert "is not inside a git repository" in run.stderr


def test_markdown_is_a_pr_comment(run_cli: RunCli, repo: Path) -> None:
    grow(repo)
    run = run_cli(
        "diff", "--base", "main", "--format", "markdown", "--fail-on-increase", "5%", cwd=repo
    )
    assert run.exit_code == 1  # support-reply's monthly spend rose 6.7%
    lines = run.stdout.splitlines()
    assert lines[0] == "<!-- promptbudget:diff -->"
    assert lines[1].startswith("## ❌ promptbudget: monthly spend +\\$")
    assert "vs `main`" in lines[1]
    table = [line for line in lines if line.startswith("| support-reply |")]
    assert len(table) == 1 and "\\$4,919.21 → \\$5,247.81" in table[0]
    assert "| `prompts/support/classify.j2` | gpt-4.1-mini | 341 → 357 | +16 (+4.7%) |" in lines
    assert "<sub>2 workflows unchanged</sub>" in lines
    assert any(line.startswith("**❌ 1 rise above --fail-on-increase**") for line in lines)


def test_no_change_reads_as_such(run_cli: RunCli, repo: Path) -> None:
    run = run_cli("diff", "--base", "HEAD", "--format", "markdown", cwd=repo)
    assert run.exit_code == 0
    assert "## ✅ promptbudget: no change in tokens or cost vs `HEAD`" in run.stdout
    assert "All 3 workflows unchanged." in run.stdout


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        (
            "evil\nref\x1b[31m",
            "promptbudget: error: unknown git ref 'evil\\nref\\x1b[31m': not a branch, tag or "
            "commit here\n",
        ),
        (
            "main; touch pwned",  # not a branch name (a space): no command to suggest
            "promptbudget: error: unknown git ref 'main; touch pwned': not a branch, tag or "
            "commit here\n",
        ),
        (
            "main;touch",  # a valid branch name that a shell would split: quoted
            "promptbudget: error: unknown git ref 'main;touch': not a branch, tag or commit "
            "here (in a shallow CI checkout, fetch it first: git fetch --no-tags --depth=50 "
            "origin 'main;touch:refs/heads/main;touch')\n",
        ),
        (
            "origin/release/2.0",
            "promptbudget: error: unknown git ref 'origin/release/2.0': not a branch, tag or "
            "commit here (in a shallow CI checkout, fetch it first: git fetch --no-tags "
            "--depth=50 origin release/2.0:refs/remotes/origin/release/2.0)\n",
        ),
    ],
)
def test_an_unknown_ref_is_shown_escaped_and_quoted_for_the_shell(
    run_cli: RunCli, repo: Path, ref: str, expected: str
) -> None:
    run = run_cli("diff", "--base", ref, cwd=repo)
    assert run.exit_code == 2
    assert run.stderr == expected


def test_a_slower_model_shows_its_latency_next_to_its_cost(repo: Path, run_cli: RunCli) -> None:
    """classify moves from gpt-4.1-nano (declared in examples/: 450 ms to the first token,
    120 tokens/s) to gpt-4.1-mini (the catalog's 930 ms, 77.2 tokens/s): the request gets
    slower and dearer, and diff shows both against the base commit."""
    manifest = repo / "budgets.yaml"
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace(
            "model: gpt-4.1-nano", "model: gpt-4.1-mini", 1
        ),
        encoding="utf-8",
    )
    base = run_cli("estimate", "-w", "support-reply", "--format", "json", cwd=repo)
    result = run_cli("diff", "--base", "main", "--format", "json", cwd=repo)
    assert result.exit_code == 0, result.stderr
    diff = json.loads(result.stdout)["diff"]
    workflow = next(w for w in diff["workflows"] if w["name"] == "support-reply")
    assert workflow["latency_p50_ms"]["delta"] > 0
    assert workflow["latency_p95_ms"]["delta"] > 0
    assert workflow["cost_per_request_usd"]["delta"] > 0
    head = json.loads(base.stdout)["workflows"][0]["latency"]
    assert workflow["latency_p50_ms"]["head"] == head["p50_ms"]
    text = run_cli("diff", "--base", "main", cwd=repo).stdout
    # wider than the 160 columns of piped output with latency: stacked under the workflow
    lines = text.splitlines()
    assert lines[2].split() == ["workflow", "base", "head", "change"]
    block = lines[lines.index("support-reply") + 1 :][:5]
    rows = {line.split("  ")[1].strip(): line for line in block}
    assert "$" in rows["$/request"] and "+$" in rows["$/request"]
    for name in ("latency p50", "latency p95"):
        assert rows[name].count(" ms") >= 3 and "+" in rows[name], rows[name]
