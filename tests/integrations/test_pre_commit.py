"""The published pre-commit hook, run by the real pre-commit on real commits (offline).

``repo: <this repository>`` with ``language: python`` would make pre-commit build a virtual
environment and pip-install promptbudget and its dependencies from the network, so the tests
run the hooks of ``.pre-commit-hooks.yaml`` copied field for field into a ``repo: local``
config with ``language: system`` (``promptbudget`` on PATH is this interpreter's ``python -m
promptbudget``). What they cannot show is that pip installs this repository in pre-commit's
environment; the package's own install is covered by the CI's ``pip install -e .``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from sandbox import GIT, commit_all, git, init_repo, isolated_env

from conftest import EXAMPLES, REPO, readme_snippet
from promptbudget import __version__
from promptbudget.manifest.loader import MANIFEST_NAMES
from promptbudget.templates.source import DISCOVERED_SUFFIXES

HAS_PRE_COMMIT = importlib.util.find_spec("pre_commit") is not None
HOOKS_FILE = REPO / ".pre-commit-hooks.yaml"


def _missing_for_commits() -> str | None:
    if GIT is None:
        return "git is not installed"
    if not HAS_PRE_COMMIT:
        return "pre-commit is not installed (pip install -e '.[dev]')"
    if os.name == "nt":
        return "the promptbudget shim put on PATH is a POSIX shell script"
    return None


needs_pre_commit = pytest.mark.skipif(
    not HAS_PRE_COMMIT, reason="pre-commit is not installed (pip install -e '.[dev]')"
)
real_commits = pytest.mark.skipif(
    _missing_for_commits() is not None, reason=str(_missing_for_commits())
)


def published_hooks() -> list[dict[str, Any]]:
    hooks: list[dict[str, Any]] = yaml.safe_load(HOOKS_FILE.read_text(encoding="utf-8"))
    return hooks


def local_config() -> str:
    """``.pre-commit-hooks.yaml`` as a ``repo: local`` config: the same hooks, run from PATH."""
    hooks = [
        {**hook, "language": "system"}
        for hook in published_hooks()
        if hook.get("language") == "python"
    ]
    for hook in hooks:
        hook.pop("minimum_pre_commit_version", None)  # a manifest key, not a config key
    return yaml.safe_dump({"repos": [{"repo": "local", "hooks": hooks}]}, sort_keys=False)


# -- the hook manifest ---------------------------------------------------------------------


@needs_pre_commit
def test_hooks_file_is_valid_for_pre_commit() -> None:
    from pre_commit.clientlib import load_manifest

    hooks = load_manifest(str(HOOKS_FILE))
    assert [h["id"] for h in hooks] == ["promptbudget"]


def test_hook_checks_changed_files_in_one_process() -> None:
    (hook,) = published_hooks()
    # `--` ends the options: file names pre-commit appends are never parsed as options
    assert hook["entry"] == "promptbudget check --"
    # language: python pip-installs this repository: the entry is its console script
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    scripts = pyproject.split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    assert re.search(r'^promptbudget = "promptbudget\.launcher:run"$', scripts, re.MULTILINE)
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is True
    assert hook["require_serial"] is True
    assert re.fullmatch(r"\d+\.\d+\.\d+", hook["minimum_pre_commit_version"])


@needs_pre_commit
def test_installed_pre_commit_meets_the_minimum_version() -> None:
    from pre_commit.constants import VERSION

    (hook,) = published_hooks()

    def version(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", text)[:3])

    assert version(VERSION) >= version(hook["minimum_pre_commit_version"])


def _files_pattern() -> re.Pattern[str]:
    (hook,) = published_hooks()
    return re.compile(hook["files"])  # pre-commit uses re.search on the repo-relative path


@pytest.mark.parametrize(
    "path",
    sorted(
        {f"prompts/support/answer{s}" for s in DISCOVERED_SUFFIXES}
        | {f"app/prompts/answer{s.upper()}" for s in DISCOVERED_SUFFIXES}
        | set(MANIFEST_NAMES)
        | {f"services/support/{name}" for name in MANIFEST_NAMES}
        | {"pyproject.toml", "promptbudget.lock", "plugins/Summarize/skprompt.txt"}
        | {"src/app/templates/answer.j2", "answer.prompty", "chat.prompt"}
    ),
)
def test_files_pattern_matches_prompts_and_manifests(path: str) -> None:
    assert _files_pattern().search(path), path


@pytest.mark.parametrize(
    "path",
    [
        "README.md",
        "docs/guide.md",
        "CHANGELOG.txt",
        ".github/workflows/ci.yml",
        "package.json",
        "src/app/main.py",
        "mybudgets.yaml",
        "prompts.md",
        "answer.prompt.bak",
    ],
)
def test_files_pattern_skips_files_that_are_not_prompts(path: str) -> None:
    assert not _files_pattern().search(path), path


# -- the README's configurations -----------------------------------------------------------


@needs_pre_commit
def test_readme_remote_config_uses_published_hooks_at_the_release_tag(tmp_path: Path) -> None:
    from pre_commit.clientlib import load_config

    text = readme_snippet("pre-commit-remote")
    config_file = tmp_path / ".pre-commit-config.yaml"
    config_file.write_text(text, encoding="utf-8")
    config = load_config(str(config_file))  # pre-commit's own validation
    (repo,) = config["repos"]
    assert repo["repo"] == "https://github.com/promptbudget/promptbudget"
    assert repo["rev"] == f"v{__version__}"
    published = {hook["id"] for hook in published_hooks()}
    assert {hook["id"] for hook in repo["hooks"]} <= published


def test_readme_local_config_is_the_published_hook_run_from_path() -> None:
    (repo,) = yaml.safe_load(readme_snippet("pre-commit-local"))["repos"]
    assert repo["repo"] == "local"
    generated = yaml.safe_load(local_config())["repos"][0]["hooks"]
    readme_hooks = repo["hooks"]
    assert [h["id"] for h in readme_hooks] == [h["id"] for h in generated]
    for readme_hook, hook in zip(readme_hooks, generated, strict=True):
        for key in ("name", "entry", "language", "pass_filenames", "require_serial", "files"):
            assert readme_hook.get(key) == hook.get(key), key


# -- real commits --------------------------------------------------------------------------


class Project:
    """A git repository holding a copy of ``examples/`` with the hooks installed."""

    def __init__(self, tmp_path: Path, config: str) -> None:
        self.env = isolated_env(tmp_path)
        self.root = tmp_path / "repo"
        shutil.copytree(EXAMPLES, self.root, ignore=shutil.ignore_patterns("over-budget"))
        (self.root / "README.md").write_text("# Support assistant\n", encoding="utf-8")
        (self.root / ".pre-commit-config.yaml").write_text(config, encoding="utf-8")
        init_repo(self.root, self.env)
        commit_all(self.root, "the support assistant, within budget", self.env)
        installed = self.run([sys.executable, "-m", "pre_commit", "install"])
        assert installed.returncode == 0, installed.stdout + installed.stderr

    def run(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    def head(self) -> str:
        return git(self.root, "rev-parse", "HEAD", env=self.env)

    def append(self, name: str, text: str) -> None:
        with (self.root / name).open("a", encoding="utf-8") as file:
            file.write(text)

    def commit(self, message: str) -> subprocess.CompletedProcess[str]:
        git(self.root, "add", "-A", env=self.env)
        return self.run(["git", "commit", "-m", message])


def _longer_summary_prompt(project: Project) -> None:
    """About 1,900 more tokens in the ticket summary: its 5k input budget no longer holds."""
    project.append(
        "prompts/support/summarize_ticket.j2",
        "".join(
            f"Rule {i}: quote the ticket number, the customer's plan and the last agent's "
            f"name, and never speculate about refunds for case {i * 7}.\n"
            for i in range(1, 71)
        ),
    )


@real_commits
def test_commit_within_budget_passes_the_hook(tmp_path: Path) -> None:
    project = Project(tmp_path, local_config())
    before = project.head()
    classify = project.root / "prompts/support/classify.j2"
    text = classify.read_text(encoding="utf-8")
    assert "version: 3\n" in text  # versioned, and in promptbudget.lock: an edit bumps it
    classify.write_text(
        text.replace("version: 3\n", "version: 4\n") + "Answer with the label only.\n",
        encoding="utf-8",
    )

    done = project.commit("classify: answer with the label only")

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert re.search(r"promptbudget check\.+Passed", output), output
    assert project.head() != before


@real_commits
def test_an_edit_without_a_version_bump_is_blocked(tmp_path: Path) -> None:
    project = Project(tmp_path, local_config())
    before = project.head()
    project.append("prompts/support/classify.j2", "Answer with the label only.\n")

    done = project.commit("classify: answer with the label only")

    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "PB206 version-not-bumped" in output
    assert project.head() == before


@real_commits
def test_commit_over_budget_is_blocked(tmp_path: Path) -> None:
    project = Project(tmp_path, local_config())
    before = project.head()
    _longer_summary_prompt(project)

    done = project.commit("a longer ticket summary prompt")

    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert re.search(r"promptbudget check\.+Failed", output), output
    assert "PB101 input-over-budget" in output
    assert "prompts/support/summarize_ticket.j2" in output
    assert "'ticket-summary'" in output
    assert "support-reply" not in output  # only the workflow that uses the changed template
    assert project.head() == before  # the commit did not happen
    staged = git(project.root, "diff", "--cached", "--name-only", env=project.env)
    assert staged == "prompts/support/summarize_ticket.j2"  # and the change is kept


@real_commits
def test_readme_local_config_blocks_a_lower_limit_in_the_manifest(tmp_path: Path) -> None:
    project = Project(tmp_path, readme_snippet("pre-commit-local"))
    before = project.head()
    manifest = project.root / "budgets.yaml"
    text = manifest.read_text(encoding="utf-8")
    assert text.count("max_input_tokens: 2k") == 1
    manifest.write_text(
        text.replace("max_input_tokens: 2k", "max_input_tokens: 300"), encoding="utf-8"
    )

    done = project.commit("escalation drafts: a tighter input budget")

    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "PB101 input-over-budget" in output
    assert "'escalation-draft'" in output
    # The manifest changed, so every workflow was checked (the passing ones are in the table).
    assert re.search(r"^support-reply\s", output, re.MULTILINE), output
    assert project.head() == before


@real_commits
def test_commit_without_prompts_skips_the_hook(tmp_path: Path) -> None:
    project = Project(tmp_path, local_config())
    before = project.head()
    project.append("README.md", "\nHow to run the assistant locally.\n")

    done = project.commit("docs")

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert re.search(r"promptbudget check\.+\(no files to check\)Skipped", output), output
    assert project.head() != before
