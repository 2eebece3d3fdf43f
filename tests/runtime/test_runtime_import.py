"""``promptbudget.runtime`` is for applications: it must not drag in the CLI's dependencies."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("typer", "rich", "click", "openai", "litellm", "redis", "opentelemetry", "jsonschema")


def test_importing_the_runtime_loads_no_cli_or_sdk_module() -> None:
    code = (
        "import json, sys; import promptbudget.runtime; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []
