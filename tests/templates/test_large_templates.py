"""Templates built to be slow: tens of thousands of variables, lines of blanks thousands long.
Each case runs in well under a second when the scans are linear; a quadratic scan takes
minutes (83 s for 50,000 variables before), which is how these tests fail."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import Run
from promptbudget.compression import PassOptions, compress_text
from promptbudget.templates.parse import MAX_TEMPLATE_TAGS
from promptbudget.tokenizers import get_tokenizer

MINIMAL_BUDGETS = "version: 1\ndefaults: {model: gpt-4.1-mini}\n"


def test_fifty_thousand_distinct_variables_are_pb001_and_counted_as_text(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    body = " ".join(f"{{{{ v{i} }}}}" for i in range(50_000)) + "\n"
    root = make_project({"budgets.yaml": MINIMAL_BUDGETS, "prompts/wide.j2": body})
    result = run_cli("count", "--format", "json", cwd=root)
    (finding,) = [f for f in result.json()["findings"] if f["rule"] == "PB001"]
    assert finding["message"].startswith(
        f"has 50,000 template tags; promptbudget renders templates of at most "
        f"{MAX_TEMPLATE_TAGS:,} (split it into partials)"
    )
    (template,) = result.json()["templates"]
    assert template["text_tokens"] == get_tokenizer("o200k_base").count(body)


def test_a_template_at_the_bound_is_rendered(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    body = " ".join(f"{{{{ v{i} }}}}" for i in range(MAX_TEMPLATE_TAGS)) + "\n"
    root = make_project({"budgets.yaml": MINIMAL_BUDGETS, "prompts/wide.j2": body})
    result = run_cli("count", "--format", "json", cwd=root)
    assert not [f for f in result.json()["findings"] if f["rule"] == "PB001"]
    (template,) = result.json()["templates"]
    assert len(template["variables"]) == MAX_TEMPLATE_TAGS


def test_a_line_of_forty_thousand_blanks_before_a_role_marker(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    """Role lines are matched line by line; ``^\\s*#?\\s*`` was quadratic in the blanks."""
    blanks = " " * 40_000
    body = f"{blanks}\nsystem:\nBe brief.\n{blanks}user\nuser:\nHello {{{{ name }}}}\n"
    root = make_project({"budgets.yaml": MINIMAL_BUDGETS, "prompts/chat.j2": body})
    result = run_cli("count", "--format", "json", cwd=root)
    (template,) = result.json()["templates"]
    assert [m["role"] for m in template["messages"]] == ["system", "user"]


def test_compressing_lines_of_forty_thousand_blanks() -> None:
    """``[ \t]+$`` (trailing blanks) and the closing hashes of a heading were quadratic in a
    run of blanks that does not end the line."""
    blanks = " " * 40_000
    text = f"Intro.\n{blanks}x  \n# Title{blanks}more ##\n## a{blanks}b\n"
    passes = ["whitespace", "markdown"]
    result = compress_text(text, passes, get_tokenizer("o200k_base"), PassOptions())
    assert result.text == f"Intro.\n{blanks}x\n# Title more\n## a b\n"
