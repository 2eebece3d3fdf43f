"""Questions about a template answered from its decoded text, without parsing it: whether
it can include anything, and whether it can hold one of some paragraphs. Each answer "no" is
exact for a file whose bodies are slices of its text (every format but YAML and JSON data
prompts, whose strings may be escaped: ``"\\u007b% include"``); "maybe" sends the file to the
parser. Used where a run would otherwise parse every template of the repository: ``check
PATH``'s PB204 fingerprints and include graph (``fingerprints.py``, ``project.py``) and the
run memo (``passagememo.py``)."""

from __future__ import annotations

import re
from collections.abc import Iterable

# How compression/passages.py collapses the whitespace of a paragraph (its ``_SPACES``).
_SPACES = re.compile(r"\s+")
# A Jinja2 statement that names another template ("{%", an optional whitespace control
# sign, any blanks, newlines too, the keyword), or a Handlebars partial tag ("{{", an
# optional "~", then ">" or the unsupported partial block "#>"; blanks allowed to be safe).
_INCLUDING = re.compile(r"\{%[-+]?\s*(?:include|import|from|extends)\b|\{\{~?\s*#?\s*>")


def includes_nothing(text: str) -> bool:
    """Whether a template of this text surely includes, imports and extends nothing: it holds
    no Jinja2 statement that could (``{% include``, ``import``, ``from``, ``extends``: what
    ``TemplateRenderer.include_names`` reads in a Jinja2 template) and no Handlebars partial
    tag (``{{> name}}``: what it reads in a Dotprompt file)."""
    return _INCLUDING.search(text) is None


# How many of a paragraph's words a text is searched for before its whitespace is collapsed
# (the longest ones: the rarest, most often)
_WORDS = 6


class Paragraphs:
    """Paragraphs (as ``compression/passages.py`` makes them: lines joined, whitespace
    collapsed) to look for in many texts."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.texts = tuple(texts)
        self._words = [
            sorted(set(text.split(" ")), key=len, reverse=True)[:_WORDS] for text in self.texts
        ]

    def may_be_in(self, text: str) -> bool:
        """Whether a template of this text may hold one of the paragraphs: each is a
        substring of the text with its whitespace collapsed, whatever the format makes of its
        lines. Its longest words are looked for first: each is in the text as it is (nothing
        but whitespace changes when lines are joined), and most texts lack one of them."""
        candidates = [
            paragraph
            for paragraph, words in zip(self.texts, self._words, strict=True)
            if all(word in text for word in words)
        ]
        if not candidates:
            return False
        flat = _SPACES.sub(" ", text)
        return any(paragraph in flat for paragraph in candidates)
