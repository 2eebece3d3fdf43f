"""Everything one run needs, decided once from the command line."""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from promptbudget.findings import Severity


class OutputFormat(enum.Enum):
    AUTO = "auto"
    TEXT = "text"
    JSON = "json"
    GITHUB = "github"
    SARIF = "sarif"
    JUNIT = "junit"
    MARKDOWN = "markdown"

    def resolve(self, *, environ: dict[str, str] | None = None) -> OutputFormat:
        """``auto``: github annotations inside GitHub Actions, text everywhere else."""
        if self is not OutputFormat.AUTO:
            return self
        env = os.environ if environ is None else environ
        return OutputFormat.GITHUB if env.get("GITHUB_ACTIONS") == "true" else OutputFormat.TEXT


@dataclass(frozen=True)
class Options:
    """One run of one command. Fields a command does not use keep their defaults."""

    cwd: Path
    config: Path | None = None
    paths: tuple[Path, ...] = ()
    models: tuple[str, ...] = ()
    fail_on: Severity = Severity.ERROR
    fail_on_given: bool = False  # --fail-on on the command line (else the manifest's fail_on)
    select: tuple[str, ...] = ()  # --select: only these rules (codes, prefixes, slugs)
    ignore: tuple[str, ...] = ()  # --ignore: never these
    exit_zero: bool = False
    output_format: OutputFormat = OutputFormat.AUTO
    output: Path | None = None
    color: bool = True
    verbosity: int = 0  # -1: --quiet (errors only), 1: --verbose (every finding apart)
    provider: str | None = None
    workflow: str | None = None  # estimate: only this workflow
    why: bool = False  # estimate: the cost breakdown
    samples: int = 1000  # Monte Carlo samples (used only when distributions are declared)
    seed: int = 1
    use_cache: bool = True  # --no-cache: neither read nor write .promptbudget_cache/
    sets: tuple[str, ...] = ()  # estimate: what-if overrides, PATH=VALUE
    prices: Path | None = None  # a LiteLLM-format price file laid over the catalog
    passes: tuple[str, ...] = ()  # compress: pass names (default: the safe passes)
    keep_examples: int | None = None  # compress: few-shot examples the examples pass keeps
    diff: bool = False  # compress: print a unified diff
    write: bool = False  # compress: rewrite the files
    force: bool = False  # compress --write: also files that are read-only
    check_only: bool = False  # lock --check: write nothing, say what would change
    headroom: Decimal = Decimal("0.25")  # baseline: room above today's values (a share)
    raise_limits: bool = False  # baseline --raise: raise limits someone wrote that break
    base_ref: str | None = None  # diff --base
    fail_on_increase: Decimal | None = None  # diff: a rise above this percent fails
    price_diff: Path | None = None  # models --diff FILE
    today: date | None = None  # the run's date (deprecations); the CLI sets it
    query: tuple[str, ...] = ()  # models: search words
    family: str | None = None  # models: tokenizer family
    input_format: str = "auto"  # replay: auto, otel, openai, anthropic, litellm, csv, parquet
    aggregates: Path | None = None  # replay --aggregates FILE: judge a warehouse's result
    calibrate: bool = False  # replay: write the observed values into budgets.yaml
    since: str | None = None  # replay --since: requests starting at or after (ISO 8601)
    until: str | None = None  # replay --until: requests starting before (a date: its end)
    compare_to: str | None = None  # replay --compare-to SINCE..UNTIL: the baseline window
    # count/check -: the template read from stdin (at most the template size limit + 1 byte),
    # and --stdin-filename, the path it stands for (None: "<stdin>" at the project root)
    stdin_data: bytes | None = None
    stdin_filename: Path | None = None

    def project_shape(self) -> tuple[str, str]:
        """What shapes the loaded project besides the files a run reads: part of the key of
        each file's kept results (``filecache.context_key``), for ``check`` and ``count``."""
        return (
            repr((self.cwd, self.config, self.sets, self.workflow)),
            repr((self.prices, self.models, self.provider)),
        )
