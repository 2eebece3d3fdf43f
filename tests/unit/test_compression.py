"""Compression passes: what each one does, and the invariants every pass keeps on every
corpus file and on generated text (hypothesis)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from jinja2 import meta
from jinja2.exceptions import TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from conftest import CORPUS
from promptbudget.compression import (
    LOSSY_PASSES,
    PASSES,
    SAFE_PASSES,
    PassOptions,
    compress_text,
)
from promptbudget.compression.json_blocks import minify_json_text
from promptbudget.compression.rewrite import split_head
from promptbudget.templates.source import TemplateFormat, detect_format, read_prompt_text
from promptbudget.tokenizers import get_tokenizer

O200K = get_tokenizer("o200k_base")
ENV = ImmutableSandboxedEnvironment()


def run(text: str, *names: str, keep: int = 2) -> str:
    return compress_text(text, names, O200K, PassOptions(keep_examples=keep)).text


# -- what each pass does --------------------------------------------------------------------


def test_whitespace() -> None:
    text = "Answer   the  question.   \n\n\n\nBe brief.\t\n    Indented  line.\n"
    assert run(text, "whitespace") == "Answer the question.\n\nBe brief.\n    Indented line.\n"


def test_markdown_decoration() -> None:
    text = "## Steps ##\n\n------------\n**Example 1**\n***\nKeep **this** emphasis.\n---\n"
    assert run(text, "markdown") == "## Steps\n\nExample 1\nKeep **this** emphasis.\n---\n"


def test_json_fences_are_minified_lexically() -> None:
    text = 'Reply like this:\n```json\n{\n  "score": 1.50,\n  "tags": [ "a b", "c" ]\n}\n```\n'
    assert (
        run(text, "json") == 'Reply like this:\n```json\n{"score":1.50,"tags":["a b","c"]}\n```\n'
    )
    assert minify_json_text('{ "a" : "x \\" y" }') == '{"a":"x \\" y"}'


def test_json_with_template_syntax_or_invalid_json_is_kept() -> None:
    templated = '```json\n{ "name": "{{ name }}" }\n```\n'
    assert run(templated, "json") == templated
    invalid = "```json\n{ not: json }\n```\n"
    assert run(invalid, "json") == invalid


def test_duplicates_drop_exact_adjacent_repeats_only() -> None:
    paragraph = "Always answer in English and keep the answer under one hundred words."
    line = "Cite every source you use."
    text = f"Rules:\n{line}\n{line}\n\n{paragraph}\n\n{paragraph}\n\nOther.\n\n{paragraph}\n"
    assert (
        run(text, "duplicates")
        == f"Rules:\n{line}\n\n{paragraph}\n\nOther.\n\n{paragraph}\n"  # a later copy stays
    )
    assert run(text, "paragraphs") == f"Rules:\n{line}\n{line}\n\n{paragraph}\n\nOther.\n"


def test_the_adjacent_repeat_check_can_fail() -> None:
    def words(text: str) -> list[str]:
        return re.findall(r"\w+", text)

    assert _kept_but_adjacent_repeats(words("a b c\na b c\nd"), words("a b c\nd"))
    assert _kept_but_adjacent_repeats(words("a b c\nx\na b c"), words("a b c\nx")) is False
    assert _kept_but_adjacent_repeats(words("keep the number 7"), words("keep the number")) is False


def test_duplicates_keep_list_items_of_an_output_format() -> None:
    # A reading plan whose format shows three entries per phase: the model is told "three".
    text = "Phase 1:\n- Next entry\n- Next entry\n- Next entry\n| a | b |\n| a | b |\n"
    assert run(text, *SAFE_PASSES) == text


def test_duplicates_keep_short_labels_and_template_lines() -> None:
    text = "Input:\nOutput:\nInput:\nOutput:\n{{ x }}\n{{ x }}\n"
    assert run(text, "duplicates") == text


def test_duplicates_are_per_message() -> None:
    paragraph = "Answer only from the articles given below and nothing else at all."
    text = f"system:\n{paragraph}\nuser:\n{paragraph}\n"
    assert run(text, "duplicates") == text


def test_filler() -> None:
    text = "Please note that the order ships tomorrow. In order to help, be sure to ask.\n"
    assert run(text, "filler") == "The order ships tomorrow. To help, ask.\n"


def test_stopwords() -> None:
    text = "The user asks a question about an order. Choose option A or a) or The 3 items.\n"
    assert (
        run(text, "stopwords")
        == "User asks question about order. Choose option A or a) or The 3 items.\n"
    )


def test_examples_keep_the_first_n() -> None:
    text = (
        "Classify.\n## Example 1\nin: a\nout: x\n## Example 2\nin: b\nout: y\n"
        "## Example 3\nin: c\nout: z\n## Your turn\n{{ input }}\n"
    )
    kept = run(text, "examples", keep=1)
    assert kept == "Classify.\n## Example 1\nin: a\nout: x\n## Your turn\n{{ input }}\n"


def test_indentation() -> None:
    text = (
        "{% for m in history %}\n    {{ m.role }}: {{ m.text }}\n    Be kind.\n  - item\n"
        "{% endfor %}\n"
    )
    assert run(text, "indentation") == (
        "{% for m in history %}\n{{ m.role }}: {{ m.text }}\nBe kind.\n  - item\n{% endfor %}\n"
    )


def test_protected_spans_are_untouched() -> None:
    text = (
        'Say "hello   there"  to {{  user.name  }} at https://example.com/a  b and `x  y`.\n'
        "```\ncode    with   spaces\n\n\n\n```\n"
    )
    assert run(text, *SAFE_PASSES, *LOSSY_PASSES).count('"hello   there"') == 1
    out = run(text, *SAFE_PASSES)
    assert "{{  user.name  }}" in out and "`x  y`" in out and "code    with   spaces\n\n\n\n" in out


def test_savings_per_pass_add_up() -> None:
    text = "A  b.   \n\n\n\n----\n" * 5
    result = compress_text(text, SAFE_PASSES, O200K)
    assert result.tokens_saved == sum(p.tokens_saved for p in result.passes) > 0


# -- invariants -----------------------------------------------------------------------------

TEMPLATE_SYNTAX = re.compile(r"\{\{\{.*?\}\}\}|\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
NUMBER = re.compile(r"\d+(?:\.\d+)?")
URL = re.compile(r"(?:https?|ftp)://[^\s<>\"')\]]+|www\.[^\s<>\"')\]]+")
FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[^\n]*\n.*?^[ \t]*\1[ \t]*$", re.S | re.M)


def jinja_variables(text: str) -> set[str] | None:
    try:
        return set(meta.find_undeclared_variables(ENV.parse(text)))
    except TemplateSyntaxError:
        return None


def check_invariants(original: str, compressed: str, names: tuple[str, ...]) -> None:
    # Template syntax: every expression, tag and comment, the same number of times.
    assert Counter(TEMPLATE_SYNTAX.findall(original)) == Counter(
        TEMPLATE_SYNTAX.findall(compressed)
    )
    # Still parses, with the same variables.
    before = jinja_variables(original)
    if before is not None:
        assert jinja_variables(compressed) == before
    trims = "examples" in names
    for pattern in (NUMBER, URL):
        old, new = set(pattern.findall(original)), set(pattern.findall(compressed))
        assert new <= old if trims else new == old, (pattern.pattern, old ^ new)
    # Code blocks survive (JSON ones may be minified).
    for block in FENCE.finditer(original):
        body = block.group(0)
        assert body in compressed or "json" in names or trims, body


CORPUS_TEMPLATES = sorted(
    path
    for path in CORPUS.rglob("*")
    if path.is_file()
    and path.name not in {"README.md", "SOURCES.md"}
    and detect_format(path) is not TemplateFormat.TEXT
)
PASS_SETS = [(name,) for name in PASSES] + [SAFE_PASSES, SAFE_PASSES + LOSSY_PASSES]


@pytest.mark.parametrize(
    "names", PASS_SETS, ids=["+".join(n) if len(n) < 3 else f"{len(n)} passes" for n in PASS_SETS]
)
def test_every_pass_keeps_the_invariants_on_the_corpus(names: tuple[str, ...]) -> None:
    assert len(CORPUS_TEMPLATES) > 80
    for path in CORPUS_TEMPLATES:
        text = read_prompt_text(path).text
        head, body = split_head(text, detect_format(path))
        once = compress_text(body, names, O200K).text
        check_invariants(body, once, names)
        assert compress_text(once, names, O200K).text == once, f"not idempotent on {path}"
        assert head + once == head + once  # the front matter is never handed to a pass


# -- generated text -------------------------------------------------------------------------

WORDS = st.sampled_from(
    [
        "the",
        "a",
        "an",
        "answer",
        "please",
        "note",
        "that",
        "in",
        "order",
        "to",
        "Example",
        "**bold**",
        "##",
        "-",
        "*",
        "1.",
        "2)",
        "user:",
        "system:",
        "Output:",
        "  ",
        "\t",
        "é",
        "—",
    ]
)
PIECES = st.one_of(
    WORDS,
    st.integers(0, 10_000).map(str),
    st.sampled_from(["https://example.com/x?y=1", "www.acme.io/docs"]),
    st.sampled_from(
        [
            "{{ name }}",
            "{{ item.text | upper }}",
            "{% if x %}",
            "{% endif %}",
            "{# note #}",
            '"quoted  text"',
            "`co  de`",
            "<context>",
        ]
    ),
    st.sampled_from(["\n", "\n\n", "\n\n\n\n", "----\n", "***\n", "## Example 2\n"]),
    st.sampled_from(['```json\n{ "a": [1, 2.50] }\n```\n', "```\nkeep   this\n```\n"]),
)
TEXTS = st.lists(PIECES, max_size=60).map(" ".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS, names=st.sampled_from(PASS_SETS))
def test_generated_text_keeps_the_invariants(text: str, names: tuple[str, ...]) -> None:
    once = compress_text(text, names, O200K).text
    check_invariants(text, once, names)
    assert compress_text(once, names, O200K).text == once


def _kept_but_adjacent_repeats(original: list[str], result: list[str]) -> bool | None:
    """Whether ``result`` is ``original`` after zero or more steps, each removing a run of
    words that is an exact copy of the words right before it in the text as it is then (a
    line repeated inside a paragraph goes first, and the paragraph may then repeat the one
    before it). A search over the texts reachable so (each must still hold ``result`` as a
    subsequence); None when it would visit more than ``_SEARCHED`` of them."""
    if _removed_copies_of_the_original(original, result):
        return True  # most often: each removed run a copy of the words before it as written
    target = tuple(result)
    seen: set[tuple[str, ...]] = set()
    pending = [tuple(original)]
    while pending:
        words = pending.pop()
        if words == target:
            return True
        if words in seen or not _is_subsequence(target, words):
            continue
        seen.add(words)
        if len(seen) > _SEARCHED:
            return None
        pending.extend(
            words[:start] + words[start + size :]
            for start in range(1, len(words))
            for size in range(1, min(start, len(words) - start) + 1)
            if words[start : start + size] == words[start - size : start]
        )
    return False


_SEARCHED = 5_000


def _removed_copies_of_the_original(original: list[str], result: list[str]) -> bool:
    """``result`` is ``original`` with runs removed, each an exact copy of the words right
    before it in ``original`` (dynamic programming over both word lists)."""
    reachable = {(0, 0)}
    frontier = [(0, 0)]
    while frontier:
        i, j = frontier.pop()
        if i == len(original):
            if j == len(result):
                return True
            continue
        steps = []
        if j < len(result) and original[i] == result[j]:
            steps.append((i + 1, j + 1))
        steps.extend(
            (i + k, j) for k in range(1, i + 1) if original[i : i + k] == original[i - k : i]
        )
        for step in steps:
            if step not in reachable:
                reachable.add(step)
                frontier.append(step)
    return False


def _is_subsequence(short: tuple[str, ...], long: tuple[str, ...]) -> bool:
    remaining = iter(long)
    return all(word in remaining for word in short)


SAFE_LINES = st.sampled_from(
    [
        "Answer the question using only the context below.",
        "Answer the question using only the context below.",
        "Keep **this** short and cite the source.",
        "- Next entry",
        "| col | col |",
        "## Example ##",
        "----",
        "",
        "",
        "Output: 42",
        "Worked example: 3 apples plus 4 apples make 7 apples in total.",
        '```json\n{ "answer": "...", "score": 1 }\n```',
        "   trailing spaces   ",
        "system:",
        "user:",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=st.lists(SAFE_LINES, max_size=40), name=st.sampled_from(SAFE_PASSES))
@example(  # the repeated line goes, then the paragraph repeats the one before it
    lines=[
        "Answer the question using only the context below.",
        "Keep **this** short and cite the source.",
        "",
        "Answer the question using only the context below.",
        "Answer the question using only the context below.",
        "Keep **this** short and cite the source.",
    ],
    name="duplicates",
)
def test_a_safe_pass_keeps_every_word_but_exact_adjacent_repeats(
    lines: list[str], name: str
) -> None:
    text = "\n".join(lines) + "\n"
    once = compress_text(text, (name,), O200K).text
    original, result = re.findall(r"\w+", text), re.findall(r"\w+", once)
    kept = _kept_but_adjacent_repeats(original, result)
    assume(kept is not None)  # too many repeats to search: another example
    assert kept, (name, text, once)


def test_front_matter_is_split_off() -> None:
    head, body = split_head("---\nmodel: x\n---\nbody\n", TemplateFormat.PROMPTY)
    assert (head, body) == ("---\nmodel: x\n---\n", "body\n")
    head, body = split_head("# comment\n---\nmodel: x\n---\nbody\n", TemplateFormat.DOTPROMPT)
    assert head.endswith("---\n") and body == "body\n"
    rule = "---\nJust a rule.\n---\ntext\n"
    assert split_head(rule, TemplateFormat.JINJA2) == ("", rule)


def test_corpus_fixture_exists() -> None:
    assert Path(CORPUS).is_dir()


def test_passages_from_fingerprints_are_the_passages_touching_the_selection() -> None:
    """check PATH compares the named bodies with the other templates' fingerprints: the same
    passages as comparing every body, less those the named files do not hold."""
    from promptbudget.compression.passages import (
        find_passages,
        find_passages_touching,
        fingerprints,
    )
    from promptbudget.tokenizers import get_tokenizer

    policy = " ".join(["Refunds are issued within thirty days of purchase."] * 6)
    other = " ".join(["Escalate legal threats to a human agent at once."] * 6)
    bodies = {
        "a.j2": (f"Intro.\n\n{policy}\n\n{{{{ question }}}}\n", 1),
        "b.j2": (f"{other}\n\n{policy}\n", 3),
        "c.j2": (f"{other}\n", 1),
        "d.j2": (f"{{{{ x }}}} {policy}\n", 1),  # holds template syntax: never a passage
    }
    tokenizer = get_tokenizer("o200k_base")
    everything = find_passages(bodies, tokenizer, 20)
    assert {p.text[:20] for p in everything} == {policy[:20], other[:20]}
    prints = {path: fingerprints(body, line) for path, (body, line) in bodies.items()}
    for selected in (["a.j2"], ["c.j2"], ["a.j2", "b.j2"], ["d.j2"]):
        touching = find_passages_touching(
            {path: bodies[path] for path in selected}, prints, tokenizer, 20
        )
        expected = [p for p in everything if set(p.paths) & set(selected)]

        def unordered(passages: list[Any]) -> list[Any]:
            return sorted((p.text, p.tokens, sorted(p.locations)) for p in passages)

        assert unordered(touching) == unordered(expected)
        for passage in touching:  # the named copies first: where check PATH reports it
            named = [path in selected for path, _ in passage.locations]
            assert named == sorted(named, reverse=True), passage.locations
