"""``-`` reads a template from stdin for ``count`` and ``check``; ``--stdin-filename PATH``
says which template it stands for (its format, and the project's rules for that path)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import EXAMPLES, Run
from promptbudget.templates.source import MAX_TEMPLATE_BYTES

RunCli = Callable[..., Run]
OVER_BUDGET = EXAMPLES / "over-budget"


@pytest.fixture
def stdin(monkeypatch: pytest.MonkeyPatch) -> Callable[[bytes], io.BytesIO]:
    """Pipe ``data`` into the next run; the raw stream is returned to see how much was read."""

    def pipe(data: bytes) -> io.BytesIO:
        raw = io.BytesIO(data)
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(raw, encoding="utf-8"))
        return raw

    return pipe


TEXT = "You are a careful assistant.\nAnswer in two sentences, citing the manual.\n"


def test_count_reads_a_template_from_stdin_as_it_reads_the_same_file(
    run_cli: RunCli, stdin: Callable[[bytes], io.BytesIO], make_project: Callable[..., Path]
) -> None:
    project = make_project({"prompts/a.txt": TEXT})
    from_file = run_cli("count", "prompts/a.txt", "-m", "gpt-4o", "-f", "json", cwd=project)
    stdin(TEXT.encode())
    piped = run_cli("count", "-", "-m", "gpt-4o", "-f", "json", cwd=project)
    assert piped.exit_code == 0, piped.stderr
    [counted] = piped.json()["templates"]
    [expected] = from_file.json()["templates"]
    assert counted["path"] == "<stdin>"
    assert counted["text_tokens"] == expected["text_tokens"] > 10
    assert counted["request_tokens"] == expected["request_tokens"]
    # the text report names it too
    stdin(TEXT.encode())
    text = run_cli("count", "-", "-m", "gpt-4o", cwd=project).stdout
    assert text.splitlines()[1].split()[:3] == ["<stdin>", expected["format"], "gpt-4o"]


def test_stdin_and_files_together(
    run_cli: RunCli, stdin: Callable[[bytes], io.BytesIO], make_project: Callable[..., Path]
) -> None:
    project = make_project({"prompts/a.txt": TEXT})
    stdin(b"Short.\n")
    result = run_cli("count", "prompts/a.txt", "-", "-f", "json", cwd=project)
    assert [t["path"] for t in result.json()["templates"]] == ["prompts/a.txt", "<stdin>"]


def test_stdin_filename_decides_the_format_and_the_name(
    run_cli: RunCli, stdin: Callable[[bytes], io.BytesIO], make_project: Callable[..., Path]
) -> None:
    prompty = "---\nname: x\nmodel:\n  configuration: {type: openai}\n---\nsystem:\nBe brief.\n"
    project = make_project({"budgets.yaml": "version: 1\ndefaults: {model: gpt-4o}\n"})
    stdin(prompty.encode())
    result = run_cli(
        "count", "-", "--stdin-filename", "prompts/x.prompty", "-f", "json", cwd=project
    )
    assert result.exit_code == 0, result.stderr
    [counted] = result.json()["templates"]
    assert (counted["path"], counted["format"]) == ("prompts/x.prompty", "prompty")
    assert [m["role"] for m in counted["messages"]] == ["system"]
    assert not (project / "prompts").exists()  # a name only: nothing is read or written there


def test_the_projects_rules_for_that_path_apply(
    run_cli: RunCli, stdin: Callable[[bytes], io.BytesIO], make_project: Callable[..., Path]
) -> None:
    manifest = (
        "version: 1\ndefaults: {model: gpt-4o}\n"
        "templates:\n  'prompts/*.j2': {max_tokens: 10}\n"
        "per_file_ignores:\n  'prompts/quiet/': [PB201]\n"
    )
    project = make_project({"budgets.yaml": manifest, "prompts/other.j2": "Hi.\n"})
    stdin(TEXT.encode())  # 14 tokens, over the 10 of prompts/*.j2
    over = run_cli("check", "-", "--stdin-filename", "prompts/new.j2", "-f", "json", cwd=project)
    assert over.exit_code == 1
    assert [(f["rule"], f["path"]) for f in over.json()["findings"]] == [
        ("PB111", "prompts/new.j2")
    ]
    stdin(TEXT.encode())
    elsewhere = run_cli("check", "-", "--stdin-filename", "notes/new.j2", "-f", "json", cwd=project)
    assert elsewhere.exit_code == 0
    stdin(b"Hello {{ name }}\n")
    ignored = run_cli("check", "-", "--stdin-filename", "prompts/quiet/a.md", cwd=project)
    assert ignored.exit_code == 0 and "PB201" not in ignored.stdout
    stdin(b"Hello {{ name }}\n")
    named = run_cli("check", "-", "--stdin-filename", "prompts/a.md", cwd=project)
    assert named.exit_code == 1 and "prompts/a.md:1: PB201" in named.stdout


def test_check_judges_the_piped_text_in_place_of_the_file(
    run_cli: RunCli, stdin: Callable[[bytes], io.BytesIO]
) -> None:
    answer = "prompts/support/answer.prompty"
    on_disk = run_cli("check", answer, "-f", "json", cwd=OVER_BUDGET)
    assert "PB101" in {f["rule"] for f in on_disk.json()["findings"]}
    text = (OVER_BUDGET / answer).read_text(encoding="utf-8")
    head = text[: text.index("\n", 600)] + "\n"  # the front matter and a short prompt
    stdin(head.encode())
    piped = run_cli("check", "-", "--stdin-filename", answer, "-f", "json", cwd=OVER_BUDGET)
    report = piped.json()
    assert "PB101" not in {f["rule"] for f in report["findings"]}
    [workflow] = report["workflows"]
    assert workflow["name"] == "support-reply"
    [template] = [t for t in report["templates"] if t["path"] == answer]
    assert template["text_tokens"] < 300
    assert (OVER_BUDGET / answer).read_text(encoding="utf-8") == text  # never written


def test_the_read_is_bounded_by_the_template_size_limit(
    run_cli: RunCli, stdin: Callable[[bytes], io.BytesIO], make_project: Callable[..., Path]
) -> None:
    project = make_project({"prompts/a.txt": TEXT})
    raw = stdin(b"a" * (MAX_TEMPLATE_BYTES + 100_000))
    result = run_cli("count", "-", "-f", "json", cwd=project)
    assert result.exit_code == 1
    assert raw.tell() == MAX_TEMPLATE_BYTES + 1  # not read to the end
    [finding] = result.json()["findings"]
    assert finding["path"] == "<stdin>"
    assert "larger than the 2 MB limit for a prompt template" in finding["message"]
    stdin(b"a" * MAX_TEMPLATE_BYTES)  # at the limit: counted
    assert run_cli("count", "-", "-f", "json", cwd=project).json()["findings"] == []


def test_stdin_filename_without_dash_is_a_usage_error(
    run_cli: RunCli, make_project: Callable[..., Path]
) -> None:
    project = make_project({"prompts/a.txt": TEXT})
    result = run_cli("count", "--stdin-filename", "a.j2", "prompts", cwd=project)
    assert result.exit_code == 2
    assert result.stderr == (
        "promptbudget: error: --stdin-filename names the template read from stdin; pass - too\n"
    )


def test_stdin_is_named_the_same_from_a_subdirectory(
    run_cli: RunCli, stdin: Callable[[bytes], io.BytesIO], make_project: Callable[..., Path]
) -> None:
    project = make_project({"budgets.yaml": "version: 1\n", "prompts/a.txt": TEXT})
    stdin(b"Hello {{ who }}\n")
    result = run_cli("count", "-", "-f", "json", cwd=project / "prompts")
    assert [t["path"] for t in result.json()["templates"]] == ["<stdin>"]
    assert {f["path"] for f in result.json()["findings"]} == {"<stdin>"}
    stdin(TEXT.encode())
    named = run_cli("count", "-", "--stdin-filename", "b.j2", "-f", "json", cwd=project / "prompts")
    assert [t["path"] for t in named.json()["templates"]] == ["b.j2"]  # relative to the cwd


def test_a_run_reading_stdin_is_never_replayed_from_a_memo(
    make_project: Callable[..., Path],
) -> None:
    """The launcher replays a run whose files did not change (run memos); what stdin held
    is no file, so such a run is always run."""
    project = make_project({"budgets.yaml": "version: 1\n", "prompts/a.txt": TEXT})
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    counted = []
    for text in ("Short.\n", TEXT, "Short.\n"):
        done = subprocess.run(
            [sys.executable, "-m", "promptbudget", "count", "-", "-f", "json"],
            input=text,
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        counted.append(json.loads(done.stdout)["templates"][0]["text_tokens"])
    assert counted[0] == counted[2] < counted[1]
