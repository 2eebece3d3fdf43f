"""passagememo.py: a template is parsed again only when its text may hold one of the named
files' paragraphs, and that test never misses one."""

from __future__ import annotations

import pytest

from promptbudget import passagememo, textscan
from promptbudget.compression import passages
from promptbudget.compression.passages import _paragraphs, paragraph_digest
from promptbudget.templates.source import decode_prompt_bytes


def test_whitespace_is_collapsed_as_paragraphs_collapse_it() -> None:
    assert textscan._SPACES.pattern == passages._SPACES.pattern


@pytest.mark.parametrize(
    "data",
    [
        b"---\nmodel: x\n---\nsystem:\nFirst  line\n   of one\tparagraph.\n\nuser:\n{{ q }}\n",
        b"Windows\r\nline ends\r\n\r\nand old Mac\rline ends\r",
        b"\xef\xbb\xbfA BOM, then\na paragraph.\n## A heading\nright after it\n",
        "Unicode\u00a0spaces\u2028and a line\u2029separator\n\n  indented\n".encode(),
        b"invalid \xff bytes\nin a paragraph\n\nand \xfe another\n",
    ],
)
def test_every_paragraph_is_found_in_the_collapsed_text(data: bytes) -> None:
    text = decode_prompt_bytes(data).text
    found = _paragraphs(text, 1)
    assert found
    for paragraph, _ in found:
        assert passagememo._may_hold(data, {paragraph_digest(paragraph): paragraph})
    assert not passagememo._may_hold(data, {"x": "a paragraph nowhere in it"})


@pytest.mark.parametrize(
    "text",
    [
        '{% include "a.j2" %}',
        '{%- include "a.j2" -%}',
        '{%+ import "m.j2" as m %}',
        '{%\n  from "m.j2" import x %}',
        '{% extends "base.j2" %}',
        "{% include name_in_a_variable %}",
        "{{> header}}",
        "{{~> header}}",
        "{{#> layout}}body{{/layout}}",
    ],
)
def test_anything_that_may_include_is_seen(text: str) -> None:
    assert not passagememo._includes_nothing("t.j2", f"Intro.\n{text}\nOutro.\n".encode())


@pytest.mark.parametrize(
    "text",
    [
        "Plain text about imports and includes, from here to there.",
        "{{ question }} {% if x %}{{ x }}{% endif %} {{#if y}}{{y}}{{/if}}",
        "{% set include = 1 %}{{ include }} a > b",
    ],
)
def test_what_cannot_include_is_known(text: str) -> None:
    assert passagememo._includes_nothing("t.j2", text.encode())
