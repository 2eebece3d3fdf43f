"""``promptbudget compress`` as users run it: which passes run, what the report says, what
``--diff`` shows, and what ``--write`` does to files, including the cases where it must not."""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import Run
from promptbudget import fileio
from promptbudget.compression import LOSSY_PASSES, PASSES, SAFE_PASSES, rewrite
from promptbudget.templates.source import TemplateFormat

# gpt-4.1-mini: $0.40 per million input tokens, no prompt caching declared. A static token
# sent 10,000 times a day costs 30 x 10,000 x 0.40 / 1,000,000 = $0.12 a month.
TOKEN_MONTH_USD = 0.12

BUDGETS = """\
    version: 1
    defaults: {model: gpt-4.1-mini}
    workflows:
      support:
        traffic: {requests_per_day: 10000}
        steps:
          - prompt: answer.j2
            output_tokens: 100
            variables:
              question: {max_tokens: 200}
      nightly:
        # no traffic declared: nothing to put a monthly price on
        steps:
          - prompt: idle.j2
            output_tokens: 100
"""

FRONT_MATTER = "---\nmodel: gpt-4.1-mini   \nversion: 3\n---\n"  # trailing spaces kept as is

ANSWER = (
    FRONT_MATTER + "You classify support tickets for Acme.   \n"
    "Please note that you must answer with the JSON below.\n"
    "\n"
    "\n"
    "\n"
    "------------------------------\n"
    "Reply in this shape:\n"
    "```json\n"
    "{\n"
    '    "category": "billing",\n'
    '    "urgent": false\n'
    "}\n"
    "```\n"
    '{% include "partials/policy.j2" %}\n'
    "Ticket: {{ question }}\n"
)
ANSWER_SAFE = (
    FRONT_MATTER + "You classify support tickets for Acme.\n"
    "Please note that you must answer with the JSON below.\n"
    "\n"
    "Reply in this shape:\n"
    "```json\n"
    '{"category":"billing","urgent":false}\n'
    "```\n"
    '{% include "partials/policy.j2" %}\n'
    "Ticket: {{ question }}\n"
)
POLICY = "Refunds    are possible within thirty days.\n\n\n\nNever promise a refund.\n"
POLICY_SAFE = "Refunds are possible within thirty days.\n\nNever promise a refund.\n"
IDLE = "Summarise   the day.\n\n\n\nBe brief.\n"
IDLE_SAFE = "Summarise the day.\n\nBe brief.\n"
UNUSED = "An   unused prompt.\n"
CLEAN = "Say hello.\n"

PROJECT = {
    "budgets.yaml": BUDGETS,
    "prompts/answer.j2": ANSWER,
    "prompts/partials/policy.j2": POLICY,
    "prompts/idle.j2": IDLE,
    "prompts/unused.j2": UNUSED,
    "prompts/clean.j2": CLEAN,
}

FILE_KEYS = {
    "path",
    "tokens_before",
    "tokens_after",
    "tokens_saved",
    "passes",
    "monthly_savings_usd",
    "workflows",
    "changed",
    "written",
    "error",
    "diff",
}

MINIMAL_BUDGETS = "version: 1\ndefaults: {model: gpt-4.1-mini}\n"


def snapshot(root: Path) -> dict[str, tuple[bytes, int, int, int]]:
    """Every file under ``root``: (bytes, inode, mtime, mode), symlinks not followed."""
    tree = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        if stat.S_ISDIR(info.st_mode):
            continue
        content = os.readlink(path).encode() if path.is_symlink() else path.read_bytes()
        tree[path.relative_to(root).as_posix()] = (
            content,
            info.st_ino,
            info.st_mtime_ns,
            info.st_mode,
        )
    return tree


def by_path(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["path"]: entry for entry in report["files"]}


def one_error_line(result: Run) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("promptbudget: error: "), lines[0]
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def project(make_project: Callable[..., Path]) -> Path:
    return make_project(PROJECT)


