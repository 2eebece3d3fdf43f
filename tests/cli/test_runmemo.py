"""Run memos (runmemo.py): a repeated run is answered from its memo only while every file
and directory it read or looked in is unchanged; whatever changes, the answer is the one a
``--no-cache`` run gives."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import TODAY, Launch, age_project, launcher
from promptbudget import cache, runmemo
from promptbudget.cache import CACHE_DIR_NAME
from promptbudget.templates import parse

FILES = {
    "budgets.yaml": """\
        version: 1
        defaults: {model: gpt-4.1-mini}
        variables:
          question: {max_tokens: 200}
        workflows:
          support:
            traffic: {requests_per_day: 1000}
            steps:
              - name: answer
                prompt: answer.j2
                output_tokens: {p50: 200, p95: 800}
          other:
            traffic: {requests_per_day: 500}
            steps:
              - {name: other, prompt: other.j2, output_tokens: 100}
    """,
    "prompts/answer.j2": """\
        ---
        sample: {customer: Ada Lovelace}
        ---
        {% include "partials/tone.j2" %}
        Answer the question of {{ customer }}: {{ question }}

        Read the whole thread before you answer. Quote the order number, the date of purchase
        and the exact product name the customer used, then say what you will do next and by
        when, in plain words, without promising a refund or a replacement that the returns
        policy does not allow.
    """,
    "prompts/partials/tone.j2": "Be kind, concise and exact.\n",
    "prompts/other.j2": "Summarise {{ question }} in one line.\n",
    "prompts/spare.j2": "Be kind, concise and exact.\n",
}


# The 56-token paragraph of answer.j2 (PB204 reports a copy of it, from 50 tokens).
POLICY = "\n".join(
    line.strip() for line in FILES["prompts/answer.j2"].split("\n\n")[-1].splitlines()
)


@pytest.fixture
def project(make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PROMPTBUDGET_CACHE_DIR")  # the cache in the project, as users have it
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "COLUMNS", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("PROMPTBUDGET_TODAY", TODAY)
    return make_project(FILES)


@pytest.fixture
def run(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Launch]:
    yield launcher(project, capsys, monkeypatch)


def answer(run: Launch, *args: str) -> tuple[int, str, str]:
    """A run that must be answered by its memo."""
    before = run.full_runs
    result = run(*args)
    assert run.full_runs == before, "expected the memo to answer"
    return result


def recompute(run: Launch, *args: str) -> tuple[int, str, str]:
    """A run that must not be answered by a memo, and gives what ``--no-cache`` gives."""
    before = run.full_runs
    result = run(*args)
    assert run.full_runs == before + 1, "a memo answered although an input changed"
    code, out, _ = run(*args, "--no-cache")
    assert (result[0], result[1]) == (code, out)
    return result


ARGS = ("check", "prompts/answer.j2")


def test_a_repeated_run_is_answered_by_its_memo_with_the_same_output(run: Launch) -> None:
    first = run(*ARGS)
    assert run.full_runs == 1
    assert first[0] in (0, 1) and "support" in first[1]
    age_project(run.root)
    assert answer(run, *ARGS) == first
    assert answer(run, *ARGS) == first
    assert any(p.name.startswith("run-") for p in (run.root / CACHE_DIR_NAME).iterdir())


def test_an_edited_template_of_the_same_size_and_time_is_seen(run: Launch) -> None:
    run(*ARGS)
    age_project(run.root)
    answer(run, *ARGS)
    template = run.root / "prompts/partials/tone.j2"
    before = template.stat()
    template.write_text("Be kind, concise and EXACT.\n", encoding="utf-8")  # same size
    os.utime(template, ns=(before.st_atime_ns, before.st_mtime_ns))  # and the same mtime
    assert template.stat().st_size == before.st_size
    recompute(run, *ARGS)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda root: (root / "prompts/answer.j2").write_text("{{ question }}\n"), id="named"
        ),
        pytest.param(
            lambda root: (root / "prompts/partials/tone.j2").write_text("Be brief.\n"), id="partial"
        ),
        pytest.param(
            lambda root: (root / "prompts/other.j2").write_text(
                '{% include "answer.j2" %}\nSummarise {{ question }}.\n'
            ),
            id="another workflow's template now includes the named one",
        ),
        pytest.param(
            lambda root: (root / "budgets.yaml").write_text(
                (root / "budgets.yaml").read_text().replace("1000", "2000")
            ),
            id="manifest",
        ),
        pytest.param(
            lambda root: (root / "prompts/spare.j2").write_text(POLICY),
            id="a passage pasted into a template only PB204 reads",
        ),
        pytest.param(
            lambda root: (root / "prompts/new.j2").write_text("Be kind, concise and exact.\n"),
            id="new file",
        ),
        pytest.param(lambda root: (root / "prompts/spare.j2").unlink(), id="deleted file"),
    ],
)
def test_any_changed_input_is_recomputed(run: Launch, change: Callable[[Path], object]) -> None:
    run(*ARGS)
    age_project(run.root)
    answer(run, *ARGS)
    change(run.root)
    recompute(run, *ARGS)
    age_project(run.root)
    answer(run, *ARGS)


def test_a_template_read_from_the_content_cache_is_still_an_input(run: Launch) -> None:
    run(*ARGS)
    manifest = run.root / "budgets.yaml"
    manifest.write_text(manifest.read_text().replace("1000", "3000"))
    recompute(run, *ARGS)  # every other template's fingerprints come from the cache now
    age_project(run.root)
    answer(run, *ARGS)
    (run.root / "prompts/spare.j2").write_text(POLICY)
    recompute(run, *ARGS)


def test_a_file_appearing_where_an_include_was_looked_for_is_seen(
    run: Launch, make_project: Callable[..., Path]
) -> None:
    template = run.root / "prompts/answer.j2"
    template.write_text('{% include "more/extra.j2" ignore missing %}{{ question }}\n')
    first = run(*ARGS)
    age_project(run.root)
    assert answer(run, *ARGS) == first
    (run.root / "prompts/more").mkdir()
    (run.root / "prompts/more/extra.j2").write_text("A long extra instruction. " * 40)
    second = recompute(run, *ARGS)
    assert second[1] != first[1]


def test_a_retargeted_symlink_is_seen(run: Launch) -> None:
    prompts = run.root / "prompts"
    (prompts / "short.txt").write_text("Be brief.\n")
    (prompts / "long.txt").write_text("Be thorough and explain every step. " * 30)
    (prompts / "partials/tone.j2").unlink()
    (prompts / "partials/tone.j2").symlink_to("../short.txt")
    first = run(*ARGS)
    age_project(run.root)
    assert answer(run, *ARGS) == first
    (prompts / "partials/tone.j2").unlink()
    (prompts / "partials/tone.j2").symlink_to("../long.txt")
    assert recompute(run, *ARGS)[1] != first[1]


def test_other_arguments_environment_or_date_are_other_memos(
    run: Launch, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(*ARGS)
    age_project(run.root)
    answer(run, *ARGS)
    recompute(run, *ARGS, "--format", "json")
    monkeypatch.setenv("PROMPTBUDGET_TODAY", "2099-01-01")
    recompute(run, *ARGS)


def test_no_cache_output_files_and_job_summaries_are_never_memoized(
    run: Launch, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for _ in range(2):
        run(*ARGS, "--no-cache")
    assert run.full_runs == 2
    report = tmp_path / "report.txt"
    for _ in range(2):
        run(*ARGS, "--output", str(report))
    assert run.full_runs == 4
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    for _ in range(2):
        run(*ARGS)
    assert run.full_runs == 6
    assert summary.read_text().count("support") >= 2  # both runs appended their summary


def test_a_forged_or_corrupt_memo_is_ignored(run: Launch) -> None:
    first = run(*ARGS)
    age_project(run.root)
    (memo,) = (p for p in (run.root / CACHE_DIR_NAME).iterdir() if p.name.startswith("run-"))
    signature, _, body = memo.read_bytes().partition(b"\n")
    forged = json.loads(body)
    forged["output"] = [["stdout", "all good\n"]]
    memo.write_bytes(signature + b"\n" + json.dumps(forged).encode())
    assert recompute(run, *ARGS)[1] == first[1]
    memo.write_bytes(memo.read_bytes()[:40])
    assert recompute(run, *ARGS)[1] == first[1]


def test_a_stat_is_trusted_only_outside_the_racy_window(tmp_path: Path) -> None:
    """Where the file system's clock is coarse, a change in the same tick keeps the stat: an
    entry whose file changed shortly before it was recorded is hashed again on every use."""
    path = tmp_path / "a.j2"
    path.write_text("one\n")
    recorder = runmemo.Recorder()
    recorder.read(path, path.read_bytes(), None)
    entry = recorder.files[str(path)]
    assert entry[2] is True  # written just now: racy
    memo = {"files": recorder.files, "dirs": {}}
    path.write_text("two\n")  # same size; pretend the stat did not change either
    entry[0] = runmemo.stat_of(path.stat())
    assert runmemo.is_still_valid(memo) == (False, False)
    entry[2] = False  # had the entry been old enough, the stat would have been trusted
    assert runmemo.is_still_valid(memo) == (True, False)


def test_a_racy_entry_that_still_matches_is_stamped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.j2"
    path.write_text("one\n")
    recorder = runmemo.Recorder()
    recorder.read(path, path.read_bytes(), None)
    memo = {"files": recorder.files, "dirs": {}}
    monkeypatch.setattr(runmemo, "RACY_NS", -(10**18))  # as if the change were long ago
    assert runmemo.is_still_valid(memo) == (True, True)  # hashed again, now stamped
    assert recorder.files[str(path)][2] is False
    assert runmemo.is_still_valid(memo) == (True, False)


def test_a_racy_entry_hashed_again_is_not_worth_writing_back(tmp_path: Path) -> None:
    """A file changed less than two seconds ago is hashed on every use whatever its recorded
    stat: restamping it saves nothing, so the memo is not written back for it (~15 ms at
    2,000 templates); once it is old enough it is stamped, and that is written."""
    path = tmp_path / "a.j2"
    path.write_text("one\n")
    recorder = runmemo.Recorder()
    recorder.read(path, path.read_bytes(), None)
    memo = {"files": recorder.files, "dirs": {}}
    os.utime(path)  # touched again, just now: another stat, the same bytes
    assert runmemo.is_still_valid(memo) == (True, False)  # valid, not worth a write
    assert recorder.files[str(path)][2] is True


# -- files read only for PB204's fingerprints (passagememo.py) --------------------------------

SPARE = "prompts/spare.j2"


def same_as_uncached(run: Launch, result: tuple[int, str, str], *args: str) -> None:
    code, out, _ = run(*args, "--no-cache")
    assert (result[0], result[1]) == (code, out)


def test_an_edit_pb204_takes_nothing_from_is_answered_by_the_memo(run: Launch) -> None:
    """spare.j2 is in no workflow and includes nothing: the run reads it only for PB204."""
    first = run(*ARGS)
    age_project(run.root)
    spare = run.root / SPARE
    spare.write_text("Answer the question of a customer in full.\n")  # another size
    assert answer(run, *ARGS) == first
    same_as_uncached(run, first, *ARGS)
    spare.write_text("{# promptbudget: disable=PB204 #}\nRead the thread. Quote the order.\n")
    assert answer(run, *ARGS) == first
    same_as_uncached(run, first, *ARGS)
    age_project(run.root)
    assert answer(run, *ARGS) == first


def test_a_passage_pasted_elsewhere_then_edited_around_then_removed(
    run: Launch, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = run(*ARGS)
    assert "PB204" not in first[1]
    age_project(run.root)
    spare = run.root / SPARE
    spare.write_text(f"Be kind.\n\n{POLICY}\n")
    pasted = recompute(run, *ARGS)
    assert "PB204" in pasted[1] and f"{SPARE}:3" in pasted[1]
    age_project(run.root)
    answer(run, *ARGS)
    # edited around the copy, which keeps its line: parsed again, the memo still answers
    spare.write_text(f"Be kind, always.\n\n{POLICY}\n\nSign with your first name.\n")
    parsed: list[str] = []
    real = parse.parse_file
    monkeypatch.setattr(
        parse, "parse_file", lambda path, *a, **k: parsed.append(path.name) or real(path, *a, **k)
    )
    assert answer(run, *ARGS) == pasted
    assert parsed == ["spare.j2"]
    monkeypatch.setattr(parse, "parse_file", real)
    same_as_uncached(run, pasted, *ARGS)
    spare.write_text(f"Be kind.\n\n\n{POLICY}\n")  # the copy one line lower: another finding
    moved = recompute(run, *ARGS)
    assert f"{SPARE}:4" in moved[1]
    spare.write_text("Be kind.\n")
    assert recompute(run, *ARGS)[1] == first[1]


def test_a_short_shared_paragraph_is_no_passage(
    run: Launch, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A paragraph shorter in bytes than ``duplicate_min_tokens`` can never be a passage: a
    template that holds one is not parsed again, whatever moves around it."""
    (run.root / SPARE).write_text("Be kind, concise and exact.\n")
    first = run(*ARGS)
    age_project(run.root)
    (run.root / SPARE).write_text("One more line.\n\nBe kind, concise and exact.\n")
    parsed: list[Path] = []
    real = parse.parse_file
    monkeypatch.setattr(parse, "parse_file", lambda path, *a, **k: parsed.append(path))
    assert answer(run, *ARGS) == first
    assert parsed == []
    monkeypatch.setattr(parse, "parse_file", real)
    same_as_uncached(run, first, *ARGS)


