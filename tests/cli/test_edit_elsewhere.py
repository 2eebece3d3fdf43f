"""A one-file check after another template changed (the run memo misses): the content cache
answers for every unchanged file by its bytes, so only the named file, what it includes and
the templates of the workflows it feeds are read and parsed, however large the project; and
every change that matters is seen, each result equal to a ``--no-cache`` run."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import promptbudget.cli
from conftest import POLICY, Run, check_report, edit_text
from promptbudget import cache, fingerprints
from promptbudget.cache import CACHE_DIR_NAME
from promptbudget.launcher import main as launch
from promptbudget.project import Project

RunCli = Callable[..., Run]
TEMPLATES = 2000
NAMED = "prompts/answer.j2"


def _project(make_project: Callable[..., Path], templates: int) -> Path:
    """``templates`` templates, a two-step workflow per 10 of them (``w000``: ``t0000`` and
    ``t0001``, ...), a partial included by every tenth template, and ``support`` (route.j2,
    answer.j2, which includes the partial too)."""
    files: dict[str, str | bytes] = {}
    for index in range(templates):
        include = '{% include "partials/tone.j2" %}\n' if index % 10 == 0 else ""
        files[f"prompts/bulk/t{index:04d}.j2"] = (
            f"{include}Template {index}: answer {{{{ question }}}} briefly.\n"
        )
    files["prompts/partials/tone.j2"] = "Be kind and concise.\n"
    files[NAMED] = '{% include "partials/tone.j2" %}\nQ: {{ question }}\n'
    files["prompts/route.j2"] = "Classify {{ question }} as billing or other.\n"
    steps = "\n".join(
        f"  w{index:03d}:\n    steps:\n"
        f"      - {{name: a, prompt: bulk/t{2 * index:04d}.j2, output_tokens: 50}}\n"
        f"      - {{name: b, prompt: bulk/t{2 * index + 1:04d}.j2, output_tokens: 80}}"
        for index in range(templates // 10)
    )
    files["budgets.yaml"] = (
        "version: 1\ndefaults: {model: gpt-4.1-mini}\n"
        "variables:\n  question: {max_tokens: 200}\nworkflows:\n"
        "  support:\n    steps:\n"
        "      - {name: route, prompt: route.j2, output_tokens: 5}\n"
        "      - {name: answer, prompt: answer.j2, output_tokens: 300}\n" + steps + "\n"
    )
    return make_project(files, dedent=False)


@pytest.fixture
def big_project(make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """2,000 templates and 200 workflows: what is read must not grow with them."""
    monkeypatch.delenv("PROMPTBUDGET_CACHE_DIR")  # the cache in the project, as users have it
    return _project(make_project, TEMPLATES)


@pytest.fixture
def project(make_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> Path:
    """200 templates and 20 workflows: enough for every invalidation, ten times cheaper."""
    monkeypatch.delenv("PROMPTBUDGET_CACHE_DIR")
    return _project(make_project, 200)


@pytest.fixture
def loaded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The display path of every template read and parsed (``Project.load``)."""
    seen: list[str] = []
    original = Project.load

    def counting(self: Project, path: Path, **kwargs: Any) -> Any:
        parsed = original(self, path, **kwargs)
        seen.append(parsed.display_path)
        return parsed

    monkeypatch.setattr(Project, "load", counting)
    yield seen


def same_as_uncached(run_cli: RunCli, root: Path, *args: str) -> dict[str, Any]:
    cached = check_report(run_cli, root, *args)
    assert cached == check_report(run_cli, root, *args, "--no-cache")
    return cached


def workflows(data: dict[str, Any]) -> set[str]:
    return {workflow["name"] for workflow in data["workflows"]}


