"""A large tree evaluated in forked worker processes (parallel.py): ``check`` and ``count``
report the same bytes as in one process (``PROMPTBUDGET_JOBS=1``), the run memo and the
cache see what the workers read and added, an error in a worker is the error a sequential
run gives, a killed worker is made up for, and progress is counted in the parent.

``PROMPTBUDGET_JOBS=N`` forks N workers whatever the number of templates, so these projects
stay small."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import promptbudget.cli
import promptbudget.commands.count
import promptbudget.evaluation
import promptbudget.filecache
from conftest import POLICY, TODAY, Launch, Run, age_project, edit_text, launcher
from promptbudget import parallel
from promptbudget.cache import CACHE_DIR_NAME
from promptbudget.errors import TemplateNotFoundError, UsageError
from promptbudget.progress import set_sink
from promptbudget.runmemo import Recorder
from promptbudget.tokenizers import load_encoding

RunCli = Callable[..., Run]

FILES: dict[str, str] = {
    "budgets.yaml": (
        "version: 1\n"
        "defaults: {model: gpt-4.1-mini}\n"
        "variables:\n"
        "  question: {max_tokens: 50}\n"
        "templates:\n"
        "  prompts/limited.j2: {max_tokens: {cl100k_base: 5}}\n"
        "workflows:\n"
        "  support:\n"
        "    traffic: {requests_per_day: 1000}\n"
        "    steps:\n"
        "      - {name: answer, prompt: step.j2, output_tokens: {p50: 80, p95: 300}}\n"
        "      - {name: close, prompt: b09.j2, output_tokens: 50}\n"
    ),
    "promptfooconfig.yaml": "prompts:\n  - file://prompts/multi.txt\n",
    # a workflow's template, with a partial the parent renders again for its lanes
    "prompts/step.j2": (
        '{% include "partials/tone.j2" %}\n\n' + POLICY + "\n\nQuestion: {{ question }}\n"
    ),
    "prompts/partials/tone.j2": "Be kind, concise and exact.\n",
    # a partial only a template in no workflow includes: read by a worker alone
    "prompts/partials/only.j2": "Only the worker reads this partial.\n",
    "prompts/reader.j2": 'Intro.\n{% include "partials/only.j2" %}\nAsk {{ question }}.\n',
    "prompts/copy1.j2": f"You write emails for Acme.\n\n{POLICY}\n",
    "prompts/zz/copy2.j2": f"Intro line.\n\nSecond paragraph here.\n\n{POLICY}\n",
    # released once counted: its suppressions still apply (PB201 silenced, PB203 unused)
    "prompts/quiet.j2": (
        "{# promptbudget: disable=PB201 #}\nHello {{ nobody }}.\n"
        "{# promptbudget: disable=PB203 #}\n"
    ),
    "prompts/loose.j2": "Line one.\nEnd here.        \n\n\n\n\nBye.\n",
    "prompts/limited.j2": "Count these words with the cl100k encoding please.\n",
    "prompts/front.prompty": (
        "---\nname: front\nmodel:\n  api: chat\n  configuration: {type: openai, name: gpt-4o}\n"
        "sample: {who: Dana}\n---\nsystem:\nYou greet people.\n\nuser:\nHello {{ who }}\n"
    ),
    "prompts/matter.j2": (
        "---\nmodel: claude-sonnet-4-5\nsample: {user_name: Dana, items: [a, b]}\n---\n"
        "{% for item in items %}- {{ item }} for {{ user_name }}\n{% endfor %}"
    ),
    "prompts/broken.j2": "Hello {{ name \n",
    "prompts/missing.j2": '{% include "partials/nowhere.j2" %}\n',
    # an application's filter used here, and in a partial another template includes: known
    # whichever process renders which
    "prompts/a_filter.j2": "Hello {{ question | shout }}\n",
    "prompts/b_filter.j2": '{% include "partials/shouting.j2" %}\n',
    "prompts/partials/shouting.j2": "Partial {{ question | shout }}\n",
    "prompts/multi.txt": "One {{ question }}\n---\nTwo {{ question }}\n---\nThree\n",
    **{
        f"prompts/b{index:02d}.j2": (
            f"Template {index} answers {{{{ question }}}}.\n" + "More text here. " * index + "\n"
        )
        for index in range(12)
    },
}

SHARED = Path("prompts/partials/only.j2")


@pytest.fixture
def project(make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "COLUMNS", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("PROMPTBUDGET_TODAY", TODAY)
    return make_project(FILES, dedent=False)


@pytest.fixture
def forks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The workers this process forked (their pids)."""
    forked: list[int] = []
    real = os.fork

    def fork() -> int:
        pid = real()
        if pid:
            forked.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork)
    return forked


