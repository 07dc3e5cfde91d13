"""`eia demo` on a clean machine: offline, isolated from the user's settings, and ending with rows,
a passing quality report, a working /metrics and Prefect UI, and the published observations on Kafka;
a second demo on the same directory says that every observation was unchanged."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from tests.deploy.prefect_server import kill_group

DEMO_TIMEOUT_S = 300  # the issue's bound on this 2-core machine
COLLECTOR_EXISTS = importlib.util.find_spec("flows.cli.commands.serve") is not None
EIA_DEMO = str(Path(sys.executable).parent / "eia")
SERIES_TOPIC, BULK_TOPIC, DLQ_TOPIC = "aurum.ref.eia.series.v1", "aurum.ref.eia.bulk.v1", "aurum.ref.eia.series.dlq.v1"


def count_messages(bootstrap: str, topic: str) -> int:
    """Messages on `topic`, read from the beginning by a plain consumer (no Schema Registry needed)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "demo-test",
            "enable.partition.eof": True,
            "enable.auto.commit": False,
        }
    )
    try:
        found = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if found is None or found.error is not None or not found.partitions:
            return 0
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in found.partitions])
        count, at_end, deadline = 0, set[int](), time.monotonic() + 60
        while len(at_end) < len(found.partitions) and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None:
                continue
            error = msg.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                at_end.add(msg.partition() or 0)
            elif error is None:
                count += 1
        return count
    finally:
        consumer.close()


def sent_outbox_rows(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT topic, count(*) FROM eia_outbox WHERE sent_at IS NOT NULL GROUP BY topic ORDER BY topic"
        ).fetchall()
    return {str(topic): int(n) for topic, n in rows}


def flow_results(summary: dict[str, Any]) -> dict[str, str]:
    return {f["flow"]: f["message"] for f in summary["flows"]}


