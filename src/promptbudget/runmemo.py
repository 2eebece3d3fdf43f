"""Run memos: a repeated ``check``/``count``/``estimate`` whose inputs did not change answers
from the cache without importing the tool, reading the project or parsing anything.

A run that used the cache records what it read: every file's bytes (a hash) and stat, every
directory it listed or looked in (a hash of the names and kinds, and its stat), and the exact
stdout, stderr and exit code. The memo is kept in ``.promptbudget_cache/`` (signed like the
rest of the cache) under a key of the arguments, the working directory, the environment, the
date, the terminal and the installed package's files. A later run with the same key checks
the stat of each recorded file and directory, as git's index and ruff's cache do: a stat that
matches is trusted, one that differs is read again and hashed, and the memo answers only if
every hash is still the same. When no stat moved (the common case), only the memo's head is
read: the files' names and one digest of all their stats (memohead.py); each file's entry is
parsed only when one did.

A stat is trusted only when the file was not changed in the two seconds before it was taken
(git's "racy clean" rule): otherwise a change in the same clock tick, keeping the size, could
not be seen. Such entries are hashed on every use until they are old enough, then stamped.

Probes (``Path.stat`` while recording, ``confine.is_regular_file``) record the directory they
look in: a file that appears where the run looked for one (a partial, a sample) is seen too.

``check PATH`` also reads every other template, only for PB204's passage fingerprints, and
asks every workflow's template what it includes (whether its workflow feeds on a named file).
The memo keeps, for each file read for nothing else, what PB204 took from it (its paragraphs
that are also in the named files, with their lines; ``projection``), whether it was asked
what it includes (it must include nothing), and the named files' paragraphs themselves; when
only such files changed, ``passagememo.py`` fingerprints them again (the
launcher hands it to ``replay``) and the memo still answers if PB204 takes the same from them.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from promptbudget.memohead import Stat, files_now, is_unmoved, package_files, settle
from promptbudget.memohead import stat_of as stat_of  # as before it moved there
from promptbudget.pathnames import absolute

if TYPE_CHECKING:
    from promptbudget.cache import Store

MEMO_COMMANDS = frozenset({"check", "count", "estimate"})
CACHE_DIR_NAME = ".promptbudget_cache"  # the cache's own directory is not an input
MEMO_FORMAT = 2
RACY_NS = 2_000_000_000
# Variables that change from one shell to the next without changing anything a run does.
_NOISE_VARIABLES = frozenset({"_", "OLDPWD", "SHLVL", "PWD", "PS1", "PS2", "LINES"})

# Where Python and the installed packages live: not the project's files (an upgrade changes
# sys.path's directories, which are part of the memo key).
_INSTALLED = tuple({os.path.join(prefix, "") for prefix in (sys.prefix, sys.base_prefix)})


def is_racy(entry_stat: Stat, taken_ns: int) -> bool:
    """Whether the file changed so shortly before its stat was taken that a change in the same
    clock tick could keep the same stat."""
    return max(entry_stat[1], entry_stat[2]) >= taken_ns - RACY_NS


def content_hash(data: bytes) -> str:
    """A file's sha256 (as the content cache's stat index keeps it)."""
    return hashlib.sha256(data).hexdigest()


def short(digest: str) -> str:
    """The part of a sha256 a memo keeps (128 bits: memos stay small)."""
    return digest[:32]


def listing_hash(directory: str) -> str | None:
    """The names and kinds in ``directory`` (and where its symlinks point; not the cache's own
    directory); None if it cannot be listed."""
    names: list[str] = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name == CACHE_DIR_NAME:
                    continue
                if entry.is_symlink():  # where it points is part of the listing
                    names.append(f"l{entry.name}\0{os.readlink(entry.path)}")
                else:
                    names.append(f"{'d' if entry.is_dir() else 'f'}{entry.name}")
    except OSError:
        return None
    names.sort()
    return content_hash("\0".join(names).encode("utf-8", "surrogateescape"))


class Scope(Protocol):  # touches.Touches
    files: set[str]
    probes: dict[str, str]

    def probe(self, raw: str) -> None: ...


class Recorder:
    """What one run read and printed."""

    def __init__(self) -> None:
        self.files: dict[str, list[Any]] = {}  # path -> [stat, hash, racy]
        self.dirs: dict[str, list[Any]] = {}
        self.output: list[list[str]] = []  # [stream, text]
        self.is_usable = True
        # check PATH: the named files' paragraphs PB204 looks for elsewhere (note_passages),
        # each file read for its fingerprints -> [display path, engine, projection], the
        # file being fingerprinted (or asked what it includes) now, and every file read or
        # used for anything else
        self.passages: dict[str, Any] | None = None
        self.fingerprinted: dict[str, list[Any]] = {}
        self.fingerprinting: str | None = None
        self.general: set[str] = set()
        # check PATH: each file asked what it includes (does it include a named file?) ->
        # whether it included nothing every time it was asked
        self.includes_nothing: dict[str, bool] = {}
        self._cwd = os.getcwd()
        self._probed: set[str] = set()
        self.scopes: list[Scope] = []  # touches.py: what one file's evaluation used

    def read(self, path: Path | str, data: bytes, found: os.stat_result | None) -> None:
        self.digest(path, content_hash(data), found)

    def use(self, path: Path | str) -> str:
        """The run used ``path`` (read now or before) for more than PB204's fingerprints,
        unless it is the file being fingerprinted; its absolute name."""
        name = absolute(path)
        if name != self.fingerprinting:
            self.general.add(name)
        for scope in self.scopes:
            scope.files.add(name)
        return name

    def digest(self, path: Path | str, digest: str, found: os.stat_result | None) -> None:
        name = self.use(path)
        digest = short(digest)
        known = self.files.get(name)
        if known is not None:
            if known[1] != digest:  # changed while the run was reading it: not one state
                self.is_usable = False
            return
        now = time.time_ns()
        if found is None:
            try:
                found = os.stat(name)
            except OSError:
                self.is_usable = False
                return
        entry_stat = stat_of(found)
        self.files[name] = [entry_stat, digest, is_racy(entry_stat, now)]
        self.probe(name)

    def probe(self, path: Path | str) -> None:
        """The run looked at ``path``: record the nearest directory that exists above it, and
        the directories from there up to the working directory."""
        raw = os.fspath(path)
        for scope in self.scopes:
            scope.probe(raw)
        if raw in self._probed:  # the same path asked again (the common case)
            return
        self._probed.add(raw)
        directory = os.path.dirname(absolute(raw))
        if directory in self.dirs or directory.startswith(_INSTALLED):
            return
        while not os.path.isdir(directory):
            parent = os.path.dirname(directory)
            if parent == directory:
                return
            directory = parent
        self.listing(directory)
        while directory.startswith(self._cwd + os.sep):
            directory = os.path.dirname(directory)
            self.listing(directory)

    def listing(self, directory: Path | str) -> None:
        name = os.path.abspath(directory)
        if name in self.dirs:
            return
        now = time.time_ns()
        try:
            found = os.stat(name)
        except OSError:
            self.is_usable = False
            return
        listed = listing_hash(name)
        if listed is None:
            self.is_usable = False
            return
        entry_stat = stat_of(found)
        self.dirs[name] = [entry_stat, listed, is_racy(entry_stat, now)]

    def write(self, stream: str, text: str) -> None:
        self.output.append([stream, text])

    # -- a worker process's share (parallel.py) ------------------------------------------

    def mark(self) -> RecorderMark:
        """Where the recording stands now; ``delta`` says what was recorded since."""
        return RecorderMark(
            set(self.files),
            set(self.dirs),
            set(self.general),
            dict(self.fingerprinted),
            dict(self.includes_nothing),
        )

    def delta(self, since: RecorderMark) -> dict[str, Any]:
        """What was recorded since ``since`` (in a forked worker): what ``merge`` takes."""
        return {
            "files": {k: v for k, v in self.files.items() if k not in since.files},
            "dirs": {k: v for k, v in self.dirs.items() if k not in since.dirs},
            "general": self.general - since.general,
            "fingerprinted": {
                k: v for k, v in self.fingerprinted.items() if since.fingerprinted.get(k) != v
            },
            "includes_nothing": {
                k: v for k, v in self.includes_nothing.items() if since.includes_nothing.get(k) != v
            },
            "is_usable": self.is_usable,
        }

    def merge(self, delta: Mapping[str, Any]) -> None:
        """Record what a worker process recorded (its ``delta``), as if read here: a file
        the two saw with different bytes makes the run unusable."""
        for mine, theirs in ((self.files, delta["files"]), (self.dirs, delta["dirs"])):
            for name, entry in theirs.items():
                known = mine.setdefault(name, entry)
                if known[1] != entry[1]:
                    self.is_usable = False
        self.general.update(delta["general"])
        self.fingerprinted.update(delta["fingerprinted"])
        for name, nothing in delta["includes_nothing"].items():
            self.includes_nothing[name] = self.includes_nothing.get(name, True) and nothing
        self.is_usable = self.is_usable and delta["is_usable"]


class RecorderMark(NamedTuple):
    files: set[str]
    dirs: set[str]
    general: set[str]
    fingerprinted: dict[str, list[Any]]
    includes_nothing: dict[str, bool]


_RECORDER: Recorder | None = None


def active_recorder() -> Recorder | None:
    """The recorder of the run (None: the run is not recorded)."""
    return _RECORDER


def note_read(path: Path | str, data: bytes, found: os.stat_result | None = None) -> None:
    """A project file the run read (``found``: its stat taken before reading)."""
    if _RECORDER is not None:
        _RECORDER.read(path, data, found)


def note_digest(path: Path | str, digest: str, found: os.stat_result) -> None:
    """A project file the run knows by its sha256 (``content_hash``) under stat ``found``."""
    if _RECORDER is not None:
        _RECORDER.digest(path, digest, found)


def note_use(path: Path | str) -> None:
    """A project file the run uses again (parsed earlier, kept in memory)."""
    if _RECORDER is not None:
        _RECORDER.use(path)


def note_passages(root: Path, paragraphs: Mapping[str, str]) -> None:
    """``check PATH``: the named templates' paragraphs (digest -> text, as
    ``compression/passages.py`` normalises them) PB204 looks for in the fingerprints of every
    other template under ``root`` (``selected_paragraphs``: those that could be a passage)."""
    if _RECORDER is not None:
        _RECORDER.passages = {"root": os.fspath(root), "texts": dict(paragraphs)}


@contextmanager
def fingerprint_reads(path: str | None) -> Iterator[None]:
    """Reads of the file ``path`` (its real, absolute path) inside this block are PB204's
    fingerprint reads; None: there is no such file (it is read like any other)."""
    if _RECORDER is None or path is None:
        yield
        return
    recorder = _RECORDER
    recorder.fingerprinting = path
    try:
        yield
    finally:
        recorder.fingerprinting = None


@contextmanager
def include_reads(path: Path | str) -> Iterator[None]:
    """Reads of the file ``path`` inside this block only answer what it includes. (Through
    a symlink, the entry read under ``path`` is not its real path, which is all
    ``note_fingerprints`` keeps: any change to it runs the command again.)"""
    recorder = _RECORDER
    if recorder is None:
        yield
        return
    outer = recorder.fingerprinting
    recorder.fingerprinting = absolute(path)
    try:
        yield
    finally:
        recorder.fingerprinting = outer


def note_includes(path: Path | str, includes: Collection[object]) -> None:
    """The file ``path`` (read inside ``include_reads``) includes ``includes``."""
    if _RECORDER is not None:
        name = absolute(path)
        known = _RECORDER.includes_nothing.get(name, True)
        _RECORDER.includes_nothing[name] = known and not includes


def note_fingerprints(
    path: str,
    shown: str,
    parts: Mapping[str, Iterable[tuple[str, int, bool]]],
    engine_for: Callable[[str], str | None],
) -> None:
    """What PB204 took from the file ``path`` (read inside ``fingerprint_reads``): its
    fingerprints ``parts`` by display path; ``engine_for`` gives the engine the manifest sets
    for ``shown``."""
    recorder = _RECORDER
    if recorder is None or recorder.passages is None:
        return
    kept = projection(parts, recorder.passages["texts"])
    recorder.fingerprinted[path] = [shown, engine_for(shown), kept]


def projection(
    parts: Mapping[str, Iterable[tuple[str, int, bool]]], digests: Collection[str]
) -> list[list[Any]]:
    """What PB204 takes from one file's fingerprints (display path -> (digest, line, holds
    template syntax)): [display path, digest, line] of each of its paragraphs among
    ``digests`` that holds no template syntax, sorted (``find_passages_touching``)."""
    return sorted(
        [shown, digest, line]
        for shown, prints in parts.items()
        for digest, line, has_syntax in prints
        if digest in digests and not has_syntax
    )


def note_probe(path: Path | str) -> None:
    """The run looked for ``path`` (which may not exist)."""
    if _RECORDER is not None:
        _RECORDER.probe(path)


def note_listing(directory: Path | str) -> None:
    """A directory the run listed."""
    if _RECORDER is not None:
        _RECORDER.listing(directory)


def note_output(stream: str, text: str) -> None:
    if _RECORDER is not None:
        _RECORDER.write(stream, text)


def note_unrepeatable() -> None:
    """The run did something a memo cannot repeat (wrote a file, a job summary)."""
    if _RECORDER is not None:
        _RECORDER.is_usable = False


@contextmanager
def recording(args: list[str]) -> Iterator[Recorder | None]:
    """Record the run of ``args`` when a memo could answer it later; the ``Path`` probes are
    watched only inside this block."""
    if not is_memoizable(args):
        yield None
        return
    with watching() as recorder:
        yield recorder


@contextmanager
def watching() -> Iterator[Recorder]:
    """Record what the code inside this block reads and looks at."""
    global _RECORDER
    outer = _RECORDER
    recorder = _RECORDER = Recorder()
    original: Callable[..., os.stat_result] = Path.stat

    def watched_stat(self: Path, *, follow_symlinks: bool = True) -> os.stat_result:
        recorder.probe(self)
        return original(self, follow_symlinks=follow_symlinks)

    Path.stat = watched_stat  # type: ignore[method-assign]
    try:
        yield recorder
    finally:
        Path.stat = original  # type: ignore[method-assign]
        _RECORDER = outer


def is_memoizable(args: list[str]) -> bool:
    # "-": a template read from stdin, which no file stat can vouch for
    return bool(args) and args[0] in MEMO_COMMANDS and "--no-cache" not in args and "-" not in args


def memo_key(args: list[str]) -> str:
    """Everything besides the files that decides what a run prints."""
    files = list(package_files())
    files.extend(f"{entry}:{_mtime(entry or '.')}" for entry in sys.path)
    environment = sorted(
        (key, value) for key, value in os.environ.items() if key not in _NOISE_VARIABLES
    )
    terminal: list[Any] = [sys.stdout.isatty(), sys.stderr.isatty()]
    if terminal[0]:
        try:
            terminal.append(list(os.get_terminal_size(sys.stdout.fileno())))
        except OSError:
            terminal.append(None)
    parts = {
        "format": MEMO_FORMAT,
        "args": args,
        "cwd": os.getcwd(),
        "environment": environment,
        "date": time.strftime("%Y-%m-%d"),
        "terminal": terminal,
        "python": sys.version,
        "package": files,
    }
    text = json.dumps(parts, sort_keys=True, ensure_ascii=True)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _mtime(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def is_still_valid(
    memo: dict[str, Any],
    changed: list[str] | None = None,
    known: Mapping[str, os.stat_result] | None = None,
) -> tuple[bool, bool]:
    """(every input is as recorded, some entry was hashed again and can now be trusted by its
    stat: worth writing the memo back; an entry still inside the racy window would be hashed
    again next time all the same). With
    ``changed``, a file read only for PB204's fingerprints whose bytes changed is added there
    instead (``passagememo.still_same`` decides). ``known``: stats taken already, by name."""
    restamped = False
    known = known or {}
    now = time.time_ns()
    fingerprinted = memo.get("passages", {}).get("files", {}) if changed is not None else {}
    for entries, unchanged in ((memo["files"], _same_bytes), (memo["dirs"], _same_listing)):
        for name, entry in entries.items():
            found = known.get(name)
            if found is None:
                try:
                    found = os.stat(name)
                except OSError:
                    return False, False
            current = stat_of(found)
            if current == entry[0] and not entry[2]:
                continue
            if not unchanged(name, found, entry):
                if changed is None or name not in fingerprinted:
                    return False, False
                changed.append(name)
                continue
            entry[0], entry[2] = current, is_racy(current, now)
            restamped = restamped or not entry[2]
    return True, restamped


def _same_bytes(name: str, found: os.stat_result, entry: list[Any]) -> bool:
    """A file whose stat moved still holds the bytes recorded (another size: changed, and
    never read unbounded)."""
    if found.st_size != entry[0][0]:
        return False
    data = read_as_stated(name, found)
    return data is not None and short(content_hash(data)) == entry[1]


def _same_listing(name: str, _found: os.stat_result, entry: list[Any]) -> bool:
    """A directory whose stat moved still lists the names recorded."""
    recorded: str | None = entry[1]
    return listing_hash(name) == recorded


def read_as_stated(
    name: str, found: os.stat_result, *, follow_symlinks: bool = True
) -> bytes | None:
    """A recorded file read again: regular, and exactly as long as its stat ``found`` says;
    None when it is not, cannot be read or is changing."""
    if not stat.S_ISREG(found.st_mode):
        return None
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    if not follow_symlinks:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(name, flags)
        with os.fdopen(descriptor, "rb") as handle:
            data = handle.read(found.st_size + 1)
    except OSError:
        return None
    return data if len(data) == found.st_size else None


# Whether a memo still answers although files read only for PB204 changed (passagememo.py)
Recheck = Callable[[dict[str, Any], list[str]], bool]


def replay(args: list[str], recheck: Recheck | None = None) -> int | None:
    """Answer ``args`` from a memo: write what the recorded run wrote and return its exit
    code; None when there is no valid memo (the run goes ahead). With ``recheck``, a memo
    whose only changed inputs are files read for PB204's fingerprints alone answers when
    ``recheck`` says PB204 takes the same from them."""
    if not is_memoizable(args):
        return None
    from promptbudget.cache import read_memo_head, write_memo

    key = memo_key(args)
    found = read_memo_head(key)
    if found is None or found[0].get("format") != MEMO_FORMAT:
        return None
    head, detail = found
    memo, restamped = head, False
    try:
        taken = files_now(head)
        if taken is None:
            return None  # a file is gone
        if not is_unmoved(head, taken):  # the common case skips this: no detail parsed
            rest = detail()
            if rest is None:
                return None
            memo = {**head, **rest}
            changed: list[str] | None = [] if recheck is not None else None
            known = dict(zip(head["names"].split("\0"), taken, strict=True)) if taken else {}
            valid, restamped = is_still_valid(memo, changed, known)
            if valid and changed and recheck is not None:
                valid = recheck(memo, changed)  # their entries updated to the new bytes
                restamped = restamped or any(not memo["files"][name][2] for name in changed)
            if not valid:
                return None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None
    for stream, text in memo["output"]:
        handle = sys.stdout if stream == "stdout" else sys.stderr
        handle.write(text)
        handle.flush()
    if restamped:
        write_memo(key, settle(memo))
    return int(memo["code"])


def keep(args: list[str], recorder: Recorder, code: int, store: Store | None) -> None:
    """Keep the memo of a run that ended with ``code`` in the cache ``store`` used."""
    if store is None or not recorder.is_usable or code not in (0, 1):
        return
    if not any(stream == "stdout" for stream, _ in recorder.output):
        return  # no report was written (--help, --version)
    from promptbudget.cache import write_memo

    cwd = os.getcwd()  # part of the key: paths are kept relative to it, memos stay small
    memo: dict[str, Any] = {
        "format": MEMO_FORMAT,
        "code": code,
        "output": recorder.output,
        "files": {relative(name, cwd): entry for name, entry in recorder.files.items()},
        "dirs": {relative(name, cwd): entry for name, entry in recorder.dirs.items()},
    }
    if recorder.passages is not None:
        # [display path (None: the name itself), engine, projection, whether it was asked
        # what it includes]
        only = {}
        for name, (shown, engine, kept) in recorder.fingerprinted.items():
            if name in recorder.general or name not in recorder.files:
                continue
            if not recorder.includes_nothing.get(name, True):
                continue
            key = relative(name, cwd)
            asked = name in recorder.includes_nothing
            only[key] = [None if shown == key else shown, engine, kept, asked]
        if only:
            memo["passages"] = {**recorder.passages, "files": only}
    write_memo(memo_key(args), settle(memo), store)


def relative(name: str, cwd: str) -> str:
    """An absolute ``name`` as a memo keeps it: relative to the working directory ``cwd``
    (``os.path.relpath``, without its cost for the common case)."""
    inside = os.path.join(cwd, "")
    return name[len(inside) :] if name.startswith(inside) else os.path.relpath(name, cwd)
