"""``stopwords`` (lossy, opt-in): the articles "the", "a" and "an".

Models read instructions without them ("Summarize text in five bullets"). A letter used as a
label ("option A", "A)", "a.") is kept: only an article followed by a lowercase word goes,
and a capitalised one only at the start of a sentence.
"""

from __future__ import annotations

import re

from promptbudget.compression.sentences import starts_sentence

_ARTICLE = re.compile(r"(?<![\w'-])(the|a|an)[ \t]+(?=[a-z])", re.IGNORECASE)


def remove_articles(text: str) -> str:
    out: list[str] = []
    position = 0
    for match in _ARTICLE.finditer(text):
        capital = match.group(1)[0].isupper()
        if capital and not starts_sentence(text, match.start()):
            continue  # "option A or B": a capital letter inside a sentence is a label
        out.append(text[position : match.start()])
        position = match.end()
        if capital:
            out.append(text[position].upper())
            position += 1
    out.append(text[position:])
    return "".join(out)