@pytest.mark.parametrize(
    "including",
    [
        '{% include "answer.j2" %}',
        '{%- from "answer.j2" import x -%}',
        '{%+\n  extends "answer.j2" %}',
        '{% import "partials/tone.j2" as tone %}',
    ],
)
def test_another_workflows_template_is_asked_only_whether_it_includes_anything(
    run: Launch, including: str
) -> None:
    """other.j2 is the template of a workflow the named file does not feed: the run asks it
    what it includes (nothing) and PB204 reads it. An edit that keeps both is answered by
    the memo; one that adds an include, an import or an extends (of any file) is not."""
    first = run(*ARGS)
    age_project(run.root)
    other = run.root / "prompts/other.j2"
    other.write_text("Summarise {{ question }} in two lines, {% if x %}or three{% endif %}.\n")
    assert answer(run, *ARGS) == first
    same_as_uncached(run, first, *ARGS)
    other.write_text(f"{including}\nSummarise {{{{ question }}}}.\n")
    recompute(run, *ARGS)


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda p: p["files"].update({SPARE: ["x"]}), id="short entry"),
        pytest.param(lambda p: p["files"][SPARE].__setitem__(0, 7), id="display path"),
        pytest.param(lambda p: p["files"][SPARE].__setitem__(2, "nonsense"), id="projection"),
        pytest.param(lambda p: p.update(texts=5), id="texts"),
        pytest.param(lambda p: p.update(root=None), id="root"),
        pytest.param(lambda p: p.clear(), id="empty"),
    ],
)
def test_a_damaged_passages_entry_is_a_miss(
    run: Launch, monkeypatch: pytest.MonkeyPatch, damage: Callable[[dict[str, Any]], object]
) -> None:
    first = run(*ARGS)
    age_project(run.root)
    (memo_file,) = (p for p in (run.root / CACHE_DIR_NAME).iterdir() if p.name.startswith("run-"))
    key = memo_file.name.removeprefix("run-").removesuffix(".blob")
    monkeypatch.chdir(run.root)
    memo = cache.read_memo(key)
    assert memo["passages"]["files"][SPARE] == [None, None, [], False]  # shown as named
    damage(memo["passages"])
    cache.write_memo(key, memo)  # signed with the cache's key: only its content is wrong
    (run.root / SPARE).write_text("Answer the question of a customer in full.\n")
    assert recompute(run, *ARGS)[1] == first[1]


