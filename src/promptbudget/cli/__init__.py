"""The command line: argv -> Options -> ``commands.X.run`` -> report -> exit code. The only
package that imports Typer; ``main`` is the only place that catches exceptions.

Exit codes: 0 ran and nothing reached ``--fail-on``; 1 ran and something did; 2 could not
run (bad arguments, invalid manifest, internal error). stdout carries only the report.

``app.py`` holds the Typer app, the shared options and ``main``; the commands are declared in
``reports.py`` (count, check, replay, estimate, diff) and ``maintenance.py`` (lock, baseline,
compress, models, rules, explain, schema, init), imported here in that order (the order
``--help`` lists them); ``output.py`` writes the report and the diagnostics.
"""

from promptbudget.cli import maintenance, reports
from promptbudget.cli.app import app, main
from promptbudget.cli.output import ColorMode, TerminalProgress, use_color

__all__ = ["ColorMode", "TerminalProgress", "app", "main", "maintenance", "reports", "use_color"]
