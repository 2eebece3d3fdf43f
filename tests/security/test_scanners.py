"""Linear scanners: suppression comments and Semantic Kernel ``<message>`` tags over files of
unclosed openers (issue 11 item 10). The big cases run in a child process under a timeout:
the quadratic scanners took hours on a 2 MB file."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promptbudget.scanning import LineIndex, iter_delimited
from promptbudget.suppressions import scan
from promptbudget.templates.semantic_kernel import split_messages
from security.bounded_run import RunBounded

MakeProject = Callable[..., Path]

MANIFEST = "version: 1\nprompts: prompts/\ndefaults:\n  model: gpt-4.1-mini\n"
SIZE = 400_000  # the quadratic scanners took minutes at this size, the linear ones a second


@pytest.mark.parametrize(
    ("name", "unit"),
    [
        ("html.j2", "<!--"),
        ("jinja.j2", "{#"),
        ("bars.prompt", "{{!"),
        ("bars-long.prompt", "{{!--}}"),
        ("skprompt.txt", '<message role="user">'),
        ("skprompt.txt", '<message role="user"'),
    ],
)
def test_two_megabytes_of_unclosed_openers(
    name: str, unit: str, run_bounded: RunBounded, make_project: MakeProject
) -> None:
    body = unit * (SIZE // len(unit))
    if name.endswith(".prompt"):
        body = "---\nmodel: gpt-4.1-mini\n---\n" + body
    path = f"prompts/{'Chat/' if name == 'skprompt.txt' else ''}{name}"
    root = make_project({"budgets.yaml": MANIFEST, path: body}, dedent=False)
    run = run_bounded("check", "--format", "json", cwd=root, timeout=60)
    run.assert_clean()


_TEXT = st.text(alphabet="<!-{}#>x\n ", max_size=60)


@given(_TEXT)
@settings(max_examples=300, deadline=None)
def test_delimited_spans_match_the_lazy_regex(text: str) -> None:
    for opener, closer in [("<!--", "-->"), ("{#", "#}")]:
        pattern = re.compile(re.escape(opener) + "(.*?)" + re.escape(closer), re.DOTALL)
        expected = [(m.start(), m.start(1), m.end(1)) for m in pattern.finditer(text)]
        assert list(iter_delimited(text, opener, closer)) == expected


@given(st.text(alphabet="{}!-x\n ", max_size=60))
@settings(max_examples=300, deadline=None)
def test_handlebars_comments_match_the_regex(text: str) -> None:
    pattern = re.compile(r"\{\{!--(.*?)--\}\}|\{\{!(.*?)\}\}", re.DOTALL)
    index = LineIndex(text)
    expected = []
    for m in pattern.finditer(text):
        body = next((g for g in m.groups() if g is not None), "")
        expected.append((body, index.line_of(m.start()), index.line_of(m.end() - 1)))
    text_with_directives = text
    found = scan(text_with_directives, "x", engine="handlebars", yaml_lines=None, resolve=str)
    # scan only keeps comments holding a directive; compare the comment scanner itself
    from promptbudget.suppressions import _comments, _handlebars_comments  # noqa: F401

    assert list(_comments(text, [("{{!", "}}")])) == expected
    assert found == []


@given(st.text(alphabet='<>/message rol="uAn=\n', max_size=80))
@settings(max_examples=300, deadline=None)
def test_sk_messages_match_the_regex(text: str) -> None:
    pattern = re.compile(
        r"<message(?P<before>\s[^>]*?)?\s+role\s*=\s*[\"'](?P<role>[A-Za-z_]+)[\"']"
        r"(?P<after>[^>]*)>(?P<content>.*?)</message>",
        re.DOTALL,
    )
    name_attribute = re.compile(r"""\bname\s*=\s*(?:"([^"]*)"|'([^']*)')""")
    expected = []
    for m in pattern.finditer(text):
        name = name_attribute.search((m.group("before") or "") + m.group("after"))
        expected.append(
            (
                m.group("role").lower(),
                m.group("content"),
                (name.group(1) or name.group(2) or None) if name else None,
            )
        )
    assert split_messages(text) == (expected or None)


def test_line_index() -> None:
    index = LineIndex("a\nbc\n\nd")
    assert [index.line_of(i) for i in range(7)] == [1, 1, 2, 2, 2, 3, 4]


@given(st.text(alphabet="{}/*- x\n", max_size=60))
@settings(max_examples=300, deadline=None)
def test_go_comments_match_the_regex(text: str) -> None:
    from promptbudget.suppressions import _GO_COMMENT, _comments

    pattern = re.compile(r"\{\{-?\s*/\*(.*?)\*/\s*-?\}\}", re.DOTALL)
    index = LineIndex(text)
    expected = [
        (m.group(1), index.line_of(m.start()), index.line_of(m.end() - 1))
        for m in pattern.finditer(text)
    ]
    assert list(_comments(text, [_GO_COMMENT])) == expected


@pytest.mark.parametrize("end", ["", "%}"])
def test_a_workflow_template_of_unclosed_include_statements(
    end: str, run_bounded: RunBounded, make_project: MakeProject
) -> None:
    """``check PATH`` asks each workflow's template whether its include statements may reach
    the named file (``textscan.include_statements``, ``affected.may_reach``): linear in the
    text, and past 64 statements the parser decides."""
    manifest = (
        MANIFEST
        + "workflows:\n  w:\n    steps:\n"
        + "      - {name: a, prompt: big.j2, output_tokens: 10}\n"
        + "      - {name: b, prompt: named.j2, output_tokens: 10}\n"
    )
    body = "{% include 'named.j2' " * (SIZE // 22) + end
    files = {"budgets.yaml": manifest, "prompts/big.j2": body, "prompts/named.j2": "Hello.\n"}
    root = make_project(files, dedent=False)
    run = run_bounded("check", "--format", "json", "--", "prompts/named.j2", cwd=root, timeout=60)
    run.assert_clean()
