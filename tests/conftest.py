"""Session fixtures: one PostgreSQL, one Kafka broker, one Prefect test server per test session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Offline: Soda telemetry would add seconds per contract run.
os.environ.setdefault("SODA_CORE_TELEMETRY_ENABLED", "false")

from tests.support.services import kafka_broker, reset_database, start_database

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The real EIA samples, as packaged with the stand-in (`tasks/standin/samples`)."""
    from tasks.standin.data import SAMPLES_DIR

    return SAMPLES_DIR


@pytest.fixture(scope="session")
def pg_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated PostgreSQL database for the whole session."""
    from tasks.store.database import stop_embedded

    yield start_database(tmp_path_factory.mktemp("postgres"))
    stop_embedded()


@pytest.fixture
def db(pg_dsn: str) -> str:
    """The session database, emptied of operational rows before the test."""
    reset_database(pg_dsn)
    return pg_dsn


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    with kafka_broker() as bootstrap:
        yield bootstrap


@pytest.fixture(scope="session")
def prefect_server(pg_dsn: str) -> Iterator[None]:
    """Prefect's real server, started once (~10 s), its state in the session PostgreSQL."""
    from prefect.settings import PREFECT_SERVER_ALLOW_EPHEMERAL_MODE, temporary_settings

    from tests.support.prefect_server import prefect_server

    with prefect_server(pg_dsn), temporary_settings({PREFECT_SERVER_ALLOW_EPHEMERAL_MODE: True}):
        yield
