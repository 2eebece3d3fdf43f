"""Finding prompt files and reading them the way Python and Jinja2 read text.

UTF-8, a byte-order mark dropped, CRLF and CR as LF, the final newline kept. A file that is not
valid UTF-8, or that is larger than a template can reasonably be, is reported, never a crash.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import BinaryIO

from promptbudget.confine import ConfinementError, read_confined
from promptbudget.errors import TemplateNotFoundError
from promptbudget.pathnames import path_of, real
from promptbudget.runmemo import note_listing

# A prompt template is a few kilobytes; long context comes in through variables. Anything
# above this is not read (a 50 MB file must not stall a pre-commit hook).
MAX_TEMPLATE_BYTES = 2 * 1024 * 1024


class TemplateFormat(enum.Enum):
    JINJA2 = "jinja2"
    PROMPTY = "prompty"
    DOTPROMPT = "dotprompt"
    SEMANTIC_KERNEL = "semantic-kernel"  # skprompt.txt, or a prompt YAML (found by content)
    LANGCHAIN = "langchain"  # a serialized PromptTemplate, YAML or JSON (found by content)
    TEXT = "text"


_FORMAT_BY_SUFFIX = {
    ".j2": TemplateFormat.JINJA2,
    ".jinja": TemplateFormat.JINJA2,
    ".jinja2": TemplateFormat.JINJA2,
    ".txt": TemplateFormat.JINJA2,
    ".md": TemplateFormat.JINJA2,
    ".prompty": TemplateFormat.PROMPTY,
    ".prompt": TemplateFormat.DOTPROMPT,
}

_DATA_SUFFIXES = frozenset({".json", ".yaml", ".yml"})

# Files picked up when a directory is walked: template formats, plus the data formats prompts
# are kept in (chat-message JSON, prompt YAML), which are counted as plain text.
DISCOVERED_SUFFIXES = frozenset(_FORMAT_BY_SUFFIX) | {".json", ".yaml", ".yml"}

# Documentation next to the prompts is not a prompt: skipped when walking, counted if named.
_SKIPPED_FILE_STEMS = frozenset({"readme", "changelog", "license", "licence", "contributing"})

_SKIPPED_DIRS = frozenset(
    {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".mypy_cache"}
)


def detect_format(path: Path) -> TemplateFormat:
    """The template format of ``path``, by its name and suffix. YAML and JSON files are data
    (they may turn out to be Semantic Kernel or LangChain prompts once read); any other file
    is a generic template (``JINJA2``), whose engine its content decides."""
    if path.name.lower() == "skprompt.txt":
        return TemplateFormat.SEMANTIC_KERNEL
    suffix = path.suffix.lower()
    if suffix in _DATA_SUFFIXES:
        return TemplateFormat.TEXT
    return _FORMAT_BY_SUFFIX.get(suffix, TemplateFormat.JINJA2)


@dataclass(frozen=True)
class PromptText:
    """The text of one prompt file, or why it could not be read in full."""

    text: str
    size_bytes: int
    had_bom: bool = False
    problem: str | None = None  # a human sentence; the text is then approximate or empty
    problem_line: int = 1
    is_readable: bool = True  # False: nothing was counted (too large, unreadable)


def read_prompt_text(path: Path, *, root: Path | None = None) -> PromptText:
    """Read ``path`` as DESIGN §3 says. Never raises for content problems.

    Only a regular file is read (a FIFO or a device is a problem, at once), at most
    ``MAX_TEMPLATE_BYTES`` of it; with ``root``, only when its real path is inside it."""
    try:
        data = read_confined(path, root=root, limit=MAX_TEMPLATE_BYTES)
    except ConfinementError as err:
        problem = err.reason
        if err.is_too_large:
            size = _size_of(path)
            problem = (
                f"is {size / 1_048_576:.1f} MB, above the {MAX_TEMPLATE_BYTES // 1_048_576} MB "
                "limit for a prompt template; not counted (pass long context as a variable "
                "with a cap)"
            )
        return PromptText("", _size_of(path), problem=problem, is_readable=False)
    return decode_prompt_bytes(data)


STDIN_ARGUMENT = Path("-")
STDIN_NAME = "<stdin>"


def read_prompt_stream(stream: BinaryIO) -> bytes:
    """A template piped in (``count -``): at most one byte more than ``MAX_TEMPLATE_BYTES``
    is read, so an endless stream costs 2 MB at most and a long one is known to be too long."""
    return stream.read(MAX_TEMPLATE_BYTES + 1)


def stream_prompt_text(data: bytes) -> PromptText:
    """The text of a template read by ``read_prompt_stream``, as a file's would be."""
    if len(data) > MAX_TEMPLATE_BYTES:
        return PromptText(
            "",
            len(data),
            problem=f"is larger than the {MAX_TEMPLATE_BYTES // 1_048_576} MB limit for a prompt "
            "template; not counted (pass long context as a variable with a cap)",
            is_readable=False,
        )
    return decode_prompt_bytes(data)


