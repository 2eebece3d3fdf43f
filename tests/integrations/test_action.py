"""The composite GitHub Action (``action.yml``), its scripts run the way the runner runs them.

A small runner below plays GitHub's part: it resolves ``${{ }}`` expressions in ``env:``,
``if:``, ``working-directory`` and the outputs, runs each ``run:`` script with ``bash
--noprofile --norc -eo pipefail`` (GitHub's ``shell: bash``) in a git checkout of a pull
request, with ``GITHUB_OUTPUT``, ``GITHUB_STEP_SUMMARY``, ``RUNNER_TEMP``... set, and a fake
``gh`` first on PATH that records what it is asked and answers like the GitHub API.

What it cannot show: ``actions/setup-python`` and the real ``pip install "$GITHUB_ACTION_PATH"``
(network; the install script runs against a fake ``python`` instead), GitHub's own expression
engine beyond the operators used here, and the real API's permissions. The README's workflow
snippets are checked against the same file and run on ``examples/``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from sandbox import GIT, commit_all, git, init_repo, isolated_env, write_executable

from conftest import EXAMPLES, REPO, Run, readme_snippet
from promptbudget import __version__

ACTION_FILE = REPO / "action.yml"
MARKER = "<!-- promptbudget:diff -->"
BOT = "github-actions[bot]"  # the author of comments made with the default GITHUB_TOKEN
EXPRESSION = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
REPOSITORY = "octo/prompts"
TOKEN = "ghs_not_a_real_token"
PR_NUMBER = 7


def _missing_for_scripts() -> str | None:
    if os.name == "nt":
        return "the fake gh and python are POSIX scripts (the action's steps use bash)"
    if shutil.which("bash") is None:
        return "bash is not installed"
    if GIT is None:
        return "git is not installed"
    return None


runs_scripts = pytest.mark.skipif(
    _missing_for_scripts() is not None, reason=str(_missing_for_scripts())
)


def load_action() -> dict[str, Any]:
    action: dict[str, Any] = yaml.safe_load(ACTION_FILE.read_text(encoding="utf-8"))
    return action


def steps() -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = load_action()["runs"]["steps"]
    return result


# -- GitHub's expressions, the part this action uses ---------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<op>==|!=|&&|\|\||!|\(|\))|(?P<path>[A-Za-z_][\w.-]*))"
)
Value = str | bool


def evaluate(expression: str, context: Mapping[str, Any]) -> Value:
    """``a.b.c``, ``'text'``, ``== != ! && ||`` and parentheses, as GitHub evaluates them:
    string comparison ignores case, ``&&``/``||`` return an operand, a missing property is
    ``''``, an unknown context is an error (the runner below does not model it)."""
    tokens: list[tuple[str, str]] = []
    position, text = 0, expression.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ValueError(f"unsupported expression {expression!r} at {text[position:]!r}")
        position = match.end()
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))

    def peek() -> str | None:
        return tokens[0][1] if tokens and tokens[0][0] == "op" else None

    def atom() -> Value:
        kind, token = tokens.pop(0)
        if token == "(" and kind == "op":
            value = either()
            assert tokens.pop(0)[1] == ")"
            return value
        if kind == "string":
            return token[1:-1].replace("''", "'")
        if kind == "path":
            return lookup(token, context)
        raise ValueError(f"unexpected {token!r} in {expression!r}")

    def comparison() -> Value:
        if peek() == "!":
            tokens.pop(0)
            return not truthy(comparison())
        left = atom()
        if peek() in ("==", "!="):
            operator = tokens.pop(0)[1]
            right = atom()
            equal = str(left).lower() == str(right).lower()
            return equal if operator == "==" else not equal
        return left

    def both() -> Value:
        value = comparison()
        while peek() == "&&":
            tokens.pop(0)
            right = comparison()
            value = right if truthy(value) else value
        return value

    def either() -> Value:
        value = both()
        while peek() == "||":
            tokens.pop(0)
            right = both()
            value = value if truthy(value) else right
        return value

    result = either()
    assert not tokens, f"trailing tokens in {expression!r}: {tokens}"
    return result


def truthy(value: Value) -> bool:
    return bool(value)


def lookup(path: str, context: Mapping[str, Any]) -> str:
    root, *rest = path.split(".")
    if root not in context:
        raise KeyError(f"the test runner does not model the {root!r} context ({path})")
    value: Any = context[root]
    for part in rest:
        value = value.get(part, "") if isinstance(value, Mapping) else ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def interpolate(template: str, context: Mapping[str, Any]) -> str:
    def replace(match: re.Match[str]) -> str:
        value = evaluate(match.group(1), context)
        return ("true" if value else "false") if isinstance(value, bool) else value

    return EXPRESSION.sub(replace, template)


def condition(text: str | bool | None, context: Mapping[str, Any]) -> bool:
    if text is None:
        return True  # success(): every earlier step passed, or the job would have stopped
    if isinstance(text, bool):
        return text
    inner = EXPRESSION.fullmatch(text.strip())
    return truthy(evaluate(inner.group(1) if inner else text, context))


def as_input(value: object) -> str:
    """A ``with:`` value as the action sees it: YAML ``true`` arrives as ``'true'``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- a runner for the composite action -----------------------------------------------------


