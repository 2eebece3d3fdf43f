"""The content cache's stat index (``cache.indexed_digest``): an unchanged file is known by
its stat, a changed one is read again, and a file changed just before its stat is never
trusted by stat (git's racy-clean rule)."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from promptbudget import cache


@pytest.fixture
def reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Path]]:
    """An open cache in ``tmp_path``; the list of files read from disk."""
    monkeypatch.setenv("PROMPTBUDGET_CACHE_DIR", str(tmp_path / "cache"))
    cache.open_cache(tmp_path, enabled=True)
    seen: list[Path] = []
    real = cache.read_regular_file

    def counted(path: Path, limit: int) -> bytes | None:
        seen.append(path)
        return real(path, limit)

    monkeypatch.setattr(cache, "read_regular_file", counted)
    yield seen
    cache.flush_caches()


def digest_of(path: Path) -> str:
    found = cache.indexed_digest(path, 1_000_000)
    assert found is not None
    assert found[0] == hashlib.sha256(path.read_bytes()).hexdigest()
    return found[0]


def test_an_unchanged_file_is_known_by_its_stat(
    tmp_path: Path, reads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "RACY_NS", -(10**18))  # as if written long ago
    path = tmp_path / "a.j2"
    path.write_text("Hello {{ name }}\n")
    first = digest_of(path)
    assert digest_of(path) == first
    assert reads == [path]  # the second answer came from the index


def test_a_change_that_keeps_size_and_mtime_is_read_again(
    tmp_path: Path, reads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "RACY_NS", -(10**18))
    path = tmp_path / "a.j2"
    path.write_text("Hello {{ name }}\n")
    before = path.stat()
    first = digest_of(path)
    path.write_text("Hallo {{ name }}\n")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # ctime still moves
    assert digest_of(path) != first
    assert reads == [path, path]


def test_a_file_changed_within_the_racy_window_is_not_indexed(
    tmp_path: Path, reads: list[Path]
) -> None:
    path = tmp_path / "a.j2"
    path.write_text("Hello {{ name }}\n")  # just now
    digest_of(path)
    digest_of(path)
    assert reads == [path, path]


def test_symlinks_and_oversized_files_have_no_digest(tmp_path: Path, reads: list[Path]) -> None:
    target = tmp_path / "a.j2"
    target.write_text("x" * 100)
    link = tmp_path / "b.j2"
    link.symlink_to(target)
    assert cache.indexed_digest(link, 1_000) is None
    assert cache.indexed_digest(target, 10) is None
