"""Where the text-class test sets are: prose, code, CJK and mixed texts assembled from public
repositories by ``scripts/assemble_textsets.py`` (``SOURCES.tsv`` there gives the repository,
commit and path of each). They are not in this repository: set ``PROMPTBUDGET_TEXTSETS`` to
their folder, or keep them in ``shared/textsets`` beside the checkout. Their per-text counts are
in ``tests/data/textclasses/counts.tsv`` and are used without them."""

from __future__ import annotations

import os
from pathlib import Path

_CANDIDATES = [
    Path(os.environ["PROMPTBUDGET_TEXTSETS"]) if "PROMPTBUDGET_TEXTSETS" in os.environ else None,
    Path(__file__).resolve().parents[2] / "shared" / "textsets",
    Path("/work/shared/textsets"),
]
TEXTSETS = next((p for p in _CANDIDATES if p is not None and (p / "SOURCES.tsv").is_file()), None)


def textset_files() -> list[Path]:
    """Every text of the sets (empty when the sets are not here)."""
    if TEXTSETS is None:
        return []
    return sorted(p for p in TEXTSETS.rglob("*") if p.is_file() and p.name != "SOURCES.tsv")
