"""promptbudget: size-limit for LLM prompts.

Counts prompt tokens offline, simulates what a workflow costs, and fails CI when a change
breaks a budget declared in ``budgets.yaml``.
"""

__version__ = "0.1.0"
