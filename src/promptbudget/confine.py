"""The one way promptbudget opens a file: confined, regular, bounded.

Every file the tool reads may come from a stranger's pull request, and so may its name: a
symlink to ``/etc/passwd`` or to a CI token, a FIFO that blocks forever, a symlink to
``/dev/zero`` that never ends. ``read_confined`` resolves symlinks first (a directory's once
a run), refuses a real path outside the project root (when a root is given), opens only
regular files (without blocking on a FIFO, never through a symlink: the name checked is the
one opened), and stops reading at the size limit instead of checking the size afterwards.
Files named on the command line by the user (``--prices``, ``--config``) are trusted to be
where they are, but are still read only when regular and small enough.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from promptbudget.errors import PromptBudgetError
from promptbudget.pathnames import real
from promptbudget.runmemo import note_probe, note_read

# Read in blocks of this size, so a limit is enforced within one block of being reached.
_BLOCK_BYTES = 65_536
# Where a name is too long for the file system (255 bytes per component on most).
_MAX_COMPONENT_BYTES = 255


class ConfinementError(PromptBudgetError):
    """A file cannot be read safely: outside the project, not a regular file, too large.

    ``reason`` is the sentence without the file name, for callers that report it as a
    finding ("points outside the project root; not read").
    """

    def __init__(self, path: str, reason: str, *, is_too_large: bool = False) -> None:
        self.path = path
        self.reason = reason
        self.is_too_large = is_too_large
        super().__init__(f"{path}: {reason}")


def resolve_path(path: Path) -> Path:
    """``path`` with every symlink resolved; a loop or an impossible name is an error."""
    try:
        _check_name(path)
        return path.resolve()
    except (OSError, RuntimeError, ValueError) as err:
        raise ConfinementError(str(path), _os_reason(err)) from err


def is_inside(path: Path, root: Path) -> bool:
    """Whether the real path of ``path`` is ``root`` or under it (symlinks resolved)."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError, ValueError):
        return False


def is_regular_file(path: Path, root: Path | None = None) -> bool:
    """Whether ``path`` resolves to a regular file (inside ``root`` when given); never
    raises. For lookups (``promptfooconfig.yaml`` next to a prompt, a lock file): a symlink
    out of the project or a FIFO counts as absent."""
    note_probe(path)  # a recorded run: a file that appears here later is seen
    try:
        os.lstat(path)  # most lookups are for absent files: one system call, no resolve
        resolved = path.resolve()
        if root is not None and not resolved.is_relative_to(root.resolve()):
            return False
        return stat.S_ISREG(resolved.stat().st_mode)
    except (OSError, RuntimeError, ValueError):
        return False


