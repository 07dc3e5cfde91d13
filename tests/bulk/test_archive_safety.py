"""Bulk archives are refused, with a message naming the archive and the rule, when they are unsafe or broken."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from tasks.bulk.archive import ArchiveLimits, inspect_archive, verify_archive
from tasks.bulk.errors import ArchiveError
from tests.bulk.synthetic import archive_bytes, synthetic_archive_lines

LIMITS = ArchiveLimits(max_member_bytes=64 * 1024 * 1024, max_ratio=100.0)


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


def _good(tmp_path: Path) -> Path:
    path = tmp_path / "SYN.zip"
    path.write_bytes(archive_bytes("SYN", synthetic_archive_lines(3_000)))
    return path


def test_a_good_archive_verifies_and_its_lines_are_counted(tmp_path: Path) -> None:
    path = _good(tmp_path)
    with zipfile.ZipFile(path) as archive:
        text = archive.read("SYN.txt")

    info = verify_archive(path, "SYN", LIMITS)

    assert info.member == "SYN.txt"
    assert info.member_bytes == len(text)
    assert info.lines == text.count(b"\n")
    assert info.archive_bytes == path.stat().st_size


def test_a_truncated_archive_is_refused_as_truncated_or_corrupt(tmp_path: Path) -> None:
    path = _good(tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])

    with pytest.raises(ArchiveError, match=r"SYN\.zip is not a readable zip archive \(truncated or corrupt"):
        verify_archive(path, "SYN", LIMITS)


def test_a_corrupt_deflate_stream_fails_verification_before_anything_is_loaded(tmp_path: Path) -> None:
    path = _good(tmp_path)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)  # the central directory is intact, the data is not
    path.write_bytes(bytes(data))

    inspect_archive(path, "SYN", LIMITS)  # the directory alone looks fine
    with pytest.raises(ArchiveError, match=r"SYN\.zip is corrupt: reading SYN\.txt failed .*nothing was loaded"):
        verify_archive(path, "SYN", LIMITS)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../SYN.txt", "climbs out of the archive with '..'"),
        ("data/../../etc/SYN.txt", "climbs out of the archive with '..'"),
        ("/etc/SYN.txt", "is an absolute path"),
        ("C:/SYN.txt", "is an absolute path"),
        ("data\\SYN.txt", "contains a backslash"),
    ],
)
def test_a_member_name_that_could_escape_is_refused(tmp_path: Path, name: str, reason: str) -> None:
    path = _zip(tmp_path / "SYN.zip", {name: b'{"series_id":"X"}\n'})

    with pytest.raises(ArchiveError, match=f"member {name!r} {reason}; archive refused".replace("\\", "\\\\")):
        inspect_archive(path, "SYN", LIMITS)


def test_an_archive_with_anything_but_exactly_the_dataset_member_is_refused(tmp_path: Path) -> None:
    extra = _zip(tmp_path / "SYN.zip", {"SYN.txt": b"{}\n", "README.txt": b"hello"})
    wrong = _zip(tmp_path / "OTHER.zip", {"ELEC.txt": b"{}\n"})

    with pytest.raises(
        ArchiveError, match=r"must hold exactly one member, SYN\.txt; it holds \['SYN\.txt', 'README\.txt'\]"
    ):
        inspect_archive(extra, "SYN", LIMITS)
    with pytest.raises(ArchiveError, match=r"must hold exactly one member, SYN\.txt; it holds \['ELEC\.txt'\]"):
        inspect_archive(wrong, "SYN", LIMITS)


def test_a_member_declaring_more_than_the_size_cap_is_refused(tmp_path: Path) -> None:
    path = _zip(tmp_path / "SYN.zip", {"SYN.txt": b"x" * 10_000 + b"\n"})

    with pytest.raises(ArchiveError, match=r"declares 10001 bytes, more than the cap max_member_bytes=5000"):
        inspect_archive(path, "SYN", ArchiveLimits(max_member_bytes=5_000, max_ratio=1e9))


def test_a_zip_bomb_over_the_compression_ratio_cap_is_refused_before_decompressing(tmp_path: Path) -> None:
    path = _zip(tmp_path / "SYN.zip", {"SYN.txt": bytes(20 * 1024 * 1024)})  # 20 MiB of zeros: ~1000x

    with pytest.raises(ArchiveError, match=r"expands \d+x .* more than the cap max_compression_ratio=100; .*zip bomb"):
        verify_archive(path, "SYN", LIMITS)


def test_a_member_whose_real_size_exceeds_its_declared_size_fails_the_crc_check(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("SYN.txt", b"a line\n" * 5_000)
    data = bytearray(buffer.getvalue())
    # Lie in the central directory: declare a smaller uncompressed size (offset 24 of the entry).
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = (1_000).to_bytes(4, "little")
    path = tmp_path / "SYN.zip"
    path.write_bytes(bytes(data))

    with pytest.raises(ArchiveError, match=r"SYN\.zip is corrupt"):
        verify_archive(path, "SYN", LIMITS)
