"""A pybreaker circuit breaker whose state lives in PostgreSQL, shared by every process and pod.

Flow runs are short-lived pods: an in-memory breaker would forget an EIA outage the moment a new
pod starts. The `eia_breaker_state` row is the single truth, read by `eia breaker status`, the
collector's `/health` and metrics, and reset by `eia breaker reset` or the admin endpoint.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import pybreaker
from psycopg.rows import TupleRow

from tasks.core.errors import is_transient
from tasks.store.audit import write_audit
from tasks.store.database import connection_error
from tasks.store.tables import BREAKER

DEFAULT_BREAKER = "eia-api"
AUDIT_ACTION = "breaker.reset"


class PostgresBreakerStorage(pybreaker.CircuitBreakerStorage):  # type: ignore[misc]
    """pybreaker storage backed by one row of eia_breaker_state (autocommit, one connection)."""

    def __init__(self, dsn: str, name: str = DEFAULT_BREAKER) -> None:
        super().__init__(name)
        self._dsn = dsn
        self._conn: psycopg.Connection[TupleRow] | None = None
        self._lock = threading.Lock()
        self._exec(f"INSERT INTO {BREAKER} (name) VALUES (%s) ON CONFLICT (name) DO NOTHING", (name,), fetch=False)

    def _exec(self, sql: str, params: tuple[Any, ...], *, fetch: bool = True) -> tuple[Any, ...] | None:
        with self._lock:
            for attempt in (1, 2):
                try:
                    if self._conn is None or self._conn.closed:
                        self._conn = psycopg.connect(self._dsn, autocommit=True, application_name="eia-breaker")
                    cur = self._conn.execute(sql, params)
                    return cur.fetchone() if fetch else None
                except psycopg.OperationalError as exc:
                    # A restarted database drops the connection; reconnect once.
                    self._conn = None
                    if attempt == 2:
                        raise connection_error(self._dsn, exc) from None
        return None

    def _get(self, column: str) -> Any:
        row = self._exec(f"SELECT {column} FROM {BREAKER} WHERE name = %s", (self.name,))
        return row[0] if row else None

    def _set(self, assignment: str, params: tuple[Any, ...] = ()) -> None:
        self._exec(
            f"UPDATE {BREAKER} SET {assignment}, updated_at = now() WHERE name = %s",
            (*params, self.name),
            fetch=False,
        )

    @property
    def state(self) -> str:
        return str(self._get("state") or pybreaker.STATE_CLOSED)

    @state.setter
    def state(self, state: str) -> None:
        self._set("state = %s", (state,))

    def increment_counter(self) -> None:
        self._set("fail_counter = fail_counter + 1")

    def reset_counter(self) -> None:
        self._set("fail_counter = 0")

    def increment_success_counter(self) -> None:
        self._set("success_counter = success_counter + 1")

    def reset_success_counter(self) -> None:
        self._set("success_counter = 0")

    @property
    def counter(self) -> int:
        return int(self._get("fail_counter") or 0)

    @property
    def success_counter(self) -> int:
        return int(self._get("success_counter") or 0)

    @property
    def opened_at(self) -> datetime | None:
        value = self._get("opened_at")
        return value if isinstance(value, datetime) else None

    @opened_at.setter
    def opened_at(self, when: datetime) -> None:
        self._set("opened_at = %s", (when,))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class SharedBreaker(pybreaker.CircuitBreaker):
    """pybreaker's breaker over the shared row, saying when it opened (pybreaker keeps that private).

    Only failures that say EIA is unhealthy (5xx, timeouts, broken bodies) count; a bad key, a
    throttle, a missing series or a cancelled task says nothing about EIA's health.
    """

    def __init__(self, storage: PostgresBreakerStorage, *, fail_max: int, reset_timeout_s: float) -> None:
        super().__init__(
            fail_max=fail_max,
            reset_timeout=reset_timeout_s,
            exclude=[lambda exc: not is_transient(exc)],
            state_storage=storage,
            name=storage.name,
            throw_new_error_on_trip=True,
        )
        self.storage = storage

    @property
    def opened_at(self) -> datetime | None:
        """When the shared breaker last opened (by any process), as its row says."""
        return self.storage.opened_at


@contextlib.contextmanager
def shared_breaker(
    dsn: str, *, fail_max: int, reset_timeout_s: float, name: str = DEFAULT_BREAKER
) -> Iterator[SharedBreaker]:
    """The breaker every process shares, its state in `eia_breaker_state`; its connection closes on exit."""
    storage = PostgresBreakerStorage(dsn, name)
    try:
        yield SharedBreaker(storage, fail_max=fail_max, reset_timeout_s=reset_timeout_s)
    finally:
        storage.close()


def seconds_until_trial(status: BreakerStatus, reset_timeout_s: float, now: datetime) -> float:
    """How long an open breaker stays open before its half-open trial (0 when it is not open).

    A run that starts during an outage's last seconds waits this long instead of failing at once: the
    first request after it is the trial. Never more than `reset_timeout_s`, whatever the clocks say.
    """
    if status.state != pybreaker.STATE_OPEN or status.opened_at is None:
        return 0.0
    remaining = (status.opened_at - now).total_seconds() + reset_timeout_s
    return max(0.0, min(reset_timeout_s, remaining))


@dataclass(frozen=True, slots=True)
class BreakerStatus:
    name: str
    state: str
    fail_counter: int
    opened_at: datetime | None
    updated_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "fail_counter": self.fail_counter,
            "opened_at": self.opened_at.isoformat() if self.opened_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


def breaker_status(conn: psycopg.Connection[TupleRow], name: str = DEFAULT_BREAKER) -> BreakerStatus:
    # Imported here: every flow process imports this package, and the ORM costs ~25 MB of memory.
    from sqlmodel import select

    from tasks.store.models import BreakerState
    from tasks.store.sessions import borrowed

    b = BreakerState
    with borrowed(conn) as session:
        row = session.exec(select(b.state, b.fail_counter, b.opened_at, b.updated_at).where(b.name == name)).first()
    if row is None:
        return BreakerStatus(name, pybreaker.STATE_CLOSED, 0, None, None)
    state, fail_counter, opened_at, updated_at = row
    return BreakerStatus(name, state, fail_counter, opened_at, updated_at)


def reset_breaker(conn: psycopg.Connection[TupleRow], *, actor: str, name: str = DEFAULT_BREAKER) -> BreakerStatus:
    """Closes the breaker and writes the reset to the audit log, in one transaction."""
    with conn.transaction():
        before = breaker_status(conn, name)
        conn.execute(
            f"""INSERT INTO {BREAKER} (name, state, fail_counter, success_counter, opened_at)
                VALUES (%s, 'closed', 0, 0, NULL)
                ON CONFLICT (name) DO UPDATE SET state = 'closed', fail_counter = 0, success_counter = 0,
                    opened_at = NULL, updated_at = now()""",
            (name,),
        )
        write_audit(conn, actor, AUDIT_ACTION, {"breaker": name, "previous_state": before.state})
    return breaker_status(conn, name)
