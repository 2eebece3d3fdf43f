"""Hostile-input tests run the CLI in a child process with a timeout and an address-space
limit, so that a regression (a hang, a memory blow-up, a crash in C code) fails the test
instead of taking the machine down. The children are forked from a fork server that has
promptbudget imported (``forkserver.py``): each is still its own process under the same
timeout and limits."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from security.forkserver import ForkServer

TIMEOUT_SECONDS = 30
ADDRESS_SPACE_BYTES = 3 * 1024**3  # the tokenizers and Jinja2 need well under 1 GB


@dataclass(frozen=True)
class Bounded:
    exit_code: int
    stdout: str
    stderr: str

    def assert_clean(self, *codes: int) -> None:
        """Exited with one of ``codes`` (default 0, 1 or 2) and printed no traceback."""
        allowed = codes or (0, 1, 2)
        assert "Traceback" not in self.stderr, self.stderr[-3000:]
        assert "internal error" not in self.stderr, self.stderr[-3000:]
        assert self.exit_code in allowed, (self.exit_code, self.stdout[-2000:], self.stderr[-2000:])

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


def _limit_resources() -> None:  # runs in the child before exec
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_BYTES, ADDRESS_SPACE_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


RunBounded = Callable[..., Bounded]


@pytest.fixture(scope="session")
def fork_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForkServer]:
    """This test process's fork server (started on its first request)."""
    server = ForkServer(tmp_path_factory.mktemp("fork-server"))
    yield server
    server.close()


@pytest.fixture
def run_bounded(fork_server: ForkServer) -> RunBounded:
    """``promptbudget ARGS`` in a child process under a timeout and a memory limit. A
    timeout fails the test (the child is killed)."""
    if sys.platform == "win32":  # pragma: no cover
        pytest.skip("resource limits need a POSIX system")

    def run(*args: str, cwd: Path, timeout: float = TIMEOUT_SECONDS) -> Bounded:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("GITHUB_") and key not in {"PYTEST_XDIST_WORKER", "COLUMNS"}
        }
        env["NO_COLOR"] = "1"
        forked = fork_server.run(
            module="promptbudget",
            args=args,
            cwd=cwd,
            env=env,
            timeout=timeout,
            address_space=ADDRESS_SPACE_BYTES,
        )
        if forked is not None:
            if forked.timed_out:
                pytest.fail(f"promptbudget {' '.join(args)[:200]} ran longer than {timeout} s")
            return Bounded(forked.returncode, forked.stdout, forked.stderr)
        try:
            done = subprocess.run(
                [sys.executable, "-m", "promptbudget", *args],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                errors="replace",
                timeout=timeout,
                preexec_fn=_limit_resources,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(f"promptbudget {' '.join(args)[:200]} ran longer than {timeout} s")
        return Bounded(done.returncode, done.stdout, done.stderr)

    return run


def python_in_child(
    server: ForkServer,
    code: str,
    args: list[str],
    *,
    timeout: float,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str] | None:
    """``python -c CODE ARGS`` (``subprocess.run(..., text=True)``, from ``cwd`` with ``env``,
    by default this process's) under ``timeout`` and the address-space limit, as a child of
    the fork server or, where it cannot be one, a fresh interpreter; None on a timeout."""
    forked = server.run(
        code=code,
        args=args,
        cwd=Path.cwd() if cwd is None else cwd,
        env=dict(os.environ) if env is None else env,
        timeout=timeout,
        address_space=ADDRESS_SPACE_BYTES,
        errors="strict",
    )
    if forked is not None:
        if forked.timed_out:
            return None
        return subprocess.CompletedProcess(
            [sys.executable, "-c", code, *args], forked.returncode, forked.stdout, forked.stderr
        )
    try:
        return subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            preexec_fn=_limit_resources,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return None