def test_a_template_also_reached_through_a_symlink_is_an_input_like_any_other(
    run: Launch,
) -> None:
    """A symlink's real path is not the path walked: what it points to is read like any
    other input, so an edit to it runs the command again."""
    (run.root / "prompts/alias.j2").symlink_to("spare.j2")
    first = run(*ARGS)
    age_project(run.root)
    (run.root / SPARE).write_text("Answer the question of a customer in full.\n")
    assert recompute(run, *ARGS)[1] == first[1]


def test_another_workflows_dotprompt_template_is_asked_for_its_partials(run: Launch) -> None:
    manifest = run.root / "budgets.yaml"
    manifest.write_text(
        manifest.read_text()
        + "  cards:\n    steps:\n      - {name: card, prompt: card.prompt, output_tokens: 50}\n"
    )
    card = run.root / "prompts/card.prompt"
    card.write_text("---\nmodel: gpt-4.1-mini\n---\nWrite a card for {{name}}.\n")
    (run.root / "prompts/_header.prompt").write_text("Dear {{name}},\n")
    first = run(*ARGS)
    age_project(run.root)
    card.write_text("---\nmodel: gpt-4.1-mini\n---\nWrite a short card for {{name}}.\n")
    assert answer(run, *ARGS) == first
    same_as_uncached(run, first, *ARGS)
    card.write_text("---\nmodel: gpt-4.1-mini\n---\n{{> header}}\nWrite a card.\n")
    recompute(run, *ARGS)


