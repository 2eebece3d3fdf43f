"""``--format`` per command: each command lists, completes and accepts only the formats it
writes, each listed one writes that format, and any other is refused with one line, exit 2."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import EXAMPLES, Run

RunCli = Callable[..., Run]

ALL = ("auto", "text", "json", "github", "sarif", "junit", "markdown")

# What each command writes: the list, written out here, not read from the code.
FORMATS: dict[str, tuple[str, ...]] = {
    "count": ALL,
    "check": ALL,
    "replay": ALL,
    "diff": ALL,
    "estimate": ("text", "json", "markdown"),
    "compress": ("text", "json"),
    "models": ("text", "json"),
    "rules": ("text", "json"),
}
ARGS: dict[str, tuple[str, ...]] = {
    "replay": ("replay", "logs/openai-responses.jsonl"),
    "diff": ("diff", "--base", "HEAD"),
    "models": ("models", "gpt-4.1"),
}


def help_formats(help_text: str) -> tuple[str, ...]:
    found = re.search(r"--format <([a-z|]+)>", help_text)
    assert found is not None, help_text
    return tuple(found.group(1).split("|"))


def test_every_command_with_a_format_option_is_listed(run_cli: RunCli) -> None:
    top = run_cli("--help").stdout.split("Commands:")[1]
    commands = [line.split()[0] for line in top.splitlines() if line.startswith("  ")]
    with_format = [c for c in commands if "--format" in run_cli(c, "--help").stdout]
    assert sorted(with_format) == sorted(FORMATS)


@pytest.mark.parametrize("command", FORMATS)
def test_help_lists_exactly_the_formats_the_command_writes(command: str, run_cli: RunCli) -> None:
    result = run_cli(command, "--help")
    assert help_formats(result.stdout) == FORMATS[command]
    described = result.stdout.split("--format", 1)[1].split("-o, --output")[0]
    for fmt in FORMATS[command]:  # the help text describes each one it lists
        assert fmt in described


@pytest.mark.parametrize("command", FORMATS)
def test_completion_offers_exactly_the_listed_formats(command: str) -> None:
    env = dict(os.environ)
    env |= {
        "_PROMPTBUDGET_COMPLETE": "complete_bash",
        "COMP_WORDS": f"promptbudget {command} --format ",
        "COMP_CWORD": "3",
    }
    done = subprocess.run(
        [sys.executable, "-m", "promptbudget"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert tuple(done.stdout.split()) == FORMATS[command], done.stderr


@pytest.fixture(scope="module")
def examples_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The passing example, committed, so that ``diff --base HEAD`` has a base."""
    if shutil.which("git") is None:
        pytest.skip("diff needs git")
    root = tmp_path_factory.mktemp("formats") / "examples"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("over-budget"))
    env = {
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
        "PATH": "/usr/bin:/bin:/usr/local/bin",
    }
    for args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-q", "-m", "base")):
        subprocess.run(["git", *args], cwd=root, env=env, check=True, capture_output=True)
    return root


def assert_is(fmt: str, stdout: str) -> None:
    """``stdout`` is a report in ``fmt``, told apart by what each format must hold."""
    match fmt:
        case "json":
            assert json.loads(stdout)["schema_version"] >= 1
        case "sarif":
            payload = json.loads(stdout)
            assert payload["version"] == "2.1.0"
            assert payload["runs"][0]["tool"]["driver"]["name"] == "promptbudget"
        case "junit":
            assert ET.fromstring(stdout).tag == "testsuites"
        case "github":  # workflow commands and the summary line, nothing else
            lines = stdout.splitlines()
            assert lines[-1].startswith("promptbudget ")
            assert "error(s)" in lines[-1]
            assert all(line.startswith("::") for line in lines[:-1])
        case "markdown":
            assert stdout.startswith("<!-- promptbudget")
            assert "\n## " in stdout
        case "text" | "auto":
            assert not stdout.startswith(("{", "<", "::"))
            assert "## " not in stdout.split("\n", 1)[0]
        case _:
            raise AssertionError(fmt)


@pytest.mark.parametrize(
    ("command", "fmt"), [(c, f) for c, formats in FORMATS.items() for f in formats]
)
def test_each_listed_format_writes_that_format(
    command: str, fmt: str, run_cli: RunCli, examples_repo: Path
) -> None:
    args = ARGS.get(command, (command,))
    result = run_cli(*args, "--format", fmt.upper() if fmt == "json" else fmt, cwd=examples_repo)
    assert result.exit_code in (0, 1), result.stderr
    assert result.stdout.strip()
    assert_is(fmt, result.stdout)


@pytest.mark.parametrize(
    ("command", "fmt"),
    [(c, f) for c, formats in FORMATS.items() for f in ALL if f not in formats],
)
def test_a_format_the_command_does_not_write_is_refused_in_one_line(
    command: str, fmt: str, run_cli: RunCli
) -> None:
    result = run_cli(*ARGS.get(command, (command,)), "--format", fmt, cwd=EXAMPLES)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("promptbudget: error: Invalid value for '--format'")
    assert f"'{fmt}' is not one of " + ", ".join(f"'{f}'" for f in FORMATS[command]) in (
        result.stderr
    )
