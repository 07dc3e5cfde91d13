"""The settings loader in production and locally: missing blocks, invalid blocks, `EIA_DATABASE_URL`
over the block's DSN, and the embedded PostgreSQL that production never starts.

Against the session's real Prefect server. Each test saves blocks under names of its own (the flows
take block names as parameters), so the other tests' `eia-*` blocks stay as they are.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prefect.blocks.core import Block
from prefect.blocks.system import Secret
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import BlockDocumentUpdate
from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings
from pydantic import SecretStr

from blocks import DATABASE_BLOCK, ENDPOINTS_BLOCK, EiaCostPolicy, EiaDatabase, EiaEndpoints, EiaKafka
from flows._run import begin_ingestion_run
from flows.cli.setup import ensure_blocks
from flows.settings import RunSettings, SettingsError, load_block, load_run_settings
from tasks.quota.budget import CostPolicy
from tasks.store.database import DatabaseConfigError, in_production

WRONG_DSN = "postgresql://nobody:wrong-pw-5e1d@127.0.0.1:9/not-this-one"
IN_PRODUCTION = "does not exist, and production (a deployment run or EIA_ENVIRONMENT=prod) uses no defaults"


@dataclass
class Names:
    """Block names of one test, and the environment its settings are loaded in."""

    suffix: str
    monkeypatch: pytest.MonkeyPatch

    @property
    def endpoints(self) -> str:
        return f"endpoints-{self.suffix}"

    @property
    def database(self) -> str:
        return f"database-{self.suffix}"

    @property
    def kafka(self) -> str:
        return f"kafka-{self.suffix}"

    @property
    def cost(self) -> str:
        return f"cost-{self.suffix}"

    def production(self) -> None:
        self.monkeypatch.setenv("EIA_ENVIRONMENT", "prod")

    async def save_all(self, database: EiaDatabase, *, skip: type[Block] | None = None) -> None:
        blocks: list[tuple[Block, str]] = [
            (EiaEndpoints(), self.endpoints),
            (database, self.database),
            (EiaKafka(), self.kafka),
            (EiaCostPolicy(), self.cost),
        ]
        for block, name in blocks:
            if type(block) is not skip:
                await block.asave(name, overwrite=True)

    async def load(self) -> RunSettings:
        return await load_run_settings(
            api_key_block=f"api-key-{self.suffix}",
            endpoints_block=self.endpoints,
            database_block=self.database,
            kafka_block=self.kafka,
            need_api_key=False,
            cost_policy_block=self.cost,
        )


@pytest.fixture
async def names(prefect_server: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[Names]:
    """Fresh block names, a local environment (no EIA_ENVIRONMENT, no EIA_DATABASE_URL, embedded state
    under tmp_path); the blocks are deleted afterwards."""
    for var in ("EIA_ENVIRONMENT", "EIA_DATABASE_URL", "PREFECT__RUNTIME__DEPLOYMENT__ID"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("EIA_DATA_DIR", str(tmp_path))
    n = Names(uuid.uuid4().hex[:12], monkeypatch)
    yield n
    for cls, name in (
        (EiaEndpoints, n.endpoints),
        (EiaDatabase, n.database),
        (EiaKafka, n.kafka),
        (EiaCostPolicy, n.cost),
    ):
        with contextlib.suppress(ValueError):  # a block this test never saved
            await cls.adelete(name)  # type: ignore[misc]


async def save_invalid(cls: type[Block], name: str, valid: Block, data: dict[str, object]) -> None:
    """Saves `valid`, then overwrites fields through the Prefect client, past the model's validation."""
    await valid.asave(name, overwrite=True)
    async with get_client() as client:
        document = await client.read_block_document_by_name(name, block_type_slug=cls.get_block_type_slug())
        await client.update_block_document(document.id, BlockDocumentUpdate(data=data))