def _size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except (OSError, ValueError):
        return 0


def decode_prompt_bytes(data: bytes) -> PromptText:
    """Decode UTF-8 (BOM dropped), normalise line ends; invalid bytes become U+FFFD, reported."""
    had_bom = data.startswith(b"\xef\xbb\xbf")
    if had_bom:
        data = data[3:]
    problem = None
    line = 1
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        problem = (
            f"is not valid UTF-8 (byte 0x{data[err.start]:02x} on line {line}); invalid bytes "
            "were counted as U+FFFD, so the count is approximate. Save the file as UTF-8"
        )
        text = data.decode("utf-8", errors="replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return PromptText(
        text,
        len(data) + (3 if had_bom else 0),
        had_bom=had_bom,
        problem=problem,
        problem_line=line,
    )


def iter_prompt_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files named on the command line, and prompt files found under named directories.

    A file named explicitly is always included, whatever its suffix. Directories are walked in
    sorted order, skipping hidden and tool directories. Raises if a path does not exist.
    """
    seen: set[Path] = set()
    for path in paths:
        if not path.exists():
            raise TemplateNotFoundError(f"{path}: no such file or directory")
        found = _walk(path) if path.is_dir() else iter([path])
        for file in found:
            key = file.resolve()
            if key not in seen:
                seen.add(key)
                yield file


def _walk(directory: Path) -> Iterator[Path]:
    for current, dirnames, filenames in os.walk(directory):
        note_listing(current)
        dirnames[:] = sorted(
            d for d in dirnames if d not in _SKIPPED_DIRS and not d.startswith(".")
        )
        for name in sorted(filenames):
            if name.startswith(".") or name.split(".", 1)[0].lower() in _SKIPPED_FILE_STEMS:
                continue
            file = Path(current, name)
            if file.suffix.lower() in DISCOVERED_SUFFIXES:
                yield file


@dataclass(frozen=True)
class FoundFile:
    """A prompt file found under a directory: as walked, its real path, and how it is shown
    (``display_path``)."""

    walked: str
    resolved: str
    shown: str

    @cached_property
    def path(self) -> Path:
        return path_of(self.walked)


def list_prompt_files(directory: Path, root: Path) -> list[FoundFile]:
    """``iter_prompt_files([directory])`` for a directory, each file with its real path and
    display path, found with one ``realpath`` per directory rather than one per file (a file
    that is not a symlink is where its directory's real path says)."""
    real_root = os.path.realpath(root)
    inside = os.path.join(real_root, "")
    found: list[FoundFile] = []
    seen: set[str] = set()
    for current, names, links in _walk_entries(os.fspath(directory)):
        real_dir = os.path.realpath(current)
        for name in names:
            if name.startswith(".") or name.split(".", 1)[0].lower() in _SKIPPED_FILE_STEMS:
                continue
            if os.path.splitext(name)[1].lower() not in DISCOVERED_SUFFIXES:
                continue
            located = os.path.join(real_dir, name)
            resolved = os.path.realpath(located) if name in links else located
            if resolved in seen:
                continue
            seen.add(resolved)
            if located.startswith(inside):
                shown = located[len(inside) :]
            else:
                shown = os.path.relpath(located, real_root)
            walked = os.path.join(current, name)
            found.append(FoundFile(walked, resolved, shown.replace(os.sep, "/")))
    return found


def _walk_entries(top: str) -> Iterator[tuple[str, list[str], set[str]]]:
    """``os.walk(top)`` (top-down, symlinked directories listed but not entered, sorted,
    hidden and tool directories skipped): (directory, file names sorted, the names among
    them that are symlinks)."""
    try:
        with os.scandir(top) as scanned:
            entries = list(scanned)
    except OSError:
        return
    note_listing(top)
    dirs: list[str] = []
    files: list[str] = []
    links: set[str] = set()
    for entry in entries:
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            dirs.append(entry.name)
        else:
            files.append(entry.name)
            if entry.is_symlink():
                links.add(entry.name)
    yield top, sorted(files), links
    for name in sorted(d for d in dirs if d not in _SKIPPED_DIRS and not d.startswith(".")):
        path = os.path.join(top, name)
        if not os.path.islink(path):
            yield from _walk_entries(path)


def display_path(path: Path, root: Path) -> str:
    """``path`` relative to the project root with ``/`` separators (``..`` if outside).

    Directories are resolved, the file name is not: a symlink is shown under its own name.
    """
    located = real(path.absolute().parent) / path.name
    try:
        relative = os.path.relpath(located, real(root))
    except ValueError:  # another drive on Windows
        return located.as_posix()
    return Path(relative).as_posix()
