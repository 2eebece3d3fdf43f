"""``python -m promptbudget``."""

import sys

from promptbudget.launcher import main

sys.exit(main())