@pytest.mark.slow
def test_eia_demo_in_a_clean_environment_loads_rows_passes_quality_serves_metrics_and_publishes(
    tmp_path: Path,
) -> None:
    user_prefect_home = tmp_path / "user-prefect-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "EIA_"))}
    env.update(
        EIA_DATA_DIR=str(tmp_path / "eia-data"),
        PREFECT_HOME=str(user_prefect_home),
        # The user's real settings: the demo must not use (or touch) any of them.
        PREFECT_API_URL="http://127.0.0.1:9/api",
        EIA_DATABASE_URL="postgresql://nobody@127.0.0.1:9/not-the-demo",
        EIA_API_KEY="the-users-real-key",
    )
    summary_file = tmp_path / "eia-data" / "demo" / "summary.json"
    started = time.monotonic()
    proc = subprocess.Popen(
        [EIA_DEMO, "demo", "--keep-serving"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "Serving until Ctrl-C" in line or time.monotonic() - started > DEMO_TIMEOUT_S:
                break
        output = "".join(lines)
        assert "Serving until Ctrl-C" in output, output[-5000:]
        assert time.monotonic() - started < DEMO_TIMEOUT_S
        assert "demo OK" in output, output[-5000:]

        match = re.search(r"^Metrics: (http://\S+/metrics)$", output, re.MULTILINE)
        if COLLECTOR_EXISTS:
            assert match, output[-3000:]
            metrics = httpx.get(match.group(1), timeout=10).text
            for name in ("eia_requests_total", "eia_quality_score", "eia_last_ingestion_timestamp_seconds"):
                assert re.search(rf"^{name}[{{ ]", metrics, re.MULTILINE), name
            quality = re.search(r'^eia_quality_score\{window="latest"\} (\S+)$', metrics, re.MULTILINE)
            assert quality and float(quality.group(1)) >= 0.95
        else:  # switches on by itself when `eia serve` lands
            assert match is None and "not part of this version yet" in output

        summary = json.loads(summary_file.read_text())
        # The Prefect UI reaches its API: /ui-settings names the demo's own server, which answers there.
        ui = re.search(r"^Prefect UI: (http://\S+)$", output, re.MULTILINE)
        assert ui, output[-3000:]
        ui_settings = httpx.get(f"{ui.group(1)}/ui-settings", timeout=10).json()
        assert ui_settings["api_url"] == summary["prefect_url"] == f"{ui.group(1)}/api"
        assert httpx.get(f"{ui_settings['api_url']}/health", timeout=10).json() is True

        # Kafka: per topic, the summary's numbers are what a consumer reads now and the outbox rows sent.
        kafka = summary["kafka"]
        assert kafka["off"] is None and kafka["schema_registry"] == "mock://eia-demo"
        bootstrap = kafka["bootstrap"]
        published = sent_outbox_rows(summary["dsn"])
        on_broker = {topic: count_messages(bootstrap, topic) for topic in kafka["topics"]}
        assert list(kafka["topics"]) == [SERIES_TOPIC, BULK_TOPIC, DLQ_TOPIC]
        for topic, counts in kafka["topics"].items():
            assert counts == {"published": published.get(topic, 0), "read": on_broker[topic], "pending": 0}, topic
        assert published[SERIES_TOPIC] == summary["rows"]["eia_series_timeseries"] - published[BULK_TOPIC] > 0
        assert published[BULK_TOPIC] > 0
        assert published.get(DLQ_TOPIC, 0) == sum(summary["quarantine"].values())  # one DLQ message per row filed
        for topic in (SERIES_TOPIC, BULK_TOPIC):
            assert f"Read them with kcat: kcat -b {bootstrap} -t {topic} -C -e\n" in output

        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, rest[-3000:]
    finally:
        kill_group(proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)

    assert summary["ok"] is True, summary["problems"]
    assert summary["rows"]["eia_series_timeseries"] > 0
    assert summary["series"] > 0
    flows = {f["flow"]: f["status"] for f in summary["flows"]}
    assert flows["ingest_eia_series_timescale"] == "completed"
    assert "failed" not in flows.values(), flows
    quality = summary["quality"]
    assert quality["all_passed"] and quality["batches"] > 0 and quality["score"] >= 0.95
    assert summary["metrics_ok"] is (True if COLLECTOR_EXISTS else None)
    # Series ids print verbatim: an annual price series' `:A:` never becomes an emoji.
    assert re.search(r"EIA2:\S+:price:A:", output) and "\N{NEGATIVE SQUARED LATIN CAPITAL LETTER A}" not in output
    # Isolation: nothing was written to the user's Prefect home; their key never reached the demo.
    assert not user_prefect_home.exists() or not any(user_prefect_home.rglob("*"))
    assert "the-users-real-key" not in output + rest
    first = summary

    # The second demo on the same directory: the same observations come again, and all are unchanged.
    second_run = subprocess.run(
        [EIA_DEMO, "demo", "--no-keep-serving"],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=DEMO_TIMEOUT_S,
        check=False,
    )
    again = second_run.stdout + second_run.stderr
    assert second_run.returncode == 0, again[-5000:]
    summary = json.loads(summary_file.read_text())
    message = flow_results(summary)["ingest_eia_series_timescale"]
    unchanged = re.fullmatch(
        r"0 inserted, 0 updated, (\d+) unchanged, 0 quarantined from \1 observations \(\d+ API rows\)", message
    )
    assert unchanged, message
    assert int(unchanged.group(1)) > 0
    assert re.search(rf"^▸   completed in \d+ s: {re.escape(message)}$", again, re.MULTILINE), again[-5000:]
    assert summary["rows"]["eia_series_timeseries"] == first["rows"]["eia_series_timeseries"]
    assert all(counts == {"published": 0, "read": 0, "pending": 0} for counts in summary["kafka"]["topics"].values())
    assert "Kafka: nothing new to publish this run (no observation changed)" in again