@dataclass
class StepRun:
    id: str | None
    name: str
    returncode: int
    stdout: str
    stderr: str
    outputs: dict[str, str]


@dataclass
class Job:
    runs: list[StepRun]
    skipped: list[str]
    outputs: dict[str, str]
    summary: str

    @property
    def returncode(self) -> int:
        return next((run.returncode for run in self.runs if run.returncode != 0), 0)

    def step(self, step_id: str) -> StepRun:
        return next(run for run in self.runs if run.id == step_id)

    @property
    def log(self) -> str:
        return "\n".join(f"## {r.name} ({r.returncode})\n{r.stdout}{r.stderr}" for r in self.runs)


def read_outputs(path: Path) -> dict[str, str]:
    """``name=value`` lines and ``name<<DELIMITER`` blocks, as the runner reads them."""
    outputs: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    while lines:
        line = lines.pop(0)
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, delimiter = line.split("<<", 1)
            block: list[str] = []
            while (current := lines.pop(0)) != delimiter:
                block.append(current)
            outputs[name] = "\n".join(block)
        elif line:
            name, value = line.split("=", 1)
            outputs[name] = value
    return outputs


@dataclass
class Runner:
    """One job on a pull request (or another event) of ``REPOSITORY`` that uses the action."""

    tmp_path: Path
    workspace: Path
    inputs: Mapping[str, object] = field(default_factory=dict)
    event_name: str = "pull_request"
    base_sha: str = ""
    preset: Mapping[str, dict[str, str]] = field(default_factory=dict)
    extra_env: Mapping[str, str] = field(default_factory=dict)

    def run(self, *, until: str | None = None) -> Job:
        action = load_action()
        env = isolated_env(self.tmp_path)
        temp = self.tmp_path / "runner-temp"
        temp.mkdir(exist_ok=True)
        env.update(
            CI="true",
            GITHUB_ACTIONS="true",
            GITHUB_EVENT_NAME=self.event_name,
            GITHUB_REPOSITORY=REPOSITORY,
            GITHUB_WORKSPACE=str(self.workspace),
            GITHUB_ACTION_PATH=str(REPO),
            RUNNER_TEMP=str(temp),
            RUNNER_OS="Linux",
            **self.extra_env,
        )
        event: dict[str, Any] = {}
        if self.event_name == "pull_request":
            event = {"pull_request": {"number": PR_NUMBER, "base": {"sha": self.base_sha}}}
        github = {
            "event_name": self.event_name,
            "event": event,
            "token": TOKEN,
            "repository": REPOSITORY,
        }
        declared = action.get("inputs", {})
        unknown = set(self.inputs) - set(declared)
        assert not unknown, f"inputs action.yml does not declare: {sorted(unknown)}"
        context: dict[str, Any] = {"github": github, "inputs": {}, "steps": {}}
        for name, spec in declared.items():
            given = self.inputs.get(name, spec.get("default", ""))
            context["inputs"][name] = interpolate(as_input(given), context)

        runs: list[StepRun] = []
        skipped: list[str] = []
        summary = temp / "step-summary.md"
        for index, step in enumerate(action["runs"]["steps"]):
            step_id = step.get("id") or f"__{index}"
            name = step.get("name") or step_id
            if step_id in self.preset:
                context["steps"][step_id] = {"outputs": dict(self.preset[step_id])}
                continue
            if not condition(step.get("if"), context):
                context["steps"][step_id] = {"outputs": {}}
                skipped.append(step_id)
                continue
            assert "run" in step, f"no stand-in for step {name!r} ({step.get('uses')})"
            assert step["shell"] == "bash", "the runner models shell: bash only"
            output_file = temp / f"output-{index}"
            output_file.write_text("", encoding="utf-8")
            step_env = dict(env)
            step_env.update(
                {k: interpolate(str(v), context) for k, v in step.get("env", {}).items()}
            )
            step_env.update(GITHUB_OUTPUT=str(output_file), GITHUB_STEP_SUMMARY=str(summary))
            cwd = self.workspace / interpolate(step.get("working-directory", "."), context)
            script = temp / f"step-{index}.sh"
            script.write_text(step["run"], encoding="utf-8")
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
                cwd=cwd,
                env=step_env,
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )
            outputs = read_outputs(output_file)
            context["steps"][step_id] = {"outputs": outputs}
            runs.append(
                StepRun(step.get("id"), name, done.returncode, done.stdout, done.stderr, outputs)
            )
            if done.returncode != 0 or step.get("id") == until:
                break  # later steps would be skipped: none of them runs on failure()
        job_outputs = {
            name: interpolate(spec["value"], context)
            for name, spec in action.get("outputs", {}).items()
        }
        text = summary.read_text(encoding="utf-8") if summary.exists() else ""
        return Job(runs, skipped, job_outputs, text)


