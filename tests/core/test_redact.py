"""Secret hygiene of logs and messages: a registered key, and any `api_key` value even unregistered,
never reaches a handler, whoever added the handler and whenever; exceptions and tracebacks included.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import uuid
from collections.abc import Iterator

import httpx
import pytest
from prefect.logging.formatters import JsonFormatter
from prefect.logging.handlers import APILogHandler, PrefectConsoleHandler

from tasks.core.redact import MASK, RedactingFilter, install_logging_filter, register_secret, scrub, scrub_text
from tasks.standin.data import ReplayDataset
from tasks.standin.server import EiaReplayServer

KEY = "REDACTTESTKEY-4e1d9b7c2a5f8e3d6b0a"
UNREGISTERED = "UnregisteredKey0123456789abcdef"


@pytest.fixture(autouse=True)
def registered() -> None:
    register_secret(KEY)
    install_logging_filter()


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger with a plain handler added after install_logging_filter(), as Prefect or pytest would."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger(f"tests.redact.{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize(
    "text",
    [
        f"GET https://api.eia.gov/v2/electricity/retail-sales/data/?frequency=monthly&api_key={UNREGISTERED}&x=1",
        f"https://api.eia.gov/v2/seriesid/X?api_key%3D{UNREGISTERED}",
        f'{{"request": {{"params": {{"frequency": "monthly", "api_key": "{UNREGISTERED}"}}}}}}',
        f"{{'api_key': '{UNREGISTERED}'}}",
        f"[('frequency', 'monthly'), ('api_key', '{UNREGISTERED}')]",
        f"X-Api-Key: {UNREGISTERED}",
        f"API_KEY={UNREGISTERED}",
        f"the key {KEY} in prose",
    ],
)
def test_every_shape_of_an_api_key_is_masked(text: str) -> None:
    cleaned = scrub_text(text)
    assert UNREGISTERED not in cleaned and KEY not in cleaned
    assert MASK in cleaned


def test_eias_own_messages_about_the_key_stay_readable() -> None:
    text = "An invalid api_key has been supplied. Please check the api_key or register for one."
    assert scrub_text(text) == text


def test_containers_are_scrubbed_recursively_and_key_fields_masked() -> None:
    payload = {"request": {"params": {"api_key": UNREGISTERED, "data": [f"x {KEY}"]}}, "value": 1.5}
    assert scrub(payload) == {"request": {"params": {"api_key": MASK, "data": [f"x {MASK}"]}}, "value": 1.5}


def test_messages_arguments_and_extras_are_scrubbed_for_handlers_added_later(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info("calling %s with %s", f"/v2/x?api_key={UNREGISTERED}", {"key": KEY})
    logger.warning("done", extra={"url": f"/v2/x?api_key={UNREGISTERED}"})
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%s", (f"?api_key={UNREGISTERED}",), None)
    RedactingFilter().filter(record)
    assert UNREGISTERED not in record.getMessage()
    out = stream.getvalue()
    assert UNREGISTERED not in out and KEY not in out
    assert "calling /v2/x?api_key=***" in out


def test_exception_messages_and_tracebacks_are_scrubbed(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    try:
        raise RuntimeError(f"request to https://api.eia.gov/v2/x?api_key={KEY} failed")
    except RuntimeError:
        logger.exception("fetch failed")
    try:
        raise ValueError(f"bad answer for api_key={UNREGISTERED}")
    except ValueError as exc:
        logger.error("failed: %s", exc, exc_info=exc, stack_info=True)
    out = stream.getvalue()
    assert "Traceback" in out and "RuntimeError" in out
    assert KEY not in out and UNREGISTERED not in out


def test_prefect_api_and_console_handlers_and_the_json_formatter_never_see_the_key() -> None:
    """The handlers Prefect attaches to flow and task run loggers, created after the filter was installed."""
    logger = logging.getLogger(f"prefect.flow_runs.test-{uuid.uuid4().hex}")
    stream = io.StringIO()
    console = PrefectConsoleHandler(stream=stream)
    api = APILogHandler()
    logger.addHandler(console)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    sent: list[dict[str, object]] = []
    try:
        try:
            raise ConnectionError(f"GET /v2/x?api_key={KEY}")
        except ConnectionError:
            record = logger.makeRecord(
                logger.name,
                logging.ERROR,
                __file__,
                1,
                "fetching %s",
                (f"/v2/x?api_key={KEY}",),
                sys.exc_info(),
            )
        record.flow_run_id = str(uuid.uuid4())
        logger.handle(record)
        sent.append(api.prepare(record))
        json_text = JsonFormatter("default", "%H:%M:%S", "%").format(record)
    finally:
        logger.removeHandler(console)
    everything = stream.getvalue() + json.dumps(sent, default=str) + json_text
    assert "fetching /v2/x?api_key=***" in everything
    assert KEY not in everything


def test_httpx_and_httpcore_debug_logs_never_show_the_key(captured: tuple[logging.Logger, io.StringIO]) -> None:
    _, stream = captured
    handler = logging.StreamHandler(stream)  # added after the filter was installed
    loggers = [logging.getLogger(name) for name in ("httpx", "httpcore")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        with EiaReplayServer(ReplayDataset(routes={}, seriesid={})) as server, httpx.Client() as client:
            client.get(f"{server.api_url}/seriesid/NOPE", params={"api_key": UNREGISTERED})
            client.get(f"{server.api_url}/seriesid/NOPE", params={"api_key": KEY})
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.removeHandler(handler)
            lg.setLevel(level)
    out = stream.getvalue()
    assert "HTTP Request: GET" in out and "api_key=***" in out
    assert KEY not in out and UNREGISTERED not in out
