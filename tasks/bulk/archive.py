"""Zip safety for bulk archives: exactly the expected member, no traversal, no bombs, no corruption.

An archive is checked twice before a single line is loaded:
1. `inspect_archive` reads only the central directory: the archive must hold exactly
   `<DATASET>.txt` (no `../`, absolute or backslashed names, no other members), stored or
   deflated, not encrypted, with a declared size and compression ratio under the caps. A
   truncated download fails here: the central directory sits at the end of the file.
2. `verify_archive` streams the member once, end to end, which checks the deflate stream and the
   CRC-32 and counts the lines (for the progress bar). A corrupt archive fails here, so nothing
   from it is merged. Decompression never produces more than the declared (capped) size: zipfile
   stops at the declared size and the CRC then fails, so a lying header cannot inflate a bomb.
The loading pass (reader.py) gets the CRC check again for free, should the file change in between.
"""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from tasks.bulk.errors import ArchiveError

_CHUNK: Final = 1 << 20
_DRIVE: Final = re.compile(r"^[A-Za-z]:")
# zip general-purpose flag bit 0: the member is encrypted.
_ENCRYPTED: Final = 0x1


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    """Caps on the member: declared uncompressed size, and uncompressed / compressed ratio."""

    max_member_bytes: int
    max_ratio: float


@dataclass(frozen=True, slots=True)
class ArchiveInfo:
    path: Path
    member: str
    member_bytes: int  # uncompressed size, as declared (and, after verify, as checked by the CRC)
    compressed_bytes: int
    archive_bytes: int
    lines: int | None = None  # counted by verify_archive


def member_name(dataset: str) -> str:
    return f"{dataset}.txt"


def unsafe_name_reason(name: str) -> str | None:
    """Why a member name could write outside an extraction directory, or None when it is safe."""
    if "\x00" in name:
        return "contains a NUL character"
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return "is an absolute path"
    if "\\" in name:
        return "contains a backslash"
    if ".." in name.split("/"):
        return "climbs out of the archive with '..'"
    return None


def _open(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
        raise ArchiveError(
            f"{path.name} is not a readable zip archive (truncated or corrupt download): {exc}"
        ) from None
    except FileNotFoundError:
        raise ArchiveError(f"{path.name} is missing: {path}") from None


def inspect_archive(path: Path, dataset: str, limits: ArchiveLimits) -> ArchiveInfo:
    """Checks the central directory; raises ArchiveError naming the archive and the broken rule."""
    expected = member_name(dataset)
    archive_bytes = path.stat().st_size if path.exists() else 0
    with _open(path) as archive:
        infos = archive.infolist()
    for info in infos:
        reason = unsafe_name_reason(info.filename)
        if reason is not None:
            raise ArchiveError(f"{path.name}: member {info.filename!r} {reason}; archive refused")
    names = [i.filename for i in infos]
    if len(infos) != 1 or infos[0].filename.lower() != expected.lower():
        raise ArchiveError(f"{path.name} must hold exactly one member, {expected}; it holds {names[:5]}")
    info = infos[0]
    if info.flag_bits & _ENCRYPTED:
        raise ArchiveError(f"{path.name}: member {info.filename} is encrypted; archive refused")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ArchiveError(
            f"{path.name}: member {info.filename} uses compression method {info.compress_type}; "
            "only stored and deflated members are accepted"
        )
    if info.file_size > limits.max_member_bytes:
        raise ArchiveError(
            f"{path.name}: member {info.filename} declares {info.file_size} bytes, more than the cap "
            f"max_member_bytes={limits.max_member_bytes}; archive refused"
        )
    ratio = info.file_size / max(info.compress_size, 1)
    if ratio > limits.max_ratio:
        raise ArchiveError(
            f"{path.name}: member {info.filename} expands {ratio:.0f}x ({info.compress_size} → "
            f"{info.file_size} bytes), more than the cap max_compression_ratio={limits.max_ratio:g}; "
            "archive refused (zip bomb?)"
        )
    if info.header_offset + info.compress_size > archive_bytes:
        raise ArchiveError(f"{path.name} is truncated: member {info.filename} runs past the end of the file")
    return ArchiveInfo(path, info.filename, info.file_size, info.compress_size, archive_bytes)


def verify_archive(
    path: Path,
    dataset: str,
    limits: ArchiveLimits,
    *,
    on_progress: Callable[[int, int], None] | None = None,
) -> ArchiveInfo:
    """`inspect_archive`, then one full decompression pass: deflate stream, CRC-32, line count."""
    info = inspect_archive(path, dataset, limits)
    lines = 0
    size = 0
    last = b"\n"
    try:
        with _open(path) as archive, archive.open(info.member) as member:
            while chunk := member.read(_CHUNK):
                size += len(chunk)
                lines += chunk.count(b"\n")
                last = chunk[-1:]
                if on_progress is not None:
                    on_progress(size, info.member_bytes)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise ArchiveError(
            f"{path.name} is corrupt: reading {info.member} failed after {size} bytes ({exc}); nothing was loaded"
        ) from None
    if size != info.member_bytes:  # zipfile checks this with the CRC; kept as a guard of our own
        raise ArchiveError(f"{path.name}: {info.member} holds {size} bytes, not the declared {info.member_bytes}")
    if last != b"\n":
        lines += 1  # a last line without a newline
    return replace(info, lines=lines)
