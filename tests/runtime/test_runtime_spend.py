"""Spend stores: atomic under concurrency, and the policy when a store cannot be reached."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import pytest

from promptbudget.runtime import (
    BudgetExceeded,
    Budgets,
    MemoryStore,
    RedisStore,
    SpendStore,
    SpendStoreError,
    SQLiteStore,
)
from promptbudget.runtime.spend import from_nano, to_nano

THREADS = 8
INCREMENTS = 1_000
KEYS = ("promptbudget:w:month:2026-12", "promptbudget:w:day:2026-12-05")


def hammer(store_for_thread: Callable[[], SpendStore]) -> list[int]:
    """8 threads add 1 to both keys 1,000 times each; the final totals."""
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def work() -> None:
        try:
            store = store_for_thread()
            start.wait()
            for _ in range(INCREMENTS):
                store.add(KEYS, 1)
        except BaseException as err:  # reported below, with the test's failure
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return store_for_thread().get(KEYS)


def test_memory_store_loses_no_increment_under_8_threads() -> None:
    store = MemoryStore()
    assert hammer(lambda: store) == [THREADS * INCREMENTS] * 2


def test_sqlite_store_loses_no_increment_under_8_threads(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "spend.db") as store:  # one connection per thread inside
        assert hammer(lambda: store) == [THREADS * INCREMENTS] * 2


def test_sqlite_store_is_shared_by_processes(tmp_path: Path) -> None:
    path = tmp_path / "spend.db"
    code = (
        "import sys; from promptbudget.runtime import SQLiteStore; "
        "store = SQLiteStore(sys.argv[1]); "
        f"[store.add({list(KEYS)!r}, 3) for _ in range(250)]; store.close()"
    )
    workers = [
        subprocess.Popen([sys.executable, "-c", code, str(path)], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    for worker in workers:
        _, stderr = worker.communicate()
        assert worker.returncode == 0, stderr
    with SQLiteStore(path) as store:
        assert store.get(KEYS) == [4 * 250 * 3] * 2


def test_sqlite_store_returns_the_new_totals(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "spend.db") as store:
        assert store.add(KEYS, 5) == [5, 5]
        assert store.add(KEYS[:1], 7) == [12]
        assert store.get([*KEYS, "never-written"]) == [12, 5, 0]


def test_a_cost_survives_the_round_trip_to_nano_dollars() -> None:
    # 1,234 tokens at gpt-4.1-mini's $0.40 per million = $0.0004936.
    assert from_nano(to_nano(Decimal("0.0004936"))) == Decimal("0.0004936")
    assert to_nano(Decimal("0.0000000004")) == 0  # below half a nano-dollar
    assert to_nano(Decimal("0.0000000005")) == 1


# -- Redis: a real server on a free local port -----------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    pytest.importorskip("redis", reason="the redis package is not installed ([redis] extra)")
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:  # wait for the server to say so, not for a while
            if "Ready to accept connections" in line:
                break
        else:
            pytest.fail(f"redis-server exited with {process.wait()}")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait()
        process.stdout.close()


def test_redis_store_loses_no_increment_under_8_threads(redis_url: str) -> None:
    store = RedisStore(redis_url, timeout_s=10)
    store.client.delete(*KEYS)
    assert hammer(lambda: store) == [THREADS * INCREMENTS] * 2
    assert 0 < store.client.ttl(KEYS[0]) <= 40 * 86_400
    assert 0 < store.client.ttl(KEYS[1]) <= 2 * 86_400


def test_redis_store_unreachable_raises_spend_store_error() -> None:
    pytest.importorskip("redis", reason="the redis package is not installed ([redis] extra)")
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    with pytest.raises(SpendStoreError, match="unavailable"):
        store.get(KEYS)
    with pytest.raises(SpendStoreError, match="unavailable"):
        store.add(KEYS, 1)


def test_sqlite_store_in_a_missing_directory_raises_spend_store_error(tmp_path: Path) -> None:
    with pytest.raises(SpendStoreError, match="cannot open"):
        SQLiteStore(tmp_path / "missing" / "spend.db")


# -- the policy ------------------------------------------------------------------------------


class UnreachableStore:
    """A store whose server is down: every read and write fails as RedisStore's would."""

    def get(self, keys: Sequence[str]) -> list[int]:
        raise SpendStoreError("the Redis spend store is unavailable: connection refused")

    def add(self, keys: Sequence[str], amount: int) -> list[int]:
        raise SpendStoreError("the Redis spend store is unavailable: connection refused")


MANIFEST = """\
version: 1
defaults: {model: gpt-4.1-mini}
workflows:
  chat:
    steps: [{name: reply, prompt: reply.j2, max_output_tokens: 100}]
    limits: {max_monthly_spend: $100}
"""


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "reply.j2").write_text("Hi\n", encoding="utf-8")
    (tmp_path / "budgets.yaml").write_text(MANIFEST, encoding="utf-8")
    return tmp_path / "budgets.yaml"


@pytest.mark.parametrize("store", ["fake", "redis"])
def test_fail_open_is_the_default_it_logs_and_lets_the_call_through(
    manifest: Path, caplog: pytest.LogCaptureFixture, store: str
) -> None:
    if store == "redis":
        pytest.importorskip("redis", reason="the redis package is not installed ([redis] extra)")
        spend: SpendStore = RedisStore(f"redis://127.0.0.1:{free_port()}/0")
    else:
        spend = UnreachableStore()
    guard = Budgets.load(manifest, store=spend)
    with (
        caplog.at_level(logging.WARNING, logger="promptbudget.runtime"),
        guard.request("chat") as req,
    ):
        assert req.before_call(messages="hi").ok
        req.after_call(usage={"prompt_tokens": 10, "completion_tokens": 10})
    assert "on_store_error=open" in caplog.text
    assert "not recorded" in caplog.text


def test_fail_closed_refuses_the_call_with_pb107(manifest: Path) -> None:
    guard = Budgets.load(manifest, store=UnreachableStore(), on_store_error="closed")
    with guard.request("chat") as req, pytest.raises(BudgetExceeded) as raised:
        req.before_call(messages="hi")
    assert raised.value.code == "PB107"
    assert "unavailable" in str(raised.value)


def test_spend_is_shared_by_guards_on_one_sqlite_file(manifest: Path, tmp_path: Path) -> None:
    # Two "processes" (two guards, two connections) share one month: $0.40 + $0.40.
    with SQLiteStore(tmp_path / "spend.db") as one, SQLiteStore(tmp_path / "spend.db") as two:
        first = Budgets.load(manifest, store=one)
        second = Budgets.load(manifest, store=two)
        for guard in (first, second):
            with guard.request("chat") as req:
                req.before_call(messages="hi")
                req.after_call(usage={"prompt_tokens": 1_000_000, "completion_tokens": 0})
        assert first.spend("chat")[0] == second.spend("chat")[0] == Decimal("0.8")
