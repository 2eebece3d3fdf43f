"""``promptbudget init``: a manifest and an example prompt that pass ``check`` as written."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from promptbudget.errors import UsageError
from promptbudget.fileio import Expect, replace_file

SCAFFOLD_FILES = ("budgets.yaml", "prompts/summarize.j2")


def write_scaffold(directory: Path, *, force: bool = False) -> list[Path]:
    """Write the scaffold into ``directory``; refuse to overwrite unless ``force``."""
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{directory} is not a directory")
    targets = [directory / name for name in SCAFFOLD_FILES]
    existing = [t for t in targets if t.exists()]
    if existing and not force:
        names = ", ".join(str(t) for t in existing)
        raise UsageError(f"{names} already exists; use --force to overwrite")
    package = resources.files(__package__).joinpath("scaffold")
    written = []
    for name, target in zip(SCAFFOLD_FILES, targets, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        replace_file(
            target,
            package.joinpath(name).read_bytes(),
            expected=Expect.ANY if force else None,  # a file made meanwhile is kept
            shown=str(target),
            activity="init ran",
        )
        written.append(target)
    return written
