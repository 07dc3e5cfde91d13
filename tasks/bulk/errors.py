"""The bulk path's expected faults, and keeping their tracebacks out of the logs.

A refused URL, a corrupt archive or an over-size member is not a bug: the user needs one clear
line naming the archive and the setting, not a stack trace. Every such fault is a `BulkError`;
`transient` marks the ones a retry can fix (5xx, timeouts, dropped connections).
"""

from __future__ import annotations

import logging


class BulkError(Exception):
    """An expected fault of the bulk path; its message is meant for the user, on one line."""

    transient: bool = False


class ManifestError(BulkError):
    """The bulk manifest is unreachable, malformed, or lacks a requested dataset."""


class UnsafeUrlError(BulkError):
    """A manifest points at a host or scheme the configuration does not allow."""


class DownloadError(BulkError):
    """An archive download failed or exceeded its size cap."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class ArchiveError(BulkError):
    """An archive is unsafe (zip bomb, path traversal, extra members), truncated or corrupt."""


class CheckpointError(BulkError):
    """A recorded checkpoint does not fit the archive it claims to belong to."""


class _QuietExpected(logging.Filter):
    """Drops the traceback of log records about a BulkError (Prefect logs failed tasks with exc_info)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, BulkError):
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_expected_tracebacks() -> None:
    """Installs the filter on the Prefect loggers and their handlers (idempotent)."""
    names = ["prefect", *(n for n in list(logging.root.manager.loggerDict) if n.startswith("prefect."))]
    for logger in [logging.getLogger(), *(logging.getLogger(n) for n in names)]:
        for target in (logger, *logger.handlers):
            if not any(isinstance(f, _QuietExpected) for f in target.filters):
                target.addFilter(_QuietExpected())
