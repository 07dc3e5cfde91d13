"""Streaming the archive member line by line, with byte offsets, a line-size cap and progress.

Memory stays flat whatever the archive's size: the member is decompressed through a 1 MiB buffer
and only the current line is held. Each line comes with its number and the byte offset where it
starts in the member, which is what a checkpoint records; resuming skips to that offset by
decompressing without parsing (deflate streams cannot seek), then checks that the offset really
starts a line. The compressed bytes consumed so far drive the progress bar's ETA.

A line longer than the cap is not read into memory: its first bytes are kept for the quarantine
record and the rest is skipped, so one pathological line cannot exhaust the worker.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO, Final

from tasks.bulk.archive import ArchiveInfo
from tasks.bulk.errors import ArchiveError, CheckpointError

_BUFFER: Final = 1 << 20
# How much of an over-long line is kept (for the quarantine payload).
TOO_LONG_PREFIX: Final = 2000


@dataclass(frozen=True, slots=True)
class Line:
    number: int  # 0-based index of the line in the member
    offset: int  # byte offset of the line's first byte in the member
    size: int  # bytes the line occupies, newline included
    data: bytes  # the line without its line ending; only a prefix when too_long
    too_long: bool = False

    @property
    def end(self) -> int:
        return self.offset + self.size


class MemberReader:
    """Iterates the lines of the archive's member from (start_line, start_offset); use as a context manager."""

    def __init__(self, info: ArchiveInfo, *, max_line_bytes: int, start_line: int = 0, start_offset: int = 0) -> None:
        if max_line_bytes < 1:
            raise ValueError("max_line_bytes must be positive")
        self.info = info
        self.max_line_bytes = max_line_bytes
        self.start_line = start_line
        self.start_offset = start_offset
        self._raw: BinaryIO | None = None
        self._zip: zipfile.ZipFile | None = None
        self._member: io.BufferedReader | None = None
        self._data_start = 0

    def __enter__(self) -> MemberReader:
        self._raw = self.info.path.open("rb")
        try:
            self._zip = zipfile.ZipFile(self._raw)
            member = self._zip.open(self.info.member)
        except (zipfile.BadZipFile, zlib.error, EOFError, KeyError) as exc:
            self.close()
            raise ArchiveError(f"{self.info.path.name} cannot be opened for reading: {exc}") from None
        # Opening the member reads its local header: the compressed data starts here.
        self._data_start = self._raw.tell()
        # ZipExtFile.readline is pure Python; a BufferedReader gives C-speed readline over it.
        self._member = io.BufferedReader(member, _BUFFER)  # type: ignore[arg-type]
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        for closable in (self._member, self._zip, self._raw):
            if closable is not None:
                closable.close()
        self._member = self._zip = self._raw = None

    @property
    def compressed_read(self) -> int:
        """Compressed bytes consumed so far (the reader buffers ahead by at most about 1 MiB)."""
        if self._raw is None or self._raw.closed:
            return self.info.compressed_bytes
        return max(0, min(self._raw.tell() - self._data_start, self.info.compressed_bytes))

    def _skip_to(self, member: io.BufferedReader, offset: int) -> None:
        left = offset - 1 if offset > 0 else 0
        while left > 0:
            chunk = member.read(min(left, _BUFFER))
            if not chunk:
                break
            left -= len(chunk)
        if offset > 0 and (left > 0 or member.read(1) != b"\n"):
            raise CheckpointError(
                f"checkpoint offset {offset} of {self.info.member} is not the start of a line; "
                "the archive is not the one the checkpoint was written for"
            )

    def __iter__(self) -> Iterator[Line]:
        member = self._member
        if member is None:
            raise RuntimeError("MemberReader is not open; use it as a context manager")
        cap = self.max_line_bytes
        number, offset = self.start_line, self.start_offset
        try:
            self._skip_to(member, offset)
            while True:
                raw = member.readline(cap + 1)
                if not raw:
                    return
                size = len(raw)
                if size > cap and not raw.endswith(b"\n"):
                    # Over the cap: keep a prefix, skip the rest without holding it.
                    prefix = raw[:TOO_LONG_PREFIX]
                    while not raw.endswith(b"\n"):
                        raw = member.readline(_BUFFER)
                        if not raw:
                            break
                        size += len(raw)
                    yield Line(number, offset, size, prefix, too_long=True)
                else:
                    yield Line(number, offset, size, raw.rstrip(b"\r\n"))
                number += 1
                offset += size
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            raise ArchiveError(
                f"{self.info.path.name} is corrupt: reading {self.info.member} failed at byte {offset} ({exc})"
            ) from None
