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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
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
        hint = fetch_hint(ref)
        hint = f" (in a shallow CI checkout, fetch it first: {hint})" if hint else ""
        raise GitError(f"unknown git ref {ref!r}: not a branch, tag or commit here{hint}") from err
    return out.decode("ascii").strip()


def fetch_hint(ref: str, *, remote: str = "origin") -> str | None:
    """The command that brings branch ``ref`` into a shallow checkout, as ``--base`` names
    it: ``origin/main`` into ``refs/remotes/origin/main``; a bare ``main`` into
    ``refs/heads/main``. None for what is not a branch name (``HEAD~1``, a control
    character). Quoted for a POSIX shell."""
    if not ref.isprintable() or not ref or any(c in ref for c in " ~^:?*[\\") or ".." in ref:
        return None
    prefix = f"{remote}/"
    if ref.startswith(prefix):
        branch = ref[len(prefix) :]
        refspec = f"{branch}:refs/remotes/{remote}/{branch}"
    else:
        branch = ref
        refspec = f"{branch}:refs/heads/{branch}"
    if not branch:
        return None
    return f"git fetch --no-tags --depth=50 {remote} {shlex.quote(refspec)}"


@dataclass(frozen=True)
class Base:
    """The commit ``diff`` compares with when ``--base`` is not given, and how it was found."""

    ref: str  # what the report shows: origin/main
    commit: str
    how: str  # "GITHUB_BASE_REF", "merge-base of HEAD and origin/main", ...


def find_base(top: Path, environ: Mapping[str, str]) -> Base:
    """The base of a pull request, found the way CI runs it.

    1. ``GITHUB_BASE_REF`` (a pull_request workflow): the tip of ``origin/$GITHUB_BASE_REF``
       (GitHub checks out the merge commit, whose first parent is that tip);
    2. ``CI_MERGE_REQUEST_TARGET_BRANCH_NAME`` (a GitLab merge request pipeline): the
       merge-base of HEAD and ``origin/<target>``;
    3. otherwise the merge-base of HEAD and the remote's default branch
       (``refs/remotes/origin/HEAD``, else ``origin/main``, else ``origin/master``).
    """
    github = environ.get("GITHUB_BASE_REF", "").strip()
    if github:
        ref = f"origin/{github}"
        return Base(ref, _resolve_branch(top, ref, "GITHUB_BASE_REF"), "GITHUB_BASE_REF")
    gitlab = environ.get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "").strip()
    if gitlab:
        ref = f"origin/{gitlab}"
        tip = _resolve_branch(top, ref, "CI_MERGE_REQUEST_TARGET_BRANCH_NAME")
        return Base(ref, merge_base(top, ref, tip), f"merge-base of HEAD and {ref}")
    default = default_branch(top)
    if default is None:
        hint = fetch_hint("origin/main")
        raise GitError(
            "diff needs --base REF: no CI variable names the base (GITHUB_BASE_REF, "
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME) and the remote's default branch is not here "
            f"(origin/HEAD, origin/main, origin/master); give --base, or fetch it: {hint}"
        )
    tip = resolve_ref(top, default)
    return Base(default, merge_base(top, default, tip), f"merge-base of HEAD and {default}")


def _resolve_branch(top: Path, ref: str, variable: str) -> str:
    try:
        return resolve_ref(top, ref)
    except GitError as err:
        hint = fetch_hint(ref)
        raise GitError(
            f"{variable} names the base {ref!r}, which is not here"
            + (f"; fetch it first: {hint}" if hint else "")
        ) from err


def default_branch(top: Path) -> str | None:
    """``origin/<default>`` from ``refs/remotes/origin/HEAD``, else ``origin/main`` or
    ``origin/master`` if present; None when none is."""
    try:
        out = _git(["symbolic-ref", "--quiet", "refs/remotes/origin/HEAD"], top)
        name = out.decode("utf-8", "replace").strip().removeprefix("refs/remotes/")
        if name:
            return name
    except GitError:
        pass
    for ref in ("origin/main", "origin/master"):
        try:
            _git(["rev-parse", "--verify", "--quiet", f"refs/remotes/{ref}^{{commit}}"], top)
        except GitError:
            continue
        return ref
    return None


def merge_base(top: Path, ref: str, tip: str) -> str:
    """The merge-base of HEAD and ``tip``; in a shallow clone where the history does not
    reach it, an error saying how to fetch more."""
    try:
        out = _git(["merge-base", "HEAD", tip], top)
    except GitError as err:
        shallow = _git(["rev-parse", "--is-shallow-repository"], top).strip() == b"true"
        branch = ref.removeprefix("origin/")
        advice = (
            "the clone is shallow; fetch more history: git fetch --no-tags --deepen=200 origin "
            f"HEAD {shlex.quote(f'{branch}:refs/remotes/origin/{branch}')} (or check out with "
            "fetch-depth: 0), or give --base"
            if shallow
            else "give --base REF"
        )
        raise GitError(f"HEAD and {ref} have no common commit here; {advice}") from err
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
