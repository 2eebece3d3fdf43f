"""Spend over time: counters of money spent per workflow and period, in pluggable stores.

A store keeps integer nano-dollars (1e-9 USD) per key and increments them atomically, so no
amount is lost when many threads, processes or hosts record at once. A call's cost is rounded
to the nearest nano-dollar once, when it is recorded (an error of at most $0.0000000005 a
call). Keys name the workflow and the UTC period: ``<prefix><workflow>:month:2026-12`` and
``<prefix><workflow>:day:2026-12-05``.

- ``MemoryStore``: one process (the default); a lock around a dict.
- ``SQLiteStore``: processes on one host sharing a file; each increment is one UPSERT in an
  ``IMMEDIATE`` transaction (WAL journal with ``synchronous=NORMAL``: a power cut may lose the
  last increments, never the file; a busy timeout, 5 s by default).
- ``RedisStore``: many hosts; ``INCRBY`` in a ``MULTI`` transaction, with an expiry so old
  periods disappear (needs the ``redis`` package: ``pip install 'promptbudget-cli[redis]'``).

A store that cannot be reached raises ``SpendStoreError``; what the guard then does is its
``on_store_error`` policy (see ``Budgets``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Protocol

NANO = Decimal("1e-9")
REDIS_EXTRA_HINT = "pip install 'promptbudget-cli[redis]'"


class SpendStoreError(Exception):
    """The spend store cannot be read or written (unreachable, locked, full)."""


class SpendStore(Protocol):
    """Atomic counters of nano-dollars."""

    def get(self, keys: Sequence[str]) -> list[int]:
        """The current totals of ``keys`` (0 for a key never written)."""
        ...

    def add(self, keys: Sequence[str], amount: int) -> list[int]:
        """Add ``amount`` to every key, atomically, and return the new totals."""
        ...


def to_nano(amount_usd: Decimal) -> int:
    return int((amount_usd / NANO).to_integral_value(rounding=ROUND_HALF_UP))


def from_nano(amount: int) -> Decimal:
    return Decimal(amount) * NANO


def period_keys(prefix: str, workflow: str, moment: datetime) -> tuple[str, str]:
    """The month key and the day key of ``workflow`` at ``moment`` (UTC)."""
    return (
        f"{prefix}{workflow}:month:{moment:%Y-%m}",
        f"{prefix}{workflow}:day:{moment:%Y-%m-%d}",
    )


class MemoryStore:
    """Counters in this process only (lost when it exits)."""

    def __init__(self) -> None:
        self._totals: dict[str, int] = {}
        self._lock = threading.Lock()

    def get(self, keys: Sequence[str]) -> list[int]:
        with self._lock:
            return [self._totals.get(key, 0) for key in keys]

    def add(self, keys: Sequence[str], amount: int) -> list[int]:
        with self._lock:
            totals = []
            for key in keys:
                total = self._totals.get(key, 0) + amount
                self._totals[key] = total
                totals.append(total)
            return totals


class SQLiteStore:
    """Counters in a SQLite file, shared by every process on the host that opens it."""

    def __init__(self, path: str | Path, *, timeout_s: float = 5.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._opened_lock = threading.Lock()
        with self._transaction() as connection:
            connection.execute(
                "CREATE TABLE IF NOT EXISTS promptbudget_spend "
                "(key TEXT PRIMARY KEY, nano_usd INTEGER NOT NULL)"
            )

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            try:
                # One connection per thread; ``close`` may close them from another thread.
                connection = sqlite3.connect(
                    self.path,
                    timeout=self.timeout_s,
                    isolation_level=None,
                    check_same_thread=False,
                )
            except sqlite3.Error as err:
                raise SpendStoreError(f"cannot open the spend store {self.path}: {err}") from err
            try:
                connection.execute("PRAGMA journal_mode=WAL")
                # WAL + NORMAL: never corrupt; a power cut may lose the last increments.
                connection.execute("PRAGMA synchronous=NORMAL")
            except sqlite3.Error as err:
                connection.close()
                raise SpendStoreError(f"cannot open the spend store {self.path}: {err}") from err
            self._local.connection = connection
            with self._opened_lock:
                self._opened.append(connection)
        return connection

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection this store opened (one per thread that used it)."""
        with self._opened_lock:
            for connection in self._opened:
                connection.close()
            self._opened.clear()
        self._local = threading.local()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._connection(), self.path)

    def get(self, keys: Sequence[str]) -> list[int]:
        with self._transaction() as connection:
            found = dict(
                connection.execute(
                    "SELECT key, nano_usd FROM promptbudget_spend WHERE key IN "
                    f"({', '.join('?' for _ in keys)})",
                    tuple(keys),
                ).fetchall()
            )
        return [int(found.get(key, 0)) for key in keys]

    def add(self, keys: Sequence[str], amount: int) -> list[int]:
        with self._transaction() as connection:
            totals = []
            for key in keys:
                connection.execute(
                    "INSERT INTO promptbudget_spend (key, nano_usd) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET nano_usd = nano_usd + excluded.nano_usd",
                    (key, amount),
                )
                row = connection.execute(
                    "SELECT nano_usd FROM promptbudget_spend WHERE key = ?", (key,)
                ).fetchone()
                totals.append(int(row[0]))
        return totals


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on error); sqlite3 errors become
    ``SpendStoreError``."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self.connection = connection
        self.path = path

    def __enter__(self) -> sqlite3.Connection:
        try:
            self.connection.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise SpendStoreError(f"the spend store {self.path} is unavailable: {err}") from err
        return self.connection

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: Any
    ) -> None:
        try:
            self.connection.execute("COMMIT" if error is None else "ROLLBACK")
        except sqlite3.Error as err:
            raise SpendStoreError(f"the spend store {self.path} is unavailable: {err}") from err
        if isinstance(error, sqlite3.Error):
            raise SpendStoreError(f"the spend store {self.path} failed: {error}") from error


# Month keys live 40 days, day keys 2: long enough to read the period, short enough to clean up.
_EXPIRY_S = {"month": 40 * 86_400, "day": 2 * 86_400}


class RedisStore:
    """Counters in Redis, shared by every host that uses the same server and prefix."""

    def __init__(
        self,
        url: str = "redis://localhost:6379/0",
        *,
        client: Any = None,
        timeout_s: float = 0.5,
    ) -> None:
        try:
            import redis
        except ImportError as err:
            raise ImportError(f"RedisStore needs the redis package: {REDIS_EXTRA_HINT}") from err
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self.client = client or redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )

    def get(self, keys: Sequence[str]) -> list[int]:
        try:
            values = self.client.mget(list(keys))
        except self._errors as err:
            raise SpendStoreError(f"the Redis spend store is unavailable: {err}") from err
        return [int(value) if value is not None else 0 for value in values]

    def add(self, keys: Sequence[str], amount: int) -> list[int]:
        try:
            pipeline = self.client.pipeline(transaction=True)
            for key in keys:
                pipeline.incrby(key, amount)
                pipeline.expire(key, _EXPIRY_S.get(key.rsplit(":", 2)[-2], _EXPIRY_S["month"]))
            results = pipeline.execute()
        except self._errors as err:
            raise SpendStoreError(f"the Redis spend store is unavailable: {err}") from err
        return [int(value) for value in results[0::2]]