# -- fixtures: a repository with a pull request, a fake gh ---------------------------------


@dataclass
class PullRequest:
    origin: Path
    workspace: Path
    base_sha: str
    head_sha: str


Change = Callable[[Path], None]


def within_budget(root: Path) -> None:
    with (root / "prompts/support/classify.j2").open("a", encoding="utf-8") as file:
        file.write("Answer with the label only.\n")


def over_budget(root: Path) -> None:
    """The change of ``examples/over-budget``: five articles, gpt-4.1, a greeting first."""
    shutil.copytree(EXAMPLES / "over-budget", root, dirs_exist_ok=True)


def make_pull_request(tmp_path: Path, change: Change, *, shallow: bool) -> PullRequest:
    """``origin`` with the examples as the base commit and ``change`` as the head; the
    workspace is a clone of the head, as actions/checkout leaves it."""
    env = isolated_env(tmp_path)
    origin = init_repo(tmp_path / "origin", env)
    shutil.copytree(
        EXAMPLES, origin, ignore=shutil.ignore_patterns("over-budget"), dirs_exist_ok=True
    )
    base = commit_all(origin, "base", env)
    change(origin)
    head = commit_all(origin, "head", env)
    workspace = tmp_path / "workspace"
    depth = ["--depth", "1"] if shallow else []
    git(tmp_path, "clone", "-q", *depth, origin.as_uri(), str(workspace), env=env)
    return PullRequest(origin, workspace, base, head)


