"""``python -m promptbudget``: the console script's entry."""

from promptbudget.launcher import run

run()