def test_after_an_edit_elsewhere_only_what_the_file_affects_is_read(
    run_cli: RunCli, big_project: Path, loaded: list[str]
) -> None:
    check_report(run_cli, big_project, NAMED)  # fills the cache
    cold = len(set(loaded))
    loaded.clear()
    edited = big_project / "prompts/bulk/t1999.j2"
    edited.write_text("Template 1999, edited: {{ question }}.\n", encoding="utf-8")
    data = check_report(run_cli, big_project, NAMED)
    # The named file and the other template of its workflow; not the 400 steps' templates
    # nor the 2,000 others, nor the edited file: its new bytes have no fingerprints yet, but
    # its text holds none of the named file's paragraphs (textscan.py), so it is not parsed.
    assert set(loaded) == {NAMED, "prompts/route.j2"}
    # cold: those two too; the 40 steps' templates with an include statement (every tenth)
    # are not parsed either: their statements, each parsed alone, name another file
    # (affected.may_reach)
    assert cold == 2
    assert workflows(data) == {"support"}
    assert data == check_report(run_cli, big_project, NAMED, "--no-cache")


def test_a_template_that_starts_including_the_named_file_brings_its_workflow(
    run_cli: RunCli, project: Path
) -> None:
    partial = "prompts/partials/tone.j2"
    assert workflows(same_as_uncached(run_cli, project, partial)) == {"support"} | {
        f"w{index:03d}"
        for index in range(0, 20, 5)  # t0000, t0010, ... include it
    }
    includer = project / "prompts/bulk/t0003.j2"  # step b of w001
    assert "w001" not in workflows(check_report(run_cli, project, NAMED))
    includer.write_text('{% include "answer.j2" %}\nAnd {{ question }}.\n', encoding="utf-8")
    assert "w001" in workflows(same_as_uncached(run_cli, project, NAMED))


def test_a_removed_include_drops_the_workflow(run_cli: RunCli, project: Path) -> None:
    partial = "prompts/partials/tone.j2"
    assert "w005" in workflows(check_report(run_cli, project, partial))  # t0010 includes it
    (project / "prompts/bulk/t0010.j2").write_text("No include now.\n", encoding="utf-8")
    assert "w005" not in workflows(same_as_uncached(run_cli, project, partial))


def test_an_edited_partial_changes_the_count(run_cli: RunCli, project: Path) -> None:
    before = check_report(run_cli, project, NAMED)
    (project / "prompts/partials/tone.j2").write_text(
        "Be kind, concise and exact, and never promise a delivery date. " * 20 + "\n",
        encoding="utf-8",
    )
    after = same_as_uncached(run_cli, project, NAMED)
    tokens = [t["request_tokens"] for t in before["templates"] + after["templates"]]
    assert tokens[1] > tokens[0]


def test_a_changed_manifest_step_is_seen(run_cli: RunCli, project: Path) -> None:
    assert "w007" not in workflows(check_report(run_cli, project, NAMED))
    manifest = project / "budgets.yaml"
    text = manifest.read_text(encoding="utf-8")
    manifest.write_text(text.replace("prompt: bulk/t0014.j2", "prompt: answer.j2"), "utf-8")
    assert "w007" in workflows(same_as_uncached(run_cli, project, NAMED))


def test_a_changed_sample_is_seen(run_cli: RunCli, project: Path) -> None:
    route = project / "prompts/route.j2"
    route.write_text(
        "---\nsample: {customer: Ada}\n---\nClassify {{ customer }}.\n", encoding="utf-8"
    )
    before = check_report(run_cli, project, NAMED)
    route.write_text(
        "---\nsample: {customer: "
        + "Ada Lovelace of the Analytical Engine Company " * 30
        + "}\n---\nClassify {{ customer }}.\n",
        encoding="utf-8",
    )
    after = same_as_uncached(run_cli, project, NAMED)
    assert before["workflows"] != after["workflows"]


def test_a_promptfoo_config_that_appears_is_seen(run_cli: RunCli, project: Path) -> None:
    """A config naming a template as a prompt file makes it Nunjucks, split on '---': what
    it includes is only in its first prompt. The include names kept under its bytes must
    not hide that."""
    includer = project / "prompts/bulk/t0003.j2"
    includer.write_text(
        'First prompt {{ question }}.\n---\n{% include "answer.j2" %}\n', encoding="utf-8"
    )
    assert "w001" in workflows(same_as_uncached(run_cli, project, NAMED))
    (project / "prompts/bulk/promptfooconfig.yaml").write_text(
        "prompts: [file://t0003.j2]\n", encoding="utf-8"
    )
    assert "w001" not in workflows(same_as_uncached(run_cli, project, NAMED))