def install_fake_gh(
    tmp_path: Path,
    pages: list[list[dict[str, Any]]],
    *,
    fail: bool = False,
    login: str | None = None,
) -> Path:
    """``gh`` that logs its arguments (and the body file's text) to ``gh.log`` and answers:
    the comment listing as ``gh api --paginate`` prints it (one JSON array per page), and
    the created or updated comment. ``fail``: a 403 on writes, as a fork's token gets.
    ``gh api user`` (not logged) answers ``login``, or a 403 as the default GITHUB_TOKEN
    gets when ``login`` is None."""
    log = tmp_path / "gh.log"
    listing = tmp_path / "gh-listing.json"
    listing.write_text("\n".join(json.dumps(page) for page in pages) + "\n", encoding="utf-8")
    write_executable(
        tmp_path / "bin" / "gh",
        f"#!{sys.executable}\n"
        + f"""
import json, os, sys
args = sys.argv[1:]
if args[:2] == ["api", "user"]:
    if {login!r} is None:
        sys.stderr.write("gh: Resource not accessible by integration (HTTP 403)\\n")
        sys.exit(1)
    print({login!r})
    sys.exit(0)
record = {{"args": args, "token": os.environ.get("GH_TOKEN")}}
for arg in args:
    if arg.startswith("body=@"):
        with open(arg[len("body=@"):], encoding="utf-8") as file:
            record["body"] = file.read()
with open({str(log)!r}, "a", encoding="utf-8") as file:
    file.write(json.dumps(record) + "\\n")
method = args[args.index("--method") + 1] if "--method" in args else "GET"
if method == "GET":
    with open({str(listing)!r}, encoding="utf-8") as file:
        sys.stdout.write(file.read())
elif {fail!r}:
    sys.stderr.write("gh: Resource not accessible by integration (HTTP 403)\\n")
    sys.exit(1)
else:
    print(json.dumps({{"id": 99, "html_url": "https://github.com/{REPOSITORY}/pull/{PR_NUMBER}#issuecomment-99"}}))
""",
    )
    return log


def gh_calls(log: Path) -> list[dict[str, Any]]:
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]


def installed(tmp_path: Path) -> dict[str, dict[str, str]]:
    """What the install step would leave: this interpreter, and promptbudget as a command."""
    return {
        "python": {"python-path": sys.executable},
        "install": {
            "python": sys.executable,
            "promptbudget": str(tmp_path / "bin" / "promptbudget"),  # from isolated_env
        },
    }


# -- the file itself -----------------------------------------------------------------------


def test_action_is_composite_with_described_inputs_and_outputs() -> None:
    action = load_action()
    assert action["runs"]["using"] == "composite"
    assert action["name"] and action["description"]
    for name, spec in action["inputs"].items():
        assert spec.get("description"), name
        assert "default" in spec, name
    assert {"working-directory", "python-version", "args", "format", "comment"} <= set(
        action["inputs"]
    )
    assert {"fail-on-increase", "github-token"} <= set(action["inputs"])
    assert action["inputs"]["github-token"]["default"] == "${{ github.token }}"
    assert action["inputs"]["comment"]["default"] == "false"
    assert action["inputs"]["working-directory"]["default"] == "."
    ids = [step["id"] for step in steps() if "id" in step]
    assert len(ids) == len(set(ids))
    for name, spec in action["outputs"].items():
        referenced = re.findall(r"steps\.([\w-]+)\.outputs", spec["value"])
        assert referenced and set(referenced) <= set(ids), name
    assert "exit-code" in action["outputs"]


def test_every_run_step_names_its_shell_and_no_script_holds_an_expression() -> None:
    """Script injection: ``${{ github.head_ref }}`` in a script is pasted in before bash
    parses it. Values must reach the scripts through ``env:``."""
    run_steps = [step for step in steps() if "run" in step]
    assert run_steps
    for step in run_steps:
        assert step.get("shell") == "bash", step.get("name")
        assert "${{" not in step["run"], step.get("name")


def test_every_expression_refers_to_something_declared() -> None:
    action = load_action()
    declared = set(action["inputs"])
    seen_ids: set[str] = set()

    def check(text: str, where: str) -> None:
        for expression in EXPRESSION.findall(text):
            for path in re.findall(r"[A-Za-z_][\w.-]*", re.sub(r"'[^']*'", "", expression)):
                root, *rest = path.split(".")
                if root == "inputs":
                    assert rest and rest[0] in declared, f"{where}: {path}"
                elif root == "steps":
                    assert rest and rest[0] in seen_ids, f"{where}: {path} (not an earlier step)"
                else:
                    assert root == "github", f"{where}: {path}"

    for index, step in enumerate(steps()):
        where = step.get("name", str(index))
        condition_text = step.get("if")
        if isinstance(condition_text, str):
            check("${{ " + condition_text + " }}", where)
        for key in ("env", "with"):
            for value in step.get(key, {}).values():
                check(str(value), where)
        check(str(step.get("working-directory", "")), where)
        if "id" in step:
            seen_ids.add(step["id"])
    for name, spec in action["outputs"].items():
        check(spec["value"], f"output {name}")


