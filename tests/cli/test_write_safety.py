"""``compress --write``, ``baseline`` and ``lock`` under kills, concurrent runs and files
that carry more than their text (owner, mode, hard links, extended attributes)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import EXAMPLES, Run
from promptbudget.cli import main
from promptbudget.fileio import TEMPORARY_SUFFIX
from promptbudget.lockfile import read_lock
from promptbudget.manifest.loader import load_manifest

RunCli = Callable[..., Run]
MINIMAL_BUDGETS = "version: 1\ndefaults: {model: gpt-4.1-mini}\n"
LOOSE = "Hello   world.\n\n\n\nBye.\n"
TIGHT = "Hello world.\n\nBye.\n"

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")


def temporaries(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob(".*")
        if p.name.endswith((TEMPORARY_SUFFIX, ".promptbudget"))
    )


# -- issue 20: a rewrite keeps what it finds -------------------------------------------------


def test_a_hard_linked_prompt_is_refused_and_keeps_one_inode(
    make_project: Callable[..., Path], run_cli: RunCli
) -> None:
    root = make_project({"budgets.yaml": MINIMAL_BUDGETS, "prompts/a.j2": LOOSE})
    other = root / "elsewhere.j2"
    os.link(root / "prompts/a.j2", other)
    result = run_cli("compress", "--write", "prompts", cwd=root)
    assert result.exit_code == 2
    assert result.stderr == (
        "promptbudget: error: prompts/a.j2: has 2 hard links, and a rewrite would split them "
        "(the other names would keep the old text); not written\n"
    )
    assert (root / "prompts/a.j2").stat().st_ino == other.stat().st_ino
    assert other.read_text() == LOOSE


def test_owner_group_mode_and_xattrs_survive_write(
    make_project: Callable[..., Path], run_cli: RunCli
) -> None:
    root = make_project({"budgets.yaml": MINIMAL_BUDGETS, "prompts/a.j2": LOOSE})
    prompt = root / "prompts/a.j2"
    prompt.chmod(0o640)
    try:
        os.setxattr(prompt, "user.origin", b"reviewed")
    except OSError as err:
        pytest.skip(f"no user extended attributes on this file system ({err.strerror})")
    owner = (4321, 8765) if os.geteuid() == 0 else (os.geteuid(), os.getegid())
    if os.geteuid() == 0:
        os.chown(prompt, *owner)  # as root (as CI runs) the rewrite must not make it root's
    result = run_cli("compress", "--write", cwd=root)
    assert result.exit_code == 0, result.stderr
    info = prompt.stat()
    assert prompt.read_text() == TIGHT
    assert (info.st_uid, info.st_gid) == owner
    assert stat.S_IMODE(info.st_mode) == 0o640
    assert os.getxattr(prompt, "user.origin") == b"reviewed"


def test_a_read_only_prompt_is_refused_until_force(
    make_project: Callable[..., Path], run_cli: RunCli
) -> None:
    root = make_project({"budgets.yaml": MINIMAL_BUDGETS, "prompts/a.j2": LOOSE})
    prompt = root / "prompts/a.j2"
    prompt.chmod(0o444)
    refused = run_cli("compress", "--write", cwd=root)
    assert refused.exit_code == 2
    assert refused.stderr == (
        "promptbudget: error: prompts/a.j2: is read-only; not written (--force writes it anyway)\n"
    )
    assert prompt.read_text() == LOOSE
    forced = run_cli("compress", "--write", "--force", cwd=root)
    assert forced.exit_code == 0, forced.stderr
    assert prompt.read_text() == TIGHT
    assert stat.S_IMODE(prompt.stat().st_mode) == 0o444


def test_force_without_write_is_a_usage_error(
    make_project: Callable[..., Path], run_cli: RunCli
) -> None:
    root = make_project({"budgets.yaml": MINIMAL_BUDGETS, "prompts/a.j2": LOOSE})
    result = run_cli("compress", "--force", cwd=root)
    assert result.exit_code == 2
    assert result.stderr == "promptbudget: error: --force only applies to --write\n"


# -- kills at every step of a write ----------------------------------------------------------

_WATCHED = ("open", "fsync", "fchmod", "fchown", "replace", "unlink")


def _run_in_child(root: Path, argv: list[str], kill_at: int | None) -> tuple[int, int]:
    """Run ``promptbudget ARGV`` in a forked child; with ``kill_at``, the child SIGKILLs itself
    at its ``kill_at``-th call of a watched ``os`` function. Returns (calls seen or -1,
    wait status)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        calls = [0]

        def watch(name: str) -> Callable[..., Any]:
            real = getattr(os, name)

            def watched(*args: Any, **kwargs: Any) -> Any:
                calls[0] += 1
                if calls[0] == kill_at:
                    os.kill(os.getpid(), 9)
                return real(*args, **kwargs)

            return watched

        originals = {name: getattr(os, name) for name in _WATCHED}
        try:
            for name in _WATCHED:
                setattr(os, name, watch(name))
            os.chdir(root)
            main(argv)
        except BaseException:
            pass
        finally:
            for name, real in originals.items():
                setattr(os, name, real)
            os.write(write_end, str(calls[0]).encode())
            os._exit(0)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as pipe:
        seen = pipe.read().decode()
    return (int(seen) if seen else -1), status


