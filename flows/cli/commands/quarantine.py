"""`eia quarantine list|replay`: see what is quarantined and why, and load it again after a fix.

Rows land in `eia_series_quarantine` when a normalizer cannot read them or the quality gate blocks
their batch; the reason is a normalizer code or the name of the rule that found them. `list` shows
them; `replay` sends them through normalize → gate → merge again once the cause is fixed (for
example a new unit in units.csv) and removes them from quarantine in the same transaction as their
merge. A replay the gate blocks again leaves every row in quarantine (re-filed under the replay's
batch with today's reasons) and exits 1. Replays are recorded in the audit log with the actor
(EIA_ACTOR, else the login name). Both read the database from EIA_DATABASE_URL or the `eia-database`
block; `replay` also reads the tenant, the retention and Kafka from the blocks.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from tasks.load.replay import ReplayResult, ReplayTargets
    from tasks.publish.producer import KafkaSettings

NAME = "quarantine"
app = typer.Typer(help="List quarantined rows, or replay them after a fix.", no_args_is_help=True)

EXIT_STILL_QUARANTINED = 1  # a replay's gate blocked a batch again: its rows stay in quarantine
EXIT_ERROR = 2

Reason = Annotated[str | None, typer.Option("--reason", help="Only rows with this reason (a rule or normalizer code).")]
Series = Annotated[str | None, typer.Option("--series", help="Only rows of this series id.")]


def _replay_context(tenant: str | None) -> tuple[str, str, ReplayTargets, KafkaSettings | None]:
    """DSN, tenant, replay targets and Kafka settings, from the environment and the blocks."""
    from blocks import DATABASE_BLOCK, KAFKA_BLOCK, EiaDatabase, EiaKafka
    from flows._run import ensure_schema_current
    from flows.cli.app import _dsn
    from flows.settings import SettingsError, kafka_settings, load_block
    from tasks.load.replay import ReplayTargets
    from tasks.normalize.observation import SOURCE_API, SOURCE_BULK
    from tasks.publish.producer import KafkaConfigError

    async def blocks() -> tuple[EiaDatabase | None, EiaKafka | None]:
        return await load_block(EiaDatabase, DATABASE_BLOCK), await load_block(EiaKafka, KAFKA_BLOCK)

    database, kafka_block = asyncio.run(blocks())
    try:
        kafka = kafka_settings(kafka_block)
    except KafkaConfigError as exc:
        raise SettingsError(str(exc)) from None
    dsn = _dsn()
    ensure_schema_current(dsn)
    database = database or EiaDatabase()
    topics = {SOURCE_API: kafka.series_topic, SOURCE_BULK: kafka.bulk_topic} if kafka else {}
    targets = ReplayTargets(outbox_topics=topics, retention_years=database.retention_years)
    return dsn, tenant or database.tenant_id, targets, kafka


@app.command("list")
def list_cmd(
    reason: Reason = None,
    series: Series = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only rows of this tenant.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Show at most this many rows, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Quarantined rows (newest first) and how many there are per reason."""
    from flows.cli.app import _dsn, _guard
    from tasks.quality.inspect import list_quarantine, quarantine_counts
    from tasks.store.database import connect

    def read() -> dict[str, Any]:
        with connect(_dsn()) as conn:
            counts = quarantine_counts(conn, reason=reason, series=series, tenant_id=tenant)
            rows = list_quarantine(conn, reason=reason, series=series, tenant_id=tenant, limit=limit)
        return {
            "total": sum(counts.values()),
            "by_reason": counts,
            "shown": len(rows),
            "rows": [r.as_dict() for r in rows],
        }

    data = _guard(read)
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    _print_list(data)


def _print_list(data: dict[str, Any]) -> None:
    from rich.table import Table

    from flows.cli.app import out

    if not data["total"]:
        out.print("quarantine: no rows match", highlight=False)
        return
    reasons = ", ".join(f"{r} {n}" for r, n in data["by_reason"].items())
    table = Table(title=f"quarantine: {data['total']} row(s) ({reasons}); newest {data['shown']} shown")
    for column in ("id", "quarantined", "reason", "series", "period", "value", "source", "dataset", "detail"):
        table.add_column(column, overflow="fold")
    for r in data["rows"]:
        table.add_row(
            str(r["id"]),
            r["quarantined_at"][:19],
            r["reason"],
            r["series_id"] or "-",
            r["raw_period"] or "-",
            r["raw_value"] or "-",
            r["source"],
            r["dataset"] or "-",
            (r["detail"] or "")[:80],
        )
    out.print(table)


@app.command("replay")
def replay_cmd(
    reason: Reason = None,
    series: Series = None,
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Tenant to replay (default: the configured one).")
    ] = None,
    max_rows: Annotated[
        int, typer.Option("--max-rows", min=1, help="Replay at most about this many rows, oldest first.")
    ] = 100_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Re-run quarantined rows through normalize → gate → merge after a fix (audited).

    Exit status: 0 when every replayed batch passed the gate; 1 when the gate blocked a batch again
    (its rows stay in quarantine); 2 for a configuration error or another replay in progress.
    """
    from flows.cli.app import _actor, _guard, fail
    from tasks.load.replay import ReplayError, replay_quarantine
    from tasks.publish.outbox import drain_outbox

    def work() -> tuple[ReplayResult, str]:
        dsn, tenant_id, targets, kafka = _replay_context(tenant)
        result = replay_quarantine(
            dsn, tenant_id=tenant_id, reason=reason, series=series, targets=targets, actor=_actor(), max_rows=max_rows
        )
        published = "off"
        if kafka is not None and (result.inserted or result.updated):
            drained = drain_outbox(dsn, kafka)
            published = f"{drained.sent} sent, {drained.pending} pending"
        return result, published

    try:
        result, published = _guard(work)
    except ReplayError as exc:
        fail(str(exc), code=EXIT_ERROR)
    if as_json:
        typer.echo(json.dumps({**result.as_dict(), "kafka": published}, indent=2))
    else:
        _print_replay(result, published)
    if result.requarantined:
        raise typer.Exit(EXIT_STILL_QUARANTINED)


def _print_replay(result: ReplayResult, published: str) -> None:
    from flows.cli.app import out

    out.print(
        f"replayed {result.replayed} of {result.selected} quarantined row(s): {result.loaded} loaded "
        f"({result.inserted} inserted, {result.updated} updated, {result.unchanged} unchanged"
        f"{f', {result.skipped} outside retention' if result.skipped else ''}), "
        f"{result.still_quarantined} still quarantined; Kafka: {published}",
        highlight=False,
    )
    for b in result.batches:
        verdict = "loaded" if b.passed else f"blocked by {', '.join(b.failed_checks)}: re-filed in quarantine"
        out.print(f"  batch {b.batch_id} ({b.source} {b.dataset or '-'}): {len(b.quarantine_ids)} row(s) {verdict}")
    notes = [
        (result.rejected, "rejected again by their normalizer"),
        (result.superseded, "superseded: the table holds a newer fetch of their period"),
        (result.held_back, "held back behind a blocked batch of the same source and dataset"),
    ]
    for count, why in notes:
        if count:
            out.print(f"  {count} row(s) left as they were: {why}", highlight=False)
    for why, count in result.not_replayable.items():
        out.print(f"  {count} row(s) not replayable: {why}", highlight=False)
    if result.remaining:
        out.print(f"  {result.remaining} more matching row(s) wait: run the replay again", highlight=False)
