"""``python -m promptbudget``: the console script's entry.

``python -m`` puts the working directory first on ``sys.path`` (unless ``-P`` or
``PYTHONSAFEPATH``): in a stranger's repository a ``yaml.py`` or ``jinja2/`` at its root
would be imported in place of a dependency and run. That entry is taken out before anything
else is imported (the console script never adds it), unless promptbudget itself was found
there (run from a source tree's ``src/``).
"""

import os
import sys

if sys.path and not getattr(sys.flags, "safe_path", False):  # -P (Python 3.11)
    _first = os.path.abspath(sys.path[0] or os.curdir)
    _found = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if _first == os.path.abspath(os.curdir) and _first != _found:
        del sys.path[0]

from promptbudget.launcher import run

run()