def test_a_workflows_data_prompt_that_starts_including_behind_an_escape_is_seen(
    run: Launch,
) -> None:
    """A LangChain prompt in JSON: the include statement its template gains may be written
    with escapes (``\\u007b%``), so its raw text says nothing of what it includes; it is
    parsed again, and the workflow it now brings is reported."""
    manifest = run.root / "budgets.yaml"
    manifest.write_text(
        manifest.read_text()
        + "  chain:\n    steps:\n      - {name: lc, prompt: lc.json, output_tokens: 50}\n"
    )
    prompt = run.root / "prompts/lc.json"
    template = {"_type": "prompt", "input_variables": [], "template_format": "jinja2"}
    prompt.write_text(json.dumps({**template, "template": "Hello there."}))
    first = run(*ARGS)
    assert "chain" not in first[1]
    age_project(run.root)
    escaped = json.dumps({**template, "template": '{% include "answer.j2" %} Hello.'})
    prompt.write_text(escaped.replace("{%", "\\u007b%"))
    assert "chain" in recompute(run, *ARGS)[1]


def test_a_workflows_template_that_is_a_symlink_stays_an_input(run: Launch) -> None:
    """other.j2, a step's template, is a symlink to real/other.j2: the file it points to is
    asked what it includes through the symlink, so an edit to it runs the command again."""
    (run.root / "prompts/real").mkdir()
    (run.root / "prompts/real/other.j2").write_text("Summarise {{ question }}.\n")
    (run.root / "prompts/other.j2").unlink()
    (run.root / "prompts/other.j2").symlink_to("real/other.j2")
    first = run(*ARGS)
    age_project(run.root)
    assert answer(run, *ARGS) == first
    (run.root / "prompts/real/other.j2").write_text('{% include "answer.j2" %}\n')
    assert "other" in recompute(run, *ARGS)[1]


