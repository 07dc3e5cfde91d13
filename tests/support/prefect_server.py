"""Prefect's real server for the test session, keeping its state in the session's PostgreSQL.

`prefect_test_harness` starts the same server process but always on a fresh SQLite file. Under the
suite's concurrent task-state writes SQLite answers "database is locked"; the server turns that into a
503 and the client waits 2 s or more before it retries, which cost minutes per session. Prefect's own
guidance for concurrent writers is PostgreSQL (`PREFECT_SERVER_DATABASE_CONNECTION_URL`), as in
production, so the harness's steps are repeated here with that one setting changed. With
`EIA_TEST_PREFECT_SQLITE=1` the suite uses `prefect_test_harness` unchanged.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL


def prefect_database_url(dsn: str, name: str = "prefect_tests") -> str:
    """A fresh database `name` on the server behind `dsn`, as an asyncpg URL for Prefect's server."""
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    host = str(info.get("host") or "localhost")
    port = int(info.get("port") or 5432)
    common: dict[str, Any] = {"username": info.get("user") or "postgres", "password": info.get("password") or None}
    if host.startswith("/"):  # a Unix socket directory: asyncpg takes it as the `host` query parameter
        url = URL.create("postgresql+asyncpg", **common, database=name, query={"host": host, "port": str(port)})
    else:
        url = URL.create("postgresql+asyncpg", **common, host=host, port=port, database=name)
    return url.render_as_string(hide_password=False)


@contextlib.contextmanager
def prefect_server(dsn: str) -> Iterator[None]:
    """Prefect's server in a subprocess for the block, as `prefect_test_harness` runs it."""
    from prefect.testing.utilities import prefect_test_harness

    if os.environ.get("EIA_TEST_PREFECT_SQLITE") == "1":
        with prefect_test_harness(server_startup_timeout=60):
            yield
        return

    from prefect.context import _temporary_global_settings_context, get_settings_context
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.server.database.dependencies import temporary_database_interface
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_DATABASE_CONNECTION_URL, temporary_settings
    from prefect.utilities.asyncutils import run_coro_as_sync

    from tests.support.services import free_port

    with contextlib.ExitStack() as stack:
        stack.enter_context(temporary_database_interface())
        stack.enter_context(temporary_settings({PREFECT_SERVER_DATABASE_CONNECTION_URL: prefect_database_url(dsn)}))
        server = SubprocessASGIServer(port=free_port())
        prior = SubprocessASGIServer._instances.get(None)
        SubprocessASGIServer._instances[None] = server  # flow code asking for "the" server finds this one
        server.start(timeout=90)
        stack.callback(server.stop)
        stack.enter_context(temporary_settings({PREFECT_API_URL: server.api_url}))
        stack.enter_context(_temporary_global_settings_context(get_settings_context()))
        try:
            yield
        finally:

            async def drain() -> None:
                with contextlib.suppress(RuntimeError):  # the log worker may never have started
                    await APILogWorker.instance().drain()  # type: ignore[misc]
                await EventsWorker.drain_all()  # type: ignore[misc]

            run_coro_as_sync(drain())
            if prior is not None:
                SubprocessASGIServer._instances[None] = prior
            else:
                SubprocessASGIServer._instances.pop(None, None)
