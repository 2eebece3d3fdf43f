"""The ``promptbudget`` command: a run whose memo is still valid is answered here, before
the command line, Typer or anything of the project is imported (runmemo.py); every other
run goes to ``cli.main``."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    from promptbudget.runmemo import replay

    code = replay(args)
    if code is not None:
        return code
    from promptbudget.cli import main as run

    return run(args)