# -- the memo's head (memohead.py): nothing moved, nothing but the head is read ---------------


@pytest.fixture
def settled(run: Launch, monkeypatch: pytest.MonkeyPatch) -> Iterator[Launch]:
    """``run`` with every stat trusted at once (as if each file changed long ago: outside the
    racy window), counting the memos whose detail was read (``run.details``)."""
    monkeypatch.setattr(runmemo, "RACY_NS", -(10**18))
    real = cache.read_memo_head
    run.details = 0  # type: ignore[attr-defined]

    def counted(key: str) -> Any:
        found = real(key)
        if found is None:
            return None
        head, detail = found

        def read_detail() -> Any:
            run.details += 1  # type: ignore[attr-defined]
            return detail()

        return head, read_detail

    monkeypatch.setattr(cache, "read_memo_head", counted)
    yield run


def warm(run: Launch) -> tuple[int, str, str]:
    """The first run, then a memo's answer (the project's directory changed when the cache
    was made in it: its listing is checked once, and the memo stamped again); the detail
    count starts from there."""
    first = run(*ARGS)
    assert answer(run, *ARGS) == first
    run.details = 0  # type: ignore[attr-defined]
    return first


def test_an_unmoved_memo_answers_from_its_head_alone(settled: Launch) -> None:
    first = warm(settled)
    assert answer(settled, *ARGS) == first
    assert answer(settled, *ARGS) == first
    assert settled.details == 0  # type: ignore[attr-defined]


