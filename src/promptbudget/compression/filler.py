"""``filler`` (lossy, opt-in): phrases that add tokens and no instruction.

"Please note that X" says X; "in order to" says "to". Each phrase is replaced only as whole
words in editable text; a sentence that started with a removed phrase gets its capital back.
"""

from __future__ import annotations

import re

from promptbudget.compression.sentences import starts_sentence

# (phrase, replacement), longest first so that "it is important to note that" wins over
# "it is important to".
FILLER: tuple[tuple[str, str], ...] = (
    ("it is important to note that", ""),
    ("it is worth noting that", ""),
    ("please note that", ""),
    ("please be aware that", ""),
    ("keep in mind that", ""),
    ("it is important that you", "you"),
    ("it is important to", ""),
    ("it is essential to", ""),
    ("it is crucial to", ""),
    ("make sure that you", ""),
    ("make sure that", "ensure"),
    ("make sure to", ""),
    ("be sure to", ""),
    ("due to the fact that", "because"),
    ("at this point in time", "now"),
    ("for the purpose of", "for"),
    ("in the event that", "if"),
    ("with regard to", "about"),
    ("in order to", "to"),
    ("a large number of", "many"),
    ("the majority of", "most"),
    ("has the ability to", "can"),
    ("is able to", "can"),
    ("are able to", "can"),
    ("note that", ""),
    ("basically", ""),
    ("actually", ""),
    ("essentially", ""),
    ("kindly", ""),
    ("please", ""),
)

_PATTERN = re.compile(
    r"(?<![\w'-])(" + "|".join(re.escape(p) for p, _ in FILLER) + r")(?![\w'-])[ \t]*",
    re.IGNORECASE,
)
_REPLACEMENT = dict(FILLER)


def remove_filler(text: str) -> str:
    out: list[str] = []
    position = 0
    for match in _PATTERN.finditer(text):
        out.append(text[position : match.start()])
        phrase = match.group(1)
        replacement = _REPLACEMENT[phrase.lower()]
        capital = phrase[0].isupper() and starts_sentence(text, match.start())
        if replacement:
            piece = replacement[0].upper() + replacement[1:] if capital else replacement
            out.append(piece + " ")
        elif capital:
            rest = text[match.end() : match.end() + 1]
            if rest.islower():
                out.append(rest.upper())
                position = match.end() + 1
                continue
        position = match.end()
    out.append(text[position:])
    return "".join(out)
