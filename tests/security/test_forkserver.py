"""The fork server the hostile-input tests run their children from (``forkserver.py``): a
child must see and report what a fresh ``python -c`` / ``python -m`` sees and reports, so the
tests that moved to it test what they tested before."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from security.bounded_run import ADDRESS_SPACE_BYTES, _limit_resources
from security.forkserver import ForkServer

pytestmark = pytest.mark.skipif(not ForkServer.available(), reason="no fork server here")

PROBE = r"""
import json, os, resource, sys
print(json.dumps({
    "argv": sys.argv,
    "path0": sys.path[0],
    "cwd": os.getcwd(),
    "name": __name__,
    "env": sorted(k + "=" + v for k, v in os.environ.items()),
    "as": resource.getrlimit(resource.RLIMIT_AS),
    "core": resource.getrlimit(resource.RLIMIT_CORE),
    "stdin": sys.stdin.read(),
    "ttys": [os.isatty(fd) for fd in (0, 1, 2)],
}))
sys.stderr.write("a line\r\nand \udcff\n")
sys.stderr.flush()
if len(sys.argv) > 2:
    {"exit": lambda: sys.exit(3), "text": lambda: sys.exit("bye"), "raise": lambda: 1 / 0}[
        sys.argv[2]
    ]()
"""


def _fresh(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
        preexec_fn=_limit_resources,
        check=False,
    )


@pytest.mark.parametrize("ending", ["none", "exit", "text", "raise"])
def test_a_child_sees_and_reports_what_a_fresh_interpreter_does(
    ending: str, fork_server: ForkServer, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    env["PROBE_VALUE"] = "x y"
    args = ["first"] if ending == "none" else ["first", ending]
    forked = fork_server.run(
        code=PROBE,
        args=args,
        cwd=tmp_path,
        env=env,
        timeout=60,
        address_space=ADDRESS_SPACE_BYTES,
    )
    fresh = _fresh(["-c", PROBE, *args], tmp_path, env)
    assert forked is not None and not forked.timed_out
    assert (forked.returncode, forked.stdout, forked.stderr) == (
        fresh.returncode,
        fresh.stdout,
        fresh.stderr,
    )
    assert fresh.returncode == {"none": 0, "exit": 3, "text": 1, "raise": 1}[ending]


def test_a_module_run_sees_what_python_m_sees(fork_server: ForkServer, tmp_path: Path) -> None:
    package = tmp_path / "probe_package"
    package.mkdir()
    (package / "__init__.py").write_text("", encoding="utf-8")
    (package / "__main__.py").write_text(PROBE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    forked = fork_server.run(
        module="probe_package",
        args=["first"],
        cwd=tmp_path,
        env=env,
        timeout=60,
        address_space=ADDRESS_SPACE_BYTES,
    )
    fresh = _fresh(["-m", "probe_package", "first"], tmp_path, env)
    assert forked is not None
    assert (forked.returncode, forked.stdout, forked.stderr) == (0, fresh.stdout, fresh.stderr)


def test_a_child_is_bounded_like_a_fresh_one(fork_server: ForkServer, tmp_path: Path) -> None:
    """Killed at its timeout; a crash is minus its signal; the address space is limited. An
    environment that starts an interpreter differently is left to a fresh one."""
    env = dict(os.environ)

    def run(code: str, timeout: float = 60, **changes: str) -> object:
        return fork_server.run(
            code=code,
            cwd=tmp_path,
            env={**env, **changes},
            timeout=timeout,
            address_space=ADDRESS_SPACE_BYTES,
        )

    spin = run("while True: pass", timeout=0.2)
    assert spin is not None and spin.timed_out and spin.returncode == -9  # type: ignore[attr-defined]
    crash = run("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    assert crash is not None and crash.returncode == -11  # type: ignore[attr-defined]
    big = run(f"bytearray({ADDRESS_SPACE_BYTES + 2**20})")
    assert big is not None and big.returncode == 1  # type: ignore[attr-defined]
    assert big.stderr.rstrip().endswith("MemoryError")  # type: ignore[attr-defined]
    assert run("pass", PYTHONHASHSEED="7") is None