# -- which passes run ---------------------------------------------------------------------------


def test_default_passes_are_the_safe_ones(project: Path, run_cli: Callable[..., Run]) -> None:
    assert set(SAFE_PASSES) == {"json", "markdown", "duplicates", "whitespace"}
    assert set(LOSSY_PASSES) == {"examples", "filler", "indentation", "stopwords", "paragraphs"}
    result = run_cli("compress", "--format", "json", cwd=project)
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert report["passes"] == list(SAFE_PASSES)
    for entry in report["files"]:
        assert list(entry["passes"]) == list(SAFE_PASSES)
    # The filler phrase is left alone by default.
    run_cli("compress", "--write", cwd=project)
    assert (project / "prompts/answer.j2").read_text(encoding="utf-8") == ANSWER_SAFE


def test_lossy_passes_run_only_when_named(project: Path, run_cli: Callable[..., Run]) -> None:
    result = run_cli("compress", "--pass", "filler", "--format", "json", cwd=project)
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert report["passes"] == ["filler"]
    files = by_path(report)
    assert files["prompts/answer.j2"]["passes"] == {"filler": 3}
    assert files["prompts/answer.j2"]["tokens_saved"] == 3
    assert not files["prompts/idle.j2"]["changed"]  # its waste is whitespace: not asked for

    run_cli("compress", "--pass", "filler", "--write", cwd=project)
    # Only the filler phrase went; the whitespace, the rule and the JSON are as they were.
    expected = ANSWER.replace("Please note that you must", "You must")
    assert (project / "prompts/answer.j2").read_text(encoding="utf-8") == expected


def test_named_passes_run_together_in_registry_order(
    project: Path, run_cli: Callable[..., Run]
) -> None:
    result = run_cli(
        "compress", "--pass", "whitespace", "--pass", "filler", "--format", "json", cwd=project
    )
    assert result.exit_code == 0, result.stderr
    entry = by_path(result.json())["prompts/answer.j2"]
    assert list(entry["passes"]) == ["filler", "whitespace"]
    assert entry["passes"]["filler"] > 0 and entry["passes"]["whitespace"] > 0


def test_unknown_pass_is_a_one_line_usage_error(project: Path, run_cli: Callable[..., Run]) -> None:
    before = snapshot(project)
    result = run_cli("compress", "--pass", "nope", "--write", cwd=project)
    assert result.exit_code == 2
    assert result.stdout == ""
    line = one_error_line(result)
    assert "'nope'" in line
    for name in PASSES:
        assert name in line
    assert snapshot(project) == before


# -- the report ---------------------------------------------------------------------------------


def test_json_report_shape_and_arithmetic(project: Path, run_cli: Callable[..., Run]) -> None:
    result = run_cli("compress", "--format", "json", cwd=project)
    assert result.exit_code == 0, result.stderr
    report = result.json()
    assert report["schema_version"] == 1
    assert report["command"] == "compress"
    assert set(report) >= {"passes", "files", "total"}
    files = by_path(report)
    assert sorted(files) == [
        "prompts/answer.j2",
        "prompts/clean.j2",
        "prompts/idle.j2",
        "prompts/partials/policy.j2",
        "prompts/unused.j2",
    ]
    for path, entry in files.items():
        assert set(entry) >= FILE_KEYS, path
        assert entry["tokens_saved"] == entry["tokens_before"] - entry["tokens_after"], path
        assert sum(entry["passes"].values()) == entry["tokens_saved"], path
        assert entry["changed"] == (path != "prompts/clean.j2"), path
        assert (entry["written"], entry["error"], entry["diff"]) == (False, None, None), path
    assert files["prompts/answer.j2"]["passes"] == {
        "json": 6,
        "markdown": 2,
        "duplicates": 0,
        "whitespace": 1,
    }
    assert files["prompts/clean.j2"]["tokens_saved"] == 0
    total = report["total"]
    assert total["tokens_before"] == sum(e["tokens_before"] for e in files.values())
    assert total["tokens_after"] == sum(e["tokens_after"] for e in files.values())


