"""Every code block in README.md is a snippet a test exercises.

Each block has a marker on the line above it: ``<!-- snippet: NAME -->`` (copy-paste material:
commands, configuration, templates) or ``<!-- formula -->`` (the cost model's arithmetic,
which ``tests/e2e`` reproduces by hand). ``console`` and ``sh`` snippets run here, in a
temporary copy of ``examples/`` committed to a fresh git repository: ``$ `` lines are
commands (``promptbudget`` runs in-process, anything else in bash), the lines after them are
output that must appear, in order, with runs of spaces collapsed; ``...`` stands for anything.
Other snippets are exercised by name, in this file or elsewhere (``readme_snippet("NAME")``).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import EXAMPLES, REPO, Run, readme_snippet, readme_snippets
from promptbudget.manifest.loader import compose_yaml, validate

README = (REPO / "README.md").read_text(encoding="utf-8")
TESTS = Path(__file__).resolve().parent

# Run by the generic runner below.
RUNNABLE = {
    "overview",
    "quick-start",
    "start-your-own",
    "schema",
    "manifest-error",
    "count",
    "check",
    "estimate-why",
    "estimate-what-if",
    "latency-check",
    "check-what-if",
    "models",
    "compress",
    "rules",
    "diff",
    "lock",
    "baseline",
    "replay",
    "replay-calibrate",
}


def test_every_block_is_marked() -> None:
    lines = README.split("\n")
    inside = False
    for number, line in enumerate(lines, start=1):
        if not line.startswith("```"):
            continue
        if not inside:
            marker = lines[number - 2] if number > 1 else ""
            assert re.fullmatch(r"<!-- (snippet: [\w.-]+|formula) -->", marker), (
                f"README.md:{number}: a code block without a <!-- snippet: NAME --> or "
                "<!-- formula --> marker on the line above"
            )
        inside = not inside
    assert not inside, "README.md ends inside a code block"


def test_snippet_names_are_unique() -> None:
    names = re.findall(r"<!-- snippet: ([\w.-]+) -->", README)
    assert len(names) == len(set(names))


def test_every_snippet_is_exercised() -> None:
    tests = "".join(
        path.read_text(encoding="utf-8") for path in TESTS.rglob("*.py") if path.is_file()
    )
    for name in readme_snippets():
        assert (
            name in RUNNABLE
            or f'readme_snippet("{name}")' in tests
            or (f'"{name}"' in tests and "readme_snippet(name)" in tests)
        ), f"README snippet {name!r} is not exercised by any test"


# -- the runner ------------------------------------------------------------------------------


def _pattern(expected: str) -> re.Pattern[str]:
    """An expected output line: spaces collapsed, ``...`` matches anything."""
    parts = [re.escape(part) for part in " ".join(expected.split()).split("...")]
    return re.compile(".*".join(parts))


def _normal(line: str) -> str:
    return " ".join(line.split())


def _assert_output(command: str, expected: list[str], actual: str) -> None:
    wanted = [line for line in expected if line.strip() and line.strip() != "..."]
    lines = [_normal(line) for line in actual.splitlines()]
    position = 0
    for line in wanted:
        pattern = _pattern(line)
        while position < len(lines) and not pattern.fullmatch(lines[position]):
            position += 1
        assert position < len(lines), (
            f"$ {command}\nexpected, in order: {line!r}\nactual output:\n{actual}"
        )
        position += 1


def _exits(comment: str) -> int | None:
    found = re.search(r"exits (\d)", comment)
    return int(found.group(1)) if found else None


class Shell:
    """Runs README commands: ``cd``, ``&&``, ``> FILE``, promptbudget in-process."""

    def __init__(self, root: Path, run_cli: Callable[..., Run]) -> None:
        self.root = root
        self.cwd = root
        self.run_cli = run_cli

    def run(self, line: str) -> tuple[str, int]:
        code_part, _, comment = line.partition("  #")
        output = ""
        code = 0
        for command in code_part.split("&&"):
            output, code = self._one(command.strip())
            if code:
                break
        expected = _exits(comment)
        if expected is not None:
            assert code == expected, f"$ {line}\nexit {code}, README says {expected}\n{output}"
        return output, code

    def _one(self, command: str) -> tuple[str, int]:
        words = shlex.split(command, comments=True)
        if not words:
            return "", 0
        if words[0] == "cd":
            self.cwd = (self.cwd / words[1]).resolve()
            assert self.cwd.is_relative_to(self.root)
            return "", 0
        if words[0] != "promptbudget":
            done = subprocess.run(
                ["bash", "-c", command],
                cwd=self.cwd,
                capture_output=True,
                text=True,
                check=False,
                env={**os.environ, **GIT_ENV},
            )
            assert done.returncode == 0, f"$ {command}\n{done.stderr}"
            return done.stdout, 0
        target = None
        if ">" in words:
            at = words.index(">")
            target, words = words[at + 1], words[:at]
        result = self.run_cli(*words[1:], cwd=self.cwd)
        assert result.exit_code in (0, 1) or "promptbudget: error:" in result.stderr, (
            f"$ {command}\nexit {result.exit_code}\n{result.stderr}"
        )
        if target is not None:
            (self.cwd / target).write_text(result.stdout, encoding="utf-8")
            return result.stderr, result.exit_code
        return result.stdout + result.stderr, result.exit_code


GIT_ENV = {
    "GIT_AUTHOR_NAME": "readme",
    "GIT_AUTHOR_EMAIL": "readme@example.com",
    "GIT_COMMITTER_NAME": "readme",
    "GIT_COMMITTER_EMAIL": "readme@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """A fresh repository holding a copy of the root project and examples/, committed."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copytree(EXAMPLES, root / "examples")
    shutil.copytree(REPO / "prompts", root / "prompts")
    for name in ("budgets.yaml", "promptbudget.lock"):
        shutil.copy2(REPO / name, root / name)
    if shutil.which("git"):
        for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "examples"]):
            subprocess.run(
                ["git", *args],
                cwd=root,
                check=True,
                capture_output=True,
                env={**os.environ, **GIT_ENV},
            )
    return root