def test_a_damaged_entry_signed_with_our_key_is_a_miss(run_cli: RunCli, project: Path) -> None:
    """Every entry of the warm cache replaced by a value of the wrong shape (and the shards
    signed again, as only a bug of ours could): each is a miss, the result is unchanged."""
    expected = check_report(run_cli, project, NAMED, "--no-cache")
    check_report(run_cli, project, NAMED)
    secret = (Path(os.environ["XDG_CACHE_HOME"]) / "promptbudget" / "cache-key").read_bytes()
    shards = list((project / CACHE_DIR_NAME).glob("*/*.json"))
    assert shards
    for shard in shards:
        entries = json.loads(shard.read_bytes().partition(b"\n")[2])
        damaged = {
            key: [[1, 2]] if isinstance(value, list | dict) else {"no": "digest"}
            for key, value in entries.items()
        }
        body = json.dumps(damaged).encode()
        signature = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
        shard.write_bytes(signature + b"\n" + body)
    (project / "prompts/bulk/t0199.j2").write_text("Edited.\n", encoding="utf-8")
    expected = check_report(run_cli, project, NAMED, "--no-cache")
    assert check_report(run_cli, project, NAMED) == expected


@pytest.fixture
def settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file counts as older than the racy window (two seconds; a test writes its files
    just before it runs): the cache keeps what it derives from a file under the file's stat,
    one entry a file, as it does for a repository's files once they are two seconds old."""
    monkeypatch.setattr(cache, "RACY_NS", 0)


@pytest.mark.usefixtures("settled")
def test_files_known_by_their_stat_are_neither_read_nor_parsed(
    run_cli: RunCli, project: Path, loaded: list[str]
) -> None:
    """The include names and the PB204 fingerprints kept under each file's stat answer for
    every unchanged file; a file holding a passage of the named one is still found, and an
    edit to it is seen."""
    (project / NAMED).write_text(
        f'{{% include "partials/tone.j2" %}}\n\n{POLICY}\n\nQ: {{{{ question }}}}\n', "utf-8"
    )
    pasted = project / "prompts/bulk/t0042.j2"  # step a of w021
    pasted.write_text(f"{POLICY}\n\nSummarise {{{{ question }}}}.\n", encoding="utf-8")
    check_report(run_cli, project, NAMED)  # fills the cache
    loaded.clear()
    edited = project / "prompts/bulk/t0199.j2"
    edited.write_text("Template 199, edited: {{ question }}.\n", encoding="utf-8")
    data = check_report(run_cli, project, NAMED)
    # The named file and its workflow's other template; not the edited file (its new stat
    # is unknown, but its text holds none of the named file's paragraphs), nor the file
    # holding the passage (its fingerprints are kept), nor its workflow's templates (the
    # workflow's simulation is kept too).
    assert set(loaded) == {NAMED, "prompts/route.j2"}
    assert data == check_report(run_cli, project, NAMED, "--no-cache")
    assert workflows(data) == {"support"}
    assert any("t0042.j2" in f["message"] for f in data["findings"] if f["rule"] == "PB204")
    pasted.write_text("Nothing pasted here any more.\n", encoding="utf-8")
    data = same_as_uncached(run_cli, project, NAMED)
    assert not [f for f in data["findings"] if f["rule"] == "PB204"]


