"""The ``promptbudget`` command: a run whose memo is still valid is answered here, before
the command line, Typer or anything of the project is imported (runmemo.py); every other
run goes to ``cli.main``.

``run`` is the console script (and ``python -m promptbudget``); ``main`` is what tests
call in-process. Like mypy's own entry point, ``run`` sets a roomier threshold for the
cyclic garbage collector (a start-up creates ~100,000 objects that live as long as the
process, and a full collection every few thousand of them scanned them all again: ~10 ms;
long runs collect the young generations themselves, ``Project.release``) and leaves with
``os._exit`` once its output is flushed, so the interpreter does not spend ~50 ms freeing a
200,000-token BPE table and every module one by one just before the process ends. Nothing
is lost: every file the run writes is written and renamed into place before ``main``
returns, and no thread outlives it.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

# mypy's choice (mypy/main.py): collect the youngest generation after 200,000 net
# allocations instead of 700; cycles are still collected, much less often.
GC_THRESHOLD = (200_000, 30, 30)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    from promptbudget.passagememo import still_same
    from promptbudget.runmemo import replay

    code = replay(args, still_same)
    if code is not None:
        return code
    from promptbudget.cli import main as run_cli

    return run_cli(args)


def run() -> NoReturn:
    """The console script: ``main``, then a flush of both streams and ``os._exit``."""
    gc.set_threshold(*GC_THRESHOLD)
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError):  # the reader went away (``| head``)
            stream.flush()
    os._exit(code)
