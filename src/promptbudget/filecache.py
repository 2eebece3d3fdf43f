"""One template file's whole evaluation, kept in the content cache so that a warm run neither
reads nor parses a file that did not change, nor anything it includes: in a full ``check``
(``CHECK``: ``evaluation.FileCheck``, its results as the run keeps them, what the safe
passes save on it, its PB204 paragraphs, its suppression comments), in ``count`` (``COUNT``:
``commands.count.FileCount``, its results and suppression comments). ``through_cache`` runs
a command's files through it.

There is one entry a file and kind (its real path and display path): the latest evaluation,
for whichever context, takes the place of the last, so entries never pile up; a ``check``
entry never answers ``count`` nor the other way round (the kind is in the key and the
context). It holds the context key (everything besides the file's own inputs that decides
its evaluation: the files the run read before evaluating templates, the manifest, the price
and tokenizer files, the lock; the options that shape the project, and for ``count`` how the
file was named; the package's files; the ``PROMPTBUDGET_`` settings) and what evaluating the
file used, recorded by the run's recorder (runmemo.py) in a ``touches.py`` scope: every file
read or used again from memory, the template itself first (its stat and sha256: an include,
a sample file, a promptfoo config), and every path looked for, with what was there (a
partial looked for in the template's own directory first, found in the prompts directory).
The entry answers only when the context is the same, each of those files still has the bytes
recorded (trusted by its stat outside git's racy window, else hashed again: then kept again
under the new stats, as after a fresh checkout) and each path is still what it was. An entry
is [context, what it used, the evaluation], the last two zlib-packed JSON strings (as
renders are kept: a warm cache of 10,000 templates is read whole by every run), unpacked
apart: what it used while the run looks each file up, the evaluation as the report is merged
(``opened``), decoded by ``resultcodec`` (type-directed: never pickle, a restored CI cache
must not run code). Only a recorded run (the cache on, no ``-``) keeps or uses entries.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from promptbudget.cache import Store, active_store, cache_key
from promptbudget.memohead import package_files
from promptbudget.parallel import in_order
from promptbudget.progress import track
from promptbudget.resultcodec import decode, settle_exactly
from promptbudget.runmemo import active_recorder, is_still_valid
from promptbudget.templates.deadline import renders_stopped
from promptbudget.templates.rendercache import packed, unpacked
from promptbudget.templates.source import FoundFile
from promptbudget.touches import Touches, kind_of, touching

T = TypeVar("T")
P = TypeVar("P")

CHECK = "file check"  # a full check's evaluation of a file
COUNT = "file count"  # count's
FORMAT = 1
# Settings that change how a run is done, never what it finds.
_NEUTRAL_SETTINGS = frozenset({"PROMPTBUDGET_JOBS", "PROMPTBUDGET_CACHE_DIR"})


def context_key(kind: str, parts: Sequence[str]) -> str | None:
    """The key of what decides every template's evaluation of ``kind`` (``CHECK``, ``COUNT``)
    besides its own inputs: ``parts``
    (the options that shape the project), the files the run has read so far, the package and
    the settings; None when the run is not recorded (nothing it uses would be known)."""
    recorder = active_recorder()
    if recorder is None or not recorder.is_usable:
        return None
    read = sorted(f"{name}\0{entry[1]}" for name, entry in recorder.files.items())
    settings = sorted(
        f"{name}={value}"
        for name, value in os.environ.items()
        if name.startswith("PROMPTBUDGET_") and name not in _NEUTRAL_SETTINGS
    )
    return cache_key(
        kind, str(FORMAT), sys.version, *package_files(), *parts, "\0", *read, "\0", *settings
    )


class Lookups:
    """A run's lookups: each file and path it asks about is looked at once."""

    def __init__(self, store: Store, kind: str) -> None:
        self.store = store
        self.kind = kind
        self._stats: dict[str, os.stat_result | None] = {}
        self._kinds: dict[str, str] = {}

    def find(self, file: FoundFile, context: str) -> str | None:
        """``file``'s evaluation as kept (``opened`` decodes it), if it is kept for
        ``context`` and what it used still holds."""
        key = _key(self.kind, file)
        value = self.store.take(key)  # read once a run
        if not (
            isinstance(value, list)
            and len(value) == 3
            and value[0] == context
            and isinstance(value[2], str)
        ):
            return None
        try:
            used = unpacked(value[1])
            files, probes = used["f"], used["p"]
            if not (isinstance(files, dict) and isinstance(probes, dict)):
                return None
            if file.resolved not in files:
                return None
            held, restamped = self._held(files, probes)
        except (ValueError, TypeError, KeyError, IndexError):
            return None
        if held is None:
            return None
        if restamped:  # hashed again (a checkout, a touch): trusted by the new stats from now
            self.store.put(key, [context, packed({"f": held, "p": probes}), value[2]])
        _note(held, probes)
        return value[2]

    def _held(
        self, files: dict[str, Any], probes: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, bool]:
        """(``files`` (name -> [stat, sha256, racy], as recorded) as they are now, when every
        one still has its bytes and every path in ``probes`` is what it was, else None;
        whether one was hashed again and can be trusted by its stat from now on)."""
        known = {}
        for name in files:
            if name not in self._stats:
                try:
                    self._stats[name] = os.stat(name)
                except (OSError, ValueError):
                    self._stats[name] = None
            found = self._stats[name]
            if found is None:
                return None, False
            known[name] = found
        for raw, was in probes.items():
            now = self._kinds.get(raw)
            if now is None:
                now = self._kinds[raw] = kind_of(raw)
            if now != was:
                return None, False
        # copies: is_still_valid stamps the entries it hashed again with their stat now
        recorded = {name: list(entry) for name, entry in files.items()}
        valid, restamped = is_still_valid({"files": recorded, "dirs": {}}, known=known)
        return (recorded, restamped) if valid else (None, False)


