"""budgets.yaml: every bad manifest is exit 2 and one human line naming file, line and fix."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path

import pytest

from conftest import Run
from promptbudget.errors import ManifestError, ManifestErrors
from promptbudget.manifest.loader import find_manifest, load_manifest
from promptbudget.manifest.model import CostLimit

PROMPT = {"prompts/a.j2": "Hello {{ name }}\n"}

GOOD = """\
version: 1
defaults: {model: gpt-4.1-mini}
variables:
  name: {max_tokens: 20}
workflows:
  greet:
    traffic: {requests_per_day: 1000}
    success_rate: 90%
    steps:
      - prompt: a.j2
        output_tokens: 50
    limits:
      max_input_tokens: 6k
      max_cost_per_request: $0.01
      max_monthly_spend: "$4,000"
"""


def test_a_valid_manifest_loads_with_units(make_project: Callable[..., Path]) -> None:
    root = make_project({"budgets.yaml": GOOD, **PROMPT})
    manifest = load_manifest(root / "budgets.yaml", cwd=root)
    workflow = manifest.workflows[0]
    assert workflow.limits.max_input_tokens == 6000
    assert workflow.limits.max_cost_per_request == CostLimit(D("0.01"), "mean")
    assert workflow.limits.max_monthly_spend == D("4000")
    assert workflow.success_rate == D("0.9")
    assert (workflow.requests_per_day, workflow.requests_per_month) == (1000, 30_000)
    assert workflow.steps[0].name == "a"
    assert workflow.steps[0].prompt_path == (root / "prompts/a.j2").resolve()
    assert manifest.variables["name"].max_tokens == 20
    assert workflow.limit_lines["max_input_tokens"] == 13


def test_find_manifest_looks_in_parents(make_project: Callable[..., Path]) -> None:
    root = make_project({"budgets.yaml": GOOD, **PROMPT})
    assert find_manifest(root / "prompts") == (root / "budgets.yaml").resolve()


def bad(text: str) -> str:
    return textwrap.dedent(text)


BAD_MANIFESTS = [
    ("broken-yaml", "version: 1\nworkflows:\n  greet: {steps: [\n", 4, "not valid YAML"),
    ("tab-indent", "version: 1\nworkflows:\n\tgreet: {}\n", 3, "not valid YAML"),
    ("empty", "", 1, "empty"),
    ("only-comments", "# nothing here\n", 1, "empty"),
    ("a-list", "- version: 1\n", 1, "must be a mapping"),
    ("no-version", "workflows: {}\n", 1, "missing required key 'version'"),
    ("version-2", "version: 2\n", 1, "expected 1"),
    ("unknown-top-key", "version: 1\nworkflow: {}\n", 2, "unknown key 'workflow'"),
    (
        "step-with-model-and-route",
        "version: 1\nroutes:\n  r: {model: gpt-4o}\nworkflows:\n  greet:\n    steps:\n"
        "      - {prompt: greet.j2, model: gpt-4o, route: r}\n",
        7,
        "'model' and 'route' cannot be used together; keep one of them",
    ),
    (
        "unknown-limit",
        GOOD.replace("max_input_tokens: 6k", "max_input_token: 6k"),
        13,
        "unknown key 'max_input_token'; did you mean 'max_input_tokens'? valid keys: "
        "max_cost_per_outcome",
    ),
    (
        "workflows-as-list",
        "version: 1\nworkflows:\n  - greet\n",
        2,
        "workflows",
    ),
    (
        "negative-limit",
        GOOD.replace("max_input_tokens: 6k", "max_input_tokens: -5"),
        13,
        "expected a token count such as 6000, 6k or 1.5M",
    ),
    (
        "non-numeric-limit",
        GOOD.replace("max_input_tokens: 6k", "max_input_tokens: lots"),
        13,
        "'lots' is not valid here; expected a token count",
    ),
    (
        "fractional-tokens",
        GOOD.replace("max_input_tokens: 6k", "max_input_tokens: 1.2345k"),
        13,
        "not a whole number of tokens",
    ),
    (
        "non-numeric-money",
        GOOD.replace("max_cost_per_request: $0.01", "max_cost_per_request: cheap"),
        14,
        "expected an amount in dollars",
    ),
    (
        "share-without-percent",
        GOOD.replace("success_rate: 90%", "success_rate: 90"),
        8,
        "expected a percentage",
    ),
    ("zero-success", GOOD.replace("success_rate: 90%", "success_rate: 0%"), 8, "above 0%"),
    (
        "missing-prompt-file",
        GOOD.replace("prompt: a.j2", "prompt: missing.j2"),
        10,
        "prompt file 'missing.j2' not found (looked in prompts/)",
    ),
    (
        "prompt-outside-root",
        GOOD.replace("prompt: a.j2", "prompt: ../../../../etc/passwd"),
        10,
        "outside the project root",
    ),
    (
        "prompt-is-a-directory",
        GOOD.replace("prompt: a.j2", "prompt: sub"),
        10,
        "is a directory",
    ),
    (
        "step-without-prompt",
        GOOD.replace("- prompt: a.j2\n        output_tokens: 50", "- output_tokens: 50"),
        10,
        "missing required key 'prompt'",
    ),
    (
        "duplicate-key",
        GOOD.replace("    success_rate: 90%\n", "    success_rate: 90%\n    success_rate: 80%\n"),
        9,
        "has the key 'success_rate' twice",
    ),
    (
        "turns-zero",
        GOOD.replace("output_tokens: 50", "output_tokens: 50\n        turns: 0"),
        12,
        "a whole number of turns, 1 to 100",
    ),
    (
        "both-traffic-kinds",
        GOOD.replace(
            "traffic: {requests_per_day: 1000}",
            "traffic: {requests_per_day: 1000, requests_per_month: 30000}",
        ),
        7,
        "expected {requests_per_day: N} or {requests_per_month: N}",
    ),
    ("unknown-rule", "version: 1\nrules:\n  PB999: off\n", 3, "unknown rule 'PB999'"),
    ("bad-severity", "version: 1\nrules:\n  PB101: fatal\n", 3, "one of off, info, warning, error"),
    (
        "new-model-without-prices",
        "version: 1\nmodels:\n  acme-small: {tokenizer: o200k_base}\n",
        3,
        "needs input_per_mtok and output_per_mtok",
    ),
    (
        "bad-variable-spec",
        GOOD.replace("name: {max_tokens: 20}", "name: {max: 20}"),
        4,
        "unknown key 'max'",
    ),
    (
        "alias-bomb",
        "version: 1\n"
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
        "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
        "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
        "f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
        "g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
        "h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
        "i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n",
        None,
        "alias bomb",
    ),
]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [case[1:] for case in BAD_MANIFESTS],
    ids=[case[0] for case in BAD_MANIFESTS],
)
def test_bad_manifest_is_exit_2_with_one_line(
    make_project: Callable[..., Path],
    run_cli: Callable[..., Run],
    text: str,
    line: int | None,
    message: str,
) -> None:
    root = make_project({"budgets.yaml": text, **PROMPT, "prompts/sub/x.j2": "x"}, dedent=False)
    result = run_cli("check", cwd=root)
    assert result.exit_code == 2, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("promptbudget: error: budgets.yaml")
    if line is not None:
        assert f"budgets.yaml:{line}: " in lines[0], lines[0]
    assert message in lines[0], lines[0]


def test_error_names_the_json_path(make_project: Callable[..., Path]) -> None:
    root = make_project(
        {"budgets.yaml": GOOD.replace("max_input_tokens: 6k", "max_input_tokens: lots"), **PROMPT}
    )
    with pytest.raises(ManifestError) as info:
        load_manifest(root / "budgets.yaml", cwd=root)
    assert info.value.json_path == "$.workflows.greet.limits.max_input_tokens"
    assert info.value.line == 13


def test_manifest_that_is_a_directory(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = make_project({"budgets.yaml": GOOD, **PROMPT})
    result = run_cli("check", "--config", "prompts", cwd=root)
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "promptbudget: error: prompts: is a directory; give the manifest file itself "
        "(e.g. budgets.yaml)"
    )


def test_manifest_that_is_not_utf8(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = make_project({"budgets.yaml": b"version: 1\n# caf\xe9\n", **PROMPT})
    result = run_cli("check", cwd=root)
    assert result.exit_code == 2
    assert "budgets.yaml:2: is not valid UTF-8" in result.stderr


def test_missing_config_file(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    root = make_project(PROMPT)
    result = run_cli("check", "--config", "nope.yaml", cwd=root)
    assert result.exit_code == 2
    assert result.stderr.strip() == "promptbudget: error: nope.yaml: no such file"


def test_no_manifest_anywhere(tmp_path: Path, run_cli: Callable[..., Run]) -> None:
    result = run_cli("check", cwd=tmp_path)
    assert result.exit_code == 2
    assert "no budgets.yaml" in result.stderr and "promptbudget init" in result.stderr


def test_manifest_models_override_and_add(make_project: Callable[..., Path]) -> None:
    text = GOOD + textwrap.dedent(
        """\
        models:
          gpt-4.1-mini: {input_per_mtok: 0.5}
          acme-small: {tokenizer: o200k_base, input_per_mtok: 0.10, output_per_mtok: "$0.40"}
        """
    )
    root = make_project({"budgets.yaml": text, **PROMPT})
    catalog = load_manifest(root / "budgets.yaml", cwd=root).catalog
    mini = catalog.lookup("gpt-4.1-mini")
    assert mini is not None
    assert (mini.input_per_mtok, mini.output_per_mtok, mini.origin) == (
        D("0.5"),
        D("1.6"),
        "manifest",
    )
    acme = catalog.lookup("acme-small")
    assert acme is not None
    assert (acme.input_per_mtok, acme.output_per_mtok, acme.provider) == (
        D("0.1"),
        D("0.4"),
        "custom",
    )


def test_every_schema_error_is_reported_at_once_sorted_by_line(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    """Three typos at three levels (top, workflow, limits): three lines, one run."""
    text = (
        GOOD.replace("defaults:", "default:")
        .replace("success_rate: 90%", "sucess_rate: 90%")
        .replace("max_input_tokens: 6k", "max_input_token: 6k")
    )
    root = make_project({"budgets.yaml": text, **PROMPT})
    result = run_cli("check", cwd=root)
    assert result.exit_code == 2, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 3, result.stderr
    assert lines[0].startswith("promptbudget: error: budgets.yaml:2: unknown key 'default'; ")
    assert "did you mean 'defaults'?" in lines[0]
    assert lines[1].startswith("promptbudget: error: budgets.yaml:8: unknown key 'sucess_rate'")
    assert "did you mean 'success_rate'?" in lines[1]
    assert "(at $.workflows.greet.sucess_rate)" in lines[1]
    assert lines[2].startswith("promptbudget: error: budgets.yaml:13: unknown key 'max_input_t")
    assert "(at $.workflows.greet.limits.max_input_token)" in lines[2]


def test_every_conversion_error_is_reported_at_once(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    """Values the schema accepts but the converter refuses (a unit, a route, a template
    pattern) are collected too, each at its own line."""
    text = GOOD.replace("output_tokens: 50", "output_tokens: {p50: 50, p95: 20}") + (
        "routes:\n"
        "  main: {model: gpt-4.1-mini}\n"
        "  half: {split: [{model: gpt-4.1-mini, share: 50%}, {model: gpt-4.1, share: 40%}]}\n"
        "templates:\n"
        "  prompts/nope.j2: {max_tokens: 100}\n"
    )
    root = make_project({"budgets.yaml": text, **PROMPT})
    with pytest.raises(ManifestErrors) as info:
        load_manifest(root / "budgets.yaml", cwd=root)
    found = [(e.line, e.json_path) for e in info.value.errors]
    assert found == [
        (11, "$.workflows.greet.steps[0].output_tokens"),
        (18, "$.routes.half.split"),
        (20, '$.templates["prompts/nope.j2"]'),
    ]
    result = run_cli("check", cwd=root)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 3, result.stderr
    assert "matches no file" in result.stderr.splitlines()[2]


def test_a_single_error_is_still_one_plain_manifest_error(
    make_project: Callable[..., Path],
) -> None:
    root = make_project(
        {"budgets.yaml": GOOD.replace("max_input_tokens: 6k", "max_input_tokens: lots"), **PROMPT}
    )
    with pytest.raises(ManifestError) as info:
        load_manifest(root / "budgets.yaml", cwd=root)
    assert not isinstance(info.value, ManifestErrors)


def test_schema_and_conversion_errors_come_together(
    make_project: Callable[..., Path], run_cli: Callable[..., Run]
) -> None:
    """A typo in one workflow does not hide a refused value in another; the workflow with
    the typo is not converted (no second, derived error for it)."""
    second = GOOD.split("workflows:\n", 1)[1].replace("greet:", "other:")
    text = (
        GOOD.replace("success_rate: 90%", "sucess_rate: 90%")
        + second.replace("output_tokens: 50", "output_tokens: {p50: 50, p95: 20}")
        + "rules:\n  PB101: fatal\n"
    )
    root = make_project({"budgets.yaml": text, **PROMPT})
    result = run_cli("check", cwd=root)
    assert result.exit_code == 2, result
    lines = result.stderr.splitlines()
    assert [line.split(": ")[2].split(":")[1] for line in lines] == ["8", "21", "27"], lines
    assert "unknown key 'sucess_rate'" in lines[0]
    assert "p95 (20) is below p50 (50)" in lines[1]
    assert "one of off, info, warning, error" in lines[2]
