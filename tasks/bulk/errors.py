"""The bulk path's expected faults, and keeping their tracebacks out of the logs.

A refused URL, a corrupt archive or an over-size member is not a bug: the user needs one clear
line naming the archive and the setting, not a stack trace. Every such fault is a `BulkError`;
`transient` marks the ones a retry can fix (5xx, timeouts, dropped connections).
"""

from __future__ import annotations

from tasks.core.redact import quiet_tracebacks


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


def quiet_expected_tracebacks() -> None:
    """Keeps BulkError tracebacks out of the Prefect logs (idempotent)."""
    quiet_tracebacks(BulkError)
