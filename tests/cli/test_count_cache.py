"""``count`` keeps each file's results in the content cache (filecache.py, kind ``COUNT``): a
warm run evaluates nothing, builds no encoding and prints the bytes a ``--no-cache`` run
prints; whatever changed (the file, a partial it includes, a sample file, the manifest,
``--model``, a price file, a tokenizer file) gives what a ``--no-cache`` run gives; a
``check`` entry never answers ``count`` nor the other way round; how a file is named (walked
from a directory, named alone) is part of its key; a damaged cache is a miss."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Run, check_report, edit_text, templates_passed
from promptbudget import evaluation
from promptbudget.cache import CACHE_DIR_NAME, flush_caches, open_cache
from promptbudget.commands import count
from promptbudget.templates.rendercache import packed, unpacked
from promptbudget.tokenizers import load_encoding

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
    """,
    "prompts/answer.j2": """\
        ---
        sample: {customer: Ada Lovelace}
        ---
        system:
        You help customers. {% include "partials/tone.j2" %}
        user:
        Hello {{ customer }}. Answer: {{ question }}
    """,
    "prompts/partials/tone.j2": "Be kind, concise and exact.\n",
    "prompts/ask.prompty": """\
        ---
        name: ask
        sample: ask.json
        ---
        system:
        Answer {{ person }} about {{ topic }}.
    """,
    "prompts/ask.json": '{"person": "Ada", "topic": "engines"}\n',
    "prompts/plain.txt": "Summarise the ticket below in two sentences.\n",
}
EVERY_FILE = {"prompts/answer.j2", "prompts/partials/tone.j2", "prompts/ask.prompty"}


