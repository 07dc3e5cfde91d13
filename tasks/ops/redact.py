"""Secret hygiene: scrub the EIA API key from anything that may be logged, stored or published.

EIA echoes `api_key` back in `request.params`, and httpx puts it in URLs and exception text. The
registered secrets are replaced wherever they appear, and any `api_key` parameter or field is
masked even if its value was never registered.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from typing import TypeVar

MASK = "***"
_KEY_PARAM = re.compile(r"(?i)(api_key|apikey|api-key)(=|%3D|\"?\s*:\s*\"?)([^&\s\"',;}]+)")
_secrets: set[str] = set()
_lock = threading.Lock()

T = TypeVar("T")


def register_secret(value: str | None) -> None:
    """Remembers a secret so every later scrub() masks it (ignores short or empty values)."""
    if value and len(value) >= 8:
        with _lock:
            _secrets.add(value)


def scrub_text(text: str) -> str:
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return _KEY_PARAM.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def scrub(value: T) -> T:
    """Returns a copy of value with secrets masked: strings, and containers recursively."""
    if isinstance(value, str):
        return scrub_text(value)  # type: ignore[return-value]
    if isinstance(value, Mapping):
        return {  # type: ignore[return-value]
            k: (MASK if isinstance(k, str) and k.lower() in ("api_key", "apikey") else scrub(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(scrub(v) for v in value)  # type: ignore[return-value]
    return value


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in the message, its arguments and any exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not hide the record
            message = str(record.msg)
        record.msg = scrub_text(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # Formatters reuse exc_text when set, so the traceback is printed already scrubbed.
            record.exc_text = scrub_text(logging.Formatter().formatException(record.exc_info))
        return True


def install_logging_filter() -> None:
    """Adds the filter to every handler of the root and Prefect loggers (idempotent)."""
    targets = [logging.getLogger(), logging.getLogger("prefect")]
    targets += [logging.getLogger(n) for n in list(logging.root.manager.loggerDict) if n.startswith("prefect")]
    for logger in targets:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
