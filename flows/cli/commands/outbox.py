"""`eia outbox flush|status`: deliver the transactional outbox now, or see what waits in it.

The flows write every Kafka message to `eia_outbox` in the same transaction as the rows it
describes, and drain it after the load. When the broker was down, the messages wait there; the next
run delivers them, or an operator runs `eia outbox flush` once the broker is back. Both commands read
the database from EIA_DATABASE_URL or the `eia-database` block, and Kafka from the `eia-kafka` block.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from tasks.publish.outbox import DrainResult, OutboxStats
    from tasks.publish.producer import KafkaSettings

NAME = "outbox"
app = typer.Typer(
    help="Deliver or inspect the Kafka outbox (messages committed with the data, published after the commit).",
    no_args_is_help=True,
)

KAFKA_SETTING = "EIA_KAFKA_BOOTSTRAP / EIA_SCHEMA_REGISTRY_URL (block 'eia-kafka')"
EXIT_PENDING = 1  # messages could not be delivered and stay in the outbox


def _context() -> tuple[str, KafkaSettings | None]:
    """The DSN and the Kafka settings (None: publishing is off); configuration errors name the setting."""
    from blocks import KAFKA_BLOCK, EiaKafka
    from flows.cli.app import _dsn
    from flows.settings import SettingsError, kafka_settings, load_block
    from tasks.publish.producer import KafkaConfigError

    dsn = _dsn()
    try:
        return dsn, kafka_settings(asyncio.run(load_block(EiaKafka, KAFKA_BLOCK)))
    except KafkaConfigError as exc:
        raise SettingsError(str(exc)) from None


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


@dataclass
class _Captured:
    """What the drain said while it ran: the reason deliveries failed, for the one-line error."""

    reasons: list[str]
    unserializable: int = 0


@contextmanager
def _capture_drain_warnings() -> Iterator[_Captured]:
    """Collects the drain's warnings instead of printing them: the command prints one line of its own."""
    captured = _Captured([])

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            args = record.args if isinstance(record.args, tuple) else ()
            if record.getMessage().startswith("Kafka publish incomplete") and len(args) >= 5:
                captured.reasons.append(f"{args[3]}{args[4]}")  # (stop reason, broker hint)
            elif "cannot be serialized" in record.getMessage():
                captured.unserializable += 1
            else:
                captured.reasons.append(record.getMessage())

    logger = logging.getLogger("tasks.publish.outbox")
    handler = Collect(level=logging.WARNING)
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield captured
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


@app.command("flush")
def flush(
    timeout: Annotated[
        float, typer.Option(min=0.5, help="Seconds each message may wait for the broker before the flush gives up.")
    ] = 30.0,
    batch_size: Annotated[int, typer.Option(min=1, help="Outbox rows taken per chunk.")] = 5000,
) -> None:
    """Deliver every pending outbox message now.

    Exit status: 0 when nothing is left pending;
    1 when messages could not be delivered (broker or Schema Registry unreachable): they stay in the outbox;
    2 for a configuration error.
    """
    from flows.cli.app import _guard, error, out
    from flows.settings import SettingsError
    from tasks.publish.outbox import drain_outbox, outbox_stats

    def work() -> tuple[DrainResult | None, KafkaSettings | None, _Captured]:
        dsn, kafka = _context()
        captured = _Captured([])
        if kafka is None:
            pending = outbox_stats(dsn).pending
            if pending:
                raise SettingsError(
                    f"{pending} message(s) wait in the outbox but Kafka publishing is off: set {KAFKA_SETTING} "
                    "and run `eia init`, then `eia outbox flush`"
                )
            return None, None, captured
        with _capture_drain_warnings() as captured:
            result = drain_outbox(dsn, kafka, timeout_s=timeout, batch_size=batch_size)
        return result, kafka, captured

    result, kafka, captured = _guard(work)
    if result is None or kafka is None:
        out.print("Kafka publishing is off and the outbox is empty: nothing to flush", highlight=False)
        return
    topics = ", ".join(f"{topic} {n}" for topic, n in sorted(result.by_topic.items())) or "none"
    if result.pending == 0:
        out.print(f"outbox flushed: {result.sent} message(s) sent ({topics}); nothing pending", highlight=False)
        return
    if captured.reasons:
        why = f"Kafka at {kafka.bootstrap_servers} did not accept them within {timeout:g} s ({captured.reasons[-1]})"
    elif captured.unserializable:
        why = f"{captured.unserializable} row(s) could not be serialized (their payload does not fit the Avro schema)"
    else:
        why = "another publisher holds them, or they failed"
    error(
        f"{result.pending} outbox message(s) still pending after sending {result.sent}: {why}. "
        "They stay in the outbox: run `eia outbox flush` again once the broker is reachable."
    )
    raise typer.Exit(EXIT_PENDING)


def _status_dict(stats: OutboxStats, kafka: KafkaSettings | None) -> dict[str, Any]:
    return {
        "pending": stats.pending,
        "oldest_age_s": None if stats.oldest_age_s is None else round(stats.oldest_age_s, 3),
        "kafka": {"enabled": kafka is not None, "bootstrap_servers": kafka.bootstrap_servers if kafka else None},
    }


@app.command("status")
def status(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show how many messages wait in the outbox and how old the oldest is."""
    from flows.cli.app import _guard, out
    from tasks.publish.outbox import outbox_stats

    def read() -> dict[str, Any]:
        dsn, kafka = _context()
        return _status_dict(outbox_stats(dsn), kafka)

    data = _guard(read)
    if as_json:
        out.print_json(json.dumps(data))
        return
    target = data["kafka"]["bootstrap_servers"] or "off"
    if data["pending"]:
        out.print(
            f"outbox: {data['pending']} message(s) pending, oldest {_age(data['oldest_age_s'])} (Kafka: {target})",
            highlight=False,
        )
    else:
        out.print(f"outbox: nothing pending (Kafka: {target})", highlight=False)