def test_monthly_savings_follow_the_workflows_that_pay(
    project: Path, run_cli: Callable[..., Run]
) -> None:
    files = by_path(run_cli("compress", "--format", "json", cwd=project).json())
    answer = files["prompts/answer.j2"]
    assert answer["workflows"] == ["support"]
    assert answer["tokens_saved"] == 9
    assert answer["monthly_savings_usd"] == pytest.approx(9 * TOKEN_MONTH_USD)
    # The partial is in no step: it is paid for through answer.j2, which includes it.
    policy = files["prompts/partials/policy.j2"]
    assert policy["workflows"] == ["support"]
    assert policy["tokens_saved"] == 1
    assert policy["monthly_savings_usd"] == pytest.approx(1 * TOKEN_MONTH_USD)
    # In a workflow without traffic, or in none: no price, not $0.
    for path in ("prompts/idle.j2", "prompts/unused.j2", "prompts/clean.j2"):
        assert files[path]["monthly_savings_usd"] is None, path
        assert files[path]["workflows"] == [], path
    assert files["prompts/idle.j2"]["tokens_saved"] == 1


def test_monthly_savings_are_null_without_workflows(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = make_project({"budgets.yaml": MINIMAL_BUDGETS, "prompts/a.j2": IDLE})
    entry = by_path(run_cli("compress", "--format", "json", cwd=root).json())["prompts/a.j2"]
    assert entry["tokens_saved"] == 1
    assert entry["monthly_savings_usd"] is None
    assert entry["workflows"] == []


def test_text_report(project: Path, run_cli: Callable[..., Run]) -> None:
    result = run_cli("compress", cwd=project)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line}
    assert rows["prompts/answer.j2"][1:6] == ["62", "53", "9", "14.5%", "$1.08"]
    assert rows["prompts/idle.j2"][1:6] == ["10", "9", "1", "10.0%", "-"]
    assert "12 of 94 tokens saved (12.8%), $1.20 a month" in result.stdout
    assert "by pass: json 6, markdown 2, duplicates 0, whitespace 4" in result.stdout
    assert "nothing written" in result.stdout


# -- --diff -------------------------------------------------------------------------------------


def test_diff_prints_a_unified_diff_and_writes_nothing(
    project: Path, run_cli: Callable[..., Run]
) -> None:
    before = snapshot(project)
    result = run_cli("compress", "--diff", cwd=project)
    assert result.exit_code == 0, result.stderr
    assert snapshot(project) == before
    out = result.stdout
    assert "--- a/prompts/answer.j2\n+++ b/prompts/answer.j2\n@@ " in out
    assert "--- a/prompts/partials/policy.j2\n+++ b/prompts/partials/policy.j2\n@@ " in out
    assert "-------------------------------\n" in out  # the rule, removed: "-" + 30 dashes
    assert '+{"category":"billing","urgent":false}\n' in out
    assert "-Refunds    are possible within thirty days.\n" in out
    assert "+Refunds are possible within thirty days.\n" in out
    assert "a/prompts/clean.j2" not in out  # nothing to show
    changed = [line for line in out.splitlines() if line.startswith(("-", "+"))]
    assert not [line for line in changed if "model:" in line or "version:" in line]


def test_diff_in_json(project: Path, run_cli: Callable[..., Run]) -> None:
    before = snapshot(project)
    files = by_path(run_cli("compress", "--diff", "--format", "json", cwd=project).json())
    assert snapshot(project) == before
    assert files["prompts/idle.j2"]["diff"] == (
        "--- a/prompts/idle.j2\n"
        "+++ b/prompts/idle.j2\n"
        "@@ -1,5 +1,3 @@\n"
        "-Summarise   the day.\n"
        "-\n"
        "-\n"
        "+Summarise the day.\n"
        " \n"
        " Be brief.\n"
    )
    assert files["prompts/clean.j2"]["diff"] in (None, "")
    assert all(not entry["written"] for entry in files.values())


