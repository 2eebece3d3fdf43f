"""Passages pasted into several templates (PB204): the same paragraph, at least N tokens."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from promptbudget.compression.protect import ROLE_LINE
from promptbudget.compression.rewrite import split_head
from promptbudget.templates.source import TemplateFormat, detect_format
from promptbudget.tokenizers import Tokenizer

if TYPE_CHECKING:
    from promptbudget.templates.meta import ParsedTemplate

_SPACES = re.compile(r"\s+")
_TEMPLATE = re.compile(r"\{\{|\{%|\{#")
# A role marker or a heading ends a paragraph and is not part of the next one.
_BOUNDARY = re.compile(ROLE_LINE + r"|^[ \t]*#{1,6}[ \t]+\S")


@dataclass(frozen=True)
class Passage:
    text: str  # the paragraph, whitespace normalised
    tokens: int
    locations: tuple[tuple[str, int], ...]  # (template path, line), first first

    @property
    def paths(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(path for path, _ in self.locations))


def find_passages(
    bodies: Mapping[str, tuple[str, int]], tokenizer: Tokenizer, min_tokens: int
) -> list[Passage]:
    """Paragraphs of at least ``min_tokens`` that appear in two or more templates.

    ``bodies`` maps a template path to (body text, file line the body starts on).
    """
    occurrences: dict[str, list[tuple[str, int]]] = {}
    for path, (body, first_line) in bodies.items():
        for text, line in _paragraphs(body, first_line):
            occurrences.setdefault(text, []).append((path, line))
    shared = {
        text: places
        for text, places in occurrences.items()
        if len({path for path, _ in places}) > 1 and not _TEMPLATE.search(text)
    }
    passages = []
    for text, places in shared.items():
        tokens = tokenizer.count(text)
        if tokens >= min_tokens:
            passages.append(Passage(text, tokens, tuple(sorted(places))))
    return sorted(passages, key=lambda p: (-p.tokens, p.locations))


class PassageIndex:
    """``find_passages`` one body at a time, keeping a digest and the places of each
    paragraph, and the text only of those found in a second template: a full ``check`` of a
    large project never holds every paragraph's text at once."""

    def __init__(self) -> None:
        # digest -> (path, line) of its one place so far, or the list of all its places
        self._places: dict[str, tuple[str, int] | list[tuple[str, int]]] = {}
        self._shared: dict[str, str] = {}  # digest -> text, once in two templates

    def add(self, path: str, body: str, first_line: int) -> None:
        """The paragraphs of one template's body (each template once)."""
        self.add_parts(path, index_parts(body, first_line))

    def add_parts(self, path: str, parts: list[IndexPart]) -> None:
        """``add`` of a body's ``index_parts`` (worked out elsewhere: parallel.py)."""
        for key, line, text in parts:
            places = self._places.get(key)
            if places is None:
                self._places[key] = (path, line)
                continue
            if isinstance(places, tuple):
                places = self._places[key] = [places]
            places.append((path, line))
            if places[0][0] != path and not self._shared.get(key):
                self._shared[key] = text

    def unknown_texts(self) -> dict[str, str]:
        """Paragraphs found in two templates whose text no part added held (a part kept
        without its texts: filecache.py): digest -> a template that holds it."""
        return {key: self._places_of(key)[0][0] for key, text in self._shared.items() if not text}

    def know_text(self, key: str, text: str) -> None:
        if key in self._shared:
            self._shared[key] = text

    def _places_of(self, key: str) -> list[tuple[str, int]]:
        places = self._places[key]
        return places if isinstance(places, list) else [places]

    def passages(self, tokenizer: Tokenizer, min_tokens: int) -> list[Passage]:
        """What ``find_passages`` returns for every body added."""
        passages = []
        for key, text in self._shared.items():
            tokens = tokenizer.count(text)  # 0 for a text never known: no passage
            if tokens >= min_tokens:
                places = self._places[key]
                assert isinstance(places, list)
                passages.append(Passage(text, tokens, tuple(sorted(places))))
        return sorted(passages, key=lambda p: (-p.tokens, p.locations))


# A paragraph as ``PassageIndex`` keeps it: its digest, line and text
IndexPart = tuple[str, int, str]


def index_parts(body: str, first_line: int) -> list[IndexPart]:
    """The paragraphs of ``body`` that could be a passage (no template syntax), each with its
    digest: what ``PassageIndex.add`` takes from a body."""
    return [
        (paragraph_digest(text), line, text)
        for text, line in _paragraphs(body, first_line)
        if not _TEMPLATE.search(text)  # never a passage
    ]


Fingerprint = tuple[str, int, bool]  # (digest of the paragraph, line, holds template syntax)