# --- the switch ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("prod", True), ("production", True), ("PROD", True), ("Production", True), ("staging", False), ("", False)],
)
def test_eia_environment_prod_or_production_in_any_case_is_production(
    value: str, expected: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PREFECT__RUNTIME__DEPLOYMENT__ID", raising=False)
    monkeypatch.setenv("EIA_ENVIRONMENT", value)
    assert in_production() is expected


def test_a_run_of_a_deployment_is_production_without_eia_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EIA_ENVIRONMENT", raising=False)
    assert in_production() is False
    # Prefect's documented stand-in for prefect.runtime.deployment.id outside a real deployment run
    # (the deploy tests run real ones).
    monkeypatch.setenv("PREFECT__RUNTIME__DEPLOYMENT__ID", str(uuid.uuid4()))
    assert in_production() is True


# --- missing blocks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("missing", "hint"),
    [
        (
            EiaEndpoints,
            "(EIA Endpoints) {in_production}: create it with `eia init` (EIA_API_URL and EIA_BULK_URL set its URLs)",
        ),
        (EiaDatabase, "(EIA Database) {in_production}: create it with `eia init` with EIA_DATABASE_URL set"),
        (
            EiaKafka,
            "(EIA Kafka) {in_production}: create it with `eia init` with EIA_KAFKA_BOOTSTRAP and "
            "EIA_SCHEMA_REGISTRY_URL set (without EIA_KAFKA_BOOTSTRAP it creates the block with Kafka off)",
        ),
        (
            EiaCostPolicy,
            "(EIA Cost Policy) {in_production}: create it with `eia init` (it creates the runbook's cost policy)",
        ),
    ],
    ids=["endpoints", "database", "kafka", "cost-policy"],
)
async def test_in_production_a_missing_block_fails_naming_the_block_and_eia_init(
    names: Names, pg_dsn: str, missing: type[Block], hint: str
) -> None:
    await names.save_all(EiaDatabase(dsn=SecretStr(pg_dsn)), skip=missing)
    names.production()
    name = {EiaEndpoints: names.endpoints, EiaDatabase: names.database, EiaKafka: names.kafka}.get(missing, names.cost)
    with pytest.raises(SettingsError) as raised:
        await names.load()
    assert str(raised.value) == f"block {name!r} " + hint.format(in_production=IN_PRODUCTION)


async def test_locally_missing_blocks_fall_back_to_their_defaults(names: Names, pg_dsn: str) -> None:
    names.monkeypatch.setenv("EIA_DATABASE_URL", pg_dsn)  # the embedded default is not started here
    settings = await names.load()
    assert settings.kafka is None
    assert (settings.client.api_url, settings.client.page_size) == ("https://api.eia.gov/v2", 5000)
    assert (settings.tenant_id, settings.retention_years) == ("aurum-prod", 0)
    assert settings.cost == CostPolicy()
    assert settings.dsn == pg_dsn


async def test_a_missing_block_is_none_with_missing_ok_even_in_production(names: Names) -> None:
    names.production()
    assert await load_block(EiaKafka, names.kafka, missing_ok=True) is None
    assert await load_block(Secret, f"api-key-{names.suffix}", missing_ok=True) is None


# --- invalid blocks -----------------------------------------------------------------------------


@pytest.mark.parametrize("production", [False, True], ids=["local", "production"])
async def test_a_database_block_that_fails_validation_fails_naming_its_fields_not_their_values(
    names: Names, production: bool
) -> None:
    await names.save_all(EiaDatabase(dsn=SecretStr(WRONG_DSN)))
    await save_invalid(
        EiaDatabase, names.database, EiaDatabase(dsn=SecretStr(WRONG_DSN)), {"tenant_id": "", "retention_years": -1}
    )
    if production:
        names.production()
    with pytest.raises(SettingsError) as raised:
        await names.load()
    assert str(raised.value) == (
        f"block {names.database!r} (EIA Database) is invalid: field 'tenant_id' (String should have at least 1 "
        "character), field 'retention_years' (Input should be greater than or equal to 0); fix it in the Prefect UI "
        f"(Blocks), or delete it (`prefect block delete eia-database/{names.database}`) and rerun `eia init`"
    )
    assert "wrong-pw" not in str(raised.value) and raised.value.__cause__ is None


async def test_a_cost_policy_failing_its_cross_field_check_fails_without_quoting_the_values(names: Names) -> None:
    await names.save_all(EiaDatabase(dsn=SecretStr(WRONG_DSN)))
    await save_invalid(
        EiaCostPolicy, names.cost, EiaCostPolicy(), {"warning_percent": "91.5", "critical_percent": "80.25"}
    )
    with pytest.raises(SettingsError) as raised:
        await names.load()
    message = str(raised.value)
    assert message.startswith(
        f"block {names.cost!r} (EIA Cost Policy) is invalid: the block as a whole (rejected by its validator); "
    )
    assert "91.5" not in message and "80.25" not in message


async def test_a_prefect_api_that_cannot_be_reached_is_an_error_not_a_missing_block(names: Names) -> None:
    settings = {PREFECT_API_URL: "http://127.0.0.1:9/api", PREFECT_CLIENT_MAX_RETRIES: 0}
    with temporary_settings(settings), pytest.raises(httpx.ConnectError):
        await load_block(EiaKafka, names.kafka, missing_ok=True)


