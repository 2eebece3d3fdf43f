"""The content-hash cache, ``.promptbudget_cache/`` (like ruff's ``.ruff_cache``).

Only pure functions of their inputs are kept, each under a key that hashes every input:

* a token count: the exact text, and the encoding (its rank file's sha256, or the bytes of a
  project's tokenizer.json), so a template, partial, sample or manifest value that changes
  the rendered text misses, and an unchanged text hits wherever it comes from;
* a Monte Carlo run: every number it reads (token counts, rates from the price data, shares,
  distributions), the samples and the seed.

Every key also holds the promptbudget version, and the entries live in a directory of their
version (``SHARD_DIR``, as ``.ruff_cache/<version>/``): what an earlier version kept is never
read again (delete the cache to reclaim its room). There they live in 64 shard files
(``SHARDS``, ``00.json`` to ``3f.json``), loaded when first needed and rewritten (merged with
what is on disk, written atomically) when a run ends, so concurrent runs never corrupt a
shard: at worst one run's new entries are lost. A run rewrites only the shards it added to:
a check of 10,000 templates after one edit adds 9 entries, which rewrote 8 of 16 shards of
~3 MB (0.23 s). The 16 shards of the earlier layout (``0.json`` to ``f.json``, beside the run
memos) are never read, and are removed when a run writes the cache. A version directory that
is a symlink, or not a directory, is neither read nor written.
Each shard carries an HMAC with a key kept outside the project (the user's cache directory),
so a cache committed to a pull request, or a truncated or corrupt shard, is ignored and
rebuilt. A ``.promptbudget_cache`` that is a symlink, or not a directory, is not used.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import re
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from promptbudget import __version__
from promptbudget.errors import PromptBudgetError
from promptbudget.fileio import Expect, replace_file
from promptbudget.pathnames import absolute

CACHE_DIR_NAME = ".promptbudget_cache"
CACHE_DIR_ENV = "PROMPTBUDGET_CACHE_DIR"
FORMAT = 1
MAX_SHARD_BYTES = 64 * 1024 * 1024
SHARDS = 64  # named by the first 6 bits of their keys
# A shard holding more entries than this keeps only those the current run used (800,000 in
# all, as with the 16 shards of 50,000 before).
MAX_SHARD_ENTRIES = 12_500
# This version's shards' directory in the cache: the version and format, as a file name
SHARD_DIR = re.sub(r"[^A-Za-z0-9.+-]", "_", f"{__version__}-{FORMAT}")
# The shards of the earlier layout (16, by the first hex digit of their keys): removed.
_OLD_SHARDS = tuple(f"{index:x}.json" for index in range(16))
# Run memos (runmemo.py) kept: the newest.
MAX_MEMOS = 64

# Paths are tested with os.path, not pathlib: a run memo (runmemo.py) records what the run
# looks at through Path, and the cache itself is not an input.

_SALT = f"promptbudget {__version__} cache format {FORMAT}"


_SALTED = hashlib.blake2b(_SALT.encode(), digest_size=16)


def cache_key(*parts: str) -> str:
    """A key for ``parts`` (and this promptbudget version): 32 hex digits. Each part is
    hashed after its length, so no two lists of parts share a key."""
    chunks = []
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        chunks.append(len(data).to_bytes(8, "little"))
        chunks.append(data)
    digest = _SALTED.copy()
    digest.update(b"".join(chunks))
    return digest.hexdigest()


class Store:
    """The entries of one cache directory: ``key -> JSON value``, sharded by key prefix."""

    def __init__(self, directory: Path, key_file: Path) -> None:
        self.directory = directory  # the run memos and the .gitignore
        self.shards = directory / SHARD_DIR
        self._key_file = key_file
        self._secret = _read_secret(key_file)  # None: nothing on disk can be trusted yet
        self._shards: dict[str, dict[str, Any]] = {}
        self._new: dict[str, dict[str, Any]] = {}
        self._used: dict[str, set[str]] = {}
        self._found = False  # a shard read held entries
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Any:
        """The value stored under ``key``, or None."""
        name = _shard_name(key)
        value = self._shard(name).get(key)
        if value is None:
            self.misses += 1
        else:
            self.hits += 1
            self._used.setdefault(name, set()).add(key)
        return value

    def take(self, key: str) -> Any:
        """``get``, then the value forgotten in memory (not on disk): for an entry a run reads
        once (the kept evaluations: 13 MB at 10,000 templates)."""
        value = self.get(key)
        if value is not None:
            self._shard(_shard_name(key)).pop(key, None)
        return value

    def put(self, key: str, value: Any) -> None:
        name = _shard_name(key)
        self._shard(name)[key] = value
        self._new.setdefault(name, {})[key] = value

    def flush(self) -> None:
        """Write the shards this run added to, merged with what is on disk now (another run
        may have written since). A cache that cannot be written is left as it is. The
        directory (and the key) are made only when there is something to keep."""
        if not self._new:
            return
        secret = self._secret or _make_secret(self._key_file)
        if secret is None or not _prepare(self.directory, self.shards):
            return
        self._secret = secret
        for name, new in self._new.items():
            merged = _read_shard(self._path(name), secret) or {}
            if len(merged) + len(new) > MAX_SHARD_ENTRIES:
                used = self._used.get(name, set())
                merged = {key: value for key, value in merged.items() if key in used}
            merged.update(new)
            body = json.dumps(merged, separators=(",", ":")).encode()
            if not _write_signed(self._path(name), body, secret):
                return
        self._new.clear()
        for old in _OLD_SHARDS:
            with contextlib.suppress(OSError):  # gone already (another run), or not ours
                os.unlink(self.directory / old)

    # -- a worker process's share (parallel.py) ------------------------------------------

    def load_all(self) -> None:
        """Read every shard now (before forking: the workers share them)."""
        for index in range(SHARDS):
            self._shard(f"{index:02x}")

    def is_empty(self) -> bool:
        """The shards read held no entry (``load_all`` reads them all)."""
        return not self._found

    def detach(self) -> None:
        """In a forked worker: what it adds and uses from now on is its own (``delta``)."""
        self._new, self._used = {}, {}
        self.hits = self.misses = 0

    def delta(self) -> dict[str, Any]:
        """What this (worker's) store added and used since ``detach``: what ``merge`` takes."""
        return {"new": self._new, "used": self._used, "hits": self.hits, "misses": self.misses}

    def merge(self, delta: dict[str, Any]) -> None:
        """Keep what a worker added (written by ``flush``) and used, as if done here."""
        for entries in delta["new"].values():
            for key, value in entries.items():
                self.put(key, value)
        for name, keys in delta["used"].items():
            self._used.setdefault(name, set()).update(keys)
        self.hits += delta["hits"]
        self.misses += delta["misses"]

    def _shard(self, name: str) -> dict[str, Any]:
        shard = self._shards.get(name)
        if shard is None:
            found = None
            if self._secret and _is_directory_or_absent(self.shards):
                found = _read_shard(self._path(name), self._secret)
            shard = self._shards[name] = found or {}
            self._found = self._found or bool(found)
        return shard

    def _path(self, name: str) -> Path:
        return self.shards / f"{name}.json"


def _shard_name(key: str) -> str:
    """The shard of ``key`` (``cache_key``'s hex digits): its first 6 bits, 2 hex digits."""
    return f"{int(key[:2], 16) * SHARDS >> 8:02x}"


def _write_signed(path: Path, body: bytes, secret: bytes) -> bool:
    """Write ``body`` after its HMAC line, atomically; False if it cannot be written."""
    try:
        _write(path, _sign(body, secret) + b"\n" + body, durable=False)
    except (OSError, PromptBudgetError):
        return False
    return True


def _write(path: Path, data: bytes, *, durable: bool = True) -> None:
    """The one write primitive (atomic, under the directory's lock); raises like it.
    ``durable=False`` (shards, run memos: signed, so a torn one is ignored): not flushed to
    disk. The key and ``.gitignore``, written once and never checked, are flushed."""
    replace_file(
        path, data, expected=Expect.ANY, shown=str(path), activity="caching", durable=durable
    )


def _sign(body: bytes, secret: bytes) -> bytes:
    return hmac.new(secret, body, hashlib.sha256).hexdigest().encode()


def _read_shard(path: Path, secret: bytes) -> dict[str, Any] | None:
    """A shard's entries; None when it is missing, not a regular file, too large, truncated,
    corrupt or signed with another key."""
    entries = _read_signed(path, secret)
    return entries if isinstance(entries, dict) else None


def _read_signed(path: Path, secret: bytes) -> Any:
    """The JSON ``_write_signed`` wrote to ``path``; None when it is missing, not a regular
    file, too large, truncated, corrupt or signed with another key."""
    data = read_regular_file(path, MAX_SHARD_BYTES)
    if data is None:
        return None
    signature, _, body = data.partition(b"\n")
    if not hmac.compare_digest(signature, _sign(body, secret)):
        return None
    try:
        return json.loads(body)
    except ValueError:
        return None


def read_regular_file(path: Path | str, limit: int) -> bytes | None:
    """The bytes of ``path`` if it is a regular file (not a symlink, FIFO or device) of at most
    ``limit`` bytes."""
    try:
        found = os.lstat(path)
        if not stat.S_ISREG(found.st_mode) or found.st_size > limit:
            return None
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        descriptor = os.open(path, flags)
        with os.fdopen(descriptor, "rb") as handle:
            return handle.read(limit + 1)
    except OSError:
        return None


# A file whose change time is this close to when its stat was taken may change again in
# the same clock tick without changing its stat (git's "racy clean" entries): not indexed.
RACY_NS = 2_000_000_000


def indexed_digest(path: Path | str, limit: int) -> tuple[str, os.stat_result] | None:
    """The sha256 of a regular file's bytes (not a symlink, at most ``limit`` bytes) and the
    stat it was taken under; None when it is not such a file. With a cache, a stat index
    (path, size, mtime, ctime, inode -> sha256, like git's index) answers for a file that has
    not changed, without reading it; a file changed within two seconds of the stat is read
    every time."""
    try:
        found = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISREG(found.st_mode) or found.st_size > limit:
        return None
    now = time.time_ns()
    store = _ACTIVE
    key = cache_key(
        "stat",
        os.path.abspath(path),
        *(str(n) for n in (found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino)),
    )
    if store is not None:
        known = store.get(key)
        if isinstance(known, str) and len(known) == 64:
            return known, found
    data = read_regular_file(path, limit)
    if data is None:
        return None
    digest = hashlib.sha256(data).hexdigest()
    if store is not None and max(found.st_mtime_ns, found.st_ctime_ns) < now - RACY_NS:
        store.put(key, digest)
    return digest, found


class FileEntry:
    """Where a value derived from one file's bytes is kept: under a key of the file's stat
    (path, size, mtime, ctime, inode: one lookup a file, the value beside the file's sha256),
    or, while the file is too new for its stat to stand for its bytes (``RACY_NS``), under a
    key of its sha256."""

    def __init__(
        self, path: str, limit: int, parts: tuple[str, ...], key: str, found: os.stat_result
    ) -> None:
        self.path = path
        self.limit = limit
        self.parts = parts
        self.key = key
        self.found = found
        self.digest: str | None = None  # the file's sha256, once known

    def settled(self) -> bool:
        found = self.found
        return max(found.st_mtime_ns, found.st_ctime_ns) < time.time_ns() - RACY_NS

    def content_key(self) -> str | None:
        """The key of the file's bytes (reading them when the stat index does not know
        them); None when the file changed since its stat was taken."""
        indexed = indexed_digest(self.path, self.limit)
        if indexed is None or _stat_numbers(indexed[1]) != _stat_numbers(self.found):
            return None
        self.digest = indexed[0]
        return cache_key("by bytes", *self.parts, self.digest)


def _stat_numbers(found: os.stat_result) -> tuple[int, ...]:
    return (found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino)


def file_lookup(
    store: Store, kind: str, path: str, limit: int, *parts: str, by_stat: bool = False
) -> tuple[FileEntry | None, Any]:
    """(entry, value) for a value derived from the bytes of the regular file ``path`` (not a
    symlink, at most ``limit`` bytes) and ``parts``; the value is None when none is kept (then
    ``file_keep`` keeps one), the entry None when the file is not such a file. A value found
    by the file's bytes is kept again under its stat when the stat can stand for them.
    ``by_stat``: looked for under the file's stat only (the file is not read to find its
    bytes' key: a caller that may have no use for the value asks again without it)."""
    try:
        found = os.lstat(path)
    except (OSError, ValueError):
        return None, None
    if not stat.S_ISREG(found.st_mode) or found.st_size > limit:
        return None, None
    named = (kind, absolute(path), *parts)
    key = cache_key(*named, *(str(n) for n in _stat_numbers(found)))
    entry = FileEntry(path, limit, named, key, found)
    value = store.get(key)
    if isinstance(value, list) and len(value) == 2 and _is_sha256(value[0]):
        entry.digest = value[0]
        return entry, value[1]
    if by_stat:
        return entry, None
    content = entry.content_key()
    value = None if content is None else store.get(content)
    if value is not None and entry.settled():
        store.put(key, [entry.digest, value])
    return entry, value


def file_keep(store: Store, entry: FileEntry, value: Any) -> None:
    """Keep ``value`` for ``entry``'s file, read since its stat was taken."""
    content = entry.content_key()
    if content is None:
        return
    if entry.settled():
        store.put(entry.key, [entry.digest, value])
    else:
        store.put(content, value)


def _is_sha256(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64


# -- the cache of the current run ----------------------------------------------------------

_ACTIVE: Store | None = None
_OPEN: dict[Path, Store] = {}
_WARNINGS: list[str] = []


def active_store() -> Store | None:
    """The cache of the project being run, or None (``--no-cache``, or none usable)."""
    return _ACTIVE


def open_cache(root: Path, *, enabled: bool) -> Store | None:
    """Make the cache of the project at ``root`` the active one (``PROMPTBUDGET_CACHE_DIR``
    overrides its place). Problems are warnings (``take_warnings``), never errors."""
    global _ACTIVE
    _ACTIVE = None
    if not enabled:
        return None
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        directory = Path(override).expanduser().resolve()
        key_file = directory / ".key"  # a directory the user chose is trusted with its key
    else:
        directory = root / CACHE_DIR_NAME
        if os.path.islink(directory) or (
            os.path.lexists(directory) and not os.path.isdir(directory)
        ):
            _warn(
                f"{CACHE_DIR_NAME} in {root} is a symlink or not a directory; the cache is "
                "not used (remove it, or set PROMPTBUDGET_CACHE_DIR)"
            )
            return None
        key_file = _user_cache_dir() / "cache-key"
    store = _OPEN.get(directory)
    if store is None:
        store = _OPEN[directory] = Store(directory, key_file)
    _ACTIVE = store
    return store


def flush_caches() -> None:
    """Write every cache this process opened, then forget them (the next run reads the files
    again)."""
    global _ACTIVE
    for store in _OPEN.values():
        store.flush()
    _OPEN.clear()
    _ACTIVE = None


def take_warnings() -> list[str]:
    found = list(dict.fromkeys(_WARNINGS))
    _WARNINGS.clear()
    return found


def _warn(message: str) -> None:
    _WARNINGS.append(message)


def _user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "promptbudget"


def _read_secret(path: Path) -> bytes | None:
    """The HMAC key in ``path``; None when there is none (yet)."""
    data = read_regular_file(path, 1024)
    return data if data is not None and len(data) >= 32 else None


def _make_secret(path: Path) -> bytes | None:
    """A new HMAC key in ``path`` (the first run to make one wins: it is linked into place,
    never replaced); None when it cannot be made."""
    temporary = path.with_name(f"{path.name}.{os.getpid()}")
    try:
        os.makedirs(path.parent, exist_ok=True)
        _write(temporary, os.urandom(32))
        os.chmod(temporary, 0o600)
        with contextlib.suppress(FileExistsError):  # another run made it first: use theirs
            os.link(temporary, path)
    except (OSError, PromptBudgetError):
        return None
    finally:
        temporary.unlink(missing_ok=True)
    return _read_secret(path)


def _is_directory_or_absent(path: Path) -> bool:
    """``path`` is a directory (not a symlink to one), or nothing."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return True
    except OSError:
        return False


def _prepare(directory: Path, shards: Path | None = None) -> bool:
    """Create the cache directory with a ``.gitignore`` that keeps it out of git (and the
    directory ``shards``: False when it is a symlink or not a directory, as a cache committed
    to a pull request could make it)."""
    if shards is not None and not _is_directory_or_absent(shards):
        return False
    try:
        os.makedirs(shards or directory, exist_ok=True)
        ignore = directory / ".gitignore"
        if not os.path.lexists(ignore):
            _write(ignore, b"# Created by promptbudget\n*\n")
    except (OSError, PromptBudgetError):
        return False
    return True


# -- run memos (runmemo.py) ------------------------------------------------------------------


def locate_cache(start: Path) -> tuple[Path, Path] | None:
    """(directory, key file) of the cache a run started in ``start`` most likely used:
    ``PROMPTBUDGET_CACHE_DIR``, else the nearest ``.promptbudget_cache`` directory above."""
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        directory = Path(override).expanduser().resolve()
        return directory, directory / ".key"
    for current in (start, *start.parents):
        candidate = current / CACHE_DIR_NAME
        if os.path.isdir(candidate) and not os.path.islink(candidate):
            return candidate, _user_cache_dir() / "cache-key"
    return None


# A run memo is one signed file in two parts: its head, everything a replay needs when no
# stat moved (the output, the directories, the names of the files read and one digest of
# their stats: runmemo.py), then its detail (``MEMO_DETAIL``: each file's entry, PB204's
# projections), parsed only when asked. The first line is the HMAC of the head and the
# head's length; the head holds the sha256 of the detail. The rest is one JSON document.
MEMO_DETAIL = ("files", "passages")
_HEAD = b'{"head":'
_DETAIL = b',"detail":'


def read_memo(key: str) -> Any:
    """The run memo stored under ``key`` (see runmemo.py), head and detail, or None."""
    found = read_memo_head(key)
    if found is None:
        return None
    head, detail = found
    rest = detail()
    return None if rest is None else {**head, **rest}


def read_memo_head(key: str) -> tuple[dict[str, Any], Callable[[], dict[str, Any] | None]] | None:
    """(the head of the run memo stored under ``key``, a function that reads its detail: None
    when it does not match the head), or None when there is no valid memo."""
    found = locate_cache(Path(os.getcwd()))
    if found is None:
        return None
    directory, key_file = found
    secret = _read_secret(key_file)
    if secret is None:
        return None
    path = directory / f"run-{key}.blob"
    found_head = _read_memo_head(path)
    if found_head is None:
        return None
    signature, encoded, start = found_head
    if not hmac.compare_digest(signature, _sign(encoded, secret)):
        return None
    try:
        head = json.loads(encoded)
    except ValueError:
        return None
    if not isinstance(head, dict) or not isinstance(head.get("detail"), str):
        return None
    sha = head.pop("detail")

    def detail() -> dict[str, Any] | None:
        """The detail, read again from the file (the head's sha256 says it is the same)."""
        data = read_regular_file(path, MAX_SHARD_BYTES)
        rest = b"" if data is None else data[start:]
        if not (rest.startswith(_DETAIL) and rest.endswith(b"}")):
            return None
        encoded = rest[len(_DETAIL) : -1]
        if not hmac.compare_digest(hashlib.sha256(encoded).hexdigest(), sha):
            return None
        try:
            parts = json.loads(encoded)
        except ValueError:
            return None
        return parts if isinstance(parts, dict) else None

    return head, detail


def _read_memo_head(path: Path) -> tuple[bytes, bytes, int] | None:
    """(signature, head, where the detail starts) of the memo file ``path``, read without its
    detail; None when it is not a regular file or not a memo."""
    try:
        found = os.lstat(path)
        if not stat.S_ISREG(found.st_mode) or found.st_size > MAX_SHARD_BYTES:
            return None
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        with os.fdopen(os.open(path, flags), "rb") as handle:
            signature, _, length = handle.readline(128).rstrip(b"\n").partition(b" ")
            if not length.isdigit() or int(length) > found.st_size:
                return None
            encoded = handle.read(len(_HEAD) + int(length))
            end = handle.tell()
    except OSError:
        return None
    if not encoded.startswith(_HEAD) or len(encoded) != len(_HEAD) + int(length):
        return None
    return signature, encoded[len(_HEAD) :], end


def write_memo(key: str, memo: Any, store: Store | None = None) -> None:
    """Keep ``memo`` under ``key`` in ``store``'s directory (else the one ``read_memo``
    found), keeping the newest ``MAX_MEMOS``. A memo that cannot be written is not kept."""
    if store is not None:
        directory, key_file = store.directory, store._key_file
    else:
        found = locate_cache(Path(os.getcwd()))
        if found is None:
            return
        directory, key_file = found
    secret = _read_secret(key_file) or _make_secret(key_file)
    if secret is None or not _prepare(directory):
        return
    detail = {name: memo[name] for name in MEMO_DETAIL if name in memo}
    encoded_detail = json.dumps(detail, separators=(",", ":")).encode()
    head = {name: value for name, value in memo.items() if name not in MEMO_DETAIL}
    head["detail"] = hashlib.sha256(encoded_detail).hexdigest()
    encoded = json.dumps(head, separators=(",", ":")).encode()
    first = _sign(encoded, secret) + b" " + str(len(encoded)).encode()
    try:
        _write(
            directory / f"run-{key}.blob",
            b"".join((first, b"\n", _HEAD, encoded, _DETAIL, encoded_detail, b"}")),
            durable=False,
        )
    except (OSError, PromptBudgetError):
        return
    try:
        memos = [entry for entry in os.scandir(directory) if entry.name.startswith("run-")]
        if len(memos) > MAX_MEMOS:
            memos.sort(key=lambda entry: entry.stat(follow_symlinks=False).st_mtime_ns)
            for entry in memos[: len(memos) - MAX_MEMOS]:
                os.unlink(entry.path)
    except OSError:
        pass
