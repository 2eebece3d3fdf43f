"""Writing files so that a kill, a crash, a full disk or a concurrent edit never loses or
garbles one.

Every file promptbudget writes (templates with ``compress --write``, budgets.yaml with
``baseline``, ``promptbudget.lock``, ``--output`` reports, caches) goes through
``replace_file``:

1. **Lock.** An exclusive advisory lock (``flock``) on the target's directory, taken by every
   promptbudget process that writes there, so two runs never interleave their
   check-and-replace. A run waits up to ``BUSY_TIMEOUT_S`` and then stops with "busy".
2. **Sweep.** Temporary files of earlier runs that were killed (SIGKILL, power loss) are
   removed: those whose process is gone, or older than ``STALE_AFTER_S``.
3. **Compare.** The target must still hold the bytes the caller read (compare-and-swap);
   otherwise nothing is written: "changed while ...; not written".
4. **Write.** A temporary file ``.NAME.<pid>.<random>.promptbudget-tmp`` in the same
   directory, created exclusively (``O_EXCL | O_NOFOLLOW``), given the target's owner, group,
   extended attributes and mode, and flushed to disk (``fsync``).
5. **Re-check, rename.** The target's bytes are compared again immediately before
   ``os.replace``; then the directory is flushed.

A file that is only a cache (``durable=False``: cache shards and run memos, each checked
against its HMAC when read, so a shard a power loss left empty or garbled is ignored and
rebuilt) skips the two flushes of steps 4 and 5, which cost milliseconds each on a disk
with a journal; the rename is still atomic, so a kill or a concurrent run never garbles it.

The temporary file is removed on every exit path: an exception or Ctrl-C (``finally``),
SIGTERM and SIGHUP (a handler removes it, then lets the signal take its course), and SIGKILL
(step 2 of the next run in that directory).

What can still race: a program that does not take the lock (an editor, ``git checkout``) and
saves the file between the re-check of step 5 and the rename, a window of one system call,
loses that save. Everything it saves before the re-check is kept (the write is refused).
Where ``flock`` is not available (Windows, some network file systems) the lock is skipped and
steps 3 and 5 still apply.
"""

from __future__ import annotations

import contextlib
import enum
import os
import re
import secrets
import signal
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Literal

from promptbudget.errors import PromptBudgetError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks
    fcntl = None  # type: ignore[assignment]

TEMPORARY_SUFFIX = ".promptbudget-tmp"
BUSY_TIMEOUT_S = 30.0  # how long a run waits for another promptbudget writing the same directory
STALE_AFTER_S = 600.0  # a temporary file this old is stale whatever its process id says
_POLL_S = 0.02
_TEMPORARY = re.compile(
    r"\A\..+\.(?P<pid>[0-9]{1,10})\.[0-9a-f]{8}" + re.escape(TEMPORARY_SUFFIX) + r"\Z", re.S
)
# Written by promptbudget up to 0.x (tempfile.mkstemp): no process id, so only age tells.
_LEGACY_TEMPORARY = re.compile(r"\A\..+\.[a-z0-9_]{8}\.promptbudget\Z", re.S)
_MAX_NAME = 200  # of the target's name kept in a temporary's name (file names max out at 255)


class Expect(enum.Enum):
    """``replace_file(expected=Expect.ANY)``: write whatever the target holds now."""

    ANY = "any"


class FileWriteError(PromptBudgetError):
    """A file was not written; it is exactly as it was."""


class BusyError(FileWriteError):
    """Another promptbudget process held the directory's lock for too long."""


class ChangedError(FileWriteError):
    """The file is not what was read: something else changed it meanwhile."""


def replace_file(
    target: Path,
    data: bytes,
    *,
    expected: bytes | Literal[Expect.ANY] | None,
    shown: str,
    activity: str,
    allow_read_only: bool = False,
    read_only_hint: str = "",
    durable: bool = True,
) -> bool:
    """Replace ``target`` with ``data`` (see the module docstring). ``expected``: the bytes
    read earlier (None: the file did not exist), or ``Expect.ANY``. ``activity`` names what
    ran meanwhile ("compressing"), for the "changed while ..." message.

    Returns False when the target already holds ``data`` (nothing written). Raises
    ``FileWriteError`` (``BusyError``, ``ChangedError``) with a one-line message naming
    ``shown``; the target is then untouched. ``durable=False``: no ``fsync`` (a cache).
    """
    directory = target.parent
    with _directory_lock(directory, shown) as directory_fd:
        remove_stale_temporaries(directory)
        before, current = _read_target(target, shown)
        if current == data:
            return False
        if expected is not Expect.ANY and current != expected:
            raise ChangedError(f"{shown}: changed while {activity}; not written (run it again)")
        if before is not None:
            _check_rewritable(target, before, shown, allow_read_only, read_only_hint)
        with _cleaned_up_on_signals():
            temporary = _write_temporary(target, data, before, shown, durable)
            try:
                if _read_target(target, shown)[1] != current:
                    raise ChangedError(
                        f"{shown}: changed while {activity}; not written (run it again)"
                    )
                os.replace(temporary, target)
            except OSError as err:
                raise FileWriteError(
                    f"{shown}: could not be written ({reason(err)}); unchanged"
                ) from err
            finally:
                _remove(temporary)
        if directory_fd is not None and durable:
            with contextlib.suppress(OSError):  # some file systems cannot flush a directory
                os.fsync(directory_fd)
    return True


