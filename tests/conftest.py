"""Shared fixtures: run the CLI in-process, and write small projects into ``tmp_path``."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from promptbudget.cache import flush_caches
from promptbudget.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
# A pasted support policy (83 o200k tokens): a PB204 passage wherever two templates hold it.
POLICY = (
    "Refunds are issued within thirty days of purchase when the item is unused, in its "
    "original packaging, and accompanied by the receipt; store credit is offered otherwise, "
    "and shipping costs are never refunded unless the item arrived damaged or was wrong. "
    "Escalate to a human agent whenever the customer mentions a chargeback, a legal claim, "
    "a safety issue or an order above five hundred dollars, and never promise a date."
)
CORPUS = Path(__file__).resolve().parent / "corpus"


TODAY = "2026-12-05"  # the date every CLI run in the tests sees


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="Rewrite golden files under tests/reporters/golden from the current output.",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Where the environment forbids writing bytecode (``PYTHONDONTWRITEBYTECODE``, as on the
    2-core CI machine), the package's and the tests' modules are compiled once here, into
    their ``__pycache__`` in this checkout (git ignores them), before the workers start:
    otherwise each worker and each ``python`` the tests start compiled them again (~0.1 s
    a start). Python reads them only while their source is unchanged; nothing is written
    outside src/ and tests/."""
    if sys.dont_write_bytecode and not hasattr(config, "workerinput"):
        import compileall

        for directory in (REPO / "src" / "promptbudget", REPO / "tests"):
            compileall.compile_dir(directory, quiet=2)


# Seconds each of the slowest test files takes on one worker (2-core machine, load ~3, a
# per-test timeline of a clean clone's run); any other file counts 0.07 s a test (the
# suite's mean). ``--dist loadfile`` hands a worker the next file when it runs short; xdist
# orders files by their number of tests, so a slow file of few tests (test_quality.py's
# mypy, test_release.py's builds, test_affected.py) started last and ran on one worker while
# the other stood idle. Only the order changes: every file still runs whole on one worker.
SLOW_FILES = {
    "tests/integrations/test_release.py": 15.9,
    "tests/unit/test_resultcodec.py": 10.8,
    "tests/test_quality.py": 9.9,
    "tests/security/test_renders.py": 8.0,
    "tests/replay/test_replay_sql.py": 7.3,
    "tests/cli/test_affected.py": 7.1,
    "tests/security/test_reads.py": 6.7,
    "tests/security/test_deadline.py": 6.6,
    "tests/cli/test_parallel.py": 6.4,
    "tests/replay/test_replay_formats.py": 6.3,
    "tests/integrations/test_pre_commit.py": 5.1,
    "tests/replay/test_replay_native.py": 4.7,
    "tests/integrations/test_action.py": 4.3,
    "tests/cli/test_edit_elsewhere.py": 4.1,
    "tests/rules/test_rule_cases.py": 3.4,
    "tests/cli/test_cache.py": 3.1,
    "tests/security/test_scanners.py": 3.0,
    "tests/runtime/test_runtime_litellm.py": 2.8,
    "tests/replay/test_replay_recovery.py": 2.8,
    "tests/replay/test_replay_latency.py": 2.8,
    "tests/test_architecture.py": 2.4,
    "tests/cli/test_diff_base.py": 1.9,
    "tests/cli/test_stdin.py": 1.9,
    "tests/runtime/test_runtime_readme.py": 1.9,
    "tests/unit/test_textscan.py": 1.6,
    "tests/security/test_huge_counts.py": 1.6,
    "tests/security/test_entry_points.py": 1.6,
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile``, the slowest file left first (longest processing time first)."""
    if config.getoption("dist", None) != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    if not hasattr(LoadFileScheduling, "_assign_work_unit"):
        return None  # another pytest-xdist than 3.5-3.8: its own order (only slower)

    class SlowestFileFirst(LoadFileScheduling):
        def _assign_work_unit(self, node: Any) -> None:
            queue = getattr(self, "workqueue", None)
            if queue and hasattr(queue, "move_to_end"):

                def seconds(scope: str) -> float:
                    return SLOW_FILES.get(scope, 0.07 * len(queue[scope]))

                queue.move_to_end(max(queue, key=seconds), last=False)
            super()._assign_work_unit(node)

    return SlowestFileFirst(config, log)


@pytest.fixture(autouse=True, scope="session")
def _cache_outside_the_projects(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Runs cache under one directory per test process (not into examples/ or the test
    projects, whose files some tests compare before and after; ``_cache_per_test``: a
    directory per test), and keep the cache's HMAC key out of the user's home.
    tests/cli/test_cache.py tests the cache in the project."""
    names = ("XDG_CACHE_HOME", "PROMPTBUDGET_CACHE_DIR")
    previous = {name: os.environ.get(name) for name in names}
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("xdg-cache"))
    os.environ["PROMPTBUDGET_CACHE_DIR"] = str(tmp_path_factory.mktemp("promptbudget-cache"))
    yield
    for name, value in previous.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(autouse=True)
def _cache_emptied_after_each_test(_cache_outside_the_projects: None) -> Iterator[None]:
    """After each test, the process's cache directory is emptied of entries and run memos
    (what is left: the HMAC key and ``.gitignore`` the first run made): one cache kept by
    every test of a process grew to tens of thousands of entries a shard, which each run
    read, verified and wrote back whole. A cache a test opened without a command-line run
    (a command's ``run`` called directly) is closed first: left active, it answered a later
    test's renders from memory (``test_a_template_compiled_once_renders_like_a_fresh_one``
    then failed, depending on which tests its worker ran before)."""
    yield
    flush_caches()
    directory = os.environ["PROMPTBUDGET_CACHE_DIR"]
    with contextlib.suppress(FileNotFoundError), os.scandir(directory) as entries:
        for entry in entries:
            if entry.name in {".key", ".gitignore"}:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)


