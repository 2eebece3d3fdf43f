"""``models`` prices in text: to a millionth of a dollar per million tokens, whatever the
float in the catalog or a price file; hostile values print as they are, never a crash."""

from __future__ import annotations

import pytest

from promptbudget.reporters.models_text import rate_text


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "-"),
        (2.9999900000000004, "2.99999"),  # databricks-claude-sonnet-4-1 in LiteLLM's file
        (15.000020000000003, "15.00002"),
        (0.025, "0.025"),
        (3, "3"),
        (10.0, "10"),
        (1e300, "1e+300"),
        (float("inf"), "inf"),
        (float("nan"), "nan"),
    ],
)
def test_rate_text(value: float | None, shown: str) -> None:
    assert rate_text(value) == shown
