"""A fork server for the tests' child processes: ``python -m promptbudget ARGS`` and
``python -c CODE ARGS`` without paying, on each run, the interpreter's start, promptbudget's
imports and the o200k_base encoding's build (about 0.35 s of CPU a run).

One server per test process, started on first use: a single-threaded Python that imports
promptbudget's modules and builds the encoding once (``PRELOAD``, ``ENCODINGS``), then forks
a child per request. Each child is what the fresh process was: its own process, under the
caller's timeout (killed when it runs over) and address-space and core-file limits (set in
the child, where ``preexec_fn`` set them), with the caller's environment, working directory,
``sys.argv`` and ``sys.path[0]``, stdin from ``/dev/null``, stdout and stderr to files; its
exit code, or minus the signal that killed it, comes back as ``subprocess`` reports it, and
its output is decoded as ``text=True`` (and the caller's ``errors``) decodes it. What differs: the
modules are imported and the encoding built before the run starts (each child is forked from
the server as it was before any request, never from another child), and the children share
the server's hash seed. ``test_forkserver.py`` compares a child with a fresh interpreter.

Where the server cannot run a request that way (no ``fork`` or ``pidfd_open``, or an
environment that starts an interpreter differently: ``PYTHON*``, ``LC_*``, ``LANG``), ``run``
returns None and the caller starts a fresh process.
"""

from __future__ import annotations

import contextlib
import io
import json
import locale
import os
import select
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# What the server imports before its first fork: what every request imports.
PRELOAD = (
    "promptbudget.launcher",
    "promptbudget.cli",
    "promptbudget.commands.check",
    "promptbudget.commands.count",
    "promptbudget.templates.parse",
    "promptbudget.templates.render",
)
# What a run builds on first use (the default models' encoding), built once here.
ENCODINGS = ("o200k_base",)


@dataclass(frozen=True)
class Done:
    """A finished child: ``subprocess.CompletedProcess``'s fields, or a timeout."""

    returncode: int
    stdout: str
    stderr: str
    timed_out: bool


def _starts_the_same(env: dict[str, str], other: dict[str, str]) -> bool:
    """Whether two environments start an interpreter the same way."""

    def startup(names: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in names.items() if k.startswith(("PYTHON", "LC_")) or k == "LANG"}

    return startup(env) == startup(other)


