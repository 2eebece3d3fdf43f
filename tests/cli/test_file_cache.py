"""A template's whole evaluation kept in the content cache (filecache.py): a warm full
``check`` evaluates only the files whose inputs changed, and gives exactly what a
``--no-cache`` run gives whatever changed: the file, a file it includes, a sample file, a
promptfoo config (edited, or new where the run looked for one), a file that now shadows an
include, a deleted include, the manifest, an option; a new template elsewhere costs only
itself. A damaged entry is a miss."""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Run, check_report, edit_text, templates_passed
from promptbudget import evaluation, runmemo
from promptbudget.cache import flush_caches, open_cache
from promptbudget.templates.rendercache import packed, unpacked

RunCli = Callable[..., Run]

PASTED = (
    "This paragraph is pasted in two templates, word for word: it tells the assistant to "
    "answer politely, to cite the knowledge base article it relied on, to never invent an "
    "order number, and to hand the conversation to a human agent when the customer asks for "
    "a refund above the limit the policy sets for automatic approval.\n"
)

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
                variables:
                  customer: {sample: Ada Lovelace}
    """,
    "prompts/answer.j2": """\
        {% extends "base.j2" %}
        {% import "macros.j2" as m %}
        {% block body %}{{ m.greet(customer) }} {% include "partials/tone.j2" %}
        Answer: {{ question }}{% endblock %}
    """,
    "prompts/base.j2": "system:\nYou help customers.\nuser:\n{% block body %}{% endblock %}\n",
    "prompts/macros.j2": "{% macro greet(name) %}Hello {{ name }}.{% endmacro %}\n",
    "prompts/partials/tone.j2": "Be kind, concise and exact.\n",
    "prompts/dynamic.j2": """\
        ---
        sample: {style: formal}
        ---
        {% include "styles/" ~ style ~ ".j2" %} Reply to {{ question }}.
    """,
    "prompts/styles/formal.j2": "Dear customer,\n",
    "prompts/shared.j2": "Shared.\n\n" + PASTED,
    "prompts/copy.j2": "Copy.\n\n" + PASTED,
    "prompts/ask.prompty": """\
        ---
        name: ask
        sample: ask.json
        ---
        system:
        Answer {{ person }} about {{ topic }}.
    """,
    "prompts/ask.json": '{"person": "Ada", "topic": "engines"}\n',
    "prompts/pf/greet.txt": "Greet {{ name }} warmly.\n",
    "prompts/pf/bye.txt": "Say goodbye to {{ name }}.\n",
}

ENGINES = "{'prompts/pf/*.txt': text}"
PROMPTFOO = """\
    prompts: [file://greet.txt, file://bye.txt]
    tests:
      - vars: {name: %s}
"""


@pytest.fixture
def project(make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("PROMPTBUDGET_CACHE_DIR")  # the cache in the project, as users have it
    return make_project(FILES)


@pytest.fixture
def evaluated(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The templates a run evaluated (rendered and counted), by display path."""
    yield templates_passed(monkeypatch, evaluation, "evaluate_template", 1)


def test_a_warm_check_evaluates_only_the_file_that_changed(
    run_cli: RunCli, project: Path, evaluated: list[str]
) -> None:
    first = check_report(run_cli, project)
    assert "prompts/answer.j2" in evaluated and "prompts/ask.prompty" in evaluated
    evaluated.clear()
    assert check_report(run_cli, project) == first
    assert evaluated == []
    edit_text(project / "prompts/dynamic.j2", "Reply to", "Please reply to")
    after = check_report(run_cli, project)
    assert set(evaluated) == {"prompts/dynamic.j2"}
    assert after == check_report(run_cli, project, "--no-cache")


def test_a_template_with_yaml_timestamps_in_its_samples_is_kept(
    run_cli: RunCli, project: Path, evaluated: list[str]
) -> None:
    (project / "prompts/dated.j2").write_text(
        "---\nsample: {due: 2026-12-31, sent: 2026-12-05 10:30:00+01:00}\n---\n"
        "Remind the customer the invoice sent {{ sent }} is due {{ due }}"
        " ({{ due.year }}).\n",
        encoding="utf-8",
    )
    first = check_report(run_cli, project)
    assert "prompts/dated.j2" in evaluated
    evaluated.clear()
    edit_text(project / "prompts/dynamic.j2", "Reply to", "Please reply to")
    after = check_report(run_cli, project)
    assert set(evaluated) == {"prompts/dynamic.j2"}  # not dated.j2: its evaluation is kept
    assert after == check_report(run_cli, project, "--no-cache")
    dated = [t for t in after["templates"] if t["path"] == "prompts/dated.j2"]
    assert dated == [t for t in first["templates"] if t["path"] == "prompts/dated.j2"]


def test_a_new_template_costs_only_itself(
    run_cli: RunCli, project: Path, evaluated: list[str]
) -> None:
    """Evaluations that looked for files next to theirs (an include looked for in the
    template's own directory first) depend on those names, not on the whole directory."""
    check_report(run_cli, project)
    (project / "prompts/partials/new.j2").write_text("A new partial.\n", encoding="utf-8")
    (project / "prompts/new.j2").write_text("A new prompt.\n", encoding="utf-8")
    evaluated.clear()
    after = check_report(run_cli, project)
    assert set(evaluated) == {"prompts/new.j2", "prompts/partials/new.j2"}
    assert after == check_report(run_cli, project, "--no-cache")


@pytest.mark.parametrize(
    ("change", "again"),
    [
        (("prompts/partials/tone.j2", "kind", "kind, warm"), "prompts/answer.j2"),
        (("prompts/base.j2", "You help", "You, an agent, help"), "prompts/answer.j2"),
        (("prompts/macros.j2", "Hello", "Good morning"), "prompts/answer.j2"),
        (("prompts/styles/formal.j2", "Dear", "Most esteemed"), "prompts/dynamic.j2"),
        (("prompts/ask.json", "engines", "analytical engines"), "prompts/ask.prompty"),
        (("budgets.yaml", "Ada Lovelace", "Grace Hopper"), "prompts/answer.j2"),
        (("budgets.yaml", "{max_tokens: 200}", "{max_tokens: 300}"), "prompts/dynamic.j2"),
        (
            ("budgets.yaml", "version: 1\n", "version: 1\nengines: {'prompts/pf/*.txt': text}\n"),
            None,
        ),
    ],
    ids=[
        "include",
        "extends",
        "import",
        "named-at-render-time",
        "sample-file",
        "step-sample",
        "cap",
        "engines",
    ],
)
def test_what_an_evaluation_used_changed_evaluates_it_again(
    run_cli: RunCli,
    project: Path,
    evaluated: list[str],
    change: tuple[str, str, str],
    again: str | None,
) -> None:
    before = check_report(run_cli, project)
    edit_text(project / change[0], change[1], change[2])
    evaluated.clear()
    after = check_report(run_cli, project)
    assert again is None or again in evaluated
    assert after != before
    assert after == check_report(run_cli, project, "--no-cache")


def test_a_promptfoo_config_edited_or_new_is_seen(
    run_cli: RunCli, project: Path, evaluated: list[str]
) -> None:
    alone = check_report(run_cli, project)
    config = project / "prompts/pf/promptfooconfig.yaml"
    config.write_text(textwrap.dedent(PROMPTFOO) % "Ada", encoding="utf-8")
    evaluated.clear()
    referred = check_report(run_cli, project)
    assert "prompts/pf/greet.txt" in evaluated
    assert referred != alone
    assert referred == check_report(run_cli, project, "--no-cache")
    edit_text(config, "Ada", "Ada Augusta King, Countess of Lovelace")
    evaluated.clear()
    renamed = check_report(run_cli, project)
    # the second prompt has the config from the run's memory: it still depends on it
    assert set(evaluated) == {
        "prompts/pf/greet.txt",
        "prompts/pf/bye.txt",
        "prompts/pf/promptfooconfig.yaml",
    }
    assert renamed != referred
    assert renamed == check_report(run_cli, project, "--no-cache")


def test_a_file_that_now_shadows_an_include_is_read(run_cli: RunCli, project: Path) -> None:
    (project / "prompts/sub").mkdir()
    for name in ("answer.j2", "base.j2", "macros.j2"):
        (project / "prompts/sub" / name).write_bytes((project / "prompts" / name).read_bytes())
    before = check_report(run_cli, project)
    (project / "prompts/sub/partials").mkdir()
    (project / "prompts/sub/partials/tone.j2").write_text("Shout.\n", encoding="utf-8")
    after = check_report(run_cli, project)
    assert after != before
    assert after == check_report(run_cli, project, "--no-cache")


def test_a_deleted_include_is_a_problem_again(run_cli: RunCli, project: Path) -> None:
    check_report(run_cli, project)
    (project / "prompts/partials/tone.j2").unlink()
    after = check_report(run_cli, project)
    assert after == check_report(run_cli, project, "--no-cache")
    assert any(f["rule"] == "PB001" and "tone.j2" in f["message"] for f in after["findings"])


def test_an_option_that_shapes_the_project_is_part_of_the_key(
    run_cli: RunCli, project: Path
) -> None:
    check_report(run_cli, project)
    wider = ("--set", "variables.question.max_tokens=900")
    changed = check_report(run_cli, project, *wider)
    assert changed == check_report(run_cli, project, "--no-cache", *wider)
    assert changed != check_report(run_cli, project)


def test_pb204_finds_a_passage_between_a_kept_file_and_an_edited_one(
    run_cli: RunCli, project: Path
) -> None:
    first = check_report(run_cli, project)
    assert any(f["rule"] == "PB204" for f in first["findings"])
    edit_text(project / "prompts/copy.j2", "Copy.", "A copy.")
    after = check_report(run_cli, project)
    assert any(f["rule"] == "PB204" for f in after["findings"])
    assert after == check_report(run_cli, project, "--no-cache")


def _file_checks(project: Path) -> Iterator[tuple[Any, str, str, dict[str, Any]]]:
    """(store, key, context, entry) of each file's kept evaluation: [context, packed files
    and probes, packed value and what is kept beside it], the entry their union."""
    store = open_cache(project, enabled=True)
    assert store is not None
    store.load_all()
    for shard in store._shards.values():
        for key, value in list(shard.items()):
            if not (isinstance(value, list) and len(value) == 3):
                continue
            try:
                entry = {**unpacked(value[1]), **unpacked(value[2])}
            except ValueError:
                continue
            if entry.keys() == {"f", "p", "v", "b"}:
                yield store, key, value[0], entry


def _put(store: Any, key: str, context: str, entry: dict[str, Any]) -> None:
    used = packed({"f": entry["f"], "p": entry["p"]})
    store.put(key, [context, used, packed({"v": entry["v"], "b": entry["b"]})])


@pytest.mark.parametrize("damage", ["encoded", "files", "probes", "digests"])
def test_a_damaged_entry_is_a_miss(
    run_cli: RunCli, project: Path, evaluated: list[str], damage: str
) -> None:
    """Entries signed by this machine (no forged shard) whose value is not what filecache
    wrote: the file is evaluated again, with the same result."""
    first = check_report(run_cli, project)
    found = 0
    for store, key, context, entry in list(_file_checks(project)):
        files, probes, encoded = entry["f"], entry["p"], entry["v"]
        if damage == "encoded":
            entry["v"] = encoded[:-1] if isinstance(encoded, list) and encoded else [True]
        elif damage == "digests":
            entry["b"] = [["prompts/copy.j2", "not-a-digest:1"]]
        elif damage == "files":
            entry["f"] = {name: [dep[0], "0" * len(dep[1]), dep[2]] for name, dep in files.items()}
        else:
            entry["p"] = dict.fromkeys(probes, "dir") or {str(project / "nothing"): "file"}
        _put(store, key, context, entry)
        found += 1
    assert found >= len(FILES) - 4
    flush_caches()
    evaluated.clear()
    assert check_report(run_cli, project) == first
    assert "prompts/answer.j2" in evaluated and "prompts/copy.j2" in evaluated


def test_a_partial_answered_from_memory_is_still_a_dependency(
    run_cli: RunCli, project: Path, evaluated: list[str]
) -> None:
    """After a change of context (every file evaluated again, its renders still kept), the
    second template to include a partial has it answered from the run's memory: it must
    still depend on it."""
    (project / "prompts/other.j2").write_text(
        '{% include "partials/tone.j2" %} Other.\n', encoding="utf-8"
    )
    check_report(run_cli, project)
    edit_text(project / "budgets.yaml", "requests_per_day: 1000", "requests_per_day: 2000")
    check_report(run_cli, project)
    edit_text(project / "prompts/partials/tone.j2", "kind", "kind, warm")
    evaluated.clear()
    after = check_report(run_cli, project)
    assert {"prompts/answer.j2", "prompts/other.j2"} <= set(evaluated)
    assert after == check_report(run_cli, project, "--no-cache")


def test_an_evaluation_whose_render_was_stopped_is_not_kept(
    run_cli: RunCli, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A render stopped by its time limit depends on the machine's load that day: a file
    whose evaluation saw one is evaluated again next time (as a stopped render is never kept
    in the render cache)."""
    from promptbudget.templates import deadline

    before = deadline.renders_stopped()
    deadline.RenderTimeoutError(5.0)  # what a stopped render raises, and counts
    assert deadline.renders_stopped() == before + 1
    real = evaluation.evaluate_template
    done: list[str] = []
    stopping = [True]

    def evaluate(project_: Any, parsed: Any, *args: Any, **kwargs: Any) -> Any:
        done.append(parsed.display_path)
        if stopping[0] and parsed.display_path == "prompts/dynamic.j2":
            deadline.RenderTimeoutError(5.0)
        return real(project_, parsed, *args, **kwargs)

    monkeypatch.setattr(evaluation, "evaluate_template", evaluate)
    check_report(run_cli, project)
    stopping[0] = False
    done.clear()
    check_report(run_cli, project)
    assert done == ["prompts/dynamic.j2"]


def test_a_checkout_that_keeps_the_bytes_evaluates_nothing(
    run_cli: RunCli, project: Path, evaluated: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every file written again with the same bytes (new stats, as a fresh clone in CI has):
    each is hashed again, found the same, and its entry kept again under the new stats once
    they are out of git's racy window (here: the clock moved on a minute)."""
    first = check_report(run_cli, project)
    for path in project.rglob("*"):
        if path.is_file() and ".promptbudget_cache" not in path.parts:
            path.write_bytes(path.read_bytes())
    later = time.time_ns() + 60_000_000_000
    monkeypatch.setattr(runmemo.time, "time_ns", lambda: later)
    evaluated.clear()
    assert check_report(run_cli, project) == first
    assert evaluated == []
    stats = {
        str(path.resolve()): path.stat().st_mtime_ns
        for path in (project / "prompts").rglob("*")
        if path.is_file()
    }
    kept = [entry for *_, entry in _file_checks(project)]
    assert kept
    for entry in kept:
        for name, (stat, _digest, _racy) in entry["f"].items():
            assert stat[1] == stats.get(name, stat[1]), name  # restamped: the new mtime


@pytest.mark.parametrize("outside", [False, True], ids=["inside", "outside the project"])
def test_a_symlinked_template_retargeted_is_evaluated_again(
    run_cli: RunCli, project: Path, tmp_path: Path, outside: bool
) -> None:
    """A pull request may turn a template into a symlink, then point it elsewhere: the kept
    evaluation of the old target never answers for the new one, and a target outside the
    project is never read (its evaluation, a problem, is not kept)."""
    (project / "prompts/one.j2").write_text("One target, {{ question }}.\n", encoding="utf-8")
    far = tmp_path / "far.j2"
    far.write_text("A secret outside the project.\n", encoding="utf-8")
    link = project / "prompts/link.j2"
    link.symlink_to(project / "prompts/one.j2")
    check_report(run_cli, project)
    link.unlink()
    link.symlink_to(far if outside else project / "prompts/copy.j2")
    after = check_report(run_cli, project)
    assert after == check_report(run_cli, project, "--no-cache")
    assert "secret" not in json.dumps(after)
    assert after == check_report(run_cli, project)