def fingerprints(body: str, first_line: int) -> list[Fingerprint]:
    """Each paragraph of ``body`` as a digest, its line and whether it holds template syntax:
    what PB204 needs of a template that is not checked itself (``check PATH``)."""
    return [
        (paragraph_digest(text), line, bool(_TEMPLATE.search(text)))
        for text, line in _paragraphs(body, first_line)
    ]


def passage_body(parsed: ParsedTemplate) -> tuple[str, str] | None:
    """(head, body) of a template the compression passes work on: readable prompt text,
    compressed (and reported) once per file; None for the others."""
    if not parsed.is_readable or parsed.text_problem or parsed.format is TemplateFormat.TEXT:
        return None
    if detect_format(parsed.path) is TemplateFormat.TEXT:
        return None  # a template inside YAML or JSON: compress never rewrites those
    if parsed.variant is not None and not parsed.variant.startswith("1 of "):
        return None  # a multi-prompt file is compressed (and reported) once
    return split_head(parsed.text, parsed.format)


def passage_parts(variants: list[ParsedTemplate]) -> dict[str, list[Fingerprint]]:
    """The fingerprints of one file's templates (``variants_of``), by display path: what
    PB204 compares of a file that is not checked itself."""
    parts = {}
    for part in variants:
        split = passage_body(part)
        if split is not None:
            head, body = split
            parts[part.display_path] = fingerprints(body, head.count("\n") + 1)
    return parts


def candidate_digests(text: str, fmt: TemplateFormat) -> set[str]:
    """The digests of every paragraph without template syntax that ``passage_parts`` may
    find in a file of this text and format (by its suffix), whatever engine its content or
    the manifest gives it (only Semantic Kernel's changes where its body starts): a
    superset, computed without parsing the file."""
    bodies = {split_head(text, fmt)[1], split_head(text, TemplateFormat.SEMANTIC_KERNEL)[1]}
    return {
        paragraph_digest(paragraph)
        for body in bodies
        for paragraph, _ in _paragraphs(body, 1)
        if not _TEMPLATE.search(paragraph)
    }


def paragraph_digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def selected_paragraphs(selected: Mapping[str, tuple[str, int]], min_tokens: int) -> dict[str, str]:
    """The paragraphs ``find_passages_touching`` looks for in other templates, by digest: the
    selected bodies' paragraphs without template syntax, of at least ``min_tokens`` bytes (a
    shorter one can never be a passage: a token of the byte-level BPE encodings PB204 counts
    with covers at least one byte)."""
    return {
        paragraph_digest(text): text
        for body, first_line in selected.values()
        for text, _ in _paragraphs(body, first_line)
        if not _TEMPLATE.search(text) and len(text.encode("utf-8", "surrogatepass")) >= min_tokens
    }


def find_passages_touching(
    selected: Mapping[str, tuple[str, int]],
    others: Mapping[str, list[Fingerprint]],
    tokenizer: Tokenizer,
    min_tokens: int,
) -> list[Passage]:
    """``find_passages`` over ``selected`` bodies and the fingerprints of every other
    template, keeping only the passages in at least one selected template (the only ones
    ``check PATH`` reports, and prices)."""
    texts: dict[str, str] = {}
    occurrences: dict[str, list[tuple[str, int]]] = {}
    for path, (body, first_line) in selected.items():
        for text, line in _paragraphs(body, first_line):
            if _TEMPLATE.search(text):
                continue
            digest = paragraph_digest(text)
            texts[digest] = text
            occurrences.setdefault(digest, []).append((path, line))
    for path, found in others.items():
        if path in selected:
            continue
        for digest, line, has_template in found:
            if digest in texts and not has_template:
                occurrences[digest].append((path, line))
    passages = []
    for digest, places in occurrences.items():
        if len({path for path, _ in places}) < 2:
            continue
        text = texts[digest]
        tokens = tokenizer.count(text)
        if tokens >= min_tokens:
            # the named templates' copies first: the finding is reported where the check
            # looked (a finding at another file is not one ``check PATH`` shows)
            ordered = sorted(places, key=lambda place: (place[0] not in selected, place))
            passages.append(Passage(text, tokens, tuple(ordered)))
    return sorted(passages, key=lambda p: (-p.tokens, p.locations))


def _paragraphs(body: str, first_line: int) -> list[tuple[str, int]]:
    found = []
    block: list[str] = []
    start = first_line
    for offset, line in enumerate(body.split("\n")):
        if _BOUNDARY.match(line):
            if block:
                found.append((_SPACES.sub(" ", " ".join(block)).strip(), start))
                block = []
        elif line.strip():
            if not block:
                start = first_line + offset
            block.append(line)
        elif block:
            found.append((_SPACES.sub(" ", " ".join(block)).strip(), start))
            block = []
    if block:
        found.append((_SPACES.sub(" ", " ".join(block)).strip(), start))
    return found
