"""Enforce ``budgets.yaml`` inside the application, call by call.

```python
from promptbudget.runtime import Budgets

budgets = Budgets.load("budgets.yaml")
with budgets.request("support-reply") as req:
    req.before_call(step="answer", model="gpt-4.1", messages=msgs, tools=tools)
    resp = client.chat.completions.create(...)
    req.after_call(usage=resp.usage)
```

Counting is ``promptbudget count``'s, pricing is ``promptbudget estimate``'s. This package
imports neither typer nor rich; the SDK integrations (``promptbudget.runtime.openai``,
``.litellm``, ``.otel``) are imported only when used.
"""

from __future__ import annotations

from promptbudget.runtime.budgets import Budgets, Request, current_request, current_step
from promptbudget.runtime.checks import CHECKS, PendingCall
from promptbudget.runtime.outcome import (
    BudgetConfigError,
    BudgetExceeded,
    CallCheck,
    CallRecord,
    RequestTotals,
    Violation,
)
from promptbudget.runtime.spend import (
    MemoryStore,
    RedisStore,
    SpendStore,
    SpendStoreError,
    SQLiteStore,
)

__all__ = [
    "CHECKS",
    "BudgetConfigError",
    "BudgetExceeded",
    "Budgets",
    "CallCheck",
    "CallRecord",
    "MemoryStore",
    "PendingCall",
    "RedisStore",
    "Request",
    "RequestTotals",
    "SQLiteStore",
    "SpendStore",
    "SpendStoreError",
    "Violation",
    "current_request",
    "current_step",
]
