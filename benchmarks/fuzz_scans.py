#!/usr/bin/env python3
"""A differential campaign for ``check PATH``'s text scans (``textscan.py``). Run by hand;
figures go in SECURITY.md.

    python benchmarks/fuzz_scans.py CASES SEED [--no-cache-only]

Each hostile project of ``tests/security/fuzzing.py`` gets a paragraph appended to up to four
of its templates in turn (the file named), a re-wrapped copy of that paragraph and of the
named file in two other templates, and ``compression: {duplicate_min_tokens: 1}``. Then
``check --format json -- prompts/NAME`` runs with the scans and a fresh cache, again on that
cache (every file's stat trusted at once: ``cache.RACY_NS = 0``), and with ``--no-cache``
and the scans turned off (every template parsed, as before the scans; every workflow's
template parsed whole to learn what it includes: no ``affected.may_reach``); any difference in
exit code or output is counted. ``--no-cache-only`` compares ``--no-cache`` runs with the
scans on and off. Prints the counts (how often each scan said "no").
"""

from __future__ import annotations

import collections
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "security"))

from fuzzing import Case, cases, run_case, warm_up  # noqa: E402
from hypothesis import HealthCheck, given, seed, settings  # noqa: E402

import promptbudget.affected  # noqa: E402
import promptbudget.cache  # noqa: E402
import promptbudget.fingerprints  # noqa: E402
import promptbudget.project  # noqa: E402
import promptbudget.textscan  # noqa: E402

SHARED = "Shared plain paragraph one two three four five six seven."
COUNTS: collections.Counter[str] = collections.Counter()
FOUND: list[tuple[Case, str, str]] = []
_MAY, _INCLUDES = (
    promptbudget.textscan.Paragraphs.may_be_in,
    promptbudget.project.Project._includes_nothing,
)
_REACH = promptbudget.affected.may_reach
_KNOWN = promptbudget.fingerprints._known_candidates
_READ = promptbudget.fingerprints._read_candidates


def _counted(name: str, function: Any) -> Any:
    def call(*args: Any) -> Any:
        result = function(*args)
        COUNTS[f"{name} {result[1] if isinstance(result, tuple) else result}"] += 1
        return result

    return call


def scans(on: bool) -> None:
    never: Any = lambda *_: True  # noqa: E731
    promptbudget.textscan.Paragraphs.may_be_in = _counted("may hold", _MAY) if on else never  # type: ignore[method-assign]
    promptbudget.project.Project._includes_nothing = (  # type: ignore[method-assign]
        _counted("includes nothing", _INCLUDES) if on else (lambda *_: False)
    )
    fingerprints = promptbudget.fingerprints
    fingerprints._known_candidates = (  # type: ignore[assignment]
        _counted("kept digests", _KNOWN) if on else (lambda *_: (None, True))
    )
    fingerprints._read_candidates = _counted("read digests", _READ) if on else never
    promptbudget.affected.may_reach = _counted("may reach", _REACH) if on else never


def compare(label: str, case: Case, first: Any, second: Any) -> None:
    if first.kind == "ok" and second.kind == "ok":
        COUNTS["compared"] += 1
        if (first.exit_code, first.output) != (second.exit_code, second.output):
            COUNTS[f"DIFFERENT {label}"] += 1
            FOUND.append((case, first.output[:2000], second.output[:2000]))
    elif first.kind != second.kind:
        COUNTS[f"DIFFERENT KIND {label}"] += 1
        FOUND.append((case, first.kind, second.kind))


def main() -> int:
    examples, chosen = int(sys.argv[1]), int(sys.argv[2])
    no_cache_only = "--no-cache-only" in sys.argv
    promptbudget.cache.RACY_NS = 0
    work = Path(tempfile.mkdtemp()) / "project"

    @seed(chosen)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(cases())
    def campaign(case: Case) -> None:
        names = sorted(case.templates)
        manifest = case.manifest
        if manifest is not None and "compression:" not in manifest:
            manifest = manifest.rstrip("\n") + "\ncompression: {duplicate_min_tokens: 1}\n"
        for name in [names[(len(names) * k) // 4] for k in range(min(4, len(names)))]:
            templates = dict(case.templates)
            templates[name] += f"\n\n{SHARED}\n"
            templates["zz_paste.md"] = "Intro.\n\n" + SHARED.replace(" ", "\n\t ", 3) + "\n"
            templates["zz_words.j2"] = " ".join(reversed(SHARED.split())) + "\n"
            templates["zz_copy.txt"] = "Intro.\n\n" + case.templates[name].replace(" ", "\n")
            command = ("check", "--format", "json", "--samples", "50", "--", f"prompts/{name}")
            uncached = (*command[:1], "--no-cache", *command[1:])
            scans(on=True)
            if no_cache_only:
                first = run_case(Case(manifest, templates, uncached, case.root_files), work)
            else:
                first = run_case(Case(manifest, templates, command, case.root_files), work)
                again = run_case(
                    Case(manifest, templates, command, case.root_files), work, write=False
                )
                compare("on the cache", case, first, again)
            scans(on=False)
            plain = run_case(
                Case(manifest, templates, uncached, case.root_files), work, write=False
            )
            scans(on=True)
            compare("without the scans", case, first, plain)

    warm_up(work)
    campaign()
    print(dict(COUNTS))
    for case, one, other in FOUND[:3]:
        print(
            "CASE", case.command, sorted(case.templates), one[:800], "----", other[:800], sep="\n"
        )
    return 1 if FOUND else 0


if __name__ == "__main__":
    raise SystemExit(main())