@pytest.mark.usefixtures("run_cli")  # its environment: no colour, the test's date
def test_the_run_memo_answers_an_edit_pb204_sees_no_change_in(
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Through the console script: the templates in no workflow (t0040 to t0199) are read
    only for PB204, the other workflows' templates also to learn they include nothing; an
    edit to one that keeps what PB204 takes from it (and includes nothing) is answered by
    the run memo (no full run), one that pastes the named file's passage into it or makes
    it include the named file is not; each answer is what ``--no-cache`` gives."""
    (project / NAMED).write_text(
        f'{{% include "partials/tone.j2" %}}\n\n{POLICY}\n\nQ: {{{{ question }}}}\n', "utf-8"
    )
    full_runs: list[list[str]] = []
    real = promptbudget.cli.main
    monkeypatch.setattr(promptbudget.cli, "main", lambda args: full_runs.append(args) or real(args))
    monkeypatch.chdir(project)

    def launched(*args: str) -> str:
        capsys.readouterr()
        assert launch(["check", NAMED, "--format", "json", *args]) in (0, 1)
        return capsys.readouterr().out

    first = launched()
    edited = project / "prompts/bulk/t0150.j2"
    edited.write_text("Template 150, edited: {{ question }}.\n", encoding="utf-8")
    assert launched() == first
    assert len(full_runs) == 1
    assert first == launched("--no-cache")
    edited.write_text(f"Template 150.\n\n{POLICY}\n", encoding="utf-8")
    pasted = launched()
    assert len(full_runs) == 3
    assert pasted != first and "t0150.j2:3" in pasted
    assert pasted == launched("--no-cache")
    step = project / "prompts/bulk/t0013.j2"  # step b of w006
    step.write_text("Template 13, edited: {{ question }}.\n", encoding="utf-8")
    assert launched() == pasted
    assert len(full_runs) == 4
    step.write_text('{% include "answer.j2" %}\nTemplate 13.\n', encoding="utf-8")
    including = launched()
    assert len(full_runs) == 5
    assert '"w006"' in including and '"w006"' not in pasted
    assert including == launched("--no-cache")


def test_a_cold_one_file_check_parses_only_what_may_matter(
    run_cli: RunCli, project: Path, loaded: list[str]
) -> None:
    check_report(run_cli, project, NAMED, "--no-cache")
    # The named file and its workflow's other template. Not the 20 workflows' 40 templates:
    # those with an include statement (t0000, t0010, t0020, t0030) name another file in it,
    # parsed alone (affected.may_reach); nor the 160 others: PB204 looks for the named file's
    # paragraphs in their text, and it has none that could be a passage.
    assert set(loaded) == {NAMED, "prompts/route.j2"}
    loaded.clear()
    # Named, the partial they include: they are parsed (a statement in a comment would name
    # it too), and their workflows checked
    data = check_report(run_cli, project, "prompts/partials/tone.j2", "--no-cache")
    steps_including = {f"prompts/bulk/t{index:04d}.j2" for index in (0, 10, 20, 30)}
    assert steps_including <= set(loaded)
    assert workflows(data) == {"support", "w000", "w005", "w010", "w015"}


@pytest.mark.parametrize(
    ("text", "includes"),
    [
        ('{% include "answer.j2" %}\nT3.\n', True),
        ('{%- include "bulk/../answer.j2" -%}\nT3.\n', True),
        ('{% include ["nothing.j2", "answer.j2"] %}\nT3.\n', True),
        ('{% if x %}{% include "answer.j2" ignore missing %}{% endif %}\nT3.\n', True),
        ('{% include "answer.j2" if x else "%}" %}\nT3.\n', False),  # not a literal name
        ('{# {% include "answer.j2" %} #}\nT3.\n', False),  # in a comment
        ('{% raw %}{% include "answer.j2" %}{% endraw %}\nT3.\n', False),
        ("{% set s = \"{% include 'answer.j2' %}\" %}{{ s }}\nT3.\n", False),  # a string
        ('{% include "answer.j2" %}{% if %}\nT3.\n', False),  # does not parse: no include
        ('{% include "bulk/t0005.j2" %}\nT3.\n', False),  # another template
    ],
)
def test_what_a_cold_one_file_check_selects_is_what_the_parse_says(
    run_cli: RunCli, make_project: Callable[..., Path], text: str, includes: bool
) -> None:
    root = _project(make_project, 20)
    (root / "prompts/bulk/t0003.j2").write_text(text, encoding="utf-8")  # step b of w001
    data = check_report(run_cli, root, NAMED, "--no-cache")
    assert ("w001" in workflows(data)) is includes
    assert workflows(data) == workflows(check_report(run_cli, root, NAMED))  # with a cache


PASTED = (
    "Refunds are issued within thirty days of purchase when the item is returned unused, "
    "with its receipt, to the store where it was bought; store credit is offered otherwise."
)


def test_a_cold_one_file_check_finds_a_passage_pasted_with_other_line_breaks(
    run_cli: RunCli, make_project: Callable[..., Path], loaded: list[str]
) -> None:
    rewrapped = PASTED.replace(", ", ",\n\t").replace("; ", ";\u00a0 ")
    files: dict[str, str | bytes] = {
        f"prompts/t{index}.j2": f"Template {index} about {{{{ question }}}}.\n"
        for index in range(30)
    }
    files["prompts/t7.j2"] = f"---\nmodel: gpt-4.1-mini\n---\nIntro {{{{ q }}}}.\n\n{rewrapped}\n"
    files["prompts/t8.j2"] = " ".join(reversed(PASTED.split())) + "\n"  # its words, not it
    files[NAMED] = f"Answer {{{{ question }}}}.\n\n{PASTED}\n"
    files["budgets.yaml"] = (
        "version: 1\ndefaults: {model: gpt-4.1-mini}\ncompression: {duplicate_min_tokens: 20}\n"
        "workflows:\n  support:\n    steps:\n"
        "      - {name: answer, prompt: answer.j2, output_tokens: 300}\n"
    )
    root = make_project(files, dedent=False)
    data = check_report(run_cli, root, NAMED, "--no-cache")
    pasted = [f for f in data["findings"] if f["rule"] == "PB204"]
    assert len(pasted) == 1 and "prompts/t7.j2" in pasted[0]["message"]
    assert set(loaded) == {NAMED, "prompts/t7.j2"}  # not t8, which holds every word
    full = check_report(run_cli, root, "--no-cache")
    assert [f for f in full["findings"] if f["rule"] == "PB204" and f["path"] == NAMED] == pasted


@pytest.mark.usefixtures("settled")
def test_the_named_file_edited_the_others_are_known_by_their_stat(
    run_cli: RunCli, project: Path, loaded: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What pre-commit meets most: the named file itself was edited (its memo misses). The
    other templates, read once for the digests of every paragraph they may hold, are not
    read again; only one holding a paragraph the named file now has is parsed."""
    pasted = project / "prompts/bulk/t0042.j2"
    pasted.write_text(f"{POLICY}\n\nSummarise {{{{ question }}}}.\n", encoding="utf-8")
    check_report(run_cli, project, NAMED)  # fills the cache
    read: list[str] = []
    original = fingerprints.read_prompt_text
    monkeypatch.setattr(
        fingerprints,
        "read_prompt_text",
        lambda path, **kwargs: read.append(path.name) or original(path, **kwargs),
    )
    loaded.clear()
    edit_text(project / NAMED, "Q:", f"\n{POLICY}\n\nQ:")
    data = check_report(run_cli, project, NAMED)
    assert read == []
    assert set(loaded) == {NAMED, "prompts/route.j2", "prompts/bulk/t0042.j2"}
    assert any("t0042.j2" in f["message"] for f in data["findings"] if f["rule"] == "PB204")
    assert data == check_report(run_cli, project, NAMED, "--no-cache")
    loaded.clear()
    read.clear()  # the --no-cache run reads every file
    edit_text(project / NAMED, f"\n{POLICY}\n\nQ:", "Q: briefly,")
    data = check_report(run_cli, project, NAMED)
    assert read == [] and set(loaded) == {NAMED, "prompts/route.j2"}
    assert not [f for f in data["findings"] if f["rule"] == "PB204"]


def test_a_symlink_out_of_the_project_is_never_read_for_pb204(
    run_cli: RunCli, project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pull request adds a template that is a symlink to a file outside the repository
    holding the named file's paragraph: the scans read it as the parse does (confined), so
    PB204 never reports it, with or without a cache."""
    outside = tmp_path / "outside" / "secret.j2"
    outside.parent.mkdir()
    outside.write_text(f"{POLICY}\n", encoding="utf-8")
    (project / "prompts/leak.j2").symlink_to(outside)
    edit_text(project / NAMED, "Q:", f"\n{POLICY}\n\nQ:")
    read: list[Path] = []
    original = fingerprints.read_prompt_text
    monkeypatch.setattr(
        fingerprints,
        "read_prompt_text",
        lambda path, **kwargs: read.append(path) or original(path, **kwargs),
    )
    for args in (("--no-cache",), ()):
        data = check_report(run_cli, project, NAMED, *args)
        assert not any("leak.j2" in f["message"] for f in data["findings"])
    assert all(path.resolve() != outside for path in read)
