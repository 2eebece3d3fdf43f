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


# A Jinja2 statement that may name another template, as ``_INCLUDING`` finds it.
_STATEMENT = re.compile(r"\{%[-+]?\s*(?:include|import|from|extends)\b")


def include_statements(text: str) -> list[str] | None:
    """Each Jinja2 statement of the text that may include, import or extend a template, from
    its ``{%`` to the first ``%}`` after it: every one the parser finds is among them (and
    more: one in a comment, a ``raw`` block or a string), and a statement ends at its first
    ``%}`` unless a string in it holds one, which then fails to parse alone. None: one has no
    end (the parser decides)."""
    found = []
    for match in _STATEMENT.finditer(text):
        end = text.find("%}", match.end())
        if end < 0:
            return None
        found.append(text[match.start() : end + 2])
    return found


# How many of a paragraph's words a text must hold before its whitespace is collapsed (the
# longest ones: the rarest, most often)
_WORDS = 6
# Past this many paragraphs that may be in one text (or past MAX_CHECKS paragraphs whose
# longest word the text holds), the text is said to maybe hold one and the parser decides,
# in time linear in the file: a hostile named file of thousands of paragraphs sharing their
# words costs no more than parsing each other template.
MAX_CANDIDATES = 32
MAX_CHECKS = 256
# Up to this many paragraphs, each word is searched for in the text as it is; past it, the
# text's words are indexed once.
_FEW = 16


class Paragraphs:
    """Paragraphs (as ``compression/passages.py`` makes them: lines joined, whitespace
    collapsed) to look for in many texts, in time linear in each text."""

    def __init__(self, texts: Iterable[str]) -> None:
        self.texts = tuple(texts)
        self._words: list[list[str]] = []
        self._by_longest: dict[str, list[int]] = {}  # a paragraph's longest word -> paragraphs
        for index, text in enumerate(self.texts):
            words = sorted(set(text.split(" ")), key=len, reverse=True)[:_WORDS]
            self._words.append(words)
            self._by_longest.setdefault(words[0], []).append(index)

    def may_be_in(self, text: str) -> bool:
        """Whether a template of this text may hold one of the paragraphs: each is a
        substring of the text with its whitespace collapsed, whatever the format makes of its
        lines. Each of its words is a word of the text as it is (nothing but whitespace
        changes when lines are joined, and ``str.split`` and the regex ``\\s`` agree on what
        whitespace is), so its longest words are looked for first; most texts lack one."""
        if not self.texts:
            return False
        if len(self.texts) <= _FEW:  # a substring search a word: fastest for a few
            candidates = [
                index
                for index, words in enumerate(self._words)
                if all(word in text for word in words)
            ]
        else:  # an index of the text's words: linear in the text, however many paragraphs
            present = set(text.split())
            candidates = []
            checked = 0
            for word in present.intersection(self._by_longest):
                for index in self._by_longest[word]:
                    checked += 1
                    if checked > MAX_CHECKS:  # many paragraphs share the text's words
                        return True
                    if all(other in present for other in self._words[index]):
                        candidates.append(index)
        if len(candidates) > MAX_CANDIDATES:
            return True
        if not candidates:
            return False
        flat = _SPACES.sub(" ", text)
        return any(self.texts[index] in flat for index in candidates)