def test_third_party_actions_are_pinned_to_a_release() -> None:
    used = [step["uses"] for step in steps() if "uses" in step]
    assert used == ["actions/setup-python@v5"]
    setup = next(step for step in steps() if "uses" in step)
    assert setup["with"]["update-environment"] is False  # leaves the job's PATH alone


def test_expression_evaluator_follows_github_rules() -> None:
    context = {"inputs": {"comment": "True", "empty": ""}, "github": {"event_name": "push"}}
    assert evaluate("inputs.comment == 'true'", context) is True  # case-insensitive
    assert evaluate("inputs.empty != ''", context) is False
    assert evaluate("inputs.missing", context) == ""
    assert evaluate("github.event_name == 'pull_request' && inputs.comment", context) is False
    assert evaluate("(inputs.empty || 'x') == 'X'", context) is True
    assert evaluate("!inputs.empty", context) is True
    with pytest.raises(KeyError):
        evaluate("runner.os", context)


# -- the scripts ---------------------------------------------------------------------------


def install_fake_promptbudget(tmp_path: Path) -> tuple[Path, dict[str, dict[str, str]]]:
    """A ``promptbudget`` that logs its arguments and exits ``$FAKE_CHECK_EXIT`` (check) or
    ``$FAKE_DIFF_EXIT`` (diff, after writing a markdown report without the marker to
    ``--output``): for the action's own logic, without two cold starts of the real one."""
    log = tmp_path / "promptbudget.log"
    fake = write_executable(
        tmp_path / "fake-bin" / "promptbudget",
        f"""#!/bin/sh
printf '%s\\n' "$*" >> {shlex.quote(str(log))}
case "$1" in
  check) exit "${{FAKE_CHECK_EXIT:-0}}" ;;
  diff)
    previous=""
    for arg in "$@"; do
      [ "$previous" = --output ] && printf '## promptbudget diff\\n\\n+12 tokens\\n' > "$arg"
      previous="$arg"
    done
    exit "${{FAKE_DIFF_EXIT:-0}}" ;;
esac
exit 2
""",
    )
    preset = installed(tmp_path)
    preset["install"]["promptbudget"] = str(fake)
    return log, preset


@runs_scripts
def test_install_step_installs_the_action_into_its_own_environment(tmp_path: Path) -> None:
    """Against a fake ``python``: the real step pip-installs from the network."""
    calls = tmp_path / "python-calls.log"
    fake_python = write_executable(
        tmp_path / "setup-python" / "python",
        f"""#!/bin/sh
echo "$0 $*" >> {shlex.quote(str(calls))}
if [ "$1 $2" = "-m venv" ]; then
  mkdir -p "$3/bin"
  cp "$0" "$3/bin/python"
  printf '#!/bin/sh\\necho "promptbudget {__version__}"\\n' > "$3/bin/promptbudget"
  chmod +x "$3/bin/promptbudget"
fi
""",
    )
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    runner = Runner(tmp_path, workspace, preset={"python": {"python-path": str(fake_python)}})

    job = runner.run(until="install")

    install = job.step("install")
    assert install.returncode == 0, job.log
    venv = tmp_path / "runner-temp" / "promptbudget-venv"
    lines = calls.read_text(encoding="utf-8").splitlines()
    assert lines[0] == f"{fake_python} -m venv {venv}"
    assert lines[1] == (
        f"{venv}/bin/python -m pip install --disable-pip-version-check --quiet {REPO}"
    )
    assert install.outputs == {
        "python": f"{venv}/bin/python",
        "promptbudget": f"{venv}/bin/promptbudget",
    }
    assert f"promptbudget {__version__}" in install.stdout


