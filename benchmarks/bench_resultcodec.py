#!/usr/bin/env python3
"""How long ``resultcodec`` takes over one file's settled evaluation (``FileCheck``). Run by
hand; the figures go in resultcodec.py's docstring.

    python benchmarks/bench_resultcodec.py [--repeat 200]

The FileChecks of examples/ and tests/corpus/ (copied under a temporary project), made by
``evaluation.check_templates`` as ``check`` makes them (rendered messages and text not kept,
then kept). Per FileCheck: CPU time of ``decode`` and ``encode`` (best of 5 rounds of
``--repeat`` calls, then the median over the files), json.loads of its text for comparison,
and its size as the cache writes it (compact JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
os.environ["PROMPTBUDGET_JOBS"] = "1"

from promptbudget import evaluation  # noqa: E402
from promptbudget.evaluation import FileCheck  # noqa: E402
from promptbudget.options import Options  # noqa: E402
from promptbudget.project import Project  # noqa: E402
from promptbudget.resultcodec import decode, encode  # noqa: E402


def file_checks(root: Path, keep: bool) -> list[FileCheck]:
    made: list[FileCheck] = []
    real = evaluation.in_order

    def kept(items: Any, work: Callable[[Path], FileCheck], *args: Any, **kw: Any) -> Any:
        return real(items, lambda path: made.append(work(path)) or made[-1], *args, **kw)

    evaluation.in_order = kept  # type: ignore[assignment]
    try:
        project = Project.open(Options(cwd=root, use_cache=False), require_manifest=True)
        assert project.manifest is not None
        evaluation.check_templates(
            project, project.manifest.compression, keep_text=keep, keep_messages=lambda _: keep
        )
    finally:
        evaluation.in_order = real
    return made


def per_call(function: Callable[[], object], repeat: int) -> float:
    """Microseconds of CPU time per call, the best of 5 rounds."""
    best = float("inf")
    for _ in range(5):
        start = time.process_time()
        for _ in range(repeat):
            function()
        best = min(best, time.process_time() - start)
    return best / repeat * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        corpus = Path(scratch)
        shutil.copytree(ROOT / "tests" / "corpus", corpus / "prompts")
        (corpus / "budgets.yaml").write_text("version: 1\nprompts: prompts/\n", encoding="utf-8")
        for keep in (False, True):
            checks = file_checks(ROOT / "examples", keep) + file_checks(corpus, keep)
            rows = []
            for check in checks:
                data = encode(check, FileCheck)
                text = json.dumps(data, separators=(",", ":"))
                rows.append(
                    (
                        per_call(lambda data=data: decode(data, FileCheck), args.repeat),
                        per_call(lambda check=check: encode(check, FileCheck), args.repeat),
                        per_call(lambda text=text: json.loads(text), args.repeat),
                        len(text.encode()),
                    )
                )
            decode_us, encode_us, loads_us, size = (
                statistics.median(c) for c in zip(*rows, strict=True)
            )
            kept = "text and messages kept" if keep else "messages and text not kept"
            print(
                f"{len(checks)} FileChecks, {kept}: median decode {decode_us:.1f} us, "
                f"encode {encode_us:.1f} us, json.loads {loads_us:.1f} us, "
                f"{size:,.0f} bytes (max decode {max(r[0] for r in rows):.1f} us, "
                f"max {max(r[3] for r in rows):,} bytes); load {os.getloadavg()[0]:.1f}"
            )


if __name__ == "__main__":
    main()
