"""The ``promptbudget`` command: a run whose memo is still valid is answered here, before
the command line, Typer or anything of the project is imported (runmemo.py); every other
run goes to ``cli.main``.

``run`` is the console script (and ``python -m promptbudget``); ``main`` is what tests
call in-process. ``run`` lets the cyclic garbage collector sleep through start-up, as
mypy's entry point does (importing the command line creates ~100,000 objects that live as
long as the process; the default threshold scanned them all again every few thousand:
~10 ms), then freezes them (``gc.freeze``: never scanned again) and restores the usual
thresholds of the young generations for the run itself, whose renders leave reference
cycles that die young (a roomy threshold for the whole run let ~100 MB of them pile up at
10,000 templates). The oldest generation is left alone (``RUN_OLDEST_THRESHOLD``): what
reaches it lives as long as the run (cache shards, kept evaluations, the BPE table), and
CPython scans all of it again each time it grows by a quarter (a check of 10,000 templates
after one edit: 7 full collections, 0.7 of its 4.6 s; the same peak RSS without them,
there and in a cold run). It leaves with ``os._exit`` once its output is flushed, so the
interpreter does not spend ~50 ms freeing a 200,000-token BPE table and every module one by
one just before the process ends. Nothing is lost: every file the run writes is written and
renamed into place before ``main`` returns, and no thread outlives it.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

# mypy's choice (mypy/main.py): the youngest generation is collected after 200,000 net
# allocations instead of 700.
START_UP_THRESHOLD = (200_000, 30, 30)
# The run's third threshold: a full collection after this many collections of the middle
# generation (CPython's default is 10), i.e. none in any run measured (at most ~100 of them).
RUN_OLDEST_THRESHOLD = 1_000


def main(argv: Sequence[str] | None = None, *, started: Callable[[], None] | None = None) -> int:
    """The run of ``argv``: answered by its memo, or by the command line (``started`` is
    called once the command line is imported, before the command runs)."""
    args = list(sys.argv[1:] if argv is None else argv)
    from promptbudget.runmemo import replay

    code = replay(args, _still_same)
    if code is not None:
        return code
    from promptbudget.cli import main as run_cli

    if started is not None:
        started()
    return run_cli(args)


def _still_same(memo: dict[str, Any], changed: list[str]) -> bool:
    """``passagememo.still_same``, imported only when a memo has changed files to look at."""
    from promptbudget.passagememo import still_same

    return still_same(memo, changed)


def run() -> NoReturn:
    """The console script: ``main``, then a flush of both streams and ``os._exit``."""
    usual = gc.get_threshold()
    gc.set_threshold(*START_UP_THRESHOLD)

    def started() -> None:
        gc.freeze()
        gc.set_threshold(usual[0], usual[1], RUN_OLDEST_THRESHOLD)

    code = main(started=started)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):  # the reader went away (``| head``)
            stream.flush()
    os._exit(code)
