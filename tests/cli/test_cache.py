"""The content-hash cache (.promptbudget_cache/): a cached run gives exactly what a
``--no-cache`` run gives, whatever changed; a broken, foreign or hostile cache is ignored."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import POLICY, Run, check_report
from promptbudget import cache
from promptbudget.cache import CACHE_DIR_NAME
from promptbudget.templates.rendercache import unpacked
from promptbudget.tokenizers import get_tokenizer, load_encoding

RunCli = Callable[..., Run]

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
    """,
    "prompts/partials/tone.j2": "Be kind, concise and exact.\n",
    "prompts/other.j2": "Summarise {{ question }} in one line.\n",
}


@pytest.fixture
def project(make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PROMPTBUDGET_CACHE_DIR")  # the cache in the project, as users have it
    return make_project(FILES)


def entries(root: Path) -> dict[str, Any]:
    """Every entry in the cache's shard files (each: an HMAC line, then JSON)."""
    found: dict[str, Any] = {}
    for shard in (root / CACHE_DIR_NAME).glob("*/*.json"):
        found.update(json.loads(shard.read_bytes().partition(b"\n")[2]))
    return found


def assert_same_as_uncached(run_cli: RunCli, root: Path, *extra: str) -> dict[str, Any]:
    cached = check_report(run_cli, root, *extra)
    assert cached == check_report(run_cli, root, "--no-cache", *extra)
    return cached


def test_a_second_run_is_answered_from_the_cache(run_cli: RunCli, project: Path) -> None:
    first = check_report(run_cli, project)
    stored = entries(project)
    assert stored, "the first run fills the cache"
    assert (project / CACHE_DIR_NAME / ".gitignore").read_text(encoding="utf-8").endswith("*\n")
    assert check_report(run_cli, project) == first
    assert entries(project) == stored  # nothing new: every count and simulation was a hit


def test_cache_shards_and_run_memos_are_not_flushed_to_disk_a_users_file_is(
    run_cli: RunCli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shard or memo is signed, so one a power loss left torn is ignored and rebuilt: its
    write skips ``fsync`` (milliseconds each, several a run). A file of the user's is
    flushed, and so is the cache's key (written once, never checked)."""
    from promptbudget import fileio

    flushed: list[str] = []
    real = os.fsync

    def fsync(descriptor: int) -> None:
        flushed.append(os.readlink(f"/proc/self/fd/{descriptor}"))
        real(descriptor)

    check_report(run_cli, project)  # the key and .gitignore exist from here on
    stored = entries(project)
    memos = {memo: memo.read_bytes() for memo in (project / CACHE_DIR_NAME).glob("run-*")}
    (project / "prompts/other.j2").write_text("Summarise {{ question }}.\n", encoding="utf-8")
    monkeypatch.setattr(fileio.os, "fsync", fsync)
    check_report(run_cli, project)
    assert entries(project).keys() > stored.keys(), "the run wrote new entries"
    assert memos and all(memo.read_bytes() != data for memo, data in memos.items()), "a memo"
    assert flushed == []
    loose = project / "prompts/loose.j2"
    loose.write_text("Hello   world.\n\n\n\nBye.\n", encoding="utf-8")
    assert run_cli("compress", "--write", "prompts/loose.j2", cwd=project).exit_code == 0
    assert loose.read_text(encoding="utf-8") == "Hello world.\n\nBye.\n"
    temporary = f"{loose.parent}{os.sep}.loose.j2."  # the new bytes, before the rename
    assert any(path.startswith(temporary) for path in flushed), flushed
    assert str(loose.parent) in flushed


def test_a_fully_cached_run_builds_no_encoding(run_cli: RunCli, project: Path) -> None:
    check_report(run_cli, project)
    get_tokenizer.cache_clear()  # a new process: no tokenizer, no encoding built yet
    load_encoding.cache_clear()
    check_report(run_cli, project)
    assert load_encoding.cache_info().currsize == 0
    check_report(run_cli, project, "--no-cache")
    assert load_encoding.cache_info().currsize == 1


@pytest.mark.parametrize(
    ("path", "old", "new"),
    [
        ("prompts/answer.j2", "Answer the question", "Answer, in French, the question"),
        ("prompts/partials/tone.j2", "kind", "kind, warm"),
        ("prompts/answer.j2", "Ada Lovelace", "Grace Brewster Murray Hopper"),
        ("budgets.yaml", "{max_tokens: 200}", "{max_tokens: 2000}"),
        ("budgets.yaml", "{p50: 200, p95: 800}", "{p50: 200, p95: 3000}"),
        ("budgets.yaml", "defaults: {model: gpt-4.1-mini}", "defaults: {model: gpt-4}"),
    ],
    ids=["template", "partial", "sample", "variable-cap", "distribution", "tokenizer"],
)
def test_a_change_gives_the_numbers_an_uncached_run_gives(
    run_cli: RunCli, project: Path, path: str, old: str, new: str
) -> None:
    before = check_report(run_cli, project)
    stored = entries(project)
    target = project / path
    target.write_text(target.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    after = assert_same_as_uncached(run_cli, project)
    assert after != before
    added = entries(project).keys() - stored.keys()
    if path == "budgets.yaml" and "model" in old:
        # Another encoding for every template: every token count is counted again.
        now = entries(project)

        def counts(keys: object, values: dict[str, Any]) -> int:
            return sum(1 for k in keys if type(values[k]) is int)  # type: ignore[attr-defined]

        assert counts(added, now) >= counts(stored, stored)
    else:
        # Only what changed is new: other.j2's counts (and, unless the change reaches it,
        # the "other" workflow's simulation) were hits.
        assert 0 < len(added) < len(stored)


def test_the_price_file_invalidates_the_simulation(run_cli: RunCli, project: Path) -> None:
    prices = project / "prices.json"
    entry = {"litellm_provider": "openai", "mode": "chat", "max_output_tokens": 32768}
    rates = {"input_cost_per_token": 4e-07, "output_cost_per_token": 1.6e-06}
    prices.write_text(json.dumps({"gpt-4.1-mini": {**entry, **rates}}), encoding="utf-8")
    before = check_report(run_cli, project, "--prices", "prices.json")
    stored = entries(project)
    rates["output_cost_per_token"] = 9e-06
    prices.write_text(json.dumps({"gpt-4.1-mini": {**entry, **rates}}), encoding="utf-8")
    after = assert_same_as_uncached(run_cli, project, "--prices", "prices.json")
    assert after["workflows"] != before["workflows"]
    now = entries(project)
    added = [key for key in now.keys() - stored.keys() if not _is_file_check(now[key])]
    # the two workflows' simulations; no text was counted again (each file's evaluation is
    # kept again: the price file is part of its context, filecache.py)
    assert len(added) == 2


def _is_file_check(value: Any) -> bool:
    """A template's whole evaluation (filecache.py): [context, packed files and probes,
    packed value]."""
    if not (isinstance(value, list) and len(value) == 3):
        return False
    try:
        return unpacked(value[1]).keys() == {"f", "p"} and unpacked(value[2]).keys() == {"v", "b"}
    except (ValueError, TypeError):
        return False


@pytest.mark.parametrize("damage", ["truncated", "garbage", "forged", "directory", "empty"])
def test_a_broken_or_foreign_cache_file_is_ignored(
    run_cli: RunCli, project: Path, damage: str
) -> None:
    expected = check_report(run_cli, project, "--no-cache")
    check_report(run_cli, project)
    for shard in (project / CACHE_DIR_NAME).glob("*/*.json"):
        data = shard.read_bytes()
        if damage == "truncated":
            shard.write_bytes(data[: len(data) // 2])
        elif damage == "garbage":
            shard.write_bytes(b"\x00\xff not a shard")
        elif damage == "empty":
            shard.write_bytes(b"")
        elif damage == "directory":
            shard.unlink()
            shard.mkdir()
        else:  # entries rewritten to 1 token each, signed with another key
            body = json.dumps(
                {
                    key: 1 if isinstance(value, int) else value
                    for key, value in json.loads(data.partition(b"\n")[2]).items()
                }
            ).encode()
            shard.write_bytes(b"0" * 64 + b"\n" + body)
    run = run_cli("check", "--format", "json", cwd=project)
    assert run.json() == expected
    assert run.stderr == ""


def test_a_symlinked_cache_outside_the_project_is_not_used(
    run_cli: RunCli, project: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (project / CACHE_DIR_NAME).symlink_to(outside, target_is_directory=True)
    expected = check_report(run_cli, project, "--no-cache")
    run = run_cli("check", "--format", "json", cwd=project)
    assert run.json() == expected
    assert list(outside.iterdir()) == []
    assert run.stderr.count("\n") == 1 and "warning" in run.stderr and "symlink" in run.stderr


def test_the_cache_dir_can_be_moved(
    run_cli: RunCli, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    moved = tmp_path / "ci-cache"
    monkeypatch.setenv("PROMPTBUDGET_CACHE_DIR", str(moved))
    check_report(run_cli, project)
    assert not (project / CACHE_DIR_NAME).exists()
    assert list(moved.glob("*/*.json"))


def test_two_concurrent_checks_both_succeed_and_leave_a_valid_cache(project: Path) -> None:
    command = [sys.executable, "-m", "promptbudget", "check", "--format", "json"]
    env = {**os.environ, "NO_COLOR": "1"}
    runs = [
        subprocess.Popen(command, cwd=project, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate()[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0]
    assert outputs[0] == outputs[1]
    stored = entries(project)
    again = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    assert again.stdout == outputs[0]
    assert entries(project) == stored


def test_a_manifest_validated_before_is_not_validated_again(project: Path) -> None:
    """The second run does not even import jsonschema; a manifest made invalid since is
    still refused."""
    script = (
        "import sys; from promptbudget.cli import main; code = main(['check', '--format', "
        "'json']); print(code, 'jsonschema' in sys.modules, file=sys.stderr)"
    )
    command = [sys.executable, "-c", script]
    first = subprocess.run(command, cwd=project, capture_output=True, text=True)
    assert first.stderr.split()[-2:] == ["0", "True"]
    second = subprocess.run(command, cwd=project, capture_output=True, text=True)
    assert second.stderr.split()[-2:] == ["0", "False"]
    manifest = project / "budgets.yaml"
    manifest.write_text(
        manifest.read_text(encoding="utf-8").replace("version: 1", "version: 1\nbogus: 2"),
        encoding="utf-8",
    )
    third = subprocess.run(command, cwd=project, capture_output=True, text=True)
    assert "unknown key 'bogus'" in third.stderr
    assert third.stderr.split()[-2:] == ["2", "True"]


@pytest.mark.parametrize("named", [(), ("prompts/answer.j2",)], ids=["check", "check PATH"])
def test_an_engines_setting_alone_gives_what_an_uncached_run_gives(
    run_cli: RunCli, project: Path, named: tuple[str, ...]
) -> None:
    """``engines:`` decides how a generic file is read: as a Semantic Kernel prompt, a
    leading ``---`` block is front matter, as Jinja2 (what its content shows) it is text. So
    what PB204 takes from the file (its paragraphs' fingerprints, kept by ``check PATH``)
    changes while its bytes do not."""
    (project / "prompts/notes.md").write_text(
        f"---\n\n{POLICY}\n\n---\nHello {{{{ question }}}}.\n", encoding="utf-8"
    )
    answer = project / "prompts/answer.j2"
    answer.write_text(f"{answer.read_text(encoding='utf-8')}\n{POLICY}\n", encoding="utf-8")
    before = assert_same_as_uncached(run_cli, project, *named)
    assert copies(before) == ["prompts/notes.md:3"]  # PB204: the policy is copied there
    manifest = project / "budgets.yaml"
    engines = 'engines:\n  "prompts/*.md": semantic-kernel\n'
    manifest.write_text(manifest.read_text(encoding="utf-8") + engines, encoding="utf-8")
    after = assert_same_as_uncached(run_cli, project, *named)
    assert copies(after) == []


def copies(report: dict[str, Any]) -> list[str]:
    """Where PB204 says answer.j2's passages are copied."""
    return [
        place
        for finding in report["findings"]
        if finding["rule"] == "PB204" and finding["path"] == "prompts/answer.j2"
        for place in re.findall(r"prompts/[\w./]+:\d+", finding["message"])
    ]


def _wrong_entries(directory: Path) -> dict[str, Any]:
    """Every entry of the shards in ``directory``'s version directory, each token count made
    1 (a wrong answer, were it read), the shards then deleted."""
    wrong: dict[str, Any] = {}
    shards = list((directory / cache.SHARD_DIR).glob("*.json"))
    assert shards
    for shard in shards:
        assert re.fullmatch(r"[0-3][0-9a-f]\.json", shard.name)
        for key, value in json.loads(shard.read_bytes().partition(b"\n")[2]).items():
            wrong[key] = 1 if isinstance(value, int) else value
        shard.unlink()
    assert 1 in wrong.values()  # token counts, made wrong
    for memo in directory.glob("run-*"):
        memo.unlink()  # else the run memo answers before the cache is opened
    return wrong


def _write_signed(path: Path, entries: dict[str, Any]) -> None:
    """``entries`` as a shard signed with the user's real key."""
    secret = cache._read_secret(cache._user_cache_dir() / "cache-key")
    assert secret is not None
    body = json.dumps(entries).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cache._sign(body, secret) + b"\n" + body)


def _write_shards(directory: Path, entries: dict[str, Any]) -> list[str]:
    """``entries`` in ``directory`` as the store lays them out (each in its shard); the
    names of the files written."""
    shards: dict[str, dict[str, Any]] = {}
    for key, value in entries.items():
        shards.setdefault(cache._shard_name(key), {})[key] = value
    for name, held in shards.items():
        _write_signed(directory / f"{name}.json", held)
    return sorted(f"{name}.json" for name in shards)


def test_the_shards_of_the_earlier_layout_are_not_read_and_are_removed(
    run_cli: RunCli, project: Path
) -> None:
    """Before session 7 the entries lived in 16 shards beside the run memos (``0.json`` to
    ``f.json``, by the first hex digit of the key). Such shards, signed with the right key
    but holding wrong counts, are never read (the report is the one ``--no-cache`` gives,
    with no warning), and the next run that writes the cache removes them."""
    expected = check_report(run_cli, project, "--no-cache")
    check_report(run_cli, project)
    directory = project / CACHE_DIR_NAME
    old: dict[str, dict[str, Any]] = {}
    for key, value in _wrong_entries(directory).items():
        old.setdefault(key[:1], {})[key] = value
    for name, wrong in old.items():
        _write_signed(directory / f"{name}.json", wrong)
    run = run_cli("check", "--format", "json", cwd=project)
    assert (run.json(), run.stderr) == (expected, "")
    assert not list(directory.glob("*.json"))
    assert list((directory / cache.SHARD_DIR).glob("*.json"))
    assert check_report(run_cli, project) == expected


def test_another_versions_shards_are_not_read(run_cli: RunCli, project: Path) -> None:
    """Each version keeps its entries in its own directory: shards in another one (here
    holding this version's keys with wrong counts) are not read, and are left alone."""
    expected = check_report(run_cli, project, "--no-cache")
    check_report(run_cli, project)
    directory = project / CACHE_DIR_NAME
    other = directory / "0.0.9-1"
    written = _write_shards(other, _wrong_entries(directory))
    run = run_cli("check", "--format", "json", cwd=project)
    assert (run.json(), run.stderr) == (expected, "")
    assert sorted(path.name for path in other.iterdir()) == written
    assert list((directory / cache.SHARD_DIR).glob("*.json"))


def test_a_symlinked_version_directory_is_neither_read_nor_written(
    run_cli: RunCli, project: Path, tmp_path: Path
) -> None:
    """A cache committed to a pull request could hold the version directory as a symlink to
    anywhere: shards there are not read, and nothing is written through it."""
    expected = check_report(run_cli, project, "--no-cache")
    check_report(run_cli, project)
    directory = project / CACHE_DIR_NAME
    outside = tmp_path / "outside"
    outside.mkdir()
    written = _write_shards(outside, _wrong_entries(directory))
    (directory / cache.SHARD_DIR).rmdir()
    (directory / cache.SHARD_DIR).symlink_to(outside, target_is_directory=True)
    for _ in range(2):
        run = run_cli("check", "--format", "json", cwd=project)
        assert (run.json(), run.stderr) == (expected, "")
    assert sorted(path.name for path in outside.iterdir()) == written  # nothing added
