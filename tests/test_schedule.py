"""The suite's own schedule (conftest.SLOW_FILES): every file it names exists, so a renamed
file does not silently fall back to the end of the queue."""

from __future__ import annotations

from conftest import REPO, SLOW_FILES


def test_every_slow_file_named_exists() -> None:
    missing = [name for name in SLOW_FILES if not (REPO / name).is_file()]
    assert not missing, missing