def run_snippet(name: str, root: Path, run_cli: Callable[..., Run]) -> None:
    shell = Shell(root, run_cli)
    text = readme_snippet(name)
    if not text.lstrip().startswith("$ "):  # an sh block: every line is a command
        for line in text.splitlines():
            if line.strip():
                shell.run(line)
        return
    command: str | None = None
    expected: list[str] = []
    output = ""
    for line in [*text.splitlines(), "$ "]:
        if line.startswith("$ ") or line == "$":
            if command is not None:
                _assert_output(command, expected, output)
            command = line[2:].strip()
            expected = []
            output = shell.run(command)[0] if command else ""
        else:
            expected.append(line)


@pytest.mark.parametrize("name", sorted(RUNNABLE))
def test_console_and_sh_snippets_run(name: str, sandbox: Path, run_cli: Callable[..., Run]) -> None:
    if name == "diff" and shutil.which("git") is None:
        pytest.skip("the diff example needs git")
    run_snippet(name, sandbox, run_cli)


def test_runner_catches_a_wrong_number(sandbox: Path, run_cli: Callable[..., Run]) -> None:
    shell = Shell(sandbox, run_cli)
    output, _ = shell.run("cd examples && promptbudget check")
    _assert_output("check", ["✓ 0 errors, 2 warnings, 1 info — all budgets hold"], output)
    with pytest.raises(AssertionError):
        _assert_output("check", ["support-reply ... $9,999.99"], output)
    with pytest.raises(AssertionError):
        shell.run("promptbudget check  # exits 1")


# -- snippets that are not commands ------------------------------------------------------------


def test_install_and_test_commands_are_what_ci_runs() -> None:
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    install = readme_snippet("install").strip()
    assert install == "python3 -m venv .venv && . .venv/bin/activate && pip install -e '.[dev]'"
    assert "pip install --quiet -e '.[dev]'" in ci
    development = readme_snippet("development").splitlines()
    assert development[0].split("#")[0].strip() == install
    assert development[1].split("#")[0].strip() == "pytest"
    assert ci.rstrip().endswith("\npytest")
    quality = (TESTS / "test_quality.py").read_text(encoding="utf-8")
    for tool in ("ruff check .", "ruff format --check .", "mypy"):
        assert tool in development[2]
        assert repr(tool.split()).replace("'", '"') in quality or tool.split()[0] in quality


def test_budgets_reference_is_a_valid_manifest() -> None:
    text = readme_snippet("budgets-reference")
    data, lines = compose_yaml(text, "README.md")
    # YAML 1.1 reads an unquoted off as false; the loader reads it back as the severity.
    data["rules"] = {k: "off" if v is False else v for k, v in data["rules"].items()}
    validate(data, lines, "README.md")
    assert set(data) >= {"version", "workflows", "routes", "rules", "per_file_ignores"}