@pytest.fixture
def killable(make_project: Callable[..., Path]) -> Callable[[], Path]:
    files = {"budgets.yaml": MINIMAL_BUDGETS}
    files.update({f"prompts/p{i}.j2": LOOSE.replace("Bye", f"Bye {i}") for i in range(3)})

    def make() -> Path:
        return make_project(files)

    return make


def test_a_kill_at_any_step_leaves_old_or_new_bytes_and_the_next_run_cleans_up(
    killable: Callable[[], Path], run_cli: RunCli
) -> None:
    old = {f"p{i}.j2": LOOSE.replace("Bye", f"Bye {i}") for i in range(3)}
    new = {f"p{i}.j2": TIGHT.replace("Bye", f"Bye {i}") for i in range(3)}
    argv = ["compress", "--write", "--no-cache"]  # the same steps in every run
    run_cli(*argv, cwd=killable())  # forks of a warm process: nothing loads lazily in them
    total, status = _run_in_child(killable(), argv, kill_at=None)
    assert os.waitstatus_to_exitcode(status) == 0 and total > 10, "a full run to count steps"
    kills = 0
    for kill_at in range(1, total + 1):
        root = killable()
        _, status = _run_in_child(root, argv, kill_at=kill_at)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == 9
        kills += 1
        for name in old:
            assert (root / "prompts" / name).read_text() in (old[name], new[name]), kill_at
        after = run_cli("compress", "--write", cwd=root)
        assert after.exit_code == 0, after.stderr
        assert temporaries(root) == [], kill_at
        assert {p.name: p.read_text() for p in (root / "prompts").iterdir()} == new
    assert kills == total


# -- concurrent runs -------------------------------------------------------------------------


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Path]:
    root = tmp_path / "project"
    shutil.copytree(EXAMPLES / "over-budget", root)
    (root / "prompts/loose.j2").write_text(LOOSE, encoding="utf-8")  # for compress to change
    yield root


def test_eight_concurrent_writers_fail_only_busy_or_changed_and_leave_valid_files(
    example: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    """Three baselines, three locks and two compress --write at once on one project."""
    reference = tmp_path / "reference"
    shutil.copytree(example, reference)
    assert run_cli("compress", "--write", cwd=reference).exit_code == 0
    prompts = {
        p.relative_to(example): (p.read_bytes(), (reference / p.relative_to(example)).read_bytes())
        for p in (example / "prompts").rglob("*")
        if p.is_file()
    }
    assert any(old != new for old, new in prompts.values()), "compress must change something"
    commands = [["baseline"]] * 3 + [["lock"]] * 3 + [["compress", "--write"]] * 2
    children: list[tuple[int, list[str], int]] = []
    for argv in commands:
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            os.dup2(write_end, 2)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            # the child's diagnostics to the pipe: sys.stderr is run_cli's capture here
            # (capsys), whose buffer dies with the child
            sys.stderr = open(2, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
            code = 3
            try:
                os.chdir(example)
                code = main(argv)
            except BaseException:
                code = 4
            finally:
                sys.stderr.flush()
                os._exit(code)
        os.close(write_end)
        children.append((pid, argv, read_end))
    for pid, argv, read_end in children:
        with os.fdopen(read_end, "rb") as pipe:
            stderr = pipe.read().decode()
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            assert code == 2, (argv, code, stderr)
            assert "busy" in stderr or "changed while" in stderr, (argv, stderr)
            assert len(stderr.strip().splitlines()) == 1, stderr
    load_manifest(example / "budgets.yaml", cwd=example)  # valid, whichever run won
    read_lock(example / "promptbudget.lock", "promptbudget.lock")
    json.loads((example / "promptbudget.lock").read_text())
    for name, (old, new) in prompts.items():
        assert (example / name).read_bytes() in (old, new), name
    assert temporaries(example) == []