# --- the database ------------------------------------------------------------------------------


@pytest.mark.parametrize("production", [False, True], ids=["local", "production"])
async def test_eia_database_url_in_the_environment_wins_over_the_blocks_dsn(
    names: Names, pg_dsn: str, production: bool
) -> None:
    await names.save_all(EiaDatabase(dsn=SecretStr(WRONG_DSN), tenant_id="tenant-from-block"))
    names.monkeypatch.setenv("EIA_DATABASE_URL", pg_dsn)
    if production:
        names.production()
    settings = await names.load()
    assert settings.dsn == pg_dsn
    assert settings.tenant_id == "tenant-from-block"  # the rest of the block still applies


async def test_without_eia_database_url_the_blocks_dsn_is_used(names: Names, pg_dsn: str) -> None:
    await names.save_all(EiaDatabase(dsn=SecretStr(pg_dsn)))
    names.production()
    assert (await names.load()).dsn == pg_dsn


async def test_in_production_without_any_dsn_the_embedded_postgresql_is_never_started(
    names: Names, tmp_path: Path
) -> None:
    await names.save_all(EiaDatabase())  # a block with no dsn: locally that means the embedded server
    names.production()
    with pytest.raises(DatabaseConfigError) as raised:
        await names.load()
    assert str(raised.value) == (
        "no database is configured, and production (a deployment run or EIA_ENVIRONMENT=prod) never starts the "
        "embedded PostgreSQL: set EIA_DATABASE_URL / block 'eia-database' field 'dsn' (`eia init` writes "
        "EIA_DATABASE_URL into the block)"
    )
    assert not (tmp_path / "pgdata").exists()  # under EIA_DATA_DIR: no data directory, no server


# --- Kafka off ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("production", "level", "message"),
    [
        (False, logging.INFO, "Kafka publishing is off: EIA_KAFKA_BOOTSTRAP / block {kafka!r} is not set"),
        (
            True,
            logging.WARNING,
            "Kafka publishing is off: block {kafka!r} has an empty bootstrap_servers (EIA_KAFKA_BOOTSTRAP); "
            "no observations are published",
        ),
    ],
    ids=["local-info", "production-warning"],
)
async def test_a_kafka_block_with_an_empty_bootstrap_turns_kafka_off_loudly_only_in_production(
    names: Names, db: str, caplog: pytest.LogCaptureFixture, production: bool, level: int, message: str
) -> None:
    await names.save_all(EiaDatabase(dsn=SecretStr(db)))
    if production:
        names.production()
    settings = await names.load()
    assert settings.kafka is None
    log = logging.getLogger("tests.settings.run")
    with caplog.at_level(logging.INFO, logger=log.name):
        begin_ingestion_run(settings, "test_settings_flow", names.kafka, log)
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == log.name and "Kafka" in r.getMessage()]
    assert said == [(level, message.format(kafka=names.kafka))]


# --- eia init ----------------------------------------------------------------------------------


async def test_eia_init_in_production_stops_on_an_invalid_block_instead_of_overwriting_it(
    names: Names, pg_dsn: str
) -> None:
    # `eia init` works on the default names: put back what the session's server held before.
    before = {
        cls: await load_block(cls, name, missing_ok=True)
        for cls, name in ((EiaEndpoints, ENDPOINTS_BLOCK), (EiaDatabase, DATABASE_BLOCK))
    }
    names.production()
    try:
        await save_invalid(EiaDatabase, DATABASE_BLOCK, EiaDatabase(dsn=SecretStr(pg_dsn)), {"retention_years": -1})
        with pytest.raises(SettingsError) as raised:
            await ensure_blocks({"EIA_DATABASE_URL": pg_dsn})
        assert str(raised.value).startswith(
            "block 'eia-database' (EIA Database) is invalid: field 'retention_years' (Input should be greater than "
            "or equal to 0); "
        )
        async with get_client() as client:
            stored = await client.read_block_document_by_name(DATABASE_BLOCK, block_type_slug="eia-database")
        assert stored.data["retention_years"] == -1  # left for the operator to fix, not reset to a default
    finally:
        for cls, name in ((EiaEndpoints, ENDPOINTS_BLOCK), (EiaDatabase, DATABASE_BLOCK)):
            block = before[cls]
            if block is not None:
                await block.asave(name, overwrite=True)
            else:
                with contextlib.suppress(ValueError):
                    await cls.adelete(name)  # type: ignore[misc]