def replace_keeping_times(path: Path, text: str) -> None:
    """Another file (another inode) of the same size and times takes ``path``'s place."""
    before = path.stat()
    assert len(text.encode()) == before.st_size
    other = path.with_name(path.name + ".new")
    other.write_text(text)
    os.utime(other, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.replace(other, path)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda root: (root / "prompts/spare.j2").write_text(POLICY),
            id="a passage pasted into a template only PB204 reads",
        ),
        pytest.param(
            lambda root: replace_keeping_times(
                root / "prompts/partials/tone.j2", "Be kind, concise and EXACT.\n"
            ),
            id="another inode of the same size and times",
        ),
        pytest.param(
            lambda root: (root / "prompts/new.j2").write_text("Be kind, concise and exact.\n"),
            id="new file",
        ),
        pytest.param(lambda root: (root / "prompts/spare.j2").unlink(), id="deleted file"),
        pytest.param(
            lambda root: (root / "budgets.yaml").write_text(
                (root / "budgets.yaml").read_text().replace("1000", "2000")
            ),
            id="manifest",
        ),
    ],
)
def test_a_moved_stat_reads_the_detail_and_a_changed_input_is_recomputed(
    settled: Launch, change: Callable[[Path], object]
) -> None:
    warm(settled)
    change(settled.root)
    recompute(settled, *ARGS)
    assert settled.details <= 1  # type: ignore[attr-defined]
    answer(settled, *ARGS)


@pytest.mark.parametrize(
    "touch",
    [
        pytest.param(lambda path: os.utime(path), id="touched"),
        pytest.param(lambda path: os.chmod(path, 0o640), id="chmod"),
    ],
)
def test_a_file_whose_stat_moved_but_not_its_bytes_answers_then_is_trusted_again(
    settled: Launch, touch: Callable[[Path], object]
) -> None:
    first = warm(settled)
    touch(settled.root / "prompts/partials/tone.j2")
    assert answer(settled, *ARGS) == first  # hashed again: the same bytes
    assert settled.details == 1  # type: ignore[attr-defined]
    assert answer(settled, *ARGS) == first  # stamped with its new stat, written back
    assert settled.details == 1  # type: ignore[attr-defined]


def test_a_memos_head_and_detail_are_signed_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMPTBUDGET_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "a.j2").write_text("one\n")
    monkeypatch.chdir(tmp_path)
    recorder = runmemo.Recorder()
    recorder.read("a.j2", b"one\n", None)
    files = {runmemo.relative(name, str(tmp_path)): entry for name, entry in recorder.files.items()}
    memo = {"format": runmemo.MEMO_FORMAT, "code": 0, "output": [], "files": files, "dirs": {}}
    memo["files"]["a.j2"][2] = False  # as if old enough
    runmemo.settle(memo)
    assert memo["names"] == "a.j2" and isinstance(memo["stats"], str)
    cache.write_memo("k", memo)
    assert cache.read_memo("k") == memo
    path = tmp_path / "cache/run-k.blob"
    data = path.read_bytes()
    head_end = data.index(b',"detail":')
    for damaged, head_still_read in (
        (
            data[:head_end] + data[head_end:].replace(b"one", b"two").replace(b'"a.j2"', b'"b.j2"'),
            True,
        ),
        (data.replace(b'"code":0', b'"code":1'), False),
        (data[: head_end - 5], False),
        (data.partition(b" ")[0] + data.partition(b"\n")[1:][0] + data.partition(b"\n")[2], False),
    ):
        path.write_bytes(damaged)
        assert cache.read_memo("k") is None
        found = cache.read_memo_head("k")
        assert (found is not None) == head_still_read
        if found is not None:
            assert found[0]["names"] == "a.j2" and found[1]() is None


def test_the_heads_digest_sees_every_field_of_every_stat(tmp_path: Path) -> None:
    names = [tmp_path / f"{n}.j2" for n in range(3)]
    for path in names:
        path.write_text("some text\n")
    files = {str(p): [runmemo.stat_of(p.stat()), "h", False] for p in names}
    head = runmemo.settle({"files": files, "dirs": {}})
    assert head["names"] == "\0".join(files)
    taken = runmemo.files_now(head)
    assert taken is not None and runmemo.is_unmoved(head, taken)
    for field in range(5):
        moved = {name: [list(entry[0]), "h", False] for name, entry in files.items()}
        moved[str(names[1])][0][field] += 1
        other = runmemo.settle({"files": moved, "dirs": {}})
        assert other["stats"] != head["stats"]
        assert not runmemo.is_unmoved(other, taken)
    files[str(names[2])][2] = True  # racy: hashed on every use, never trusted by the head
    racy = runmemo.settle({"files": files, "dirs": {}})
    assert racy["names"] is None and not runmemo.is_unmoved(racy, [])
    names[0].unlink()
    assert runmemo.files_now(head) is None
