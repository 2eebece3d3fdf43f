"""A large tree's templates evaluated on every core: ``check`` and ``count`` hand each file
to ``in_order``, which does them in forked worker processes when there are enough of them to
pay for it, and gives the results back in the files' order, so a report is the same byte for
byte whichever way it was made.

Workers are forked (Linux only, and only while the process runs one thread): each inherits
the loaded project, so nothing is sent to it; worker ``k`` of ``n`` does files ``k``,
``k + n``, ... and sends back, per file, what the sequential loop keeps of it (settled
results, never rendered messages the run does not keep), pickled through a pipe. The parent
merges what each worker recorded for the run memo (``runmemo.Recorder.delta``) and added to
the cache (``cache.Store.delta``). A file a worker could not do (it raised, or the worker
died) is done again in the parent, in order: an error is raised exactly as a sequential run
raises it, and a worker killed (out of memory) costs time, not the run (whose memo is then
not kept: what that worker read is unknown).

``PROMPTBUDGET_JOBS``: how many worker processes (``1``: none); by default one per usable CPU
when there are at least ``MIN_TEMPLATES`` files.
"""

from __future__ import annotations

import os
import pickle
import selectors
import signal
import struct
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NoReturn, TypeVar, cast

from promptbudget.cache import active_store
from promptbudget.errors import UsageError
from promptbudget.progress import set_sink, tally, track
from promptbudget.runmemo import active_recorder, note_unrepeatable

T = TypeVar("T")
P = TypeVar("P")

JOBS_ENV = "PROMPTBUDGET_JOBS"
MAX_JOBS = 64
# Below this many files a run stays in one process unless PROMPTBUDGET_JOBS says otherwise.
# On an idle 2-CPU machine two processes were faster from 100 templates (0.99 -> 0.85 s), for
# 10% more CPU time; on a busy one the extra work only slows a run down (README, Performance).
MIN_TEMPLATES = 200

_FRAME = struct.Struct("<Q")  # the length of each pickled message


def in_order(
    items: Sequence[T],
    work: Callable[[T], P],
    label: str,
    *,
    prepare: Callable[[], object] | None = None,
    alongside: int = 0,
) -> Iterator[P]:
    """``work(item)`` for each of ``items``, yielded in order, with progress under ``label``:
    in this process, or in ``jobs_for`` worker processes, after ``prepare()`` (what every
    worker would otherwise do for itself: an encoding built once, shared). ``work`` must
    return what the caller keeps (picklable); what it does to the process's state in a
    worker is lost. ``alongside``: how many other files the caller goes through here before
    it asks for the first result (a warm ``check``: the kept evaluations it decodes); when
    that is worth it (``one_alongside``), one worker does ``items`` meanwhile, even a
    single one. Workers are forked before this returns."""
    jobs = jobs_for(len(items))
    if jobs == 1 and one_alongside(len(items), alongside):
        return _forked(items, work, 1)  # nothing to share with one worker: no prepare()
    if jobs == 1:
        return (work(item) for item in track(items, label))
    if prepare is not None:
        prepare()
    return tally(_forked(items, work, jobs), len(items), label)


def one_alongside(count: int, alongside: int) -> bool:
    """Whether ``count`` files (too few for ``jobs_for``) go to one worker while this process
    goes through ``alongside`` others: at least ``MIN_TEMPLATES`` of them, and a second CPU
    (or ``PROMPTBUDGET_JOBS`` above 1). At 10,000 templates after one edit the edited file's
    evaluation (and the encoding it builds, ~0.2 s and ~75 MB) then overlaps the decoding of
    the 9,999 kept ones, and that encoding is never built in this process."""
    if count < 1 or alongside < MIN_TEMPLATES or not can_fork():
        return False
    requested = requested_jobs()
    if requested is not None:
        return requested > 1
    return usable_cpus() > 1


def jobs_for(count: int) -> int:
    """How many worker processes evaluate ``count`` files (1: none, this process does)."""
    requested = requested_jobs()
    if requested == 1 or count < 2 or not can_fork():
        return 1
    if requested is None:
        if count < MIN_TEMPLATES:
            return 1
        requested = usable_cpus()
    return min(requested, count)


def requested_jobs() -> int | None:
    """``PROMPTBUDGET_JOBS`` (None: not set)."""
    raw = os.environ.get(JOBS_ENV, "").strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_JOBS:
        raise UsageError(
            f"{JOBS_ENV}={raw[:20]!r}: expected a number of worker processes from 1 to "
            f"{MAX_JOBS} (1: none)"
        )
    return int(raw)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, else all)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def can_fork() -> bool:
    """Forking copies only the calling thread: safe on Linux while no other thread runs
    (one could hold a lock the copy would never see released)."""
    return sys.platform == "linux" and hasattr(os, "fork") and threading.active_count() == 1


