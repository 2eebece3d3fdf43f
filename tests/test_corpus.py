"""The real-prompt corpus (tests/corpus, 109 files from six projects; see its SOURCES.md)."""

from __future__ import annotations

import csv
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import CORPUS, EXAMPLES, Run

ROWS = list(
    csv.DictReader(
        (CORPUS / "token_counts.tsv").read_text(encoding="utf-8").splitlines(), delimiter="\t"
    )
)
TEMPLATE_SYNTAX = re.compile(r"\{\{|\{%|\{#")


def _has_template_syntax(path: Path) -> bool:
    text = path.read_text(encoding="utf-8-sig")
    # Prompty front matter is template syntax too: it is metadata, not prompt text.
    return bool(TEMPLATE_SYNTAX.search(text)) or path.suffix == ".prompty"


PLAIN = [row for row in ROWS if not _has_template_syntax(CORPUS / row["path"])]


def test_corpus_is_complete() -> None:
    assert len(ROWS) == 109
    assert len(PLAIN) >= 30


@pytest.mark.parametrize(("model", "column"), [("gpt-4o", "o200k_text"), ("gpt-4", "cl100k_text")])
def test_plain_files_count_exactly_like_tiktoken(
    run_cli: Callable[..., Run], model: str, column: str
) -> None:
    """text_tokens == len(encoding.encode_ordinary(text)) with the file read as text."""
    paths = [str(CORPUS / row["path"]) for row in PLAIN]
    result = run_cli("count", *paths, "--model", model, "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    templates = result.json()["templates"]
    assert len(templates) == len(PLAIN)
    counted = {t["path"].split("corpus/", 1)[1]: t for t in templates}
    mismatches = {
        row["path"]: (counted[row["path"]]["text_tokens"], int(row[column]))
        for row in PLAIN
        if counted[row["path"]]["text_tokens"] != int(row[column])
    }
    assert mismatches == {}
    assert all(t["exact"] for t in templates)
    assert {t["encoding"] for t in templates} == {column.replace("_text", "_base")}


def test_the_whole_corpus_counts_without_a_crash(run_cli: Callable[..., Run]) -> None:
    result = run_cli("count", str(CORPUS), "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    payload = result.json()
    counted = {t["path"].split("corpus/", 1)[1] for t in payload["templates"]}
    assert {row["path"] for row in ROWS} <= counted
    assert all(t["text_tokens"] is not None for t in payload["templates"])
    # A file that could not be fully parsed has a PB001 that says why, with a line, and its
    # count is marked approximate.
    exact = {t["path"]: t["exact"] for t in payload["templates"]}
    pb001 = [f for f in payload["findings"] if f["rule"] == "PB001"]
    assert pb001
    for finding in pb001:
        assert finding["line"] is not None and finding["message"]
        assert exact[finding["path"]] is False


# Dotprompt files with a PB001 (file under google__dotprompt/ -> message fragment, line): the
# files the runtime cannot use. The two error-* files are broken on purpose; the others are
# editor samples that Handlebars.js or YAML cannot parse. Every other .prompt file renders:
# helpers and partials the application provides are dynamic values, not errors.
DOTPROMPT_PB001 = {
    "examples/error-invalid-yaml.prompt": ("front matter is not valid YAML", 8),
    "examples/error-unbalanced-brace.prompt": (
        "unbalanced braces: this '}}' on line 24 closes no '{{'",
        24,
    ),
    # an autocomplete fixture: "Type here: {{" is an unclosed tag (Handlebars.js throws)
    "examples/autocomplete.prompt": ("'{{' is never closed", 22),
    # "teamMembers: { … }[]" is not YAML
    "packages/codemirror/samples/10-kitchen-sink.prompt": ("front matter is not valid YAML", 33),
}
# Dotprompt files that render, but not as their authors meant (PB003): file -> (fragment, line).
DOTPROMPT_PB003 = {
    # its "{{! … {{> partialName }} … }}" comment ends at the first "}}": the rest is sent
    "examples/partials.prompt": [("comment contains a '{{', so it ends at its first '}}'", 12)],
    # {{#role}}…{{/role}}: Dotprompt's role helper drops its block's text
    "examples/valid-blog-generator.prompt": [
        ("drops the text of a '{{#role \"system\"}}' block", 15),
        ("drops the text of a '{{#role \"user\"}}' block", 19),
    ],
    "examples/valid-customer-support.prompt": [
        ("drops the text of a '{{#role \"system\"}}' block", 11),
        ("drops the text of a '{{#role \"user\"}}' block", 16),
    ],
}


@pytest.mark.parametrize("cwd", [None, EXAMPLES], ids=["from-the-repo", "from-another-project"])
def test_dotprompt_files_render_unless_they_are_broken(
    run_cli: Callable[..., Run], cwd: Path | None
) -> None:
    """The same whether the corpus is inside the current project or beside it (as in
    ``promptbudget count ../shared/corpus`` from a checkout)."""
    folder = CORPUS / "google__dotprompt"
    result = run_cli("count", str(folder), "--format", "json", cwd=cwd)
    payload = result.json()
    prefix = "google__dotprompt/"
    found = {
        f["path"].split(prefix, 1)[1]: (f["message"], f["line"])
        for f in payload["findings"]
        if f["rule"] == "PB001"
    }
    assert set(found) == set(DOTPROMPT_PB001)
    for path, (fragment, line) in DOTPROMPT_PB001.items():
        assert fragment in found[path][0] and found[path][1] == line, (path, found[path])
    rendered = [t for t in payload["templates"] if t["path"].split(prefix, 1)[1] not in found]
    assert len(rendered) == len(list(folder.rglob("*.prompt"))) - len(DOTPROMPT_PB001)
    assert all(t["messages"] and t["format"] == "dotprompt" for t in rendered)

    warnings: dict[str, list[tuple[str, int]]] = {}
    for f in payload["findings"]:
        if f["rule"] == "PB003":
            assert f["severity"] == "warning"
            warnings.setdefault(f["path"].split(prefix, 1)[1], []).append((f["message"], f["line"]))
    assert set(warnings) == set(DOTPROMPT_PB003)
    for path, expected in DOTPROMPT_PB003.items():
        assert [line for _, line in warnings[path]] == [line for _, line in expected], path
        for (message, _), (fragment, _) in zip(warnings[path], expected, strict=True):
            assert fragment in message, (path, message)


def test_prompty_samples_are_rendered(run_cli: Callable[..., Run]) -> None:
    path = CORPUS / "microsoft__prompty/web/src/content/docs/assets/code/basic.prompty"
    result = run_cli("count", str(path), "--model", "gpt-4o", "--format", "json")
    template = result.json()["templates"][0]
    assert [m["role"] for m in template["messages"]] == ["system", "user"]
    assert {v["name"]: v["source"] for v in template["variables"]} == {
        "context": "sample",
        "firstName": "sample",
        "question": "sample",
    }
    assert result.exit_code == 0


def test_every_other_format_renders_with_its_engine(run_cli: Callable[..., Run]) -> None:
    """Semantic Kernel (skprompt.txt, prompt YAML in its three formats), promptfoo (split
    prompts, custom filters, chat JSON), Prompty, Jinja2 and text: no PB001 anywhere outside
    the Dotprompt examples (whose broken files are checked above)."""
    result = run_cli("count", str(CORPUS), "--format", "json")
    payload = result.json()
    outside = [
        (f["path"], f["message"])
        for f in payload["findings"]
        if f["rule"] == "PB001" and "google__dotprompt/" not in f["path"]
    ]
    assert outside == []
    formats = {t["path"].split("corpus/", 1)[1]: t["format"] for t in payload["templates"]}
    sk = [path for path, fmt in formats.items() if fmt == "semantic-kernel"]
    assert len(sk) == 13  # 10 skprompt.txt and 3 prompt YAML files
    split = [t for t in payload["templates"] if t["variant"]]
    assert [t["variant"] for t in split] == ["1 of 2", "2 of 2"]  # nunjucks-custom-filters
