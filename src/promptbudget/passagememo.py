"""A run memo of ``check PATH`` after another template changed: the files the run read only
for PB204's passage fingerprints (and, for a workflow's template, to learn that it includes
nothing) are fingerprinted again, and the memo still answers when PB204 takes from each
exactly what it took when the memo was recorded, and each still includes nothing.

PB204 takes from such a file only its paragraphs that are also in the named files (and
could be long enough to be a passage), with their display paths and lines
(``runmemo.projection``): the passages found, the workflows priced and every line printed
depend on the file through that alone. The memo keeps those paragraphs' texts, so a file
whose text holds none of them (compared with whitespace collapsed, as paragraphs are) and
held none before is known unchanged without parsing it; any other file is read and parsed
as the full run parses it (``templates/parse.py``, ``compression/passages.py``, imported
only then), and must read nothing the memo does not already vouch for.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path
from typing import Any

from promptbudget.memohead import stat_of
from promptbudget.runmemo import (
    content_hash,
    is_racy,
    projection,
    read_as_stated,
    relative,
    short,
    watching,
)
from promptbudget.textscan import Paragraphs, includes_nothing


def still_same(memo: dict[str, Any], changed: list[str]) -> bool:
    """Whether PB204 takes from each file in ``changed`` (read by the memo's run only for its
    fingerprints; its bytes changed since) what it took then; if so the memo's entries for
    them are updated to their new bytes."""
    passages = memo["passages"]
    texts: dict[str, str] = passages["texts"]
    root = Path(passages["root"])
    if not all(isinstance(text, str) for text in texts.values()):
        return False
    for name in changed:
        shown, engine, recorded, asked = passages["files"][name]
        shown = name if shown is None else shown
        if not isinstance(shown, str) or not (engine is None or isinstance(engine, str)):
            return False
        entry = _unchanged_for_pb204(memo, name, shown, engine, root, texts, recorded, asked)
        if entry is None:
            return False
        memo["files"][name] = entry
    return True


def _unchanged_for_pb204(
    memo: dict[str, Any],
    name: str,
    shown: str,
    engine: str | None,
    root: Path,
    texts: dict[str, str],
    recorded: list[list[Any]],
    asked: object,
) -> list[Any] | None:
    """The memo's new entry for the file ``name`` (relative to the working directory) when
    PB204 takes from it what it ``recorded`` and, if the run ``asked`` what it includes, it
    still includes nothing; None otherwise (or when it is not a regular file of a
    template's size)."""
    from promptbudget.templates.source import MAX_TEMPLATE_BYTES

    now = time.time_ns()
    try:
        found = os.lstat(name)
    except OSError:
        return None
    if not stat.S_ISREG(found.st_mode) or found.st_size > MAX_TEMPLATE_BYTES:
        return None
    data = read_as_stated(name, found, follow_symlinks=False)
    if data is None:
        return None
    digest = short(content_hash(data))
    if asked is not False and not _includes_nothing(name, data):
        return None
    if recorded or _may_hold(data, texts):
        path = os.path.abspath(name)
        if _projection_now(memo, path, digest, shown, engine, root, texts) != recorded:
            return None
    current = stat_of(found)
    return [current, digest, is_racy(current, now)]


def _includes_nothing(name: str, data: bytes) -> bool:
    """Whether the template ``name`` of these bytes surely includes, imports and extends
    nothing (``textscan.includes_nothing``); never said of a data prompt (YAML, JSON), whose
    strings may hide a statement behind escapes (``"\\u007b% include"``)."""
    from promptbudget.templates.source import TemplateFormat, decode_prompt_bytes, detect_format

    if detect_format(Path(name)) is TemplateFormat.TEXT:
        return False
    return includes_nothing(decode_prompt_bytes(data).text)


def _may_hold(data: bytes, texts: dict[str, str]) -> bool:
    """Whether a template of these bytes may hold one of the paragraphs ``texts``: each
    paragraph (its lines joined, whitespace collapsed) is a substring of the whole text with
    its whitespace collapsed, whatever the file's format makes of its lines."""
    from promptbudget.templates.source import decode_prompt_bytes

    return Paragraphs(texts.values()).may_be_in(decode_prompt_bytes(data).text)


def _projection_now(
    memo: dict[str, Any],
    path: str,
    digest: str,
    shown: str,
    engine: str | None,
    root: Path,
    texts: dict[str, str],
) -> list[list[Any]] | None:
    """What PB204 takes from ``path`` now, read and parsed as the full run reads it; None when
    the file is not the bytes ``digest`` any more, or its parse read or looked at anything the
    memo does not already vouch for as an input of the run."""
    from promptbudget.compression.passages import passage_parts
    from promptbudget.templates.parse import parse_file, variants_of

    with watching() as seen:
        parsed = parse_file(Path(path), shown, root=root, engine=engine)
    cwd = os.getcwd()
    fingerprinted = memo["passages"]["files"]
    for other, (_, other_digest, _) in seen.files.items():
        if other == path:
            if other_digest != digest:
                return None
            continue
        name = relative(other, cwd)
        kept = memo["files"].get(name)
        if kept is None or kept[1] != other_digest or name in fingerprinted:
            return None
    for directory, (_, listed, _) in seen.dirs.items():
        kept = memo["dirs"].get(relative(directory, cwd))
        if kept is None or kept[1] != listed:
            return None
    if not seen.is_usable:
        return None
    return projection(passage_parts(variants_of(parsed)), texts)