def test_pyproject_snippet_is_a_working_manifest(
    tmp_path: Path, run_cli: Callable[..., Run]
) -> None:
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "acme"\n\n' + readme_snippet("pyproject"), encoding="utf-8"
    )
    (tmp_path / "prompts/support").mkdir(parents=True)
    shutil.copy(EXAMPLES / "prompts/support/classify.j2", tmp_path / "prompts/support")
    run = run_cli("check", "--format", "json", cwd=tmp_path)
    assert run.exit_code == 0, run.stdout + run.stderr
    assert [w["name"] for w in run.json()["workflows"]] == ["support-reply"]


def test_suppression_snippet_silences_what_it_says(
    tmp_path: Path, run_cli: Callable[..., Run]
) -> None:
    policy = (EXAMPLES / "prompts/partials/policy.j2").read_text(encoding="utf-8")
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts/answer.j2").write_text(
        "system:\n" + readme_snippet("suppressions") + policy, encoding="utf-8"
    )
    manifest = (
        "version: 1\n"
        "defaults: {model: gpt-4.1-mini}\n"
        "workflows:\n"
        "  support:\n"
        "    traffic: {requests_per_day: 10000}\n"
        "    steps:\n"
        "      - prompt: answer.j2\n"
        "        output_tokens: 100\n"
        "        prompt_cache_hit_rate: 80%\n"
    )
    (tmp_path / "budgets.yaml").write_text(manifest, encoding="utf-8")
    run = run_cli("check", "--format", "json", cwd=tmp_path)
    # the dynamic greeting first leaves a 7-token prefix: the cache rate has no effect (PB113)
    assert [f["rule"] for f in run.json()["findings"]] == ["PB113"], run.stdout
    # Without the comments, the same template has exactly the findings they silence.
    bare = "\n".join(
        re.sub(r"\s*\{# promptbudget:[^#]*#\}.*", "", line)
        for line in (tmp_path / "prompts/answer.j2").read_text(encoding="utf-8").splitlines()
    )
    (tmp_path / "prompts/answer.j2").write_text(bare + "\n", encoding="utf-8")
    found = run_cli("check", "--format", "json", cwd=tmp_path).json()["findings"]
    assert sorted(f["rule"] for f in found) == ["PB113", "PB201", "PB201", "PB203"]


def test_tokenizer_json_snippet_counts_exactly(tmp_path: Path, run_cli: Callable[..., Run]) -> None:
    tokenizers = pytest.importorskip("tokenizers", reason="the tokenizers extra is not installed")
    from tokenizers import models, pre_tokenizers, trainers

    (tmp_path / "tokenizers").mkdir()
    tokenizer = tokenizers.Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.train_from_iterator(["Acme sells anvils."] * 20, trainer=trainers.BpeTrainer())
    tokenizer.save(str(tmp_path / "tokenizers/llama-3.3.json"))
    (tmp_path / "budgets.yaml").write_text(
        "version: 1\n" + readme_snippet("tokenizer-json") + "defaults: {model: acme-llama}\n",
        encoding="utf-8",
    )
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts/a.txt").write_text("Acme sells anvils.\n", encoding="utf-8")
    run = run_cli("count", "--format", "json", cwd=tmp_path)
    (template,) = run.json()["templates"]
    assert template["exact"] is True
    expected = len(tokenizer.encode("Acme sells anvils.\n", add_special_tokens=False).ids)
    assert template["text_tokens"] == expected


def test_deepseek_tokenizer_snippet_keeps_the_catalog_prices(
    tmp_path: Path, run_cli: Callable[..., Run]
) -> None:
    tokenizers = pytest.importorskip("tokenizers", reason="the tokenizers extra is not installed")
    from tokenizers import models, pre_tokenizers, trainers

    (tmp_path / "tokenizers").mkdir()
    tokenizer = tokenizers.Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.train_from_iterator(["Acme sells anvils."] * 20, trainer=trainers.BpeTrainer())
    tokenizer.save(str(tmp_path / "tokenizers/deepseek.json"))  # a stand-in, trained here
    (tmp_path / "budgets.yaml").write_text(
        "version: 1\n" + readme_snippet("tokenizer-json-deepseek"), encoding="utf-8"
    )
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts/a.txt").write_text("Acme sells anvils.\n", encoding="utf-8")
    listed = run_cli("models", "deepseek-flash", "--json", cwd=tmp_path).json()["models"]
    (flash,) = [m for m in listed if m["name"] == "deepseek-flash"]
    assert flash["tokenizer"] == "file:tokenizers/deepseek.json"
    assert (flash["input_per_mtok"], flash["output_per_mtok"]) == (0.3, 1.2)
    (template,) = run_cli(
        "count", "--model", "deepseek-flash", "--format", "json", cwd=tmp_path
    ).json()["templates"]
    assert template["exact"] is True
