"""PB204's fingerprints of every template a ``check PATH`` does not name: the paragraphs of
each body, read and parsed but not rendered, kept in the cache under the file's stat (one
string a file), so that a file whose stat the cache has seen is neither read nor parsed. A
file is parsed only when it may hold one of the paragraphs looked for: told from its text
(``textscan.Paragraphs``) or, with a cache, from the digests of every paragraph it may hold,
kept under its stat (``candidate_digests``); most files hold none, and parsing every file of
a large repository was most of a cold one-file check's cost."""

from __future__ import annotations

import os
from collections.abc import Mapping
from collections.abc import Set as AbstractSet

from promptbudget.cache import FileEntry, Store, active_store, file_keep, file_lookup
from promptbudget.compression.passages import Fingerprint, candidate_digests, passage_parts
from promptbudget.evaluation import template_files
from promptbudget.progress import track
from promptbudget.project import Project
from promptbudget.runmemo import fingerprint_reads, note_digest, note_fingerprints
from promptbudget.templates.parse import variants_of
from promptbudget.templates.source import (
    MAX_TEMPLATE_BYTES,
    FoundFile,
    TemplateFormat,
    detect_format,
    read_prompt_text,
)
from promptbudget.textscan import Paragraphs


def passage_fingerprints(
    project: Project, wanted: Mapping[str, str] | None = None
) -> dict[str, list[Fingerprint]]:
    """The paragraphs of every template's body as fingerprints (PB204 compares them all),
    read and parsed but not rendered; a file whose stat the cache has seen is neither read nor
    parsed. With ``wanted`` (paragraph digest -> text), a file is left out when none of its
    paragraphs is one of them (it could share no passage with them): known from the cache's
    digests, else from its text."""
    store = active_store()
    sought = None if wanted is None else Paragraphs(wanted.values())
    digests = None if wanted is None else frozenset(wanted)
    root = os.path.join(project.root.resolve(), "")
    found: dict[str, list[Fingerprint]] = {}
    stdin = project.stdin_path is not None
    loaded = {str(path) for path in project.templates}  # parsed already: fingerprinted as is
    for file in track(template_files(project), "reading templates"):
        inside = file.resolved.startswith(root) and not (stdin and project.is_stdin(file.path))
        # a file reached by no symlink: its reads here are PB204's alone (runmemo.py)
        alone = inside and file.walked == file.resolved
        with fingerprint_reads(file.resolved if alone else None):
            is_loaded = file.resolved in loaded
            if inside:
                parts = _file_fingerprints(project, file, is_loaded, store, digests, sought)
            else:  # not read (outside the root), or piped in: parsed as it is
                parts = _file_fingerprints(project, file, is_loaded, None, None, None)
        if alone:
            note_fingerprints(file.resolved, file.shown, parts, project.engine_for)
        found.update(parts)
    return found


def _file_fingerprints(
    project: Project,
    file: FoundFile,
    is_loaded: bool,
    store: Store | None,
    wanted: AbstractSet[str] | None,
    sought: Paragraphs | None,
) -> dict[str, list[Fingerprint]]:
    """One file's fingerprints (those holding a ``wanted`` digest when the cache knows them;
    none when the file cannot hold one of the ``sought`` paragraphs)."""
    holds: bool | None = None
    candidates = None  # where the digests of the paragraphs it may hold are kept
    if sought is not None and wanted is not None:  # told before it is parsed
        if store is not None:
            candidates, holds = _known_candidates(file, store, wanted)
        if holds is None and not is_loaded:
            if detect_format(file.path) is TemplateFormat.TEXT:
                return {}  # a data prompt: never a passage (``passage_body``)
            if store is None and not sought.texts:
                return {}  # no paragraph to look for: nothing to read (nor to keep)
            if store is None:
                holds = _may_hold(project, file, sought)
            elif candidates is not None:  # not known by its stat
                entry, cached = _cached(project, file, store, wanted, by_stat=True)
                if cached is not None:  # parsed before (a workflow's template, say)
                    return cached
                holds = _read_candidates(project, file, store, candidates, wanted)
        if holds is False:
            return {}
    entry = None
    if store is not None:
        entry, cached = _cached(project, file, store, wanted)
        if cached is not None:
            return cached
    parsed = project.load(file.path, confine_to=project.root)
    parts = passage_parts(variants_of(parsed))
    if not is_loaded:  # read for its fingerprints only: not kept (10,000 files: ~70 MB)
        project.release(file.path)
    if store is not None and entry is not None:
        file_keep(store, entry, {name: _pack(prints) for name, prints in parts.items()})
    if store is not None and candidates is not None and holds is None:  # known next time
        digests = candidate_digests(parsed.text, detect_format(file.path))
        file_keep(store, candidates, ",".join(sorted(digests)))
    return parts