def write_output(target: Path, data: bytes, *, shown: str) -> None:
    """Write a report to ``target`` (``--output``): a regular file (or a new one) is replaced
    like any other file; a terminal, pipe or device (``/dev/stdout``) is written to."""
    try:
        found = target.stat()
    except FileNotFoundError:
        found = None
    except OSError as err:
        raise FileWriteError(f"{shown}: cannot be written ({reason(err)})") from err
    if found is not None and stat.S_ISDIR(found.st_mode):
        raise FileWriteError(f"{shown}: is a directory; give a file path")
    if found is not None and not stat.S_ISREG(found.st_mode):
        try:
            with open(target, "wb") as handle:
                handle.write(data)
        except OSError as err:
            raise FileWriteError(f"{shown}: cannot be written ({reason(err)})") from err
        return
    resolved = Path(os.path.realpath(target))
    replace_file(resolved, data, expected=Expect.ANY, shown=shown, activity="writing")


def remove_stale_temporaries(directory: Path) -> int:
    """Remove this tool's temporary files left in ``directory`` by killed runs: those whose
    process no longer runs, or older than ``STALE_AFTER_S``. Returns how many went.
    Never fails: a directory that cannot be listed, or a file that cannot go, is left."""
    try:
        names = os.listdir(directory)
    except OSError:
        return 0
    removed = 0
    now = time.time()
    for name in names:
        match = _TEMPORARY.match(name)
        if match is None and not _LEGACY_TEMPORARY.match(name):
            continue
        path = directory / name
        if str(path) in _IN_FLIGHT:
            continue
        try:
            found = path.lstat()
        except OSError:
            continue
        if not stat.S_ISREG(found.st_mode):
            continue
        is_old = now - found.st_mtime > STALE_AFTER_S
        is_orphan = match is not None and not _is_running(int(match["pid"]))
        if is_old or is_orphan:
            with contextlib.suppress(OSError):
                path.unlink()
                removed += 1
    return removed


def reason(err: OSError) -> str:
    """An ``OSError`` as a few words ("Permission denied"), never "None"."""
    return err.strerror or str(err) or type(err).__name__


# -- the steps -------------------------------------------------------------------------------


@contextlib.contextmanager
def _directory_lock(directory: Path, shown: str) -> Iterator[int | None]:
    """Hold the directory's exclusive lock; yields the directory's descriptor (None if the
    directory cannot be opened for reading, in which case there is no lock either)."""
    try:
        descriptor = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except FileNotFoundError as err:
        raise FileWriteError(f"{shown}: its directory does not exist; not written") from err
    except OSError:
        yield None  # e.g. a directory with write but no read permission
        return
    try:
        if fcntl is not None:
            _acquire(descriptor, directory, shown)
        yield descriptor
    finally:
        os.close(descriptor)  # releases the lock


def _acquire(descriptor: int, directory: Path, shown: str) -> None:
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while not _try_lock(descriptor):
        if time.monotonic() >= deadline:
            raise BusyError(
                f"{shown}: busy: another promptbudget process has been writing in "
                f"{directory.name or directory} for {BUSY_TIMEOUT_S:g} s; not written "
                "(try again)"
            )
        time.sleep(_POLL_S)


def _try_lock(descriptor: int) -> bool:
    """Took the lock (or the file system has none: compare-and-swap only); False: held."""
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


def _read_target(target: Path, shown: str) -> tuple[os.stat_result | None, bytes | None]:
    """The target's status and bytes, or (None, None) if it does not exist. Never follows a
    symlink, never opens anything but a regular file."""
    try:
        descriptor = os.open(target, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | _NONBLOCK)
    except FileNotFoundError:
        return None, None
    except OSError as err:
        if target.is_symlink():
            raise FileWriteError(f"{shown}: is a symlink; not written") from err
        raise FileWriteError(f"{shown}: cannot be read ({reason(err)}); not written") from err
    with open(descriptor, "rb") as handle:
        found = os.fstat(descriptor)
        if not stat.S_ISREG(found.st_mode):
            raise FileWriteError(f"{shown}: is not a regular file; not written")
        return found, handle.read()


_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # opening a FIFO must not wait for a writer


