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


MISSING_SDK = {
    # module to hide: code that needs it, and the hint its error must give
    "redis": ("from promptbudget.runtime import RedisStore; RedisStore()", "[redis]"),
    "litellm": ("import promptbudget.runtime.litellm", "[litellm]"),
    "opentelemetry": (
        "from promptbudget.runtime.otel import instrument; instrument(None)",
        "[otel]",
    ),
}


def test_a_missing_sdk_is_one_clear_import_error() -> None:
    for hidden, (code, hint) in MISSING_SDK.items():
        script = f"import sys; sys.modules[{hidden!r}] = None\ntry:\n    {code}\n"
        script += "except ImportError as err:\n    print(err)\n"
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        )
        assert f"pip install 'promptbudget-cli{hint}'" in result.stdout, (hidden, result)
