"""Throwaway git repositories for the integration tests, cut off from the developer's machine.

No global or system git config (no hooks path, signing or templates leak in), no GitHub
Actions variables, no pre-commit cache outside ``tmp_path``, and ``promptbudget`` on PATH as
this interpreter's ``python -m promptbudget``: what a user's pre-commit or CI job would run,
without installing anything or touching the network.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

GIT = shutil.which("git")

# Variables of the surrounding run that must not reach the child processes: a git hook's
# GIT_DIR/GIT_INDEX_FILE, pre-commit's own, and GitHub Actions' (they switch the report format
# and the job summary on).
_LEAKY_PREFIXES = ("GIT_", "PRE_COMMIT", "GITHUB_", "RUNNER_")


def write_executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def isolated_env(tmp_path: Path) -> dict[str, str]:
    """The environment for git, pre-commit and the action's scripts in ``tmp_path``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_LEAKY_PREFIXES)}
    # Each test starts several Pythons (pre-commit, promptbudget): let them share compiled
    # bytecode across the session, kept in pytest's temporary directory, not in the tree.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(tmp_path.parent / "pycache")
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    bin_dir = tmp_path / "bin"
    write_executable(
        bin_dir / "promptbudget",
        f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m promptbudget "$@"\n',
    )
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME="Prompt Author",
        GIT_AUTHOR_EMAIL="author@example.com",
        GIT_COMMITTER_NAME="Prompt Author",
        GIT_COMMITTER_EMAIL="author@example.com",
        PRE_COMMIT_HOME=str(tmp_path / "pre-commit-home"),
        PRE_COMMIT_COLOR="never",
        PIP_NO_INDEX="1",  # belt and braces: nothing here may install from the network
        NO_COLOR="1",
        PATH=os.pathsep.join([str(bin_dir), env.get("PATH", "")]),
    )
    return env


def git(cwd: Path, *args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout.strip()


def init_repo(root: Path, env: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", env=env)
    git(root, "config", "user.name", "Prompt Author", env=env)
    git(root, "config", "user.email", "author@example.com", env=env)
    git(root, "config", "commit.gpgsign", "false", env=env)
    return root


def commit_all(root: Path, message: str, env: dict[str, str]) -> str:
    """Stage everything, commit without hooks, return the new HEAD."""
    git(root, "add", "-A", env=env)
    git(root, "commit", "-q", "--no-verify", "-m", message, env=env)
    return git(root, "rev-parse", "HEAD", env=env)