@pytest.fixture
def project(make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PROMPTBUDGET_CACHE_DIR")  # the cache in the project, as users have it
    return make_project(FILES)


@pytest.fixture
def evaluated(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The templates ``count`` evaluated (rendered and counted), by display path."""
    yield templates_passed(monkeypatch, count, "evaluate_template", 1)


def counted(run_cli: RunCli, root: Path, *args: str) -> str:
    """``promptbudget count ARGS --format json`` run in ``root``: its output, as printed."""
    run = run_cli("count", *args, "--format", "json", cwd=root)
    assert run.exit_code in (0, 1), run.stderr
    assert run.stderr == ""
    return run.stdout


def same_as_uncached(run_cli: RunCli, root: Path, *args: str) -> str:
    """A cached run's output, asserted byte for byte what a ``--no-cache`` run prints."""
    cached = counted(run_cli, root, *args)
    assert cached == counted(run_cli, root, "--no-cache", *args)
    return cached


def test_a_warm_count_prints_the_same_bytes_and_evaluates_nothing(
    run_cli: RunCli, project: Path, evaluated: list[str]
) -> None:
    cold = counted(run_cli, project)
    assert set(evaluated) >= EVERY_FILE
    assert not (project / CACHE_DIR_NAME).exists() or list(_count_entries(project))
    evaluated.clear()
    load_encoding.cache_clear()
    warm = counted(run_cli, project)
    assert evaluated == []
    assert load_encoding.cache_info().currsize == 0  # no encoding built
    assert warm == cold
    assert warm == counted(run_cli, project, "--no-cache")
    assert len(json.loads(warm)["templates"]) == 5


def test_no_cache_neither_reads_nor_keeps(
    run_cli: RunCli, project: Path, evaluated: list[str]
) -> None:
    counted(run_cli, project, "--no-cache")
    assert list(_count_entries(project)) == []
    evaluated.clear()
    counted(run_cli, project)
    assert set(evaluated) >= EVERY_FILE
    evaluated.clear()
    counted(run_cli, project, "--no-cache")
    assert set(evaluated) >= EVERY_FILE


def test_a_template_piped_in_is_never_kept(
    run_cli: RunCli, project: Path, evaluated: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``count -`` (with files or alone) is not recorded: nothing it counts is kept or
    looked up, the files named beside it included."""
    for _ in range(2):
        raw = io.BytesIO(b"Answer {{ question }} briefly.\n")
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(raw, encoding="utf-8"))
        evaluated.clear()
        run = run_cli("count", "-", "prompts/plain.txt", "--format", "json", cwd=project)
        assert run.exit_code == 0, run.stderr
        assert sorted(evaluated) == ["<stdin>", "prompts/plain.txt"]
    assert list(_count_entries(project)) == []


@pytest.mark.parametrize(
    ("change", "again"),
    [
        (("prompts/answer.j2", "You help", "You, an agent, help"), {"prompts/answer.j2"}),
        (("prompts/partials/tone.j2", "kind", "kind, warm"), None),
        (
            ("prompts/ask.json", "engines", "analytical engines"),
            {"prompts/ask.json", "prompts/ask.prompty"},  # a data prompt itself too
        ),
        (("budgets.yaml", "{max_tokens: 200}", "{max_tokens: 900}"), None),
        (("budgets.yaml", "{model: gpt-4.1-mini}", "{model: gpt-4}"), None),
    ],
    ids=["template", "partial", "sample-file", "variable-cap", "default-model"],
)
def test_a_change_gives_what_an_uncached_run_gives(
    run_cli: RunCli,
    project: Path,
    evaluated: list[str],
    change: tuple[str, str, str],
    again: set[str] | None,
) -> None:
    before = counted(run_cli, project)
    edit_text(project / change[0], change[1], change[2])
    evaluated.clear()
    after = same_as_uncached(run_cli, project)
    assert after != before
    if again is not None:  # only the file whose inputs changed (then the --no-cache run)
        assert evaluated[: len(again)] == sorted(again) and len(evaluated) == len(again) + 5
    else:
        assert "prompts/answer.j2" in evaluated[: len(evaluated) - 5]


def test_an_edited_partial_evaluates_again_only_what_includes_it(
    run_cli: RunCli, project: Path, evaluated: list[str]
) -> None:
    counted(run_cli, project)
    edit_text(project / "prompts/partials/tone.j2", "kind", "kind, warm")
    evaluated.clear()
    counted(run_cli, project)
    assert sorted(evaluated) == ["prompts/answer.j2", "prompts/partials/tone.j2"]


def test_the_models_asked_for_are_part_of_the_key(
    run_cli: RunCli, project: Path, evaluated: list[str]
) -> None:
    mini = counted(run_cli, project)
    other = same_as_uncached(run_cli, project, "--model", "claude-sonnet-4-6")
    both = same_as_uncached(run_cli, project, "--model", "gpt-4.1-mini,claude-sonnet-4-6")
    assert len({mini, other, both}) == 3
    evaluated.clear()
    assert counted(run_cli, project, "--model", "gpt-4.1-mini,claude-sonnet-4-6") == both
    assert evaluated == []


def test_a_price_file_is_part_of_the_key(
    run_cli: RunCli, project: Path, evaluated: list[str]
) -> None:
    """A model only the price file knows is counted with its provider's tokenizer: the
    provider changed, every count changes."""
    prices = project / "prices.json"
    entry = {"mode": "chat", "input_cost_per_token": 4e-07, "output_cost_per_token": 1.6e-06}

    def write(provider: str) -> None:
        prices.write_text(
            json.dumps({"acme-chat": {**entry, "litellm_provider": provider}}), encoding="utf-8"
        )

    args = ("--prices", "prices.json", "--model", "acme-chat")
    write("openai")
    before = same_as_uncached(run_cli, project, *args)
    write("anthropic")
    evaluated.clear()
    after = counted(run_cli, project, *args)
    assert set(evaluated) >= EVERY_FILE
    assert after != before
    assert after == counted(run_cli, project, "--no-cache", *args)


def test_a_tokenizer_file_is_part_of_the_key(project: Path) -> None:
    """Run as the console script (a tokenizer file is registered once a process)."""
    tokenizers = pytest.importorskip("tokenizers", reason="the tokenizers extra is not installed")
    from tokenizers import models, pre_tokenizers, trainers

    def train(text: str) -> None:
        tokenizer = tokenizers.Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        alphabet = pre_tokenizers.ByteLevel.alphabet()
        trainer = trainers.BpeTrainer(initial_alphabet=alphabet, show_progress=False)
        tokenizer.train_from_iterator([text] * 20, trainer=trainer)
        tokenizer.save(str(project / "tokenizers/acme.json"))

    def count_json(*args: str) -> str:
        command = [sys.executable, "-m", "promptbudget", "count", "--format", "json", *args]
        env = {**os.environ, "NO_COLOR": "1"}
        done = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    (project / "tokenizers").mkdir()
    train("Summarise the ticket below in two sentences.")
    edit_text(
        project / "budgets.yaml",
        "version: 1\n",
        "version: 1\nmodels:\n  acme-llama:\n    tokenizer: tokenizers/acme.json\n"
        "    input_per_mtok: 0.20\n    output_per_mtok: 0.60\n",
    )
    before = count_json("--model", "acme-llama")
    assert before == count_json("--model", "acme-llama")
    train("Answer the customer about engines.")
    after = count_json("--model", "acme-llama")
    assert after != before
    assert after == count_json("--model", "acme-llama", "--no-cache")


def test_check_and_count_entries_never_answer_each_other(
    run_cli: RunCli, project: Path, evaluated: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    checked = templates_passed(monkeypatch, evaluation, "evaluate_template", 1)
    first_check = check_report(run_cli, project)
    assert set(checked) >= EVERY_FILE
    evaluated.clear()
    first_count = counted(run_cli, project)
    assert set(evaluated) >= EVERY_FILE  # the check's entries did not answer
    checked.clear()
    evaluated.clear()
    assert check_report(run_cli, project) == first_check
    assert counted(run_cli, project) == first_count
    assert checked == [] and evaluated == []  # each kept its own
    assert first_count == counted(run_cli, project, "--no-cache")


def test_a_file_named_alone_is_not_answered_by_its_walked_entry(
    run_cli: RunCli, project: Path, evaluated: list[str], tmp_path: Path
) -> None:
    """Walked from a directory, a file is confined to it; named alone, it is read wherever
    it points: a separate context. A file outside the project walked from a directory
    includes only from inside it: the directory is part of its context too."""
    (project / "prompts/sub").mkdir()
    (project / "prompts/sub/ask.prompty").write_text(
        "---\nname: ask\nsample: ../ask.json\n---\nsystem:\nAsk {{ person }}.\n", "utf-8"
    )
    walked = json.loads(counted(run_cli, project))["templates"]
    evaluated.clear()
    alone = same_as_uncached(run_cli, project, "prompts/sub/ask.prompty")
    assert evaluated[:1] == ["prompts/sub/ask.prompty"]
    # walked, its sample file (in the project, outside its directory) is read; named alone,
    # it is confined to its own directory
    assert json.loads(alone)["templates"][0] not in walked
    evaluated.clear()
    assert counted(run_cli, project, "prompts/sub/ask.prompty") == alone
    assert evaluated == []
    # outside the project, a file walked from a directory includes only from inside it
    outside = tmp_path / "elsewhere"
    (outside / "sub").mkdir(parents=True)
    (outside / "sub/outside.j2").write_text('{% include "link.txt" %} Hi.\n', "utf-8")
    (outside / "shared.md").write_text("Be brief and kind and polite.\n", "utf-8")
    (outside / "sub/link.txt").symlink_to("../shared.md")
    wide = json.loads(same_as_uncached(run_cli, project, str(outside)))["templates"]
    narrow = json.loads(same_as_uncached(run_cli, project, str(outside / "sub")))["templates"]
    shown = "../elsewhere/sub/outside.j2"
    assert [t for t in wide if t["path"] == shown] != [t for t in narrow if t["path"] == shown]
    edit_text(outside / "shared.md", "brief", "very brief")
    assert json.loads(same_as_uncached(run_cli, project, str(outside)))["templates"] != wide


def _count_entries(project: Path) -> Iterator[tuple[Any, str, str, dict[str, Any]]]:
    """(store, key, context, entry) of each file's kept count: [context, packed files and
    probes, packed value and what is kept beside it], the entry their union."""
    if not (project / CACHE_DIR_NAME).exists():
        return
    store = open_cache(project, enabled=True)
    assert store is not None
    store.load_all()
    for shard in store._shards.values():
        for key, value in list(shard.items()):
            if not (isinstance(value, list) and len(value) == 3):
                continue
            try:
                entry = {**unpacked(value[1]), **unpacked(value[2])}
            except (ValueError, TypeError):
                continue
            # a FileCount is [results, released]; a check's FileCheck has five fields
            if entry.keys() == {"f", "p", "v", "b"} and len(entry["v"]) == 2:
                yield store, key, value[0], entry


@pytest.mark.parametrize("damage", ["results", "files", "probes"])
def test_a_damaged_entry_is_a_miss(
    run_cli: RunCli, project: Path, evaluated: list[str], damage: str
) -> None:
    """Entries signed by this machine whose value is not what filecache wrote: each file is
    counted again, with the same result."""
    first = counted(run_cli, project)
    found = 0
    for store, key, context, entry in list(_count_entries(project)):
        if damage == "results":
            entry["v"] = [[[1, 2]], "not suppressions"]
        elif damage == "files":
            entry["f"] = {
                name: [dep[0], "0" * len(dep[1]), dep[2]] for name, dep in entry["f"].items()
            }
        else:
            entry["p"] = {str(project / "nothing"): "file"}
        used = packed({"f": entry["f"], "p": entry["p"]})
        store.put(key, [context, used, packed({"v": entry["v"], "b": entry["b"]})])
        found += 1
    assert found == 5
    flush_caches()
    evaluated.clear()
    assert counted(run_cli, project) == first
    assert set(evaluated) >= EVERY_FILE


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_broken_cache_file_is_ignored(run_cli: RunCli, project: Path, damage: str) -> None:
    expected = counted(run_cli, project, "--no-cache")
    counted(run_cli, project)
    shards = list((project / CACHE_DIR_NAME).glob("*/*.json"))
    assert shards
    for shard in shards:
        data = shard.read_bytes()
        if damage == "truncated":
            shard.write_bytes(data[: len(data) // 2])
        elif damage == "garbage":
            shard.write_bytes(b"\x00\xff not a shard")
        else:
            shard.write_bytes(b"")
    assert counted(run_cli, project) == expected  # and nothing on stderr (counted says so)
    assert counted(run_cli, project) == expected