def jobs(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    monkeypatch.setenv("PROMPTBUDGET_JOBS", str(count))


COMMANDS = [
    pytest.param(("check", "--no-cache", "--format", "json"), id="check json"),
    pytest.param(("check", "--no-cache"), id="check text"),
    pytest.param(("check", "--no-cache", "--format", "sarif"), id="check sarif"),
    pytest.param(("count", "--no-cache", "--format", "json"), id="count json"),
    pytest.param(
        ("count", "--no-cache", "--model", "gpt-4o", "--model", "claude-sonnet-4-5"),
        id="count, two models",
    ),
]


@pytest.mark.parametrize("args", COMMANDS)
def test_the_report_is_the_same_byte_for_byte(
    run_cli: RunCli,
    project: Path,
    forks: list[int],
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
) -> None:
    jobs(monkeypatch, 1)
    alone = run_cli(*args, cwd=project)
    assert not forks
    assert alone.exit_code in (0, 1), alone.stderr
    for count in (2, 3):
        jobs(monkeypatch, count)
        shared = run_cli(*args, cwd=project)
        assert len(forks) == count
        forks.clear()
        assert (shared.exit_code, shared.stdout, shared.stderr) == (
            alone.exit_code,
            alone.stdout,
            alone.stderr,
        )


def test_the_fixture_holds_what_the_workers_must_send_back(run_cli: RunCli, project: Path) -> None:
    """What the byte-for-byte comparison rests on: findings a lost piece would change."""
    data = run_cli("check", "--no-cache", "--format", "json", cwd=project).json()
    found = {(f["rule"], f["path"]) for f in data["findings"]}
    assert ("PB002", "prompts/quiet.j2") in found  # a released template's unused suppression
    assert ("PB201", "prompts/quiet.j2") not in found  # and the one it silences
    assert any(rule == "PB204" for rule, _ in found)  # a passage pasted in three templates
    assert ("PB205", "prompts/loose.j2") in found  # what compression saves
    assert ("PB001", "prompts/broken.j2") in found
    assert ("PB001", "prompts/missing.j2") in found
    assert ("PB001", "prompts/b_filter.j2") not in found  # the application's filter
    assert [t["variant"] for t in data["templates"] if t["path"] == "prompts/multi.txt"] == [
        "1 of 3",
        "2 of 3",
        "3 of 3",
    ]
    (limited,) = [t for t in data["templates"] if t["path"] == "prompts/limited.j2"]
    # counted again with another encoding: its messages were kept
    assert [(x["counted_with"], x["measured"]) for x in limited["limits"]] == [("cl100k_base", 11)]


def test_with_a_lock_the_report_is_the_same(
    run_cli: RunCli, project: Path, forks: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs(monkeypatch, 1)
    assert run_cli("lock", cwd=project).exit_code == 0
    (project / "prompts/b03.j2").write_text("Changed {{ question }} without a new version.\n")
    alone = run_cli("check", "--no-cache", "--format", "json", cwd=project)
    assert any(f["rule"].startswith("PB3") for f in alone.json()["findings"])
    jobs(monkeypatch, 2)
    shared = run_cli("check", "--no-cache", "--format", "json", cwd=project)
    assert forks
    assert (shared.exit_code, shared.stdout) == (alone.exit_code, alone.stdout)


# -- the run memo and the cache see what the workers did ------------------------------------


@pytest.fixture
def launched(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Launch:
    monkeypatch.delenv("PROMPTBUDGET_CACHE_DIR")  # the cache in the project, as users have it
    return launcher(project, capsys, monkeypatch)


@pytest.mark.parametrize("command", ["check", "count"])
@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(SHARED, id="a partial only a worker read"),
        pytest.param(Path("prompts/b05.j2"), id="a template only a worker read"),
    ],
)
def test_the_memo_sees_what_the_workers_read(
    launched: Launch,
    forks: list[int],
    monkeypatch: pytest.MonkeyPatch,
    command: str,
    edit: Path,
) -> None:
    jobs(monkeypatch, 2)
    first = launched(command, "--format", "json")
    assert forks
    age_project(launched.root)
    assert launched(command, "--format", "json") == first
    assert launched.full_runs == 1, "the memo of a run done by workers answers"
    path = launched.root / edit
    path.write_text(path.read_text() + "Now much longer: " + "more words, " * 40 + "\n")
    again = launched(command, "--format", "json")
    assert launched.full_runs == 2, "a memo answered although a file a worker read changed"
    assert again != first
    jobs(monkeypatch, 1)
    assert launched(command, "--format", "json", "--no-cache") == again


def shards(directory: Path) -> dict[str, Any]:
    """Every entry of the cache in ``directory`` (its signed shards)."""
    entries: dict[str, Any] = {}
    for shard in directory.glob("*/*.json"):
        entries.update(json.loads(shard.read_bytes().partition(b"\n")[2]))
    return entries


@pytest.mark.parametrize("command", ["check", "count"])
def test_the_cache_keeps_what_the_workers_added(
    run_cli: RunCli,
    project: Path,
    forks: list[int],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    command: str,
) -> None:
    age_project(project)  # entries by stat, the same in both runs
    kept = {}
    for count in (1, 2):
        jobs(monkeypatch, count)
        monkeypatch.setenv("PROMPTBUDGET_CACHE_DIR", str(tmp_path / f"cache{count}"))
        assert run_cli(command, cwd=project).exit_code in (0, 1)
        kept[count] = shards(tmp_path / f"cache{count}")
    assert forks
    assert len(kept[1]) > 20
    assert kept[2] == kept[1]


# -- errors ---------------------------------------------------------------------------------


def fail_on(monkeypatch: pytest.MonkeyPatch, shown: str, failure: Callable[[], None]) -> None:
    """``failure()`` when ``shown`` is evaluated, by ``check`` or ``count``."""
    for module in (promptbudget.evaluation, promptbudget.commands.count):
        real = module.evaluate_template

        def evaluate(*args: Any, real: Any = real, **kwargs: Any) -> Any:
            if args[1].display_path == shown:
                failure()
            return real(*args, **kwargs)

        monkeypatch.setattr(module, "evaluate_template", evaluate)


def missing() -> None:
    raise TemplateNotFoundError("prompts/b07.j2: no such file or directory")


def bug() -> None:
    raise RuntimeError("a bug in evaluation")


@pytest.mark.parametrize("failure", [missing, bug], ids=["user error", "internal error"])
@pytest.mark.parametrize("command", ["check", "count"])
def test_an_error_in_a_worker_is_the_sequential_runs_error(
    run_cli: RunCli,
    project: Path,
    forks: list[int],
    monkeypatch: pytest.MonkeyPatch,
    failure: Callable[[], None],
    command: str,
) -> None:
    fail_on(monkeypatch, "prompts/b07.j2", failure)
    jobs(monkeypatch, 1)
    alone = run_cli(command, "--no-cache", cwd=project)
    assert alone.exit_code == 2
    jobs(monkeypatch, 2)
    shared = run_cli(command, "--no-cache", cwd=project)
    assert forks
    assert shared.exit_code == 2
    assert shared.stdout == alone.stdout == ""
    # the same last line (an internal error's traceback shows where it was raised)
    assert shared.stderr.splitlines()[-1] == alone.stderr.splitlines()[-1]
    if failure is missing:
        assert (
            shared.stderr
            == alone.stderr
            == ("promptbudget: error: prompts/b07.j2: no such file or directory\n")
        )


def kill_worker(parent: int) -> Callable[[], None]:
    def kill() -> None:
        if os.getpid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return kill


@pytest.mark.parametrize("command", ["check", "count"])
def test_a_killed_worker_is_made_up_for_and_the_run_keeps_no_memo(
    launched: Launch, forks: list[int], monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    jobs(monkeypatch, 1)
    expected = launched(command, "--no-cache")
    fail_on(monkeypatch, "prompts/b04.j2", kill_worker(os.getpid()))
    jobs(monkeypatch, 2)
    assert launched(command) == expected
    assert len(forks) == 2
    age_project(launched.root)
    runs = launched.full_runs
    assert launched(command) == expected
    assert launched.full_runs == runs + 1, "what the killed worker read is unknown: no memo"
    assert not any(p.name.startswith("run-") for p in (launched.root / CACHE_DIR_NAME).iterdir())


# -- progress, and how many workers ----------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def start(self, label: str, total: int) -> None:
        self.calls.append(("start", label, total))

    def advance(self) -> None:
        self.calls.append(("advance",))

    def stop(self) -> None:
        self.calls.append(("stop",))


def test_progress_is_counted_in_the_parent_and_results_come_in_order(
    monkeypatch: pytest.MonkeyPatch, forks: list[int]
) -> None:
    jobs(monkeypatch, 3)
    sink = Sink()
    set_sink(sink)
    try:
        done = list(parallel.in_order(list(range(20)), lambda i: (i * i, os.getpid()), "squares"))
    finally:
        set_sink(None)
    assert [square for square, _ in done] == [i * i for i in range(20)]
    assert {pid for _, pid in done} == set(forks)  # every one done by a worker
    assert len(forks) == 3
    assert sink.calls == [("start", "squares", 20), *[("advance",)] * 20, ("stop",)]


def test_one_job_forks_nothing(monkeypatch: pytest.MonkeyPatch, forks: list[int]) -> None:
    jobs(monkeypatch, 1)
    assert (
        list(parallel.in_order(list(range(300)), lambda i: os.getpid(), "x")) == [os.getpid()] * 300
    )
    assert not forks


def test_how_many_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PROMPTBUDGET_JOBS", raising=False)
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 4)
    assert parallel.jobs_for(parallel.MIN_TEMPLATES - 1) == 1  # not worth forking
    assert parallel.jobs_for(parallel.MIN_TEMPLATES) == 4
    jobs(monkeypatch, 3)
    assert parallel.jobs_for(10) == 3  # asked for: whatever the number of files
    assert parallel.jobs_for(2) == 2
    assert parallel.jobs_for(1) == 1
    jobs(monkeypatch, 1)
    assert parallel.jobs_for(10_000) == 1


def test_no_fork_while_another_thread_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    jobs(monkeypatch, 2)
    assert parallel.jobs_for(100) == 2
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert parallel.jobs_for(100) == 1
    finally:
        stop.set()
        thread.join()


@pytest.mark.parametrize("value", ["0", "two", "-1", "1.5", "65", "²"])
def test_a_bad_jobs_value_is_one_line(
    run_cli: RunCli, project: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    jobs(monkeypatch, 1)
    monkeypatch.setenv("PROMPTBUDGET_JOBS", value)
    with pytest.raises(UsageError, match="PROMPTBUDGET_JOBS"):
        parallel.requested_jobs()
    result = run_cli("count", "--no-cache", cwd=project)
    assert result.exit_code == 2
    assert result.stderr.startswith("promptbudget: error: PROMPTBUDGET_JOBS=")
    assert result.stderr.count("\n") == 1


def test_a_worker_recording_merges_into_the_run(tmp_path: Path) -> None:
    one, two = tmp_path / "one.txt", tmp_path / "two.txt"
    one.write_text("1")
    two.write_text("2")
    parent = Recorder()
    parent.read(one, b"1", None)
    mark = parent.mark()
    worker = Recorder()
    worker.files, worker.dirs = dict(parent.files), dict(parent.dirs)
    worker.general = set(parent.general)
    worker_mark = worker.mark()
    assert mark == worker_mark
    worker.read(two, b"2", None)
    delta = worker.delta(worker_mark)
    assert set(delta["files"]) == {str(two)}
    parent.merge(delta)
    assert set(parent.files) == {str(one), str(two)}
    assert parent.is_usable
    other = Recorder()
    other.read(two, b"changed", None)  # another process saw other bytes: not one state
    parent.merge(other.delta(Recorder().mark()))
    assert not parent.is_usable


@pytest.fixture(autouse=True)
def _no_sink() -> Iterator[None]:
    yield
    set_sink(None)


def test_a_cold_run_builds_the_encoding_before_forking_and_a_warm_one_does_not(
    run_cli: RunCli,
    project: Path,
    forks: list[int],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Built once and shared when the workers will count (no cache, or an empty one); not at
    all when the cache holds what they would count (a manifest edit that changes no count:
    every file evaluated again, each count from the cache), and no worker at all when each
    file's whole evaluation is kept (filecache.py: decoded in the main process)."""
    jobs(monkeypatch, 2)
    monkeypatch.setenv("PROMPTBUDGET_CACHE_DIR", str(tmp_path / "cache"))
    manifest = project / "budgets.yaml"
    for args, built, workers in (
        (("--no-cache",), True, 2),
        ((), True, 2),
        (("comment",), False, 2),
        ((), False, 0),
    ):
        if args == ("comment",):
            manifest.write_text(manifest.read_text() + "# a comment\n")
            args = ()
        load_encoding.cache_clear()
        forked = len(forks)
        assert run_cli("check", *args, cwd=project).exit_code == 1
        assert (load_encoding.cache_info().currsize > 0) is built
        assert len(forks) - forked == workers


@pytest.mark.parametrize("command", ["check", "count"])
def test_the_workers_results_are_run_out(
    run_cli: RunCli, project: Path, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    """``in_order`` merges what each worker recorded and cached after the last result: a
    caller that stops at the last result (and leaves the generator suspended) loses it."""
    ran_out: list[bool] = []
    module = promptbudget.filecache  # both run their files through_cache
    real = module.in_order

    def watched(*args: Any, **kwargs: Any) -> Iterator[Any]:
        ran_out.append(False)
        yield from real(*args, **kwargs)
        ran_out[-1] = True

    monkeypatch.setattr(module, "in_order", watched)
    jobs(monkeypatch, 2)
    assert run_cli(command, cwd=project).exit_code in (0, 1)
    assert ran_out == [True]


# -- a few files evaluated by one worker while the kept ones are decoded --------------------


def test_when_one_worker_goes_alongside(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files too few for ``jobs_for`` go to one worker only when this process has at least
    ``MIN_TEMPLATES`` others to go through meanwhile and a second CPU to do it on (or
    ``PROMPTBUDGET_JOBS`` asks for more than one process)."""
    monkeypatch.delenv("PROMPTBUDGET_JOBS", raising=False)
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 2)
    assert parallel.one_alongside(1, parallel.MIN_TEMPLATES)
    assert parallel.one_alongside(parallel.MIN_TEMPLATES - 1, 10_000)
    assert not parallel.one_alongside(1, parallel.MIN_TEMPLATES - 1)
    assert not parallel.one_alongside(0, 10_000)  # nothing to evaluate
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 1)
    assert not parallel.one_alongside(1, 10_000)
    jobs(monkeypatch, 2)
    assert parallel.one_alongside(1, 10_000)
    jobs(monkeypatch, 1)
    assert not parallel.one_alongside(1, 10_000)


def test_one_worker_is_forked_before_in_order_returns(
    monkeypatch: pytest.MonkeyPatch, forks: list[int]
) -> None:
    """The worker is at work while the caller goes through the others; its results come in
    order, and a generator closed early stops it."""
    monkeypatch.delenv("PROMPTBUDGET_JOBS", raising=False)
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 2)
    running = parallel.in_order([3, 4], lambda i: (i * i, os.getpid()), "x", alongside=500)
    assert len(forks) == 1  # before the first result is asked for
    results = list(running)
    assert [square for square, _ in results] == [9, 16]
    assert {pid for _, pid in results} == set(forks)  # both done by the worker
    stopped = parallel.in_order([1], lambda i: signal.pause(), "x", alongside=500)
    assert len(forks) == 2
    stopped.close()  # type: ignore[attr-defined]
    with pytest.raises(ChildProcessError):
        os.waitpid(forks[1], os.WNOHANG)  # killed and reaped


def test_an_edit_among_kept_files_is_evaluated_by_one_worker(
    run_cli: RunCli,
    project: Path,
    forks: list[int],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """A warm ``check`` after a workflow's template was edited with words never counted (what
    CI does on a pull request): the edited file alone goes to one worker, forked before the
    kept evaluations are decoded here; this process builds no encoding (the worker's counts
    and renders come back with its cache entries); the report is what ``--no-cache`` gives."""
    monkeypatch.delenv("PROMPTBUDGET_JOBS", raising=False)
    monkeypatch.setattr(parallel, "usable_cpus", lambda: 2)
    monkeypatch.setattr(parallel, "MIN_TEMPLATES", 10)  # the project holds 28 templates
    monkeypatch.setenv("PROMPTBUDGET_CACHE_DIR", str(tmp_path / "cache"))
    assert run_cli("check", cwd=project).exit_code == 1
    sizes: list[int] = []
    real = promptbudget.filecache.in_order

    def sized(items: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        sizes.append(len(items))
        return real(items, *args, **kwargs)

    monkeypatch.setattr(promptbudget.filecache, "in_order", sized)
    edit_text(project / "prompts/b09.j2", "Template 9", "Template nine zqxwv quorble")
    age_project(project)
    forks.clear()
    load_encoding.cache_clear()
    warm = run_cli("check", "--format", "json", cwd=project)
    assert (sizes, len(forks)) == ([1], 1)
    assert load_encoding.cache_info().currsize == 0
    cold = run_cli("check", "--no-cache", "--format", "json", cwd=project)
    assert (warm.exit_code, warm.stdout, warm.stderr) == (cold.exit_code, cold.stdout, cold.stderr)
