"""What a template file includes, known from the cache by its bytes, without reading or
parsing it: the question ``check PATH`` asks of every step's template ("does it include the
named file?") after any other file of the repository changed.

The names a file includes (as written, before they are resolved) depend on its bytes, its
path (the format is its suffix), how it is shown, the engine the manifest sets for it, the
project root and, for a generic file with no front matter, the promptfoo configs in its
directory and up to three above (they may make it a Nunjucks prompt file, split on ``---``).
The key holds all of them; the file's bytes are known by its stat (``cache.file_lookup``: one
key a file once it is two seconds old, its bytes' key before), the configs' by theirs
(``cache.indexed_digest``). Formats whose parse reads other files (Semantic Kernel's
``config.json``, data prompts, Dotprompt partials), symlinks and anything unusual in a config's
place are not kept: they are parsed as before. Resolving the names (which files exist) is
always done again.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from promptbudget.cache import FileEntry, Store, file_lookup, indexed_digest
from promptbudget.pathnames import absolute
from promptbudget.runmemo import note_digest, note_listing
from promptbudget.templates.promptfoo import CONFIG_NAMES, MAX_CONFIG_BYTES
from promptbudget.templates.source import MAX_TEMPLATE_BYTES, TemplateFormat, detect_format

_PROMPTFOO_LEVELS = 3  # promptfoo.find_config's default
_UNKEPT = frozenset({TemplateFormat.TEXT, TemplateFormat.SEMANTIC_KERNEL, TemplateFormat.DOTPROMPT})


class IncludeFacts:
    """Include names by file bytes, for one run over one project root."""

    def __init__(self, root: Path) -> None:
        self.root = os.path.realpath(root)
        self._inside = os.path.join(self.root, "")
        self._real_dirs: dict[str, str] = {}
        self._configs: dict[str, str | None] = {}

    def lookup(
        self,
        store: Store,
        path: Path,
        engine_for: Callable[[str], str | None],
        *,
        by_stat: bool = False,
    ) -> tuple[FileEntry | None, list[str] | None]:
        """(where the names ``path`` includes are kept, the names kept there) (``engine_for``:
        the engine the manifest sets for a display path); the entry is None when they cannot
        be kept (a symlink, an unusual format or config, a file outside the root), the names
        None when none are kept (or they are damaged: a miss). ``by_stat``: looked for under
        the file's stat only (``cache.file_lookup``)."""
        if detect_format(path) in _UNKEPT:
            return None, None
        located = absolute(path)
        directory, name = os.path.split(located)
        real_dir = self._real_dirs.get(directory)
        if real_dir is None:
            real_dir = self._real_dirs[directory] = os.path.realpath(directory)
        real = os.path.join(real_dir, name)
        if not real.startswith(self._inside):
            return None, None
        shown = real[len(self._inside) :].replace(os.sep, "/")
        engine = engine_for(shown)  # display_path(path, root), one realpath a directory
        configs = self._configs_above(real_dir)
        if configs is None:
            return None, None
        entry, value = file_lookup(  # None: a symlink, not a file
            store,
            "include names",
            located,
            MAX_TEMPLATE_BYTES,
            real,
            shown,
            engine or "",
            self.root,
            configs,
            by_stat=by_stat,
        )
        if entry is None or entry.digest is None:
            return entry, None
        if not (isinstance(value, list) and all(isinstance(name, str) for name in value)):
            return entry, None
        note_digest(located, entry.digest, entry.found)
        return entry, value

    def _configs_above(self, real_dir: str) -> str | None:
        """The promptfoo configs ``find_config`` would look at for a file in ``real_dir``,
        each as its digest (or ``-`` when absent); None when one is not a regular file."""
        if real_dir in self._configs:
            return self._configs[real_dir]
        parts: list[str] = []
        directory = real_dir
        for _ in range(_PROMPTFOO_LEVELS + 1):
            note_listing(directory)  # a config that appears later is a change
            for name in CONFIG_NAMES:
                candidate = os.path.join(directory, name)
                try:
                    found = os.lstat(candidate)
                except FileNotFoundError:
                    parts.append("-")
                    continue
                except OSError:
                    parts = []
                    break
                indexed = indexed_digest(Path(candidate), MAX_CONFIG_BYTES)
                if not stat.S_ISREG(found.st_mode) or indexed is None:
                    parts = []
                    break
                note_digest(candidate, *indexed)
                parts.append(indexed[0])
            else:
                parent = os.path.dirname(directory)
                if directory == self.root or parent == directory:
                    break
                directory = parent
                continue
            break
        value = "/".join(parts) if parts else None
        self._configs[real_dir] = value
        return value
