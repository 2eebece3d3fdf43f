"""``python -m promptbudget``."""

import sys

from promptbudget.cli import main

sys.exit(main())
