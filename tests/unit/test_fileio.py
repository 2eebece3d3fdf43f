"""The one write primitive: compare-and-swap under a directory lock, temporary files that never
outlive their run, and what a rewrite keeps of the file it replaces."""

from __future__ import annotations

import fcntl
import os
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import Run
from promptbudget import fileio
from promptbudget.fileio import (
    TEMPORARY_SUFFIX,
    BusyError,
    ChangedError,
    Expect,
    FileWriteError,
    remove_stale_temporaries,
    replace_file,
)

MINIMAL_BUDGETS = "version: 1\ndefaults: {model: gpt-4.1-mini}\n"
LOOSE = "Hello   world.\n\n\n\nBye.\n"
TIGHT = "Hello world.\n\nBye.\n"


def names(directory: Path) -> list[str]:
    return sorted(os.listdir(directory))


def dead_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(child.stdout)


# -- compare-and-swap ------------------------------------------------------------------------


def test_a_file_is_replaced_when_it_still_holds_what_was_read(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_bytes(b"old")
    assert replace_file(target, b"new", expected=b"old", shown="a.txt", activity="testing")
    assert target.read_bytes() == b"new"
    assert names(tmp_path) == ["a.txt"]


def test_a_file_changed_since_it_was_read_is_not_written(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_bytes(b"edited by someone")
    with pytest.raises(ChangedError, match=r"^a\.txt: changed while testing; not written"):
        replace_file(target, b"new", expected=b"old", shown="a.txt", activity="testing")
    assert target.read_bytes() == b"edited by someone"
    assert names(tmp_path) == ["a.txt"]


def test_a_file_that_appeared_since_it_was_found_missing_is_not_written(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_bytes(b"made meanwhile")
    with pytest.raises(ChangedError):
        replace_file(target, b"new", expected=None, shown="a.txt", activity="testing")
    assert target.read_bytes() == b"made meanwhile"


def test_a_file_that_already_holds_the_bytes_is_left_alone(tmp_path: Path) -> None:
    """Two runs computing the same result: the second finds it written, which is success."""
    target = tmp_path / "a.txt"
    target.write_bytes(b"new")
    inode = target.stat().st_ino
    assert not replace_file(target, b"new", expected=b"old", shown="a.txt", activity="testing")
    assert target.stat().st_ino == inode


def test_an_edit_landing_during_fsync_is_kept(
    make_project: Callable[..., Path],
    run_cli: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lost update: an editor saves while the temporary file is flushed, after the first
    comparison. The re-check just before the rename sees it."""
    root = make_project({"budgets.yaml": MINIMAL_BUDGETS, "prompts/a.j2": LOOSE})
    prompt = root / "prompts/a.j2"
    real_fsync = os.fsync
    edits: list[int] = []

    def fsync_then_edit(descriptor: int) -> None:
        real_fsync(descriptor)
        if not edits and stat.S_ISREG(os.fstat(descriptor).st_mode):
            edits.append(descriptor)
            with prompt.open("a", encoding="utf-8") as handle:  # saved in place, like vim
                handle.write("An edit the user must not lose.\n")

    monkeypatch.setattr(fileio.os, "fsync", fsync_then_edit)
    result = run_cli("compress", "--write", cwd=root)
    monkeypatch.undo()
    assert edits, "the hook must have run"
    assert result.exit_code == 2
    assert result.stderr == (
        "promptbudget: error: prompts/a.j2: changed while compressing; not written (run it again)\n"
    )
    assert prompt.read_text(encoding="utf-8") == LOOSE + "An edit the user must not lose.\n"
    assert names(root / "prompts") == ["a.j2"]


def test_another_promptbudget_holding_the_directory_is_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "a.txt"
    target.write_bytes(b"old")
    monkeypatch.setattr(fileio, "BUSY_TIMEOUT_S", 0.0)
    holder = os.open(tmp_path, os.O_RDONLY)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX)
        with pytest.raises(BusyError, match=r"^a\.txt: busy: another promptbudget process"):
            replace_file(target, b"new", expected=b"old", shown="a.txt", activity="testing")
    finally:
        os.close(holder)
    assert target.read_bytes() == b"old"
    assert replace_file(target, b"new", expected=b"old", shown="a.txt", activity="testing")


# -- what is refused -------------------------------------------------------------------------


def test_a_symlink_is_not_replaced(tmp_path: Path) -> None:
    (tmp_path / "real.txt").write_bytes(b"old")
    (tmp_path / "link.txt").symlink_to("real.txt")
    with pytest.raises(FileWriteError, match=r"link\.txt: is a symlink; not written"):
        replace_file(
            tmp_path / "link.txt", b"new", expected=Expect.ANY, shown="link.txt", activity="t"
        )
    assert (tmp_path / "link.txt").is_symlink()
    assert (tmp_path / "real.txt").read_bytes() == b"old"


def test_a_fifo_is_not_replaced_and_not_waited_on(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(FileWriteError, match="pipe: is not a regular file; not written"):
        replace_file(tmp_path / "pipe", b"new", expected=Expect.ANY, shown="pipe", activity="t")
    assert stat.S_ISFIFO((tmp_path / "pipe").lstat().st_mode)


def test_a_hard_linked_file_is_refused_and_both_names_keep_one_inode(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_bytes(b"old")
    os.link(target, tmp_path / "b.txt")
    with pytest.raises(
        FileWriteError, match=r"a\.txt: has 2 hard links, and a rewrite would split"
    ):
        replace_file(target, b"new", expected=b"old", shown="a.txt", activity="t")
    assert target.stat().st_ino == (tmp_path / "b.txt").stat().st_ino
    assert (tmp_path / "b.txt").read_bytes() == b"old"


def test_a_read_only_file_is_refused_whatever_the_user_unless_allowed(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_bytes(b"old")
    target.chmod(0o444)
    with pytest.raises(FileWriteError, match=r"a\.txt: is read-only; not written$"):
        replace_file(target, b"new", expected=b"old", shown="a.txt", activity="t")
    assert target.read_bytes() == b"old"
    replace_file(target, b"new", expected=b"old", shown="a.txt", activity="t", allow_read_only=True)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o444


# -- what a rewrite keeps --------------------------------------------------------------------


def test_mode_and_extended_attributes_are_kept(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_bytes(b"old")
    target.chmod(0o640)
    try:
        os.setxattr(target, "user.promptbudget.test", b"kept")
    except OSError as err:
        pytest.skip(f"this file system has no user extended attributes ({err.strerror})")
    replace_file(target, b"new", expected=b"old", shown="a.txt", activity="t")
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert os.getxattr(target, "user.promptbudget.test") == b"kept"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give a file to another user")
def test_owner_and_group_are_kept_when_root_rewrites(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_bytes(b"old")
    os.chown(target, 4321, 8765)
    replace_file(target, b"new", expected=b"old", shown="a.txt", activity="t")
    info = target.stat()
    assert (info.st_uid, info.st_gid) == (4321, 8765)


def test_a_new_file_gets_the_umask_mode(tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        replace_file(tmp_path / "new.txt", b"x", expected=None, shown="new.txt", activity="t")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o640


def test_output_to_a_device_is_written_to_not_replaced(tmp_path: Path) -> None:
    fileio.write_output(Path("/dev/null"), b"report", shown="/dev/null")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    fileio.write_output(tmp_path / "report.txt", b"report", shown="report.txt")
    assert (tmp_path / "report.txt").read_bytes() == b"report"


# -- temporary files -------------------------------------------------------------------------


def test_stale_temporary_files_of_dead_runs_are_removed(tmp_path: Path) -> None:
    dead = dead_pid()
    orphan = tmp_path / f".a.j2.{dead}.0123abcd{TEMPORARY_SUFFIX}"
    live = tmp_path / f".a.j2.{os.getppid()}.0123abcd{TEMPORARY_SUFFIX}"
    old_live = tmp_path / f".b.j2.{os.getppid()}.4567cdef{TEMPORARY_SUFFIX}"
    legacy_old = tmp_path / ".a.j2.k2x_9abc.promptbudget"
    legacy_new = tmp_path / ".b.j2.k2x_9abc.promptbudget"
    user_file = tmp_path / f".notes.{dead}.txt"
    for path in (orphan, live, old_live, legacy_old, legacy_new, user_file):
        path.write_bytes(b"partial")
    hour_ago = os.stat(tmp_path).st_mtime - 3600
    for path in (old_live, legacy_old):
        os.utime(path, (hour_ago, hour_ago))
    assert remove_stale_temporaries(tmp_path) == 3
    assert names(tmp_path) == sorted([live.name, legacy_new.name, user_file.name])


def test_a_write_removes_what_a_killed_run_left(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_bytes(b"old")
    (tmp_path / f".a.txt.{dead_pid()}.89abcdef{TEMPORARY_SUFFIX}").write_bytes(b"ne")
    replace_file(target, b"new", expected=b"old", shown="a.txt", activity="t")
    assert names(tmp_path) == ["a.txt"]


_SIGNAL_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from promptbudget import fileio

    target = Path(sys.argv[1])
    signum = int(sys.argv[2])
    # Start as a run from a terminal does: a parent that ignores the signal (nohup, a
    # background job of a non-interactive shell) passes SIG_IGN down, and a write must not
    # install a handler for a signal its process ignores.
    default = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
    signal.signal(signum, default)
    real_fsync = os.fsync

    def fsync_then_signal(descriptor):
        real_fsync(descriptor)
        os.kill(os.getpid(), signum)  # arrives while the temporary file exists

    fileio.os.fsync = fsync_then_signal
    try:
        fileio.replace_file(target, b"new", expected=b"old", shown="a.txt", activity="t")
    except KeyboardInterrupt:
        sys.exit(130)
    print("survived")
    """
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_mid_write_removes_the_temporary_file(tmp_path: Path, signum: int) -> None:
    target = tmp_path / "a.txt"
    target.write_bytes(b"old")
    child = subprocess.run(
        [sys.executable, "-c", _SIGNAL_CHILD, str(target), str(int(signum))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "survived" not in child.stdout
    if signum == signal.SIGINT:
        assert child.returncode == 130, child.stderr
    else:
        assert child.returncode == -signum, child.stderr  # ended by the signal, as it would be
    assert target.read_bytes() == b"old"
    assert names(tmp_path) == ["a.txt"]