class _Worker:
    def __init__(self, pid: int | None, indices: range) -> None:
        self.pid = pid  # None: it could not be forked
        self.indices = indices
        self.done: set[int] = set()
        self.ended = False  # it sent what it recorded
        self.buffer = bytearray()

    def messages(self) -> list[Any]:
        """The messages complete in the buffer (pickled by our own fork), taken out of it."""
        buffer, start, found = self.buffer, 0, []
        with memoryview(buffer) as view:
            while len(view) - start >= _FRAME.size:
                (size,) = _FRAME.unpack_from(view, start)
                end = start + _FRAME.size + size
                if len(view) < end:
                    break
                found.append(pickle.loads(view[start + _FRAME.size : end]))
                start = end
        del buffer[:start]
        return found


def _forked(items: Sequence[T], work: Callable[[T], P], jobs: int) -> Iterator[P]:
    """The results of ``jobs`` workers, forked now (``_run_forked`` up to its first yield);
    the generator's ``close`` (or its collection) stops any still running."""
    running = _run_forked(items, work, jobs)
    next(running)
    return cast(Iterator[P], running)


def _run_forked(items: Sequence[T], work: Callable[[T], P], jobs: int) -> Iterator[P | None]:
    """None once the workers are forked, then each result in order."""
    count = len(items)
    store = active_store()
    if store is not None:
        store.load_all()  # read once, shared by the workers
    workers: dict[int, _Worker] = {}  # the read end of its pipe -> worker
    orphans: set[int] = set()  # files no worker will send: done here
    pending: dict[int, P] = {}
    try:
        for k in range(jobs):
            indices = range(k, count, jobs)
            try:
                read_end, write_end = os.pipe()
            except OSError:
                orphans.update(indices)
                continue
            try:
                pid = os.fork()
            except OSError:
                os.close(read_end)
                os.close(write_end)
                orphans.update(indices)
                continue
            if pid == 0:  # the worker
                os.close(read_end)
                for inherited in workers:
                    os.close(inherited)
                _work_and_exit(write_end, [items[i] for i in indices], indices, work)
            os.close(write_end)
            workers[read_end] = _Worker(pid, indices)
        yield None  # forked: the caller goes on while they work
        with selectors.DefaultSelector() as selector:
            for fd in workers:
                selector.register(fd, selectors.EVENT_READ)
            following = 0
            while following < count:
                if following in pending:
                    yield pending.pop(following)
                elif following in orphans:
                    orphans.discard(following)
                    yield work(items[following])
                else:
                    for key, _ in selector.select():
                        _receive(key.fd, workers, selector, pending, orphans)
                    continue
                following += 1
            while selector.get_map():  # what each worker recorded comes last
                for key, _ in selector.select():
                    _receive(key.fd, workers, selector, pending, orphans)
    finally:
        for fd, worker in workers.items():
            if worker.pid is not None:  # still running (the run stopped early): stop it
                os.close(fd)
                try:
                    os.kill(worker.pid, signal.SIGKILL)
                    os.waitpid(worker.pid, 0)
                except OSError:
                    pass


def _receive(
    fd: int,
    workers: dict[int, _Worker],
    selector: selectors.BaseSelector,
    pending: dict[int, Any],
    orphans: set[int],
) -> None:
    """Read what worker ``fd`` sent; at its end, the files it did not send are orphans."""
    worker = workers[fd]
    chunk = os.read(fd, 1 << 20)
    if chunk:
        worker.buffer += chunk
        for message in worker.messages():
            if message[0] == "done":
                worker.done.add(message[1])
                pending[message[1]] = message[2]
            elif message[0] == "end":
                _merge_recorded(message[1], message[2])
                worker.ended = True
        return
    selector.unregister(fd)
    os.close(fd)
    if worker.pid is not None:
        os.waitpid(worker.pid, 0)
        worker.pid = None
    if not worker.ended:  # died: what it read is unknown, so no memo can vouch for the run
        note_unrepeatable()
    orphans.update(index for index in worker.indices if index not in worker.done)


def _merge_recorded(recorded: dict[str, Any] | None, cached: dict[str, Any] | None) -> None:
    recorder = active_recorder()
    if recorder is not None and recorded is not None:
        recorder.merge(recorded)
    store = active_store()
    if store is not None and cached is not None:
        store.merge(cached)


def _work_and_exit(fd: int, items: list[T], indices: range, work: Callable[[T], Any]) -> NoReturn:
    """A worker: ``work`` each item, send each result, then what it recorded; exit."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: the parent says so
        set_sink(None)  # progress is counted by the parent
        recorder = active_recorder()
        mark = recorder.mark() if recorder is not None else None
        store = active_store()
        if store is not None:
            store.detach()
        with os.fdopen(fd, "wb") as out:
            for index, item in zip(indices, items, strict=True):
                try:
                    message = _frame(("done", index, work(item)))
                except Exception:  # done again by the parent, which raises it as it would
                    break
                out.write(message)
            recorded = recorder.delta(mark) if recorder is not None and mark is not None else None
            out.write(_frame(("end", recorded, store.delta() if store is not None else None)))
    except BaseException:
        code = 1
    os._exit(code)


def _frame(message: tuple[Any, ...]) -> bytes:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _FRAME.pack(len(data)) + data
