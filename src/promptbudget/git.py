"""git, read-only: the repository's top, a ref's commit, and a tree exported to a directory.

The base of ``diff`` is read straight from git's object store (``ls-tree`` + ``cat-file
--batch``) into a temporary directory: the user's checkout, index and worktrees are never
touched.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from promptbudget.errors import PromptBudgetError, UsageError


class GitError(PromptBudgetError):
    """git is missing, this is not a repository, or the ref does not exist."""


def _git(args: list[str], cwd: Path, *, stdin: bytes | None = None) -> bytes:
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            input=stdin,
            capture_output=True,
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except FileNotFoundError as err:
        raise GitError("diff needs git, and git is not installed (or not on PATH)") from err
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(message[-1] if message else f"git {args[0]} failed")
    return done.stdout


def git_toplevel(cwd: Path) -> Path:
    try:
        out = _git(["rev-parse", "--show-toplevel"], cwd)
    except GitError as err:
        if "not a git repository" in str(err):
            raise GitError(
                f"{cwd} is not inside a git repository; diff compares against a git ref"
            ) from err
        raise
    return Path(out.decode("utf-8").strip()).resolve()


def display_ref(ref: str) -> str:
    """A ref as messages show it: as typed, or, if it holds a newline or another character
    that is not printable (``HEAD^{/text}`` can), escaped and quoted (``'a\\nb'``)."""
    return ref if ref.isprintable() else repr(ref)


def resolve_ref(top: Path, ref: str) -> str:
    if ref.startswith("-"):
        raise UsageError(f"--base {ref!r} is not a git ref")
    try:
        out = _git(
            ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], top
        )
    except GitError as err:
        # A branch or tag name has no control characters (git check-ref-format), so there
        # is nothing to fetch for a ref that holds one.
        hint = (
            f" (in a shallow CI checkout, fetch it first: git fetch --depth=1 origin "
            f"{shlex.quote(ref)})"
            if ref.isprintable()
            else ""
        )
        raise GitError(f"unknown git ref {ref!r}: not a branch, tag or commit here{hint}") from err
    return out.decode("ascii").strip()


def export_tree(top: Path, commit: str, subdir: str, destination: Path) -> int:
    """Write the files under ``subdir`` (relative to the repository root, ``""``: all) at
    ``commit`` into ``destination``, keeping their paths. Returns how many were written."""
    spec = ["--", subdir] if subdir else []
    listing = _git(["ls-tree", "-r", "-z", "--full-tree", commit, *spec], top)
    entries: list[tuple[str, str, str]] = []  # (mode, object, path)
    for record in listing.split(b"\0"):
        if not record:
            continue
        info, _, raw_name = record.partition(b"\t")
        mode, kind, obj = info.decode("ascii").split(" ")
        if kind != "blob":  # submodules
            continue
        entries.append((mode, obj, os.fsdecode(raw_name)))
    if not entries:
        return 0
    batch = _git(
        ["cat-file", "--batch"], top, stdin="".join(f"{obj}\n" for _, obj, _ in entries).encode()
    )
    root = destination.resolve()
    position = 0
    for mode, obj, name in entries:
        header_end = batch.index(b"\n", position)
        header = batch[position:header_end].decode("ascii").split(" ")
        if header[0] != obj or len(header) != 3:  # "<object> missing" (a partial clone)
            raise GitError(f"git has no contents for {name} at {commit[:12]}; fetch it first")
        size = int(header[2])
        content = batch[header_end + 1 : header_end + 1 + size]
        position = header_end + 1 + size + 1
        target = (root / name).resolve()
        if not target.is_relative_to(root):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if mode == "120000":
            _symlink(target, os.fsdecode(content))
        else:
            target.write_bytes(content)
    return len(entries)


def _symlink(target: Path, points_to: str) -> None:
    """Recreate a symlink as committed. Reading is confined to the project root as at the
    head, so a link out of the tree is refused by the same check, with the same finding."""
    try:
        target.symlink_to(points_to)
    except OSError:  # no symlinks here (Windows without the privilege): leave it out
        return


@contextmanager
def base_checkout(top: Path, commit: str, subdir: str) -> Iterator[Path]:
    """A temporary directory holding ``subdir`` of the repository at ``commit``."""
    directory = Path(tempfile.mkdtemp(prefix="promptbudget-base-"))
    try:
        export_tree(top, commit, subdir, directory)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
