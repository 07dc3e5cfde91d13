"""Secret hygiene: scrub the EIA API key (and other registered secrets) from anything that may be
logged, stored or published.

EIA echoes `api_key` back in `request.params`, and httpx puts it in URLs (its INFO log line is
`HTTP Request: GET ...?api_key=...`) and exception text. The registered secrets are replaced wherever
they appear, and any `api_key` parameter or field is masked even if its value was never registered:
in a query string (`api_key=...`, `api_key%3D...`), JSON or a dict repr (`"api_key": "..."`), a
tuple repr (`('api_key', '...')`) or a header (`X-Api-Key: ...`).

Logging is covered twice, so no handler can see a secret, whoever added it and whenever:
- a LogRecord factory scrubs every record as it is created (message, arguments, exception text,
  stack), which covers handlers added later (Prefect's API log handler and console handler when
  Prefect reconfigures logging, pytest's capture, extra loggers such as httpx);
- `RedactingFilter` on every existing handler also scrubs `extra=` attributes, which are attached
  after the factory runs.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar
from urllib.parse import quote

MASK: Final = "***"
MIN_SECRET_LENGTH: Final = 8  # shorter values would mask ordinary words everywhere

_NAME = r"(?:x-)?api[_-]?key|api%5Fkey"
_KEY_PARAM: Final = re.compile(
    rf"""(?ix)
    (?P<name>{_NAME})
    (?:
        (?P<q_sep>=|%3D)(?P<q_val>[^&\s"'<>,;)\]}}]+)                       # query: api_key=VALUE
      | (?P<t_sep>["']\s*,\s*["'])(?P<t_val>[^"']+)                       # tuple repr: ('api_key', 'VALUE')
      | (?P<m_sep>["']?\s*:\s*["']?)(?P<m_val>[^&\s"',;}}\])]+)           # JSON, dict repr, header
    )"""
)
_KEY_FIELDS: Final = frozenset({"api_key", "apikey", "api-key", "x-api-key"})

_secrets: set[str] = set()
_lock = threading.Lock()
_factory_installed = False
_previous_factory: Callable[..., logging.LogRecord] | None = None

# LogRecord attributes that are not `extra=` fields (scrubbed separately or never hold text).
_RECORD_ATTRS: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

T = TypeVar("T")


def register_secret(value: str | None) -> None:
    """Remembers a secret so every later scrub() masks it (ignores short or empty values).

    Registering also installs the LogRecord factory, so a process that holds a secret never logs it,
    even if it never calls `install_logging_filter()`.
    """
    if not value or len(value) < MIN_SECRET_LENGTH:
        return
    with _lock:
        _secrets.add(value)
        encoded = quote(value, safe="")
        if encoded != value:
            _secrets.add(encoded)
    _install_record_factory()


def _mask_param(match: re.Match[str]) -> str:
    for sep in ("q_sep", "t_sep", "m_sep"):
        if match.group(sep) is not None:
            return f"{match.group('name')}{match.group(sep)}{MASK}"
    return match.group(0)  # pragma: no cover - one alternative always matches


def scrub_text(text: str) -> str:
    """The text with every registered secret and every api_key value masked."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return _KEY_PARAM.sub(_mask_param, text)


def scrub(value: T) -> T:
    """Returns a copy of value with secrets masked: strings, and containers recursively."""
    if isinstance(value, str):
        return scrub_text(value)  # type: ignore[return-value]
    if isinstance(value, Mapping):
        return {  # type: ignore[return-value]
            k: (MASK if isinstance(k, str) and k.lower() in _KEY_FIELDS else scrub(v)) for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(scrub(v) for v in value)
    return value


def _scrub_args(args: Any) -> Any:
    if isinstance(args, Mapping):
        return {k: scrub_text(str(v)) for k, v in args.items()}
    if isinstance(args, tuple):
        return tuple(scrub_text(str(a)) for a in args)
    return scrub_text(str(args))


def scrub_record(record: logging.LogRecord, *, extras: bool = True) -> logging.LogRecord:
    """Masks secrets in a LogRecord in place: message, arguments, exception text, stack, extras.

    A record whose traceback held a secret loses its `exc_info` (the scrubbed text stays in
    `exc_text`, which standard formatters print): formatters that read the exception object itself,
    such as Prefect's JSON formatter, would otherwise print the original.
    """
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: logging reports it later, with these values
        record.msg = scrub_text(str(record.msg))
        if record.args:
            record.args = _scrub_args(record.args)
    else:
        scrubbed = scrub_text(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
    if record.exc_info and record.exc_info[1] is not None:
        text = record.exc_text or logging.Formatter().formatException(record.exc_info)
        record.exc_text = scrub_text(text)
        if record.exc_text != text:
            record.exc_info = None
    elif record.exc_text:
        record.exc_text = scrub_text(record.exc_text)
    if record.stack_info:
        record.stack_info = scrub_text(record.stack_info)
    if extras:
        for name, value in list(vars(record).items()):
            if name not in _RECORD_ATTRS and isinstance(value, str):
                cleaned = scrub_text(value)
                if cleaned != value:
                    setattr(record, name, cleaned)
    return record


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets in the message, its arguments, any exception text and extras."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrub_record(record)
        return True


def _scrubbing_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    factory = _previous_factory or logging.LogRecord
    # `extra=` fields are attached after the factory returns; RedactingFilter covers those.
    return scrub_record(factory(*args, **kwargs), extras=False)


def _install_record_factory() -> None:
    global _factory_installed, _previous_factory
    with _lock:
        if _factory_installed:
            return
        current = logging.getLogRecordFactory()
        if current is not _scrubbing_factory:
            _previous_factory = current
            logging.setLogRecordFactory(_scrubbing_factory)
        _factory_installed = True


def _all_loggers() -> list[logging.Logger]:
    loggers = [logging.getLogger()]
    for candidate in list(logging.root.manager.loggerDict.values()):
        if isinstance(candidate, logging.Logger):
            loggers.append(candidate)
    return loggers


def install_logging_filter() -> None:
    """Installs the scrubbing LogRecord factory and adds `RedactingFilter` to every handler of every
    existing logger (root, Prefect's flow/task run loggers with their API and console handlers,
    httpx, ...). Idempotent; safe to call at the start of every flow run."""
    _install_record_factory()
    for logger in _all_loggers():
        for handler in list(logger.handlers):
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())


class _QuietTracebacks(logging.Filter):
    """Drops the traceback of log records about an expected fault (Prefect's engine logs failed flows
    and tasks with exc_info): such a fault's message names what to fix, a stack trace adds nothing."""

    types: tuple[type[BaseException], ...] = ()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], _QuietTracebacks.types):
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_tracebacks(*expected: type[BaseException]) -> None:
    """Keeps the tracebacks of `expected` exception types out of the root and Prefect loggers and their
    handlers; their messages still come through. Idempotent; types add up across calls."""
    _QuietTracebacks.types = tuple(dict.fromkeys((*_QuietTracebacks.types, *expected)))
    names = ["prefect", *(n for n in list(logging.root.manager.loggerDict) if n.startswith("prefect."))]
    for target_logger in [logging.getLogger(), *(logging.getLogger(n) for n in names)]:
        for target in (target_logger, *target_logger.handlers):
            if not any(isinstance(f, _QuietTracebacks) for f in target.filters):
                target.addFilter(_QuietTracebacks())