def read_confined(
    path: Path,
    *,
    root: Path | None,
    limit: int,
    shown: str | None = None,
) -> bytes:
    """The bytes of ``path``, read safely; raises ``ConfinementError`` with one sentence.

    ``root``: the real path must be inside it (``None``: a path the user named, any place).
    ``limit``: at most this many bytes; the check is made while reading, so a file that
    grows or never ends (``/dev/zero`` behind a symlink) costs one block at most.
    """
    name = shown if shown is not None else str(path)
    resolved = _real_file(path)
    if root is not None:
        try:
            # once a run: the project's directory, which no file in it can move
            real_root = str(real(root))
        except (OSError, RuntimeError, ValueError) as err:
            raise ConfinementError(name, _os_reason(err)) from err
        inside = str(resolved)
        if inside != real_root and not inside.startswith(real_root.rstrip(os.sep) + os.sep):
            raise ConfinementError(name, "points outside the project root (a symlink?); not read")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    flags |= getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        before = os.lstat(resolved)
        if not stat.S_ISREG(before.st_mode):
            raise ConfinementError(name, _kind_reason(before.st_mode))
        descriptor = os.open(resolved, flags)
    except OSError as err:
        raise ConfinementError(name, _os_reason(err)) from err
    try:
        opened = os.fstat(descriptor)
        if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (
            before.st_dev,
            before.st_ino,
        ):
            raise ConfinementError(name, "changed while being opened; not read")
        if opened.st_size > limit:
            raise ConfinementError(name, _size_reason(opened.st_size, limit), is_too_large=True)
        chunks: list[bytes] = []
        total = 0
        while True:
            chunk = os.read(descriptor, min(_BLOCK_BYTES, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise ConfinementError(name, _size_reason(total, limit), is_too_large=True)
        data = b"".join(chunks)
        note_read(resolved, data, opened)
        return data
    except OSError as err:
        raise ConfinementError(name, _os_reason(err)) from err
    finally:
        os.close(descriptor)


def _real_file(path: Path) -> Path:
    """The real path of a file to open: its directory's real path, resolved once a run
    (``pathnames.real``: a pull request's tree does not change while promptbudget runs),
    joined to its own name when that is not a symlink (``O_NOFOLLOW`` and the inode check in
    ``read_confined`` hold the open to that file); anything else resolved whole, every time
    (~40 us less a file: a one-file check reads every template of the repository)."""
    name = path.name
    if name and name != "..":
        try:
            if not stat.S_ISLNK(os.lstat(path).st_mode):
                return real(path.parent) / name
        except (OSError, RuntimeError, ValueError):
            pass  # resolved whole, for the reason in one sentence
    return resolve_path(path)


def _check_name(path: Path) -> None:
    text = str(path)
    if "\x00" in text:
        raise ValueError("the file name contains a NUL character")
    for part in path.parts:
        try:
            size = len(part.encode("utf-8", "surrogateescape"))
        except UnicodeEncodeError as err:
            raise ValueError("the file name is not valid Unicode (a lone surrogate)") from err
        if size > _MAX_COMPONENT_BYTES:
            raise OSError(errno.ENAMETOOLONG, "File name too long")


def _os_reason(err: BaseException) -> str:
    if isinstance(err, OSError):
        if err.errno == errno.ELOOP:
            return "is a symlink loop; not read"
        if err.errno == errno.ENAMETOOLONG:
            return (
                f"has a name component over {_MAX_COMPONENT_BYTES} bytes, too long for a file "
                "system"
            )
        if err.errno == errno.ENOENT:
            return "no such file"
        return f"cannot be read: {err.strerror or err}"
    if isinstance(err, RuntimeError):
        return "is a symlink loop; not read"
    return f"is not a usable file name: {err}"


def _kind_reason(mode: int) -> str:
    if stat.S_ISDIR(mode):
        kind = "a directory"
    elif stat.S_ISFIFO(mode):
        kind = "a FIFO"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        kind = "a device"
    elif stat.S_ISSOCK(mode):
        kind = "a socket"
    else:
        kind = "not a regular file"
    return f"is {kind}, not a regular file; not read"


def _size_reason(size: int, limit: int) -> str:
    limit_text, size_text = _human_bytes(limit), _human_bytes(size)
    return f"is larger than the {limit_text} limit ({size_text} or more); not read"


def _human_bytes(size: int) -> str:
    if size >= 1_048_576:
        return f"{size / 1_048_576:.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} bytes"


def confinement_root(path: Path, project_root: Path) -> Path | None:
    """Where a file named by the user may point: a name inside the project (a committed
    file, perhaps a symlink a pull request added) must stay inside the project; a name the
    user gave outside it (``count /tmp/draft.j2``) is trusted (``None``)."""
    try:
        located = path.absolute().parent.resolve() / path.name
        return project_root if located.is_relative_to(project_root.resolve()) else None
    except (OSError, RuntimeError, ValueError):
        return project_root


# Files a run reads by name or by suffix: a report written over one would corrupt the project
# (a file named ``--output=prompts/x.j2`` once turned a pre-commit hook into that).
_READ_NAMES = frozenset(
    {
        "budgets.yaml",
        "budgets.yml",
        "promptbudget.lock",
        "pyproject.toml",
        "skprompt.txt",
        "config.json",
        "promptfooconfig.yaml",
        "promptfooconfig.yml",
        "promptfooconfig.json",
        "tokenizer.json",
    }
)
_READ_SUFFIXES = frozenset({".j2", ".jinja", ".jinja2", ".prompty", ".prompt"})


def output_problem(output: Path, *, cwd: Path, root: Path) -> str | None:
    """Why ``--output`` may not be written, or None. Refused: a relative path that leaves the
    project (``../x``), a path in the project that resolves outside it (a symlink), a file the
    run reads (a template, the manifest, the lock), anything but a regular file. An absolute
    path outside the project (``$RUNNER_TEMP/report.md`` in CI) is the user's choice."""
    try:
        real_root = root.resolve()
        located = output if output.is_absolute() else cwd / output
        lexical = Path(os.path.normpath(located.absolute()))
        resolved = located.resolve()
        inside_by_name = lexical.is_relative_to(real_root) or lexical.is_relative_to(root)
        if not output.is_absolute() and not inside_by_name:
            return "is outside the project; give a path inside it, or an absolute path"
        if inside_by_name and not resolved.is_relative_to(real_root):
            return "points outside the project (a symlink?); not written"
        if resolved.exists() and not stat.S_ISREG(resolved.stat().st_mode):
            if resolved.is_dir():
                return "is a directory; give a file path"
            return "is not a regular file (a FIFO or a device?); not written"
    except (OSError, RuntimeError, ValueError) as err:
        return _os_reason(err)
    name = resolved.name.lower()
    if resolved.is_relative_to(real_root) and (
        name in _READ_NAMES or resolved.suffix.lower() in _READ_SUFFIXES
    ):
        return "is a file promptbudget reads (a template, the manifest or the lock); not written"
    return None