@runs_scripts
@pytest.mark.parametrize("code", [0, 1, 2])
def test_check_exit_code_is_the_jobs(tmp_path: Path, code: int) -> None:
    pr = make_pull_request(tmp_path, within_budget, shallow=True)
    log, preset = install_fake_promptbudget(tmp_path)
    inputs = {"working-directory": "prompts", "args": "--fail-on warning  --samples 10 *"}
    runner = Runner(
        tmp_path, pr.workspace, inputs, preset=preset, extra_env={"FAKE_CHECK_EXIT": str(code)}
    )

    job = runner.run()

    assert job.step("check").returncode == 0  # the step records the code ...
    assert job.outputs["exit-code"] == str(code)
    assert job.returncode == code, job.log  # ... and the last step fails the job
    assert job.runs[-1].name == "Fail when a budget is broken"
    assert {"diff", "comment"} <= set(job.skipped)  # comment: false, no fail-on-increase
    assert job.outputs["diff-exit-code"] == ""
    # args split on whitespace and never globbed ('*' stays '*'); run in working-directory
    assert log.read_text(encoding="utf-8") == (
        "check --format auto --fail-on warning --samples 10 *\n"
    )


@runs_scripts
def test_comment_outside_a_pull_request_is_a_notice(tmp_path: Path) -> None:
    pr = make_pull_request(tmp_path, within_budget, shallow=True)
    log, preset = install_fake_promptbudget(tmp_path)
    runner = Runner(tmp_path, pr.workspace, {"comment": True}, event_name="push", preset=preset)

    job = runner.run()

    assert job.returncode == 0, job.log
    assert "::notice::promptbudget comments only on pull_request events" in job.log
    assert {"diff", "comment"} <= set(job.skipped)
    assert log.read_text(encoding="utf-8") == "check --format auto\n"


@runs_scripts
def test_readme_action_on_an_over_budget_pr_comments_then_fails(tmp_path: Path) -> None:
    """The README's workflow inputs and the real promptbudget, on a shallow checkout of a pull
    request that breaks budgets, with no earlier comment."""
    (step,) = [s for s in workflow_steps("ci-action") if "promptbudget/promptbudget" in s["uses"]]
    pr = make_pull_request(tmp_path, over_budget, shallow=True)
    log = install_fake_gh(tmp_path, [[{"id": 1, "body": "Looks good to me"}]])
    runner = Runner(
        tmp_path, pr.workspace, step["with"], base_sha=pr.base_sha, preset=installed(tmp_path)
    )

    job = runner.run()

    # --format auto inside GitHub Actions: annotations on the pull request's files
    assert "::error file=prompts/support/answer.prompty" in job.step("check").stdout
    assert f"fetching the base commit {pr.base_sha}" in job.step("diff").stdout, job.log
    assert job.step("comment").returncode == 0, job.log
    calls = gh_calls(log)
    assert [call["args"][:3] for call in calls] == [
        ["api", "--paginate", f"repos/{REPOSITORY}/issues/{PR_NUMBER}/comments?per_page=100"],
        ["api", "--method", "POST"],
    ]
    created = calls[1]
    assert created["args"][3] == f"repos/{REPOSITORY}/issues/{PR_NUMBER}/comments"
    assert created["body"].startswith(MARKER + "\n"), created["body"]
    assert created["body"].count(MARKER) == 1
    report = (tmp_path / "runner-temp" / "promptbudget-diff.md").read_text(encoding="utf-8")
    assert report.startswith(MARKER + "\n")  # diff writes the marker itself
    # promptbudget writes the job summary itself inside GitHub Actions: check's report, then
    # diff's (the action does not have to)
    assert job.summary.startswith("<!-- promptbudget -->\n"), job.summary
    assert MARKER in job.summary
    assert "support-reply" in created["body"]
    assert {call["token"] for call in calls} == {TOKEN}
    assert job.outputs["comment-url"].endswith("#issuecomment-99")
    # The check's failure still fails the job, after the comment was posted.
    assert job.outputs["exit-code"] == "1"
    assert job.returncode == 1
    assert job.runs[-1].name == "Fail when a budget is broken"


