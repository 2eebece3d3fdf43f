"""``count`` and ``check`` keep each template only as the rules and the report read it once
the file is done (the rendered messages and the template text dropped, its suppression
comments kept), and PB204 collects paragraphs one body at a time: the findings are those of
a run that kept everything, checked here against figures worked out by hand."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import Run
from promptbudget.compression import first_change_kept, first_changed_line
from promptbudget.compression.passages import PassageIndex, find_passages
from promptbudget.evaluation import check_templates
from promptbudget.headroom import recounted
from promptbudget.options import Options
from promptbudget.project import Project
from promptbudget.tokenizers import get_tokenizer, load_encoding

RunCli = Callable[..., Run]

POLICY = (
    "Our refund policy: customers may return any unopened item within thirty days of delivery "
    "for a full refund to the original payment method, and opened items within fourteen days "
    "for store credit, provided the receipt or order number is supplied with the request. "
    "Refunds are issued within five business days of the returned item arriving at our "
    "warehouse, and shipping costs are not refunded unless the item arrived damaged or was "
    "not what was ordered."
)

FILES = {
    "budgets.yaml": (
        "version: 1\n"
        "defaults: {model: gpt-4.1-mini}\n"
        "variables:\n"
        "  question: {max_tokens: 50}\n"
        "templates:\n"
        "  prompts/limited.j2: {max_tokens: {cl100k_base: 5}}\n"
        "workflows:\n"
        "  support:\n"
        "    traffic: {requests_per_day: 1000}\n"
        "    steps:\n"
        "      - {prompt: step.j2, output_tokens: 100}\n"
    ),
    # the pasted policy: line 3 of step.j2 (in the workflow) and copy1.j2, line 5 of copy2.j2
    "prompts/step.j2": f"You answer for Acme.\n\n{POLICY}\n\nQuestion: {{{{ question }}}}\n",
    "prompts/copy1.j2": f"You write emails for Acme.\n\n{POLICY}\n",
    "prompts/copy2.j2": f"Intro line.\n\nSecond paragraph here.\n\n{POLICY}\n",
    # in no workflow: released once counted, its suppressions still apply (PB201 silenced,
    # the PB203 one unused: PB002 on line 3)
    "prompts/quiet.j2": (
        "{# promptbudget: disable=PB201 #}\nHello {{ nobody }}.\n"
        "{# promptbudget: disable=PB203 #}\n"
    ),
    # line 7 ends in eight spaces and a run of blank lines follows: the first line the
    # whitespace pass changes, deep enough that a text cut too early would miss it
    "prompts/loose.j2": (
        "Line one.\nLine two.\nLine three.\nLine four.\nLine five.\nLine six.\n"
        "End here.        \n\n\n\n\nBye.\n"
    ),
    # a limit counted with another encoding: its messages are kept and counted again
    "prompts/limited.j2": "Count these words with the cl100k encoding please.\n",
}


@pytest.fixture
def project_dir(make_project: Callable[..., Path]) -> Path:
    return make_project(FILES, dedent=False)


def _findings(run: Run) -> list[tuple[str, str, int, object]]:
    return [(f["rule"], f["path"], f["line"], f["measured"]) for f in run.json()["findings"]]


def test_check_findings_are_those_worked_out_by_hand(run_cli: RunCli, project_dir: Path) -> None:
    run = run_cli("check", "--no-cache", "--format", "json", cwd=project_dir)
    policy_tokens = len(load_encoding("o200k_base").encode_ordinary(POLICY))
    limited_tokens = len(
        load_encoding("cl100k_base").encode_ordinary(FILES["prompts/limited.j2"].strip())
    )
    assert (policy_tokens, limited_tokens) == (82, 11)
    assert _findings(run) == [
        ("PB204", "prompts/copy1.j2", 3, policy_tokens),
        ("PB111", "prompts/limited.j2", 1, limited_tokens),
        ("PB205", "prompts/loose.j2", 7, 2),
        ("PB002", "prompts/quiet.j2", 3, None),
    ]
    pb204 = run.json()["findings"][0]["message"]
    assert "also in prompts/copy2.j2:5, prompts/step.j2:3" in pb204
    assert run.exit_code == 1


def test_count_applies_the_suppressions_of_released_files(
    run_cli: RunCli, project_dir: Path
) -> None:
    run = run_cli("count", "--no-cache", "--format", "json", cwd=project_dir)
    assert _findings(run) == []  # quiet.j2's PB201 silenced by its own comment
    tokens = {t["path"]: t["text_tokens"] for t in run.json()["templates"]}
    encoding = load_encoding("o200k_base")
    assert tokens["prompts/limited.j2"] == len(
        encoding.encode_ordinary(FILES["prompts/limited.j2"].strip())
    )


def test_check_keeps_only_what_is_read_later(project_dir: Path) -> None:
    options = Options(cwd=project_dir, use_cache=False)
    project = Project.open(options, require_manifest=True)
    manifest = project.manifest
    assert manifest is not None
    run = check_templates(
        project, manifest.compression, keep_messages=lambda r: recounted(r, manifest)
    )
    # only the workflow's template stays loaded (each lane renders it again)
    assert [p.name for p in project.templates] == ["step.j2"]
    kept = {r.parsed.display_path: r for r in run.results}
    assert len(kept) == 6
    assert all(r.parsed.text == "" for r in kept.values())
    with_messages = [path for path, r in kept.items() if r.rendered.messages]
    assert with_messages == ["prompts/limited.j2"]
    loose = run.compressions["prompts/loose.j2"]
    assert loose.original.count("\n") == 7  # cut after line 8
    assert first_changed_line(loose.original, loose.text) == 7
    assert {s.path for s in project.suppressions()} == {"prompts/quiet.j2"}


def test_passage_index_finds_what_find_passages_finds() -> None:
    long = POLICY
    other = "A second shared paragraph " + "that is long enough to count " * 12
    bodies = {
        "a.j2": (f"Intro.\n\n{long}\n\n{other}\n\n{{{{ x }}}} {long}\n", 1),
        "b.j2": (f"{other}\n\nOnly in b, and {long[:40]}.\n", 4),
        "c.j2": (f"Head.\n\n\n{long}\n\n{long}\n", 2),
        "d.j2": (f"{{{{ y }}}}\n\n{{{{ x }}}} {long}\n", 1),  # template syntax: never a passage
    }
    tokenizer = get_tokenizer("o200k_base")
    index = PassageIndex()
    for path, (body, line) in bodies.items():
        index.add(path, body, line)
    found = index.passages(tokenizer, 50)
    assert found == find_passages(bodies, tokenizer, 50)
    # by hand: the policy in a (line 3) and twice in c (lines 5, 7), the other paragraph in
    # a (line 5) and b (line 4); the policy is the longer one, first
    assert [p.locations for p in found] == [
        (("a.j2", 3), ("c.j2", 5), ("c.j2", 7)),
        (("a.j2", 5), ("b.j2", 4)),
    ]


def test_first_change_kept_cuts_after_the_first_changed_line() -> None:
    before = "a\nb\nc  \nd\ne\nf"
    after = "a\nb\nc\nd\ne\nf"
    assert first_change_kept(before, after) == ("\n\nc  \nd", "\n\nc\nd")
    assert first_change_kept("a\nb\n\n\n", "a\nb\n") == ("\n\n\n", "\n\n")
    assert first_change_kept("same\ntext", "same\ntext") == ("\ntext", "\ntext")


@given(st.text(alphabet="ab \n", max_size=30), st.text(alphabet="ab \n", max_size=30))
def test_first_change_kept_keeps_what_the_rule_reads(before: str, after: str) -> None:
    cut_before, cut_after = first_change_kept(before, after)
    assert first_changed_line(cut_before, cut_after) == first_changed_line(before, after)
    assert (cut_before != cut_after) == (before != after)
