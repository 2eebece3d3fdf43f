"""The command line as users see it: exit codes, streams, every command."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import EXAMPLES, Run
from promptbudget import __version__

WARNING_ONLY = {
    "budgets.yaml": """\
        version: 1
        defaults: {model: gpt-4.1-mini}
        workflows:
          w:
            steps:
              - prompt: a.j2
    """,
    # No output limit anywhere: PB103 (a warning) and nothing else.
    "prompts/a.j2": "Say hello.\n",
}


def test_version(run_cli: Callable[..., Run]) -> None:
    result = run_cli("--version")
    assert (result.exit_code, result.stdout.strip()) == (0, f"promptbudget {__version__}")


def test_help_lists_every_command(run_cli: Callable[..., Run]) -> None:
    result = run_cli("--help")
    assert result.exit_code == 0
    for command in ("init", "count", "check", "models", "rules", "explain", "schema"):
        assert command in result.stdout


def test_unknown_option_is_a_usage_error(run_cli: Callable[..., Run]) -> None:
    result = run_cli("check", "--no-such-option")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "No such option" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_format_value_is_a_usage_error(run_cli: Callable[..., Run]) -> None:
    result = run_cli("check", "--format", "xml", cwd=EXAMPLES)
    assert result.exit_code == 2
    assert "xml" in result.stderr


def test_fail_on_and_exit_zero(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = make_project(WARNING_ONLY)
    assert run_cli("check", cwd=root).exit_code == 0
    assert run_cli("check", "--fail-on", "warning", cwd=root).exit_code == 1
    assert run_cli("check", "--fail-on", "warning", "--exit-zero", cwd=root).exit_code == 0
    payload = run_cli("check", "--fail-on", "warning", "--format", "json", cwd=root).json()
    assert payload["summary"] == {"errors": 0, "warnings": 1, "infos": 0, "exit_code": 1}
    assert [f["rule"] for f in payload["findings"]] == ["PB103"]


def test_exit_zero_on_failing_project(run_cli: Callable[..., Run]) -> None:
    result = run_cli("check", "--exit-zero", cwd=EXAMPLES / "over-budget")
    assert result.exit_code == 0
    assert "PB106" in result.stdout


def test_output_file(tmp_path: Path, run_cli: Callable[..., Run]) -> None:
    target = tmp_path / "report.json"
    result = run_cli("check", "--format", "json", "--output", str(target), cwd=EXAMPLES)
    assert (result.exit_code, result.stdout) == (0, "")
    assert json.loads(target.read_text())["summary"]["exit_code"] == 0


def test_count_an_unknown_model_approximately(run_cli: Callable[..., Run]) -> None:
    """As the README's tokenizer table says: a model of no known family is counted with
    o200k_base, uncalibrated (±25%), marked as an estimate; count needs no price: exit 0."""
    args = ("count", "prompts/support/classify.j2", "--format", "json")
    result = run_cli(*args, "--model", "llama3", cwd=EXAMPLES)
    assert result.exit_code == 0, result.stderr
    (template,) = result.json()["templates"]
    assert (template["model"], template["tokenizer"]) == ("llama3", "approximate")
    assert (template["exact"], template["error_band"]) == (False, "±25%")
    (exact,) = run_cli(*args, "--model", "gpt-4o", cwd=EXAMPLES).json()["templates"]
    assert exact["encoding"] == "o200k_base"
    assert template["text_tokens"] == exact["text_tokens"]  # o200k_base, factor 1
    (finding,) = [f for f in result.json()["findings"] if f["rule"] == "PB110"]
    assert finding["severity"] == "warning"
    assert "did you mean ollama/llama3" in finding["message"]
    text = run_cli("count", "prompts/support/classify.j2", "-m", "llama3", cwd=EXAMPLES).stdout
    assert text.splitlines()[1].split()[3:5] == ["~330", "~341"]
    strict = run_cli(*args, "--model", "llama3", "--fail-on", "warning", cwd=EXAMPLES)
    assert strict.exit_code == 1


def test_count_unknown_model_severity_from_the_manifest(
    run_cli: Callable[..., Run], make_project: Callable[..., Path]
) -> None:
    root = make_project({"budgets.yaml": "version: 1\nrules: {PB110: error}\n", "a.txt": "Hi.\n"})
    result = run_cli("count", "a.txt", "-m", "llama3", cwd=root)
    assert result.exit_code == 1
    assert "PB110 unknown-model [error]" in result.stdout


def test_count_an_older_model_of_a_known_family(run_cli: Callable[..., Run]) -> None:
    """Not in the catalog (retired), but its tokenizer family is known: counted, and PB110."""
    result = run_cli(
        "count",
        "prompts/support/classify.j2",
        "--model",
        "claude-3-5-sonnet-20241022",
        "--format",
        "json",
        cwd=EXAMPLES,
    )
    assert result.exit_code == 0, result.stderr  # count needs no price
    (template,) = result.json()["templates"]
    assert (template["tokenizer"], template["exact"]) == ("claude", False)
    (finding,) = [f for f in result.json()["findings"] if f["rule"] == "PB110"]
    assert finding["severity"] == "warning"
    assert "'claude-3-5-sonnet-20241022' is not in the price catalog" in finding["message"]


def test_count_snapshot_id_uses_the_family_tokenizer(run_cli: Callable[..., Run]) -> None:
    result = run_cli(
        "count",
        "prompts/support/classify.j2",
        "--model",
        "gpt-4-0613",
        "--format",
        "json",
        cwd=EXAMPLES,
    )
    assert result.exit_code == 0
    template = result.json()["templates"][0]
    assert (template["encoding"], template["exact"]) == ("cl100k_base", True)


def test_count_missing_path(run_cli: Callable[..., Run]) -> None:
    result = run_cli("count", "nope.j2", cwd=EXAMPLES)
    assert result.exit_code == 2
    assert result.stderr.strip() == "promptbudget: error: nope.j2: no such file or directory"


def test_count_several_models(run_cli: Callable[..., Run]) -> None:
    result = run_cli(
        "count",
        "prompts/support/classify.j2",
        "-m",
        "gpt-4o",
        "-m",
        "claude-sonnet-4-6",
        "--format",
        "json",
        cwd=EXAMPLES,
    )
    templates = result.json()["templates"]
    assert [(t["model"], t["exact"]) for t in templates] == [
        ("gpt-4o", True),
        ("claude-sonnet-4-6", False),
    ]
    # The estimate is o200k_base x 1.18, rounded half up per text segment.
    assert templates[1]["text_tokens"] >= templates[0]["text_tokens"]
    assert templates[1]["error_band"] == "±20%"


def test_init_then_check_passes(tmp_path: Path, run_cli: Callable[..., Run]) -> None:
    result = run_cli("init", cwd=tmp_path)
    assert result.exit_code == 0
    assert "created" in result.stderr
    assert (tmp_path / "budgets.yaml").is_file()
    assert run_cli("check", cwd=tmp_path).exit_code == 0
    again = run_cli("init", cwd=tmp_path)
    assert again.exit_code == 2
    assert "already exists; use --force" in again.stderr
    assert run_cli("init", "--force", cwd=tmp_path).exit_code == 0


def test_models_lists_the_catalog(run_cli: Callable[..., Run]) -> None:
    result = run_cli("models", "--format", "json")
    assert result.exit_code == 0
    payload = result.json()
    names = {m["name"] for m in payload["models"]}
    assert {"gpt-4o", "claude-sonnet-4-6", "gemini-2.5-pro"} <= names
    assert payload["catalog_as_of"] == "2026-12-05"
    assert len(names) >= 300
    openai = run_cli("models", "--provider", "openai", "--format", "json").json()["models"]
    assert openai and all(m["provider"] == "openai" for m in openai)
    text = run_cli("models")
    assert "gpt-4o" in text.stdout and "as of 2026-12-05" in text.stdout


def test_models_search_and_filters(run_cli: Callable[..., Run]) -> None:
    found = run_cli("models", "claude", "opus", "4-5", "--json").json()["models"]
    names = {m["name"] for m in found}
    assert "claude-opus-4-5" in names
    assert all("claude" in n.lower() and "opus" in n.lower() and "4-5" in n for n in names)
    # A host: every Bedrock entry, whoever made the model.
    bedrock = run_cli("models", "--provider", "bedrock", "--json").json()["models"]
    assert bedrock and all(m["host"] == "bedrock" for m in bedrock)
    assert {m["provider"] for m in bedrock} >= {"anthropic", "meta"}
    family = run_cli("models", "--family", "claude-4.7", "--format", "json").json()["models"]
    assert family and all(m["tokenizer"] == "claude-4.7" for m in family)
    assert run_cli("models", "no-such-model-anywhere", "--json").json()["models"] == []


def test_models_mark_deprecated_models(run_cli: Callable[..., Run]) -> None:
    """The tests run on 2026-12-05 (conftest.TODAY); deepseek-chat was retired 2026-07-24."""
    (chat,) = [
        m
        for m in run_cli("models", "deepseek-chat", "--json").json()["models"]
        if m["name"] == "deepseek-chat"
    ]
    assert (chat["deprecation_date"], chat["deprecated"]) == ("2026-07-24", True)
    text = run_cli("models", "deepseek-chat").stdout
    assert "deepseek-chat (deprecated 2026-07-24)" in text
    flash = run_cli("models", "deepseek-flash", "--json").json()["models"]
    assert not any(m["deprecated"] for m in flash if m["name"] == "deepseek-flash")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--provider", "nosuch"), "unknown provider 'nosuch'"),
        (("--family", "nosuch"), "unknown tokenizer family 'nosuch'"),
    ],
)
def test_models_bad_filters_are_usage_errors(
    run_cli: Callable[..., Run], args: tuple[str, ...], message: str
) -> None:
    result = run_cli("models", *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_models_include_manifest_additions(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = make_project(
        {
            "budgets.yaml": """\
                version: 1
                models:
                  acme-small: {tokenizer: o200k_base, input_per_mtok: 0.10, output_per_mtok: 0.40}
            """
        }
    )
    models = run_cli("models", "--format", "json", cwd=root).json()["models"]
    acme = next(m for m in models if m["name"] == "acme-small")
    assert (acme["input_per_mtok"], acme["origin"]) == (0.1, "manifest")


def test_rules_and_explain(run_cli: Callable[..., Run]) -> None:
    listing = run_cli("rules")
    assert listing.exit_code == 0
    assert "PB101  input-over-budget" in listing.stdout
    rules = run_cli("rules", "--format", "json").json()["rules"]
    assert {r["code"] for r in rules} >= {"PB001", "PB101", "PB110", "PB201", "PB301"}
    explained = run_cli("explain", "pb101")
    assert explained.exit_code == 0
    assert "Why" in explained.stdout and "Fails" in explained.stdout
    assert run_cli("explain", "input-over-budget").stdout == explained.stdout
    unknown = run_cli("explain", "PB999")
    assert unknown.exit_code == 2 and "unknown rule 'PB999'" in unknown.stderr


def test_schema_is_a_valid_json_schema(run_cli: Callable[..., Run]) -> None:
    from jsonschema import Draft202012Validator

    result = run_cli("schema")
    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    Draft202012Validator.check_schema(schema)
    example = __import__("yaml").safe_load((EXAMPLES / "budgets.yaml").read_text())
    Draft202012Validator(schema).validate(example)


def test_internal_error_is_exit_2_with_a_traceback(
    run_cli: Callable[..., Run], monkeypatch: pytest.MonkeyPatch
) -> None:
    import promptbudget.commands.check

    def boom(options: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(promptbudget.commands.check, "run", boom)
    result = run_cli("check", cwd=EXAMPLES)
    assert result.exit_code == 2
    assert "Traceback" in result.stderr and "RuntimeError: boom" in result.stderr
    assert "this is a bug; please report it" in result.stderr


def test_python_dash_m_and_console_script(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "promptbudget", "check", "--format", "json"],
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["summary"]["exit_code"] == 0


def test_count_totals_per_model(run_cli: Callable[..., Run]) -> None:
    args = ("count", "prompts/support", "-m", "gpt-4o", "-m", "claude-sonnet-4-6")
    payload = run_cli(*args, "--format", "json", cwd=EXAMPLES).json()
    rows = payload["templates"]
    assert len(rows) == 8
    expected = [
        {
            "model": model,
            "encoding": "o200k_base",
            "templates": 4,
            "text_tokens": sum(r["text_tokens"] for r in rows if r["model"] == model),
            "request_tokens": sum(r["request_tokens"] for r in rows if r["model"] == model),
            "exact": model == "gpt-4o",
        }
        for model in ("gpt-4o", "claude-sonnet-4-6")
    ]
    assert payload["totals"] == expected
    lines = run_cli(*args, cwd=EXAMPLES).stdout.splitlines()
    totals = [line.split() for line in lines if line.startswith("total ")]
    assert totals == [
        [
            "total",
            model,
            f"{approx}{e['text_tokens']:,}",
            f"{approx}{e['request_tokens']:,}",
            "4",
            "templates",
        ]
        for model, approx, e in zip(
            ("gpt-4o", "claude-sonnet-4-6"), ("", "~"), expected, strict=True
        )
    ]


def test_count_of_one_template_has_no_total_row(run_cli: Callable[..., Run]) -> None:
    result = run_cli("count", "prompts/support/classify.j2", cwd=EXAMPLES)
    assert "total" not in result.stdout
    payload = run_cli("count", "prompts/support/classify.j2", "-f", "json", cwd=EXAMPLES).json()
    assert [t["templates"] for t in payload["totals"]] == [1]


def test_explain_prints_no_restructuredtext_literals(run_cli: Callable[..., Run]) -> None:
    from promptbudget.rules import RULES

    literals = 0
    for code, rule in RULES.items():
        out = run_cli("explain", code).stdout
        prose = [line for line in out.splitlines() if not line.startswith((" ", "\t"))]
        assert not any("``" in line for line in prose), code
        literals += rule.doc.count("``") // 2
        for literal in re.findall(r"``(.+?)``", rule.doc):  # shown as inline code
            assert f"`{literal}`" in out, (code, literal)
    assert literals > 20  # the docstrings do use them
