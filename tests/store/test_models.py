"""The models are the tables: the observation record, the migrated PostgreSQL and TimescaleDB schemas
and `SQLModel.metadata` agree column for column, and a column on one side only is caught."""

from __future__ import annotations

import re
import shutil
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData
from sqlalchemy import inspect as sa_inspect
from sqlmodel import SQLModel

from sql import SQL_DIR
from tasks.normalize.observation import STAGED_COLUMNS, TABLE_COLUMNS, Observation
from tasks.store import models, tables
from tasks.store.migrations import apply_migrations, discover
from tasks.store.sessions import engine
from tests.store.schema import (
    CATALOG_QUERY,
    Description,
    describe_metadata,
    describe_on_timescale,
    differences,
    on_flavor,
    parse_description,
    timescale_checker,
)
from tests.support.services import fresh_database

# Not models: the runner's own table, the aggregate view, and the observation table's partitions.
NOT_MODELS = {tables.MIGRATIONS, tables.MONTHLY_AGGREGATES}
# The column the drift tests add on one side only, as the description shows it.
ATTEMPTS = '{"default": null, "nullable": true, "type": "integer"}'
PARTITION = re.compile(rf"^{tables.TIMESERIES}_(p\d{{6}}|y\d{{4}})$")


@pytest.fixture(scope="module")
def migrated(pg_dsn: str) -> Iterator[str]:
    """A database made by `eia init`'s migrations alone (the session database also holds test tables)."""
    with fresh_database(pg_dsn, "eia_models_check") as dsn:
        apply_migrations(dsn)
        yield dsn


def live_description(dsn: str) -> Description:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(CATALOG_QUERY).fetchone()
    assert row is not None
    described = parse_description(row[0])
    described.pop(tables.MIGRATIONS)
    return described


def alembic_changes(dsn: str, metadata: MetaData) -> list[Any]:
    """What Alembic's autogenerate would change to make the database match `metadata` (empty: they agree)."""

    def include(obj: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
        if kind == "table" and (name in NOT_MODELS or PARTITION.match(name or "")):
            return False
        return not (kind == "index" and not reflected and not on_flavor(obj, "postgres"))

    with engine(dsn).connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True, "include_object": include}
        )
        return list(compare_metadata(context, metadata))


def test_every_table_name_has_one_model() -> None:
    names = {v for k, v in vars(tables).items() if k.isupper() and isinstance(v, str)}
    assert set(SQLModel.metadata.tables) == names - NOT_MODELS


def test_staging_and_observation_models_are_the_observation_record() -> None:
    staged = [c.name for c in SQLModel.metadata.tables[tables.STAGING].columns]
    stored = [c.name for c in SQLModel.metadata.tables[tables.TIMESERIES].columns]
    assert tuple(staged) == STAGED_COLUMNS
    assert tuple(stored) == TABLE_COLUMNS

    # Each of the record's fields has the record's Python type, and is NULL-able exactly when it is Optional.
    record = typing.get_type_hints(Observation)
    for model in (models.StagedObservation, models.SeriesObservation):
        mapper = sa_inspect(model)
        hints = typing.get_type_hints(model)
        for name, hint in record.items():
            column = mapper.columns[name if name != "metadata" else "metadata_"]
            field = mapper.get_property_by_column(column).key
            assert (model.__name__, name, hints[field]) == (model.__name__, name, hint)
            assert column.nullable == (type(None) in typing.get_args(hint)), (model.__name__, name)


def test_alembic_finds_nothing_to_change_between_the_models_and_the_migrated_database(migrated: str) -> None:
    assert alembic_changes(migrated, SQLModel.metadata) == []


def test_the_models_describe_the_migrated_postgres_database(migrated: str) -> None:
    assert differences(live_description(migrated), describe_metadata(SQLModel.metadata, "postgres")) == []


def test_the_models_describe_the_migrated_timescale_database(tmp_path: Path) -> None:
    tool = timescale_checker()
    if tool is None:
        pytest.skip("timescale-check (../shared/tools/timescale-check) or node/npm is missing; CI has both")
    described = describe_on_timescale(tool, [m.path for m in discover("timescale")], tmp_path)
    assert differences(described, describe_metadata(SQLModel.metadata, "timescale")) == []


def _sql_tree_with(tmp_path: Path, name: str, sql: str) -> Path:
    """A copy of the migrations with one more common migration."""
    root = tmp_path / "sql"
    for folder in ("common", "postgres", "timescale"):
        shutil.copytree(SQL_DIR / folder, root / folder)
    version = discover("postgres")[-1].version + 1
    (root / "common" / f"{version:04d}_{name}.sql").write_text(sql, encoding="utf-8")
    return root


def test_a_column_a_migration_adds_and_no_model_names_is_a_difference(pg_dsn: str, tmp_path: Path) -> None:
    root = _sql_tree_with(tmp_path, "drift", f"ALTER TABLE {tables.OUTBOX} ADD COLUMN attempts INTEGER;\n")
    with fresh_database(pg_dsn, "eia_models_drift_sql") as dsn:
        apply_migrations(dsn, root=root)
        changes = alembic_changes(dsn, SQLModel.metadata)
        described = live_description(dsn)
    assert [(d[0], d[2], d[3].name) for d in changes] == [("remove_column", tables.OUTBOX, "attempts")]
    assert differences(described, describe_metadata(SQLModel.metadata, "postgres")) == [
        f"{tables.OUTBOX}.columns.attempts: database {ATTEMPTS}, models null"
    ]


def test_a_column_a_model_adds_and_no_migration_creates_is_a_difference(migrated: str) -> None:
    metadata = MetaData()
    for table in SQLModel.metadata.tables.values():
        copy = table.to_metadata(metadata)
        copy._prefixes = table._prefixes  # to_metadata leaves the prefixes (UNLOGGED) and the indexes' info behind
        flavors = {i.name: i.info for i in table.indexes}
        for index in copy.indexes:
            index.info.update(flavors[index.name])
    metadata.tables[tables.OUTBOX].append_column(Column("attempts", Integer, nullable=True))

    changes = alembic_changes(migrated, metadata)
    assert [(d[0], d[2], d[3].name) for d in changes] == [("add_column", tables.OUTBOX, "attempts")]
    assert differences(live_description(migrated), describe_metadata(metadata, "postgres")) == [
        f"{tables.OUTBOX}.columns.attempts: database null, models {ATTEMPTS}"
    ]
