"""textscan.py: what a check learns of a template from its text without parsing it. Each
"no" must be exact (a paragraph missed, or an include missed, changes a report), so each is
checked against what the parsers find, on adversarial whitespace and syntax."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jinja2 import Environment, TemplateSyntaxError, meta

from promptbudget.compression.passages import _paragraphs, candidate_digests, passage_parts
from promptbudget.compression.rewrite import split_head
from promptbudget.templates.parse import parse_template, variants_of
from promptbudget.templates.render import TemplateRenderer
from promptbudget.templates.source import TemplateFormat, decode_prompt_bytes, detect_format
from promptbudget.textscan import (
    MAX_CANDIDATES,
    Paragraphs,
    include_statements,
    includes_nothing,
)

# Every kind of whitespace a paragraph's lines may hold: what str.split, the regex ``\s`` and
# str.splitlines disagree on is where a scan would go wrong.
_BLANKS = [" ", "  ", "\t", "\u00a0", "\x0b", "\x0c", "\x1c", "\x1f", "\u2003", "\u2028", "\x85"]
_WORDS = ["a", "bb", "policy", "refund", "Ünïcödé", "x-y", "{{", "}}", "#", "##", "-", ".", "é"]

_FILLER = [f"unrelated filler paragraph number {index}" for index in range(20)]
line = st.lists(st.sampled_from(_WORDS + _BLANKS), max_size=8).map("".join)
heads = st.sampled_from(["", "---\nmodel: x\n---\n", "# a comment\n---\na: 1\n---\n"])


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(heads, st.lists(line, min_size=1, max_size=12), st.lists(line, max_size=6))
def test_a_text_holding_a_paragraph_is_never_passed_over(
    head: str, lines: list[str], before: list[str]
) -> None:
    body = "\n".join(lines)
    text = head + "\n".join(before) + ("\n" if before else "") + body
    _, parsed_body = split_head(text, TemplateFormat.JINJA2)
    found = [paragraph for paragraph, _ in _paragraphs(parsed_body, 1)]
    for paragraph in found:
        assert Paragraphs([paragraph]).may_be_in(text), (paragraph, text)
        # past a few paragraphs the text's words are indexed instead: the same answer
        assert Paragraphs([*_FILLER, paragraph]).may_be_in(text), (paragraph, text)
    # and every paragraph of one text is seen in another that pastes it, re-wrapped
    for paragraph in found:
        rewrapped = "Intro.\n\n" + paragraph.replace(" ", "\n\t ") + "\n"
        assert Paragraphs(["unrelated words here", paragraph]).may_be_in(rewrapped)


def test_a_text_missing_a_paragraph_is_passed_over() -> None:
    sought = Paragraphs(["Refunds are issued within 30 days of purchase."])
    assert not sought.may_be_in("Refunds are issued\nwithin 14 days of purchase.\n")
    assert not sought.may_be_in("purchase. days 30 of within issued are Refunds\n")
    assert sought.may_be_in("Intro.\n\nRefunds  are issued\n\twithin 30\u00a0days of purchase.\n")
    assert not Paragraphs([]).may_be_in("anything")


_STATEMENTS = [
    '{% include "a.j2" %}',
    "{%- include 'a.j2' -%}",
    '{%+ import "m.j2" as m %}',
    '{%\n from "m.j2" import x %}',
    '{% extends "base.j2" %}',
    '{% include ["a.j2", "b.j2"] %}',
    '{%include"a.j2"%}',
    "{% if x %}",
    "{% endif %}",
    "{{ include }}",
    "{% set include = 1 %}",
    "{# {% include 'c.j2' %} #}",
    "{% raw %}{% include 'r.j2' %}{% endraw %}",
    "include extends import from",
    "text",
    "\n",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_STATEMENTS), max_size=8))
def test_a_template_that_includes_anything_is_never_said_to_include_nothing(
    parts: list[str],
) -> None:
    text = " ".join(parts)
    try:
        names = list(meta.find_referenced_templates(Environment().parse(text)))
    except TemplateSyntaxError:
        return  # a template that does not parse includes nothing (render.py)
    if names:
        assert not includes_nothing(text), text


_INCLUDING = [
    *_STATEMENTS,
    '{% include "a.j2" if x else "b.j2" %}',
    "{% include x %}",
    '{% include "a%}b.j2" %}',
    '{% include "c.j2" ~ "%}" %}',
    "{% set s = \"{% include 'q.j2' %}\" %}",
    "{{ \"{% include 'v.j2' %}\" }}",
    '{% include "u.j2"',
    '{% from "m.j2" import y with context %}',
    '{% include "a.j2" ignore missing without context %}',
    '{% macro m() %}{% include "mm.j2" %}{% endmacro %}',
    "{% call m() %}{% extends 'e.j2' %}{% endcall %}",
    '{% include "p\\x2ej2" %}',
    "%}",
    "{%",
]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(_INCLUDING), max_size=8), st.sampled_from(["", " ", "\n"]))
def test_include_statements_parsed_alone_name_every_file_the_parse_finds(
    parts: list[str], joint: str
) -> None:
    """``affected.may_reach``'s "no" rests on this: the names a template's include statements
    give, each parsed alone, hold every name the whole template's parse finds (the parse's
    own method, in promptbudget's bounded environment); or the statements say they cannot
    tell (None)."""
    text = joint.join(parts)
    renderer = TemplateRenderer(Path("/nonexistent-root"))
    path = Path("/nonexistent-root/t.j2")
    exact = renderer._referenced_names(text, (path.parent,))
    statements = include_statements(text)
    if statements is None:
        return
    alone = renderer.statement_names(statements)
    if alone is not None:
        assert set(exact) <= set(alone), (text, exact, alone)


def test_include_statements_cannot_always_tell() -> None:
    assert include_statements('{% include "a.j2"') is None  # no end: the parser decides
    renderer = TemplateRenderer(Path("/r"))
    # a string in the statement holds "%}": cut there, it does not parse alone
    assert renderer.statement_names(['{% include "a%}']) is None
    assert include_statements("{# {% include 'c.j2' %} #} {% include 'd.j2' -%}") == [
        "{% include 'c.j2' %}",
        "{% include 'd.j2' -%}",
    ]
    named = renderer.statement_names(["{% include 'c.j2' %}", "{% from 'm' import x %}"])
    assert named == ["c.j2", "m"]


_FRONTS = ["", "---\nmodel: x\n---\n", "---\nnot yaml\n---\n", "# c\n---\na: 1\n...\n", "---\n"]
_NAMES = ["t.j2", "t.md", "t.txt", "t.prompty", "t.prompt", "skprompt.txt", "t.yaml"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(_FRONTS),
    st.lists(st.one_of(line, st.sampled_from(["system:", "user:", "## Part", "---"])), max_size=12),
    st.sampled_from(_NAMES),
    st.sampled_from([None, "jinja2", "semantic-kernel", "handlebars", "none"]),
)
def test_the_candidate_digests_hold_every_fingerprint_the_parse_finds(
    front: str, lines: list[str], name: str, engine: str | None
) -> None:
    text = front + "\n".join(lines) + "\n"
    path = Path("/project/prompts") / name
    read = decode_prompt_bytes(text.encode())
    parsed = parse_template(path, f"prompts/{name}", detect_format(path), read, engine=engine)
    found = {
        digest
        for prints in passage_parts(variants_of(parsed)).values()
        for digest, _, has_syntax in prints
        if not has_syntax
    }
    assert found <= candidate_digests(read.text, detect_format(path))


def test_many_paragraphs_sharing_their_words_are_left_to_the_parser() -> None:
    """A hostile named file of thousands of paragraphs made of the same long words: a text
    holding those words may hold any of them, and checking each against the text would cost
    the paragraphs times the text; past ``MAX_CANDIDATES`` (or ``MAX_CHECKS``) the text is said
    to maybe hold one (the parser decides, in time linear in the file)."""
    common = "extraordinarily longwindedness notwithstanding nevertheless furthermore likewise"
    few = Paragraphs([f"{common} {index}" for index in range(MAX_CANDIDATES)])
    many = Paragraphs([f"{common} {index}" for index in range(5_000)])
    text = f"{common} x\n" * 3  # every long word, none of the paragraphs
    some = Paragraphs([f"{common} {index}" for index in range(MAX_CANDIDATES + 8)])
    assert not few.may_be_in(text)
    assert some.may_be_in(text)  # more than MAX_CANDIDATES hold every long word
    assert many.may_be_in(text)  # more than MAX_CHECKS to check
    assert not many.may_be_in("unrelated text\n")