class ForkServer:
    """The client: one server process, requests one at a time."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = {}

    @staticmethod
    def available() -> bool:
        return sys.platform == "linux" and hasattr(os, "fork") and hasattr(os, "pidfd_open")

    def _start(self, env: dict[str, str]) -> subprocess.Popen[bytes]:
        if self.process is None or self.process.poll() is not None:
            self.env = dict(env)
            self.process = subprocess.Popen(
                [sys.executable, __file__],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
                cwd=self.workdir,
                start_new_session=True,  # its children in its process group: see _stop
            )
        return self.process

    def run(
        self,
        *,
        cwd: Path,
        env: dict[str, str],
        timeout: float,
        address_space: int | None,
        module: str | None = None,
        code: str | None = None,
        args: list[str] | tuple[str, ...] = (),
        errors: str = "replace",
    ) -> Done | None:
        """Run ``python -m MODULE ARGS`` or ``python -c CODE ARGS`` in a forked child; None
        when this one cannot be run like a fresh interpreter (the caller runs one)."""
        if not self.available():
            return None
        if self.process is not None and not _starts_the_same(self.env, env):
            return None
        process = self._start(env)
        if not _starts_the_same(self.env, env):
            return None
        out, err = self.workdir / "stdout", self.workdir / "stderr"
        request = {
            "cwd": str(cwd),
            "env": env,
            "timeout": timeout,
            "address_space": address_space,
            "module": module,
            "code": code,
            "args": list(args),
            "stdout": str(out),
            "stderr": str(err),
        }
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(request).encode() + b"\n")
        process.stdin.flush()
        # The server kills the child at its timeout; this bounds a server that stopped.
        ready, _, _ = select.select([process.stdout], [], [], timeout + 60)
        line = process.stdout.readline() if ready else b""
        if not line:
            self._stop()
            raise RuntimeError("the fork server stopped answering")
        reply = json.loads(line)
        return Done(reply["returncode"], _text(out, errors), _text(err, errors), reply["timed_out"])

    def close(self) -> None:
        if self.process is not None:
            assert self.process.stdin is not None
            self.process.stdin.close()  # the server's loop ends, and with it the server
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=120)
            self._stop()

    def _stop(self) -> None:
        """The server and any child of it still running, killed."""
        if self.process is not None:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            for stream in (self.process.stdin, self.process.stdout):
                if stream is not None:
                    stream.close()
            self.process = None


def _text(path: Path, errors: str) -> str:
    """The bytes as ``subprocess.run(text=True, errors=errors)`` decodes them."""
    data = path.read_bytes()
    stream = io.TextIOWrapper(
        io.BytesIO(data), encoding=locale.getpreferredencoding(False), errors=errors
    )
    return stream.read()


# -- the server -----------------------------------------------------------------------------


def _child(request: dict[str, object], keep_out: tuple[int, ...]) -> int:
    """In the forked child: become the fresh interpreter the request names, run, exit."""
    import atexit
    import runpy
    import traceback
    import types

    for fd in keep_out:
        os.close(fd)
    if request["address_space"] is not None:  # what bounded_run's preexec_fn sets
        import resource

        limit = int(request["address_space"])  # type: ignore[call-overload]
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.chdir(str(request["cwd"]))
    os.environ.clear()
    os.environ.update(request["env"])  # type: ignore[arg-type]
    null = os.open(os.devnull, os.O_RDONLY)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    out = os.open(str(request["stdout"]), flags, 0o600)
    err = os.open(str(request["stderr"]), flags, 0o600)
    for fd, target in ((null, 0), (out, 1), (err, 2)):
        os.dup2(fd, target)
        os.close(fd)
    args = list(request["args"])  # type: ignore[call-overload]
    code = 0
    try:
        if request["module"] is not None:
            # python -m: sys.path[0] is the working directory; run_module sets sys.argv[0]
            sys.path[0] = os.getcwd()
            sys.argv = ["-m", *args]
            runpy.run_module(str(request["module"]), run_name="__main__", alter_sys=True)
        else:
            sys.path[0] = ""
            sys.argv = ["-c", *args]
            main = types.ModuleType("__main__")
            sys.modules["__main__"] = main
            exec(compile(str(request["code"]), "<string>", "exec"), main.__dict__)
    except SystemExit as stop:
        if stop.code is None:
            code = 0
        elif isinstance(stop.code, int):
            code = stop.code
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    except BaseException as error:  # as the interpreter prints it: from the code's frames
        frames = error.__traceback__.tb_next if error.__traceback__ else None
        traceback.print_exception(type(error), error, frames)
        code = 1
    atexit._run_exitfuncs()
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    return code


def _serve_one(request: dict[str, object], keep_out: tuple[int, ...]) -> dict[str, object]:
    pid = os.fork()
    if pid == 0:  # the child
        code = 1
        try:
            code = _child(request, keep_out)
        finally:
            os._exit(code)
    timed_out = False
    handle = os.pidfd_open(pid)
    try:
        ready, _, _ = select.select([handle], [], [], float(request["timeout"]))  # type: ignore[arg-type]
        if not ready:
            timed_out = True
            os.kill(pid, signal.SIGKILL)
    finally:
        os.close(handle)
    _, status = os.waitpid(pid, 0)
    return {"returncode": os.waitstatus_to_exitcode(status), "timed_out": timed_out}


def serve() -> None:
    import gc
    import importlib

    for name in PRELOAD:
        importlib.import_module(name)
    from promptbudget.tokenizers import load_encoding

    for encoding in ENCODINGS:
        load_encoding(encoding)
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb", buffering=0)
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)
    gc.collect()
    keep_out = (requests.fileno(), replies.fileno())
    for line in requests:
        reply = _serve_one(json.loads(line), keep_out)
        replies.write(json.dumps(reply).encode() + b"\n")


if __name__ == "__main__":
    serve()