def opened(kept: str, kind: type[T]) -> tuple[T, Any]:
    """The evaluation ``find`` found, decoded, and what was kept beside it (``keep``'s
    ``beside``, as JSON); ValueError for anything ``keep`` does not write."""
    try:
        entry = unpacked(kept)
        return decode(entry["v"], kind), entry["b"]
    except (KeyError, TypeError) as err:
        raise ValueError(f"not a kept evaluation: {err}") from err


def _key(kind: str, file: FoundFile) -> str:
    """One entry a file and kind (its real path and display path): a newer evaluation, for
    any context, takes the place of the last, so entries never pile up."""
    return cache_key(kind, str(FORMAT), file.resolved, file.shown)


def _note(files: dict[str, Any], probes: dict[str, Any]) -> None:
    """What a kept evaluation used, recorded for the run's memo as if it was used now."""
    recorder = active_recorder()
    if recorder is None:
        return
    for name, entry in files.items():
        if recorder.files.setdefault(name, entry)[1] != entry[1]:
            recorder.is_usable = False  # read with other bytes this run: not one state
        recorder.use(name)
    for raw in probes:
        recorder.probe(raw)


def keep(
    store: Store,
    kind: str,
    context: str,
    file: FoundFile,
    touched: Touches | None,
    value: Any,
    beside: Any = None,
) -> None:
    """Keep ``value``, ``file``'s evaluation, which used ``touched``, and ``beside`` (JSON the
    caller reads itself): only when everything it used was recorded (the file itself first)
    and it encodes exactly."""
    recorder = active_recorder()
    if touched is None or recorder is None or not recorder.is_usable:
        return
    if file.resolved not in touched.files:  # not read as itself (a symlink out: not read)
        return
    files = {}
    for name in sorted(touched.files):  # sorted: the same entry whoever evaluated it first
        used = recorder.files.get(name)
        if used is None:  # used but never read by this run (from an earlier one in-process)
            return
        files[name] = used
    encoded = settle_exactly(value, type(value))
    if encoded is not None:
        deps = packed({"f": files, "p": dict(sorted(touched.probes.items()))})
        store.put(_key(kind, file), [context, deps, packed({"v": encoded, "b": beside})])


def through_cache(
    files: Sequence[FoundFile],
    work: Callable[[int], P],
    kind: type[P],
    *,
    cache_kind: str,
    contexts: Sequence[str | None] | None,
    label: str,
    prepare: Callable[[], object] | None = None,
    apart: Callable[[P], tuple[P, Any]] | None = None,
    together: Callable[[P, Any], P] | None = None,
) -> Iterator[P]:
    """``work(index)`` for each of ``files``, in order: kept evaluations (of ``cache_kind``,
    each file's under its context in ``contexts``; None: not kept, not looked up) decoded,
    the others evaluated (``parallel.in_order``, after ``prepare``) and kept. ``apart``:
    what is kept of a value and what beside it (JSON); ``together``, the value read back
    from them (ValueError: evaluated again). A render stopped by its deadline is not kept
    (it depends on the machine's load); a damaged entry is evaluated again, here. The
    caller runs the iterator out: the workers' recordings and cache entries are merged
    after their last result."""
    store = active_store()
    kept: list[str | None] = [None] * len(files)
    if store is not None and contexts is not None:
        lookups = Lookups(store, cache_kind)
        kept = [
            None if context is None else lookups.find(file, context)
            for file, context in zip(track(files, "reading the cache"), contexts, strict=True)
        ]

    def evaluate(index: int) -> P:
        stopped = renders_stopped()
        with touching() as touched:
            done = work(index)
        context = contexts[index] if contexts is not None else None
        if store is not None and context is not None and renders_stopped() == stopped:
            value, beside = apart(done) if apart is not None else (done, None)
            keep(store, cache_kind, context, files[index], touched, value, beside)
        return done

    # The files to evaluate go to the workers, forked now; the kept ones are decoded here
    # meanwhile (sending a decoded file back from a worker costs more than decoding it), then
    # everything is merged in order
    new = [index for index, found in enumerate(kept) if found is None]
    evaluated = in_order(new, evaluate, label, prepare=prepare, alongside=len(files) - len(new))
    decoded: list[tuple[P, Any] | None] = [None] * len(files)
    for index, found in enumerate(kept):
        kept[index] = None  # the packed text, freed once decoded (Lookups.find took it)
        if found is not None:
            with contextlib.suppress(ValueError):  # damaged: evaluated again, here
                decoded[index] = opened(found, kind)
    fresh = set(new)
    for index in range(len(files)):
        found_value, done = decoded[index], None
        decoded[index] = None
        if found_value is not None:
            with contextlib.suppress(ValueError):  # damaged: evaluated again, here
                done = found_value[0] if together is None else together(*found_value)
        if done is None:
            done = next(evaluated) if index in fresh else evaluate(index)
        yield done
    leftover = next(evaluated, None)
    assert leftover is None