@runs_scripts
def test_existing_comment_is_updated_and_a_rise_fails_the_job(tmp_path: Path) -> None:
    pr = make_pull_request(tmp_path, within_budget, shallow=False)
    pages: list[list[dict[str, Any]]] = [
        [{"id": 11, "body": f"Why does the bot say {MARKER}?"}, {"id": 12, "body": None}],
        [
            {"id": 4241, "body": f"{MARKER}\nfake", "user": {"login": "mallory"}},
            {"id": 4242, "body": f"{MARKER}\n## old numbers", "user": {"login": BOT}},
            {"id": 4243, "body": MARKER, "user": {"login": BOT}},
        ],
    ]
    gh_log = install_fake_gh(tmp_path, pages)
    log, preset = install_fake_promptbudget(tmp_path)
    inputs = {"comment": "true", "fail-on-increase": "10%"}
    runner = Runner(
        tmp_path,
        pr.workspace,
        inputs,
        base_sha=pr.base_sha,
        preset=preset,
        extra_env={"FAKE_DIFF_EXIT": "1"},
    )

    job = runner.run()

    assert "fetching" not in job.step("diff").stdout  # the full clone has the base
    report = tmp_path / "runner-temp" / "promptbudget-diff.md"
    assert log.read_text(encoding="utf-8").splitlines()[1] == (
        f"diff --base {pr.base_sha} --format markdown --output {report} --fail-on-increase 10%"
    )
    calls = gh_calls(gh_log)
    assert [call["args"][1:4] for call in calls[1:]] == [
        ["--method", "PATCH", f"repos/{REPOSITORY}/issues/comments/4242"]
    ]
    body = calls[1]["body"]
    assert body == f"{MARKER}\n## promptbudget diff\n\n+12 tokens\n"  # marker added once
    assert job.outputs["exit-code"] == "0"  # every budget holds ...
    assert job.outputs["diff-exit-code"] == "1"  # ... but something rose more than 10%
    assert job.returncode == 1, job.log


@runs_scripts
@pytest.mark.parametrize(("login", "ours"), [(None, BOT), ("ci-user", "ci-user")])
def test_a_marker_posted_by_someone_else_is_not_hijacked(
    tmp_path: Path, login: str | None, ours: str
) -> None:
    """Anyone can post a comment starting with the marker; only the token's own comment is
    updated (github-actions[bot] for GITHUB_TOKEN, the token's user for a personal token)."""
    pr = make_pull_request(tmp_path, within_budget, shallow=False)
    pages: list[list[dict[str, Any]]] = [
        [
            {"id": 7, "body": f"{MARKER}\nplanted", "user": {"login": "mallory"}},
            {"id": 8, "body": f"{MARKER}\nplanted", "user": {"login": f"{ours}-not"}},
        ]
    ]
    gh_log = install_fake_gh(tmp_path, pages, login=login)
    _, preset = install_fake_promptbudget(tmp_path)
    job = Runner(
        tmp_path, pr.workspace, {"comment": "true"}, base_sha=pr.base_sha, preset=preset
    ).run()
    calls = gh_calls(gh_log)
    assert [call["args"][1:4] for call in calls[1:]] == [
        ["--method", "POST", f"repos/{REPOSITORY}/issues/{PR_NUMBER}/comments"]
    ], job.log
    pages[0].append({"id": 9, "body": f"{MARKER}\nours", "user": {"login": ours}})
    gh_log.unlink()
    gh_log = install_fake_gh(tmp_path, pages, login=login)
    Runner(tmp_path, pr.workspace, {"comment": "true"}, base_sha=pr.base_sha, preset=preset).run()
    calls = gh_calls(gh_log)
    assert [call["args"][1:4] for call in calls[1:]] == [
        ["--method", "PATCH", f"repos/{REPOSITORY}/issues/comments/9"]
    ]


@runs_scripts
def test_a_diff_that_cannot_run_fails_the_job_without_commenting(tmp_path: Path) -> None:
    pr = make_pull_request(tmp_path, within_budget, shallow=False)
    gh_log = install_fake_gh(tmp_path, [[]])
    _, preset = install_fake_promptbudget(tmp_path)
    runner = Runner(
        tmp_path,
        pr.workspace,
        {"comment": True},
        base_sha=pr.base_sha,
        preset=preset,
        extra_env={"FAKE_DIFF_EXIT": "2"},
    )

    job = runner.run()

    assert job.returncode == 2
    assert job.runs[-1].id == "diff"
    assert "::error::promptbudget diff could not run (exit 2)" in job.step("diff").stdout
    assert gh_calls(gh_log) == []