def _known_candidates(
    file: FoundFile, store: Store, wanted: AbstractSet[str]
) -> tuple[FileEntry | None, bool | None]:
    """(where the digests of every paragraph the file may hold are kept, whether one of them
    is ``wanted``: None when none are kept under its stat), from ``candidate_digests`` (its
    text split as any engine would split it, not parsed); the entry is None when it cannot
    be kept (not a regular file: the parse says why)."""
    entry, value = file_lookup(
        store, "paragraph digests", file.walked, MAX_TEMPLATE_BYTES, file.resolved, by_stat=True
    )
    if entry is None or not isinstance(value, str) or entry.digest is None:
        return entry, None
    note_digest(file.resolved, entry.digest, entry.found)
    return entry, not wanted.isdisjoint(value.split(","))


def _read_candidates(
    project: Project, file: FoundFile, store: Store, entry: FileEntry, wanted: AbstractSet[str]
) -> bool | None:
    """Whether the file may hold one of the ``wanted`` paragraph digests, read from its text
    (the digests kept under ``entry`` for later runs); None when it cannot be read as it is."""
    read = read_prompt_text(file.path, root=project.root)  # as the parse reads it
    if not read.is_readable:
        return None
    digests = candidate_digests(read.text, detect_format(file.path))
    file_keep(store, entry, ",".join(sorted(digests)))
    return not wanted.isdisjoint(digests)


def _cached(
    project: Project,
    file: FoundFile,
    store: Store,
    wanted: AbstractSet[str] | None,
    *,
    by_stat: bool = False,
) -> tuple[FileEntry | None, dict[str, list[Fingerprint]] | None]:
    """(where the file's fingerprints are kept, those kept there: None for none)."""
    # the engine ``engines:`` sets decides how a file is read (as a Semantic Kernel prompt,
    # a leading ``---`` block is front matter, not paragraphs)
    engine = project.engine_for(file.shown) or ""
    entry, value = file_lookup(
        store,
        "fingerprints",
        file.walked,
        MAX_TEMPLATE_BYTES,
        file.resolved,
        file.shown,
        engine,
        by_stat=by_stat,
    )
    cached = _cached_fingerprints(value, wanted)
    if entry is None or entry.digest is None or cached is None:
        return entry, None
    note_digest(file.resolved, entry.digest, entry.found)
    return entry, cached


def _may_hold(project: Project, file: FoundFile, sought: Paragraphs) -> bool:
    """Whether the file (inside the project, not a data prompt) may hold one of the
    ``sought`` paragraphs: read as ``project.load`` would read it; True when that cannot be
    told from its text (a file that cannot be read as it is)."""
    read = read_prompt_text(file.path, root=project.root)  # as the parse reads it
    return not read.is_readable or sought.may_be_in(read.text)  # unreadable: the parse says why


# A fingerprint as the cache keeps it: the paragraph's digest (32 hex digits), ``t`` when it
# holds template syntax (else ``p``), its line; comma-separated. One string a file: the cache
# parses fast and stays small, and a file that holds none of the digests asked for is skipped
# by a substring search, without decoding it.
_DIGEST_CHARS = 32


def _pack(prints: list[Fingerprint]) -> str:
    return ",".join(f"{digest}{'t' if syntax else 'p'}{line}" for digest, line, syntax in prints)


def _unpack(packed: str) -> list[Fingerprint]:
    """Raises ValueError for anything ``_pack`` does not make."""
    if not packed:
        return []
    prints = []
    for item in packed.split(","):
        digest, flag, line = (
            item[:_DIGEST_CHARS],
            item[_DIGEST_CHARS : _DIGEST_CHARS + 1],
            item[_DIGEST_CHARS + 1 :],
        )
        if len(digest) != _DIGEST_CHARS or flag not in ("t", "p") or not line.isdigit():
            raise ValueError(item)
        prints.append((digest, int(line), flag == "t"))
    return prints


def _cached_fingerprints(
    value: object, wanted: AbstractSet[str] | None
) -> dict[str, list[Fingerprint]] | None:
    """Fingerprints by display path as the cache keeps them, only those holding a ``wanted``
    digest when given; None for anything else (a damaged entry is a miss)."""
    if not isinstance(value, dict):
        return None
    decoded: dict[str, list[Fingerprint]] = {}
    for name, prints in value.items():
        if not isinstance(prints, str):
            return None
        if wanted is not None and wanted.isdisjoint(
            item[:_DIGEST_CHARS] for item in prints.split(",")
        ):
            continue
        try:
            decoded[name] = _unpack(prints)
        except ValueError:
            return None
    return decoded