def _check_rewritable(
    target: Path, found: os.stat_result, shown: str, allow_read_only: bool, hint: str
) -> None:
    """A rewrite keeps what it cannot carry over out of harm's way: it refuses instead."""
    if found.st_nlink > 1:
        raise FileWriteError(
            f"{shown}: has {found.st_nlink} hard links, and a rewrite would split them (the "
            "other names would keep the old text); not written"
        )
    is_read_only = not found.st_mode & 0o222 or not os.access(target, os.W_OK)
    if is_read_only and not allow_read_only:
        raise FileWriteError(f"{shown}: is read-only; not written{hint}")


def _write_temporary(
    target: Path, data: bytes, found: os.stat_result | None, shown: str, durable: bool
) -> str:
    """A new temporary file next to ``target`` holding ``data``, with ``target``'s owner,
    group, extended attributes and mode, flushed to disk when ``durable``. Its path is in
    ``_IN_FLIGHT`` until ``_remove``."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    while True:
        token = secrets.token_hex(4)
        name = f".{target.name[:_MAX_NAME]}.{os.getpid()}.{token}{TEMPORARY_SUFFIX}"
        path = str(target.parent / name)
        _IN_FLIGHT.add(path)  # before it exists: a signal right after open still removes it
        try:
            descriptor = _create(path, flags)
            break
        except FileExistsError:
            _IN_FLIGHT.discard(path)  # not ours
            continue
        except OSError as err:
            _IN_FLIGHT.discard(path)
            raise FileWriteError(
                f"{shown}: could not be written ({reason(err)}); unchanged"
            ) from err
    try:
        with open(descriptor, "wb") as handle:
            if found is None:
                os.fchmod(descriptor, 0o666 & ~_umask())
            else:
                _copy_attributes(target, descriptor, found, shown)
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(descriptor)
    except FileWriteError:
        _remove(path)
        raise
    except OSError as err:
        _remove(path)
        raise FileWriteError(f"{shown}: could not be written ({reason(err)}); unchanged") from err
    except BaseException:
        _remove(path)
        raise
    return path


def _create(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def _copy_attributes(target: Path, descriptor: int, found: os.stat_result, shown: str) -> None:
    made = os.fstat(descriptor)
    if (made.st_uid, made.st_gid) != (found.st_uid, found.st_gid):
        try:
            os.fchown(descriptor, found.st_uid, found.st_gid)
        except PermissionError as err:
            raise FileWriteError(
                f"{shown}: belongs to user {found.st_uid}, group {found.st_gid}, and a rewrite "
                "by this user would change that; not written"
            ) from err
    try:
        for name, value in _extended_attributes(target):
            os.setxattr(descriptor, name, value)
    except OSError as err:
        raise FileWriteError(
            f"{shown}: an extended attribute cannot be carried over ({reason(err)}); not written"
        ) from err
    os.fchmod(descriptor, stat.S_IMODE(found.st_mode))  # after fchown, which clears setuid


def _extended_attributes(target: Path) -> list[tuple[str, bytes]]:
    if not hasattr(os, "listxattr"):
        return []
    try:
        names = os.listxattr(target, follow_symlinks=False)
        return [(name, os.getxattr(target, name, follow_symlinks=False)) for name in names]
    except OSError:  # the file system has no extended attributes
        return []


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
    _IN_FLIGHT.discard(path)


def _is_running(pid: int) -> bool:
    if pid == os.getpid():
        return True  # ours, and not in flight: left by an earlier write of this run? keep
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # a process of another user (or an odd pid): let age decide
    return True


# -- signals ---------------------------------------------------------------------------------

_IN_FLIGHT: set[str] = set()  # temporary files that exist (or are about to)
_PREVIOUS: dict[int, signal.Handlers | signal._HANDLER] = {}
_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP", "SIGINT") if hasattr(signal, name)
)


@contextlib.contextmanager
def _cleaned_up_on_signals() -> Iterator[None]:
    """While a temporary file exists, SIGTERM and SIGHUP (and SIGINT where Python does not
    already turn it into KeyboardInterrupt) remove it before the signal takes its course."""
    if threading.current_thread() is not threading.main_thread() or _PREVIOUS:
        yield
        return
    for signum in _SIGNALS:
        current = signal.getsignal(signum)
        if current in (signal.SIG_IGN, signal.default_int_handler, None):
            continue  # ignored, or raises KeyboardInterrupt (which runs the finally blocks)
        _PREVIOUS[signum] = current
        signal.signal(signum, _on_signal)
    try:
        yield
    finally:
        for signum, handler in _PREVIOUS.items():
            signal.signal(signum, handler)
        _PREVIOUS.clear()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    for path in list(_IN_FLIGHT):
        _remove(path)
    handler = _PREVIOUS.pop(signum, signal.SIG_DFL)
    signal.signal(signum, handler)
    if callable(handler):
        handler(signum, frame)
    elif handler == signal.SIG_DFL:
        os.kill(os.getpid(), signum)  # the default action: end the process, as it would have
