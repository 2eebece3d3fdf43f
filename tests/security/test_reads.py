"""Reading hostile files: symlinks out of the project, devices, FIFOs, and documents built to
exhaust a parser (issue 11 items 3, 9, 11, 12; issue 18 item 6; issue 20 item 3)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from promptbudget.confine import ConfinementError, read_confined
from promptbudget.pathnames import forget_real
from security.bounded_run import RunBounded

MakeProject = Callable[..., Path]

SECRET = "TOPSECRET-7f3a"

MANIFEST = """\
version: 1
prompts: prompts/
defaults:
  model: gpt-4.1-mini
workflows:
  reply:
    traffic: {requests_per_day: 100}
    steps:
      - name: answer
        prompt: a.j2
        output_tokens: 50
"""

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A directory outside every project, holding files a PR would like to read."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "token.txt").write_text(f"{SECRET}\n", encoding="utf-8")
    (outside / "sample.json").write_text(json.dumps({"name": SECRET}), encoding="utf-8")
    (outside / "budgets.yaml").write_text(MANIFEST + f"# {SECRET}\n", encoding="utf-8")
    (outside / "promptfooconfig.yaml").write_text(
        "prompts:\n  - file://**/*.txt\ndefaultTest:\n  vars:\n    name: " + SECRET + "\n",
        encoding="utf-8",
    )
    return outside


def _no_secret(run: object) -> None:
    assert SECRET not in str(run), "content of a file outside the project was used"


# -- special files: devices and FIFOs are refused at once ---------------------------------


@pytest.mark.parametrize("command", ["count", "check"])
def test_symlink_to_dev_zero_is_refused_at_once(
    command: str, run_bounded: RunBounded, make_project: MakeProject
) -> None:
    root = make_project({"budgets.yaml": MANIFEST, "prompts/a.j2": "Hi {{ name }}\n"})
    (root / "prompts/zero.j2").symlink_to("/dev/zero")
    args = [command, "prompts/zero.j2"] if command == "count" else [command]
    run = run_bounded(*args, cwd=root, timeout=20)
    run.assert_clean()
    if command == "count":
        assert "not read" in run.stdout + run.stderr


@pytest.mark.parametrize(
    "name", ["prompts/fifo.j2", "budgets.yaml", "promptbudget.lock", "prompts/sample.json"]
)
def test_a_fifo_never_blocks(name: str, run_bounded: RunBounded, make_project: MakeProject) -> None:
    files = {
        "budgets.yaml": MANIFEST,
        "prompts/a.prompty": "---\nname: a\nsample: sample.json\n---\nHi {{ name }}\n",
        "prompts/a.j2": "Hi\n",
    }
    files.pop(name, None)
    root = make_project(files)
    os.mkfifo(root / name)
    run = run_bounded("check", cwd=root, timeout=20)
    run.assert_clean()
    if name == "budgets.yaml":
        assert run.exit_code == 2
        assert len(run.error_lines) == 1


def test_count_a_fifo_named_on_the_command_line(
    run_bounded: RunBounded, make_project: MakeProject
) -> None:
    root = make_project({"budgets.yaml": MANIFEST, "prompts/a.j2": "Hi\n"})
    os.mkfifo(root / "prompts/pipe.j2")
    run = run_bounded("count", "prompts/pipe.j2", cwd=root, timeout=20)
    run.assert_clean()
    assert "a FIFO, not a regular file" in run.stdout + run.stderr


# -- symlinks out of the project are never followed ----------------------------------------


def test_budgets_yaml_symlinked_outside_is_refused(
    run_bounded: RunBounded, make_project: MakeProject, secret: Path
) -> None:
    root = make_project({"prompts/a.j2": "Hi\n"})
    (root / "budgets.yaml").symlink_to(secret / "budgets.yaml")
    run = run_bounded("check", cwd=root)
    run.assert_clean(2)
    assert "points outside the project root" in run.stderr
    _no_secret(run)


def test_budgets_yaml_that_is_a_token_file_does_not_echo_it(
    run_bounded: RunBounded, make_project: MakeProject, secret: Path
) -> None:
    root = make_project({"prompts/a.j2": "Hi\n"})
    (root / "budgets.yaml").symlink_to(secret / "token.txt")
    run = run_bounded("check", cwd=root)
    run.assert_clean(2)
    _no_secret(run)
    # not read at all (the old code read it, then said it was not a mapping)
    assert "outside the project root" in run.stderr, run.stderr


def test_sample_file_symlinked_outside_is_not_a_sample(
    run_bounded: RunBounded, make_project: MakeProject, secret: Path
) -> None:
    root = make_project(
        {
            "budgets.yaml": MANIFEST,
            "prompts/a.j2": "Hi\n",
            "prompts/b.prompty": "---\nname: b\nsample: s.json\n---\nuser:\nHi {{ name }}\n",
        }
    )
    (root / "prompts/s.json").symlink_to(secret / "sample.json")
    run = run_bounded("count", "prompts/b.prompty", "--format", "json", cwd=root)
    run.assert_clean(0, 1)  # a usage error (exit 2) would pass vacuously
    _no_secret(run)
    (template,) = json.loads(run.stdout)["templates"]
    assert [v["source"] for v in template["variables"]] == ["none"], template


def test_a_template_symlinked_outside_is_not_read_even_when_named(
    run_bounded: RunBounded, make_project: MakeProject, secret: Path
) -> None:
    root = make_project({"budgets.yaml": MANIFEST, "prompts/a.j2": "Hi\n"})
    (root / "prompts/leak.j2").symlink_to(secret / "token.txt")
    for args in (["count", "prompts/leak.j2"], ["check", "prompts/leak.j2"], ["check"]):
        run = run_bounded(*args, "--format", "json", cwd=root)
        run.assert_clean()
        _no_secret(run)


def test_promptfoo_config_above_the_project_root_is_not_read(
    run_bounded: RunBounded, tmp_path: Path, secret: Path
) -> None:
    # the config sits in the parent of the project; its vars must not become samples
    root = secret / "project"
    (root / "prompts").mkdir(parents=True)
    (root / "budgets.yaml").write_text(MANIFEST, encoding="utf-8")
    (root / "prompts/a.j2").write_text("Hi\n", encoding="utf-8")
    (root / "prompts/p.txt").write_text("Hello {{ name }}\n", encoding="utf-8")
    run = run_bounded("count", "prompts/p.txt", "--format", "json", cwd=root)
    run.assert_clean()
    _no_secret(run)


def test_promptfoo_config_symlinked_outside_is_not_read(
    run_bounded: RunBounded, make_project: MakeProject, secret: Path
) -> None:
    root = make_project(
        {"budgets.yaml": MANIFEST, "prompts/a.j2": "Hi\n", "prompts/p.txt": "Hi {{ name }}\n"}
    )
    (root / "prompts/promptfooconfig.yaml").symlink_to(secret / "promptfooconfig.yaml")
    run = run_bounded("count", "prompts/p.txt", "--format", "json", cwd=root)
    run.assert_clean()
    _no_secret(run)


def test_lock_symlinked_outside_is_not_read(
    run_bounded: RunBounded, make_project: MakeProject, secret: Path
) -> None:
    root = make_project({"budgets.yaml": MANIFEST, "prompts/a.j2": "Hi\n"})
    (secret / "lock.json").write_text('{"x": "' + SECRET + '"', encoding="utf-8")
    (root / "promptbudget.lock").symlink_to(secret / "lock.json")
    run = run_bounded("check", cwd=root)
    run.assert_clean()
    _no_secret(run)


# -- bounded YAML everywhere ---------------------------------------------------------------


@pytest.mark.parametrize(
    "files",
    [
        pytest.param({"prompts/b.j2": "---\n" + BILLION_LAUGHS + "---\nHi\n"}, id="front-matter"),
        pytest.param(
            {"prompts/b.prompty": "---\nname: b\n" + BILLION_LAUGHS + "---\nuser:\nHi\n"},
            id="prompty",
        ),
        pytest.param(
            {"prompts/b.prompt": "---\nmodel: x\n" + BILLION_LAUGHS + "---\nHi\n"},
            id="dotprompt",
        ),
        pytest.param(
            {
                "prompts/sk.yaml": "template: Hi {{$x}}\ntemplate_format: semantic-kernel\n"
                + BILLION_LAUGHS
            },
            id="semantic-kernel-yaml",
        ),
        pytest.param(
            {
                "prompts/p.txt": "Hi {{ name }}\n",
                "prompts/promptfooconfig.yaml": "prompts: [file://p.txt]\n" + BILLION_LAUGHS,
            },
            id="promptfoo-config",
        ),
    ],
)
def test_alias_bombs_stop_early(
    files: dict[str, str], run_bounded: RunBounded, make_project: MakeProject
) -> None:
    root = make_project({"budgets.yaml": MANIFEST, "prompts/a.j2": "Hi\n", **files})
    run = run_bounded("check", "--format", "json", cwd=root, timeout=20)
    run.assert_clean()
    for name in files:
        if name.endswith(("j2", "prompty", "prompt")):
            assert any(
                f["rule"] == "PB001" and f["path"] == name for f in run_json(run)["findings"]
            ), run.stdout


def run_json(run: object) -> dict[str, object]:
    data = json.loads(run.stdout)  # type: ignore[attr-defined]
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize(
    "front",
    [
        pytest.param("x: " + "[" * 5000 + "]" * 5000, id="nested-5000"),
        pytest.param("x: " + "{a: " * 3000 + "1" + "}" * 3000, id="nested-mappings"),
        pytest.param("x: " + "9" * 5000, id="5000-digit-integer"),
        pytest.param('x: "\\ud800"', id="lone-surrogate"),
        # explicit tags whose value does not fit: PyYAML's constructors raise IndexError,
        # ValueError, KeyError, AttributeError (an internal error before)
        pytest.param("model: !!int", id="empty-int-tag"),
        pytest.param("model: !!float _", id="bad-float-tag"),
        pytest.param("model: !!int 0x", id="bad-int-tag"),
        pytest.param("model: !!bool maybe", id="bad-bool-tag"),
        pytest.param("model: !!timestamp soon", id="bad-timestamp-tag"),
        pytest.param("model: gpt-4o\n!!int : x", id="bad-tag-on-a-key"),
    ],
)
def test_front_matter_bounds_are_pb001(
    front: str, run_bounded: RunBounded, make_project: MakeProject
) -> None:
    root = make_project(
        {
            "budgets.yaml": MANIFEST,
            "prompts/a.j2": "Hi\n",
            "prompts/b.j2": f"---\n{front}\n---\nHi\n",
        }
    )
    run = run_bounded("check", "--format", "json", cwd=root)
    run.assert_clean()
    findings = run_json(run)["findings"]
    assert any(f["rule"] == "PB001" and f["path"] == "prompts/b.j2" for f in findings)  # type: ignore[index,union-attr]


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("[" * 100_000 + "]" * 100_000, id="nested-100000"),
        pytest.param('{"name": ' + "1" * 5000 + "}", id="5000-digit-integer"),
        pytest.param('{"name": NaN}', id="nan"),
    ],
)
def test_sample_json_bounds(
    content: str, run_bounded: RunBounded, make_project: MakeProject
) -> None:
    root = make_project(
        {
            "budgets.yaml": MANIFEST,
            "prompts/a.j2": "Hi\n",
            "prompts/b.prompty": "---\nname: b\nsample: s.json\n---\nuser:\nHi {{ name }}\n",
            "prompts/s.json": content,
        }
    )
    run = run_bounded("check", cwd=root)
    run.assert_clean()


def test_semantic_kernel_config_json_nested_deep(
    run_bounded: RunBounded, make_project: MakeProject
) -> None:
    root = make_project(
        {
            "budgets.yaml": MANIFEST,
            "prompts/a.j2": "Hi\n",
            "prompts/Chat/skprompt.txt": "Hi {{$input}}\n",
            "prompts/Chat/config.json": '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}",
        }
    )
    run = run_bounded("count", "prompts/Chat/skprompt.txt", "--format", "json", cwd=root)
    run.assert_clean()
    assert "nested more than" in run.stdout


def test_langchain_json_nested_deep(run_bounded: RunBounded, make_project: MakeProject) -> None:
    body = '{"_type": "prompt", "template": "Hi {x}", "n": ' + "[" * 50_000 + "]" * 50_000 + "}"
    root = make_project({"budgets.yaml": MANIFEST, "prompts/a.j2": "Hi\n", "prompts/l.json": body})
    run = run_bounded("count", "prompts/l.json", "--format", "json", cwd=root)
    run.assert_clean()


# -- budgets.yaml: one line, exit 2 ---------------------------------------------------------


@pytest.mark.parametrize(
    "manifest",
    [
        pytest.param(MANIFEST + "# a NUL \x00 in a comment\n", id="nul-in-comment"),
        pytest.param(MANIFEST + "# bell \x07\n", id="non-printable"),
        pytest.param(MANIFEST + "extra: " + "[" * 1000 + "]" * 1000 + "\n", id="nested-1000"),
        pytest.param(MANIFEST.replace("100}", "1" + "0" * 4400 + "}"), id="4401-digits"),
        pytest.param(MANIFEST.replace("100}", ".nan}"), id="nan-traffic"),
        pytest.param(MANIFEST.replace("100}", ".inf}"), id="inf-traffic"),
        pytest.param(MANIFEST.replace("100}", "1.0e+308}"), id="1e308-traffic"),
        pytest.param(MANIFEST.replace("output_tokens: 50", "output_tokens: .nan"), id="nan-tokens"),
        pytest.param(MANIFEST.replace("prompts/", '"prompts/\\0"'), id="nul-in-prompts"),
        pytest.param(MANIFEST.replace("prompts/", '"\\ud800"'), id="surrogate-in-prompts"),
        pytest.param(MANIFEST.replace("a.j2", '"\\ud800.j2"'), id="surrogate-in-step"),
        pytest.param(MANIFEST.replace("a.j2", '"a\\0.j2"'), id="nul-in-step"),
        pytest.param(MANIFEST.replace("a.j2", "x" * 300 + ".j2"), id="component-300-bytes"),
        pytest.param(MANIFEST.replace("prompts/", "p" * 300), id="prompts-300-bytes"),
        pytest.param(MANIFEST + "prices: " + "q" * 300 + ".json\n", id="prices-300-bytes"),
        pytest.param(MANIFEST + 'prices: "\\ud800.json"\n', id="prices-surrogate"),
        pytest.param(
            MANIFEST.replace("output_tokens: 50", "output_tokens: !!int"), id="empty-int-tag"
        ),
        pytest.param(MANIFEST.replace("100}", "!!float _}"), id="bad-float-tag"),
        pytest.param(MANIFEST.replace("gpt-4.1-mini", "!!bool maybe"), id="bad-bool-tag"),
        pytest.param(MANIFEST.replace("gpt-4.1-mini", "!!timestamp soon"), id="bad-timestamp-tag"),
        pytest.param(MANIFEST.replace("  model:", "  !!int model:"), id="bad-tag-on-a-key"),
    ],
)
def test_hostile_manifest_is_one_line(
    manifest: str, run_bounded: RunBounded, make_project: MakeProject
) -> None:
    root = make_project({"prompts/a.j2": "Hi\n"})
    (root / "budgets.yaml").write_bytes(manifest.encode("utf-8", "surrogatepass"))
    run = run_bounded("check", cwd=root)
    run.assert_clean(2)
    assert len(run.error_lines) == 1, run.stderr
    assert run.stderr.startswith("promptbudget: error: budgets.yaml"), run.stderr


@pytest.mark.parametrize(
    ("old", "new", "line"),
    [
        pytest.param("prompts/", "/etc/", 2, id="absolute-prompts"),
        pytest.param("prompts/", "../elsewhere/", 2, id="dotdot-prompts"),
        pytest.param("prompts/", "prompts/../../x/", 2, id="dotdot-inside-prompts"),
        pytest.param("prompts/", '"C:/x/"', 2, id="drive-prompts"),
        pytest.param("prompts/", "'\\\\server\\share'", 2, id="unc-prompts"),
        pytest.param("prompts/", "p" * 256 + "/", 2, id="prompts-256-bytes"),
        pytest.param("prompts/", "é" * 128 + "/", 2, id="prompts-256-utf8-bytes"),
        pytest.param("a.j2", "../../../../etc/passwd", 10, id="dotdot-step"),
        pytest.param("a.j2", "/etc/passwd", 10, id="absolute-step"),
        pytest.param("a.j2", "sub/" + "x" * 300 + ".j2", 10, id="step-300-bytes"),
        pytest.param("version: 1\n", "version: 1\nprices: /etc/prices.json\n", 2, id="prices"),
        pytest.param("version: 1\n", "version: 1\nprices: ../p.json\n", 2, id="prices-dotdot"),
    ],
)
def test_a_bad_manifest_path_is_a_schema_error_with_its_line(
    old: str, new: str, line: int, run_bounded: RunBounded, make_project: MakeProject
) -> None:
    """Refused by the schema (the ``project-path`` format), so reported like every other
    manifest error: file, line, what would be valid; not when the path is resolved."""
    root = make_project({"prompts/a.j2": "Hi\n"})
    (root / "budgets.yaml").write_text(MANIFEST.replace(old, new, 1), encoding="utf-8")
    run = run_bounded("check", cwd=root)
    run.assert_clean(2)
    assert len(run.error_lines) == 1, run.stderr
    assert run.stderr.startswith(f"promptbudget: error: budgets.yaml:{line}: "), run.stderr
    assert "is not valid here; expected" in run.stderr, run.stderr
    assert "with no '..', not absolute, each name at most 255 bytes" in run.stderr, run.stderr


# -- price files, lock, pyproject (issue 18 item 6) -----------------------------------------

PRICE_ENTRY = {"input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6, "mode": "chat"}


@pytest.mark.parametrize(
    "content",
    [
        pytest.param('{"m": ' + "[" * 100_000 + "]" * 100_000 + "}", id="nested-100000"),
        pytest.param(json.dumps({"m": {**PRICE_ENTRY, "mode": []}}), id="mode-list"),
        pytest.param(json.dumps({"m": {**PRICE_ENTRY, "mode": {}}}), id="mode-object"),
        pytest.param(json.dumps({"m": {**PRICE_ENTRY, "input_cost_per_token": 1e300}}), id="1e300"),
        pytest.param('{"m": {"input_cost_per_token": Infinity}}', id="infinity"),
        pytest.param('{"m": {"input_cost_per_token": 1' + "0" * 5000 + "}}", id="5000-digits"),
    ],
)
@pytest.mark.parametrize("command", [["models", "--prices"], ["models", "--diff"]])
def test_hostile_price_file_is_one_line(
    content: str, command: list[str], run_bounded: RunBounded, tmp_path: Path
) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(content, encoding="utf-8")
    run = run_bounded(*command, str(prices), cwd=tmp_path)
    run.assert_clean(0, 2)
    if run.exit_code == 2:
        assert len(run.error_lines) == 1, run.stderr


def test_lock_nested_deep_is_one_line(run_bounded: RunBounded, make_project: MakeProject) -> None:
    root = make_project(
        {
            "budgets.yaml": MANIFEST,
            "prompts/a.j2": "Hi\n",
            "promptbudget.lock": '{"templates": ' + "[" * 100_000 + "]" * 100_000 + "}",
        }
    )
    run = run_bounded("check", cwd=root)
    run.assert_clean(2)
    assert "nested more than" in run.stderr
    assert len(run.error_lines) == 1


@pytest.mark.parametrize(
    "table",
    [
        pytest.param("x = " + "[" * 5000 + "]" * 5000, id="array-nested-5000"),
        pytest.param("x = 1" + "0" * 5000, id="5000-digit-integer"),
        pytest.param("x = " + "{a = " * 2000 + "1" + "}" * 2000, id="inline-table-nested"),
        pytest.param("x = nan", id="nan"),
    ],
)
def test_hostile_pyproject_is_one_line(
    table: str, run_bounded: RunBounded, make_project: MakeProject
) -> None:
    root = make_project(
        {"pyproject.toml": f"[tool.promptbudget]\nversion = 1\n{table}\n", "prompts/a.j2": "Hi\n"}
    )
    run = run_bounded("check", cwd=root)
    run.assert_clean(2)
    assert len(run.error_lines) == 1, run.stderr
    assert "pyproject.toml" in run.stderr


def test_a_directory_is_resolved_once_a_run_and_a_file_symlink_every_time(
    tmp_path: Path, secret: Path
) -> None:
    """``read_confined`` takes a directory's real path from the run's memo
    (``pathnames.real``) and checks the file's own name at the open: a file symlinked out of
    the project is refused however warm the memo, one symlinked inside it is read, and a
    directory replaced by a symlink out of the project is refused from the next run on
    (``forget_real``: the command line, ``Project.open``, ``Budgets.load``)."""
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub/a.j2").write_text("inside\n", encoding="utf-8")
    (secret / "a.j2").write_text(f"{SECRET}\n", encoding="utf-8")
    (root / "sub/out.j2").symlink_to(secret / "token.txt")
    (root / "sub/in.j2").symlink_to(root / "sub/a.j2")
    forget_real()
    assert read_confined(root / "sub/a.j2", root=root, limit=100) == b"inside\n"
    with pytest.raises(ConfinementError, match="outside the project root"):
        read_confined(root / "sub/out.j2", root=root, limit=100)
    assert read_confined(root / "sub/in.j2", root=root, limit=100) == b"inside\n"
    (root / "sub").rename(root / "old")
    (root / "sub").symlink_to(secret, target_is_directory=True)
    forget_real()  # a new run
    with pytest.raises(ConfinementError, match="outside the project root"):
        read_confined(root / "sub/a.j2", root=root, limit=100)
