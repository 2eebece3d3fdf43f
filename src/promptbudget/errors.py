"""User-facing errors: the run cannot go on (exit code 2).

Problems *in the linted content* are findings, not exceptions. These errors are for input the
tool cannot work with at all: bad arguments, an invalid manifest, a missing file. Each message
says what is wrong, where, and what would be valid; ``cli.py`` prints it as one line.
"""

from __future__ import annotations

from collections.abc import Sequence


class PromptBudgetError(Exception):
    """Base class: the message is printed as ``promptbudget: error: <message>``."""


class ManifestError(PromptBudgetError):
    """``budgets.yaml`` (or ``[tool.promptbudget]``) cannot be read or is invalid."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        json_path: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.json_path = json_path
        self.detail = message
        where = path or "budgets.yaml"
        if line is not None:
            where = f"{where}:{line}"
        prefix = f"{where}: " if path or line is not None else ""
        location = f" (at {json_path})" if json_path and json_path != "$" else ""
        super().__init__(f"{prefix}{message}{location}")


class ManifestErrors(ManifestError):
    """Several problems in one manifest, reported together: each one ``ManifestError`` (one
    line), sorted by line. ``cli`` prints one ``error:`` line per problem."""

    def __init__(self, errors: Sequence[ManifestError]) -> None:
        self.errors = tuple(
            sorted(errors, key=lambda e: (e.path or "", e.line is None, e.line or 0))
        )
        first = self.errors[0]
        super().__init__(first.detail, path=first.path, line=first.line, json_path=first.json_path)

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


class TemplateNotFoundError(PromptBudgetError):
    """A path given on the command line does not exist or cannot be read."""


class UsageError(PromptBudgetError):
    """A command-line argument is invalid."""


class TokenizerUnavailableError(PromptBudgetError):
    """A bundled tokenizer file is missing or corrupt (the installation is broken)."""


class PricesError(PromptBudgetError):
    """A price file (bundled or user-supplied) cannot be read."""