def test_diff_and_write_together_is_a_usage_error(
    project: Path, run_cli: Callable[..., Run]
) -> None:
    before = snapshot(project)
    result = run_cli("compress", "--diff", "--write", cwd=project)
    assert result.exit_code == 2
    assert result.stdout == ""
    one_error_line(result)
    assert snapshot(project) == before


# -- --write ------------------------------------------------------------------------------------


def test_write_rewrites_only_the_files_that_change(
    project: Path, run_cli: Callable[..., Run]
) -> None:
    before = snapshot(project)
    result = run_cli("compress", "--write", "--format", "json", cwd=project)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    files = by_path(result.json())
    assert {path for path, entry in files.items() if entry["written"]} == {
        "prompts/answer.j2",
        "prompts/partials/policy.j2",
        "prompts/idle.j2",
        "prompts/unused.j2",
    }
    after = snapshot(project)
    assert sorted(after) == sorted(before)  # no file added (no temporary left), none removed
    # Untouched: same bytes, same inode, same mtime.
    for path in ("budgets.yaml", "prompts/clean.j2"):
        assert after[path] == before[path], path
    assert (project / "prompts/answer.j2").read_text(encoding="utf-8") == ANSWER_SAFE
    assert (project / "prompts/partials/policy.j2").read_text(encoding="utf-8") == POLICY_SAFE
    assert (project / "prompts/idle.j2").read_text(encoding="utf-8") == IDLE_SAFE
    # The front matter is metadata: byte for byte what it was, trailing spaces included.
    assert (project / "prompts/answer.j2").read_bytes().startswith(FRONT_MATTER.encode())
    # The mode of a rewritten file is kept.
    assert after["prompts/answer.j2"][3] == before["prompts/answer.j2"][3]


def test_write_is_idempotent(project: Path, run_cli: Callable[..., Run]) -> None:
    assert run_cli("compress", "--write", cwd=project).exit_code == 0
    before = snapshot(project)
    result = run_cli("compress", "--write", "--format", "json", cwd=project)
    assert result.exit_code == 0, result.stderr
    for entry in result.json()["files"]:
        assert (entry["changed"], entry["written"], entry["tokens_saved"]) == (False, False, 0)
    assert snapshot(project) == before


def test_write_only_the_paths_given(project: Path, run_cli: Callable[..., Run]) -> None:
    before = snapshot(project)
    result = run_cli("compress", "--write", "prompts/idle.j2", "--format", "json", cwd=project)
    assert result.exit_code == 0, result.stderr
    assert [entry["path"] for entry in result.json()["files"]] == ["prompts/idle.j2"]
    after = snapshot(project)
    assert {path for path in before if after[path] != before[path]} == {"prompts/idle.j2"}