@runs_scripts
def test_comment_without_write_permission_warns_and_check_decides(tmp_path: Path) -> None:
    """A pull request from a fork: GitHub gives its jobs a read-only token."""
    pr = make_pull_request(tmp_path, within_budget, shallow=False)
    install_fake_gh(tmp_path, [[]], fail=True)
    _, preset = install_fake_promptbudget(tmp_path)
    runner = Runner(tmp_path, pr.workspace, {"comment": True}, base_sha=pr.base_sha, preset=preset)

    job = runner.run()

    assert "::warning::could not create the promptbudget comment" in job.step("comment").stdout
    assert job.outputs["comment-url"] == ""
    assert job.returncode == 0, job.log


# -- the README's workflows ----------------------------------------------------------------


def workflow_steps(name: str) -> list[dict[str, Any]]:
    workflow = yaml.safe_load(readme_snippet(name))
    (job,) = workflow["jobs"].values()
    result: list[dict[str, Any]] = job["steps"]
    return result


def _is_release_install(command: str) -> bool:
    url = f"git+https://github.com/promptbudget/promptbudget@v{__version__}"
    return shlex.split(command) == ["pip", "install", f"promptbudget-cli @ {url}"]


def test_readme_action_workflow_uses_declared_inputs_and_permissions() -> None:
    workflow = yaml.safe_load(readme_snippet("ci-action"))
    assert workflow["permissions"]["pull-requests"] == "write"
    (job,) = workflow["jobs"].values()
    checkout, action = job["steps"]
    assert checkout["uses"] == "actions/checkout@v4"
    assert checkout["with"]["fetch-depth"] == 0
    assert action["uses"] == f"promptbudget/promptbudget@v{__version__}"
    assert set(action["with"]) <= set(load_action()["inputs"])


def test_readme_sarif_workflow_runs_on_the_examples(
    run_cli: Callable[..., Run], tmp_path: Path
) -> None:
    workflow = yaml.safe_load(readme_snippet("ci-sarif"))
    assert workflow["permissions"]["security-events"] == "write"
    job_steps = workflow_steps("ci-sarif")
    upload = job_steps[-1]
    assert upload["uses"] == "github/codeql-action/upload-sarif@v3"
    assert upload["if"] == "${{ !cancelled() }}"  # uploads the findings of a failed check
    commands = [step["run"] for step in job_steps if "run" in step]
    assert _is_release_install(commands[0])
    project = tmp_path / "examples"
    shutil.copytree(EXAMPLES, project)
    (check,) = commands[1:]
    argv = shlex.split(check)
    assert argv[0] == "promptbudget"
    result = run_cli(*argv[1:], cwd=project)
    assert result.exit_code == 0, result.stderr
    sarif = json.loads((project / upload["with"]["sarif_file"]).read_text(encoding="utf-8"))
    assert sarif["version"] == "2.1.0"


@pytest.mark.skipif(GIT is None, reason="git is not installed")
def test_readme_plain_ci_commands_run_on_the_examples(
    run_cli: Callable[..., Run], tmp_path: Path
) -> None:
    lines = [line for line in readme_snippet("ci-plain").splitlines() if line.strip()]
    assert _is_release_install(lines[0])
    env = isolated_env(tmp_path)
    origin = init_repo(tmp_path / "origin", env)
    git(origin, "symbolic-ref", "HEAD", "refs/heads/main", env=env)
    shutil.copytree(
        EXAMPLES, origin, ignore=shutil.ignore_patterns("over-budget"), dirs_exist_ok=True
    )
    commit_all(origin, "the examples", env)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", origin.as_uri(), str(clone), env=env)
    for line in lines[1:]:
        argv = shlex.split(line, comments=True)
        assert argv[0] == "promptbudget", line
        result = run_cli(*argv[1:], cwd=clone)
        assert result.exit_code == 0, f"{line}\n{result.stdout}{result.stderr}"