@pytest.fixture(autouse=True, scope="session")
def _cli_built_once() -> Iterator[None]:
    """Typer builds the Click command tree again on every call of the app (about 14 ms, most
    of a small in-process run): built once per test process, as tests/security/fuzzing.py
    does for its cases. The tree is read-only (a Click command is made to be invoked many
    times, each with its own context); the console script builds it once per process too."""
    import functools

    import typer.main

    real = typer.main.get_command
    if not hasattr(real, "cache_info"):
        typer.main.get_command = functools.lru_cache(maxsize=None)(real)
    yield
    typer.main.get_command = real


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@pytest.fixture
def run_cli(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[..., Run]:
    """Run ``promptbudget ARGS`` in-process from ``cwd``; stdout and stderr captured apart.
    Without ``cwd`` it runs from an empty directory, outside the repository (whose own
    budgets.yaml would otherwise be found)."""
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.delenv("GITHUB_WORKSPACE", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    monkeypatch.delenv("GITHUB_BASE_REF", raising=False)  # diff finds its base from these
    monkeypatch.delenv("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("COLUMNS", raising=False)  # a test that wants a width sets it
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    # The run's date is injected, never read from the clock (PB116 deprecations).
    monkeypatch.setenv("PROMPTBUDGET_TODAY", TODAY)

    def run(*args: str, cwd: Path | None = None) -> Run:
        capsys.readouterr()
        previous = Path.cwd()
        os.chdir(cwd if cwd is not None else tmp_path_factory.mktemp("cwd"))
        try:
            code = main(list(args))
        finally:
            os.chdir(previous)
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """Write ``files`` (path -> text, dedented) under a fresh directory and return it.

    ``make_project({"budgets.yaml": "...", "prompts/a.j2": "..."})``.
    """
    counter = iter(range(1_000_000))

    def make(files: dict[str, str | bytes], *, dedent: bool = True) -> Path:
        root = tmp_path / f"project{next(counter)}"
        root.mkdir()
        for name, content in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(textwrap.dedent(content) if dedent else content, encoding="utf-8")
        return root

    return make


@pytest.fixture
def chdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[Path], None]]:
    def change(path: Path) -> None:
        monkeypatch.chdir(path)

    yield change


_SNIPPET = re.compile(
    r"^<!-- snippet: (?P<name>[\w.-]+) -->\n```[^\n]*\n(?P<body>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)


def readme_snippets() -> dict[str, str]:
    """Every README code block marked ``<!-- snippet: NAME -->`` on the line above it."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return {m.group("name"): m.group("body") for m in _SNIPPET.finditer(text)}


def readme_snippet(name: str) -> str:
    """The README's snippet ``name``, exactly as a user would copy it."""
    snippets = readme_snippets()
    if name not in snippets:
        raise KeyError(f"README.md has no block marked <!-- snippet: {name} -->")
    return snippets[name]


# Hostile-input tests: the CLI in a child process under a timeout and a memory limit.
from security.bounded_run import fork_server, run_bounded  # noqa: E402,F401


class Launch:
    """``promptbudget ARGS`` as the console script runs it (run memos first), counting the
    runs no memo answered (``launcher``)."""

    def __init__(self, capsys: pytest.CaptureFixture[str], root: Path) -> None:
        self.capsys = capsys
        self.root = root
        self.full_runs = 0

    def __call__(self, *args: str) -> tuple[int, str, str]:
        from promptbudget.launcher import main as launch

        self.capsys.readouterr()
        previous = Path.cwd()
        os.chdir(self.root)
        try:
            code = launch(list(args))
        finally:
            os.chdir(previous)
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err


def launcher(
    root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Launch:
    """A ``Launch`` in ``root`` whose ``full_runs`` counts the runs that reached the CLI."""
    import promptbudget.cli

    launch = Launch(capsys, root)
    real = promptbudget.cli.main

    def counted(args: list[str]) -> int:
        launch.full_runs += 1
        return real(args)

    monkeypatch.setattr(promptbudget.cli, "main", counted)
    return launch


def age(path: Path, seconds: int = 60) -> None:
    """Make ``path`` look changed ``seconds`` ago (out of the racy window)."""
    when = path.stat().st_mtime_ns - seconds * 1_000_000_000
    os.utime(path, ns=(when, when))


def age_project(root: Path) -> None:
    """Every file and directory under ``root``, and ``root``, changed a minute ago."""
    for current, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            age(Path(current, name))
    age(root)


def check_report(run_cli: Callable[..., Run], root: Path, *args: str) -> dict[str, Any]:
    """``promptbudget check ARGS --format json`` run in ``root``: its report (exit 0 or 1)."""
    run = run_cli("check", *args, "--format", "json", cwd=root)
    assert run.exit_code in (0, 1), run.stderr
    data: dict[str, Any] = run.json()
    return data


def edit_text(path: Path, old: str, new: str) -> None:
    """``old`` (which ``path`` holds) replaced by ``new`` in ``path``."""
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")


def templates_passed(
    monkeypatch: pytest.MonkeyPatch, owner: object, name: str, at: int
) -> list[str]:
    """The display path of the template given as argument ``at`` each time ``owner.name`` is
    called from now on (a method's ``self`` is argument 0), in call order."""
    seen: list[str] = []
    real = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        seen.append(args[at].display_path)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, counted)
    return seen