def test_keep_examples_keeps_the_first_few_shot_example(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    head = "Classify the sentiment of a review as positive or negative.\n\n"
    first = "## Example 1\nReview: The blender works great and was cheap.\nSentiment: positive\n\n"
    others = (
        "## Example 2\nReview: It broke after two days.\nSentiment: negative\n\n"
        "## Example 3\nReview: Fast shipping, lovely colour.\nSentiment: positive\n\n"
    )
    task = "## Task\nReview: {{ review }}\nSentiment:\n"
    root = make_project(
        {"budgets.yaml": MINIMAL_BUDGETS, "prompts/fewshot.j2": head + first + others + task}
    )
    result = run_cli(
        "compress",
        "--keep-examples",
        "1",
        "--pass",
        "examples",
        "--write",
        "--format",
        "json",
        cwd=root,
    )
    assert result.exit_code == 0, result.stderr
    entry = by_path(result.json())["prompts/fewshot.j2"]
    assert entry["written"]
    assert entry["tokens_saved"] == entry["passes"]["examples"] > 0
    assert (root / "prompts/fewshot.j2").read_text(encoding="utf-8") == head + first + task


def test_write_refuses_a_read_only_file(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = make_project({"budgets.yaml": MINIMAL_BUDGETS, "prompts/a.j2": IDLE})
    target = root / "prompts/a.j2"
    target.chmod(0o444)  # refused whatever the user's privileges (root included)
    before = snapshot(root)
    result = run_cli("compress", "--write", "--format", "json", cwd=root)
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "a.j2" in line
    assert line.endswith("is read-only; not written (--force writes it anyway)")
    entry = by_path(result.json())["prompts/a.j2"]
    assert (entry["changed"], entry["written"]) == (True, False)
    assert entry["error"] and "read-only" in entry["error"]
    assert snapshot(root) == before


def test_write_refuses_a_file_changed_since_it_was_read(
    make_project: Callable[..., Path],
) -> None:
    root = make_project({"budgets.yaml": MINIMAL_BUDGETS, "prompts/a.j2": IDLE})
    path = root / "prompts/a.j2"
    template = rewrite.read_template_file(path, TemplateFormat.JINJA2)
    edited = IDLE.replace("day", "week")
    info = path.stat()
    path.write_text(edited, encoding="utf-8")
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))  # same mtime: the content tells
    with pytest.raises(rewrite.WriteError, match="changed while compressing; not written"):
        rewrite.write_atomically(template, IDLE_SAFE, root=root)
    assert path.read_text(encoding="utf-8") == edited
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.j2"]


@pytest.mark.parametrize(
    ("original", "expected"),
    [
        pytest.param(
            b"Hello   world.  \r\n\r\n\r\n\r\nBye.\r\n",
            b"Hello world.\r\n\r\nBye.\r\n",
            id="crlf",
        ),
        pytest.param(
            b"\xef\xbb\xbfHello   world.\n\n\n\nBye.\n",
            b"\xef\xbb\xbfHello world.\n\nBye.\n",
            id="bom",
        ),
        pytest.param(
            b"\xef\xbb\xbf---\r\nmodel: gpt-4.1-mini  \r\n---\r\n"
            b"Hello   world.\r\n\r\n\r\nBye.\r\n",
            b"\xef\xbb\xbf---\r\nmodel: gpt-4.1-mini  \r\n---\r\nHello world.\r\n\r\nBye.\r\n",
            id="bom-crlf-front-matter",
        ),
    ],
)
def test_write_keeps_line_ends_and_byte_order_mark(
    original: bytes,
    expected: bytes,
    make_project: Callable[..., Path],
    run_cli: Callable[..., Run],
) -> None:
    root = make_project({"budgets.yaml": MINIMAL_BUDGETS, "prompts/a.j2": original})
    result = run_cli("compress", "--write", "--format", "json", cwd=root)
    assert result.exit_code == 0, result.stderr
    assert by_path(result.json())["prompts/a.j2"]["written"]
    assert (root / "prompts/a.j2").read_bytes() == expected
    # Written once, it is compressed: a second run changes nothing.
    again = by_path(run_cli("compress", "--format", "json", cwd=root).json())["prompts/a.j2"]
    assert not again["changed"]


def _symlink(link: Path, target: Path | str) -> None:
    try:
        os.symlink(target, link)
    except (OSError, NotImplementedError) as err:  # pragma: no cover - platform dependent
        pytest.skip(f"cannot create a symlink here: {err}")


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_write_refuses_a_symlink_to_a_file_outside_the_project(
    make_project: Callable[..., Path], run_cli: Callable[..., Run], tmp_path: Path
) -> None:
    root = make_project({"budgets.yaml": MINIMAL_BUDGETS, "prompts/own.j2": UNUSED})
    outside = tmp_path / "elsewhere" / "shared.j2"
    outside.parent.mkdir()
    outside.write_text(IDLE, encoding="utf-8")
    _symlink(root / "prompts/linked.j2", outside)
    outside_before = snapshot(outside.parent)

    result = run_cli("compress", "--write", "--format", "json", cwd=root)
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "linked.j2" in line
    assert "outside the project" in line and line.endswith("not written")
    files = by_path(result.json())
    assert files["prompts/linked.j2"]["written"] is False
    assert "outside the project" in files["prompts/linked.j2"]["error"]
    assert files["prompts/own.j2"]["written"] is True  # the rest still gets done
    assert snapshot(outside.parent) == outside_before
    assert (root / "prompts/linked.j2").is_symlink()
    assert os.readlink(root / "prompts/linked.j2") == str(outside)


@pytest.mark.skipif(sys.platform == "win32", reason="symlinks need privileges on Windows")
def test_write_follows_a_symlink_inside_the_project(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = make_project({"budgets.yaml": MINIMAL_BUDGETS, "shared/policy.j2": POLICY})
    link = root / "prompts/policy.j2"
    link.parent.mkdir()
    _symlink(link, "../shared/policy.j2")

    result = run_cli("compress", "--write", "--format", "json", cwd=root)
    assert result.exit_code == 0, result.stderr
    assert by_path(result.json())["prompts/policy.j2"]["written"] is True
    assert link.is_symlink()
    assert os.readlink(link) == "../shared/policy.j2"
    assert (root / "shared/policy.j2").read_text(encoding="utf-8") == POLICY_SAFE
    assert sorted(p.name for p in (root / "shared").iterdir()) == ["policy.j2"]
    assert sorted(p.name for p in link.parent.iterdir()) == ["policy.j2"]


def test_a_crash_mid_write_leaves_the_original_and_no_temporary_file(
    make_project: Callable[..., Path],
    run_cli: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = make_project({"budgets.yaml": MINIMAL_BUDGETS, "prompts/a.j2": IDLE})
    # The cache already holds what the run computes (so the one rename is the template's):
    # this test counted on an earlier test of its process having cached it.
    assert run_cli("compress", cwd=root).exit_code == 0
    before = snapshot(root)
    calls: list[tuple[str, str]] = []

    def crash(source: str, destination: str) -> None:
        calls.append((str(source), str(destination)))
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(fileio.os, "replace", crash)
    result = run_cli("compress", "--write", "--format", "json", cwd=root)
    monkeypatch.undo()

    assert len(calls) == 1, "the write must go through a rename"
    assert Path(calls[0][1]) == (root / "prompts/a.j2").resolve()
    assert Path(calls[0][0]).parent == (root / "prompts").resolve()
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "a.j2" in line and "could not be written" in line
    assert os.strerror(errno.EIO) in line
    entry = by_path(result.json())["prompts/a.j2"]
    assert entry["written"] is False
    assert snapshot(root) == before  # same bytes, inode and mtime; no temporary file


def test_a_directory_where_no_temporary_file_can_be_made(
    make_project: Callable[..., Path],
    run_cli: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = make_project({"budgets.yaml": MINIMAL_BUDGETS, "prompts/a.j2": "Hello   world.\n"})

    def denied(path: str, flags: int) -> int:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(root / "prompts"))

    monkeypatch.setattr(fileio, "_create", denied)
    result = run_cli("compress", "--write", "--format", "json", cwd=root)
    monkeypatch.undo()
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("promptbudget: error: "), result.stderr
    assert "a.j2" in lines[0]
    entry = result.json()["files"][0]
    assert (entry["written"], entry["error"] is not None) == (False, True)
    assert (root / "prompts/a.j2").read_text() == "Hello   world.\n"


def test_text_diff_shows_removed_trailing_spaces(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = make_project(
        {"budgets.yaml": MINIMAL_BUDGETS, "prompts/a.j2": "Hello world.   \nBye.\n"}
    )
    result = run_cli("compress", "--diff", cwd=root)
    assert "-Hello world.   \n+Hello world.\n" in result.stdout


def test_diff_of_a_file_without_a_final_newline(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = make_project({"budgets.yaml": MINIMAL_BUDGETS, "prompts/a.j2": "Intro.\nHello   world."})
    entry = run_cli("compress", "--diff", "--format", "json", cwd=root).json()["files"][0]
    assert entry["diff"] == (
        "--- a/prompts/a.j2\n+++ b/prompts/a.j2\n@@ -1,2 +1,2 @@\n Intro.\n"
        "-Hello   world.\n\\ No newline at end of file\n"
        "+Hello world.\n\\ No newline at end of file\n"
    )


def test_mixed_line_ends_are_kept_on_lines_not_changed(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    original = b"Hello   world.\r\nSecond line.\nThird.\r\n"
    root = make_project({"budgets.yaml": MINIMAL_BUDGETS, "prompts/a.j2": original})
    result = run_cli("compress", "--write", cwd=root)
    data = (root / "prompts/a.j2").read_bytes()
    assert data == b"Hello world.\r\nSecond line.\nThird.\r\n" or (
        result.exit_code == 2 and data == original
    )


def test_an_interrupt_mid_write_leaves_no_temporary_file(
    make_project: Callable[..., Path],
    run_cli: Callable[..., Run],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = make_project({"budgets.yaml": MINIMAL_BUDGETS, "prompts/a.j2": "Hello   world.\n"})

    def interrupted(source: str, destination: str) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio.os, "replace", interrupted)
    result = run_cli("compress", "--write", cwd=root)
    monkeypatch.undo()
    assert result.exit_code == 130
    assert sorted(p.name for p in (root / "prompts").iterdir()) == ["a.j2"]
    assert (root / "prompts/a.j2").read_text() == "Hello   world.\n"


def test_a_write_error_never_says_none(
    make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_project({"budgets.yaml": MINIMAL_BUDGETS, "prompts/a.j2": "Hello   world.\n"})
    template = rewrite.read_template_file(root / "prompts/a.j2", TemplateFormat.JINJA2)

    def fail(source: str, destination: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(fileio.os, "replace", fail)
    with pytest.raises(rewrite.WriteError) as info:
        rewrite.write_atomically(template, "Hello world.\n", root=root)
    monkeypatch.undo()
    assert "None" not in str(info.value)


def test_a_read_only_file_is_refused_even_for_root(
    make_project: Callable[..., Path], run_cli: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The permission check itself (root can write anything, so it is simulated here)."""
    root = make_project({"budgets.yaml": MINIMAL_BUDGETS, "prompts/a.j2": "Hello   world.\n"})
    real_access = os.access

    def no_write(path: Any, mode: int, **kwargs: Any) -> bool:
        if mode == os.W_OK and str(path).endswith("a.j2"):
            return False
        return real_access(path, mode, **kwargs)

    monkeypatch.setattr(fileio.os, "access", no_write)
    result = run_cli("compress", "--write", cwd=root)
    monkeypatch.undo()
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "promptbudget: error: prompts/a.j2: is read-only; not written (--force writes it anyway)"
    )
    assert (root / "prompts/a.j2").read_text() == "Hello   world.\n"


def test_a_template_that_does_not_parse_is_not_compressed(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    broken = "Hello   {{ name \n\n\n\nBye.\n"
    root = make_project({"budgets.yaml": MINIMAL_BUDGETS, "prompts/b.j2": broken})
    look = run_cli("compress", "--format", "json", cwd=root)
    assert look.exit_code == 0
    (entry,) = look.json()["files"]
    assert entry["skipped"].startswith("not compressed: Jinja2 syntax error on line 5")
    write = run_cli("compress", "--write", cwd=root)
    assert write.exit_code == 2
    assert (root / "prompts/b.j2").read_text() == broken


def test_single_quoted_strings_are_kept(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = make_project(
        {"budgets.yaml": MINIMAL_BUDGETS, "prompts/a.j2": "Reply 'OK    DONE'  now.\n"}
    )
    assert run_cli("compress", "--write", cwd=root).exit_code == 0
    assert (root / "prompts/a.j2").read_text() == "Reply 'OK    DONE' now.\n"
