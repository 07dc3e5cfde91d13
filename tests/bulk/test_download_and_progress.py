"""Archive downloads (size cap, conditional requests) against the stand-in, and the terminal progress bar."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from tasks.bulk.archive import ArchiveLimits, verify_archive
from tasks.bulk.checkpoints import ArchiveVersion
from tasks.bulk.download import Validators, download_archive, file_sha256
from tasks.bulk.errors import DownloadError, UnsafeUrlError
from tasks.bulk.load import BulkLoadConfig, load_archive
from tasks.bulk.progress import RichProgress
from tasks.standin.server import EiaReplayServer
from tests.bulk.synthetic import archive_bytes, manifest, synthetic_archive_lines


def _serve(standin: EiaReplayServer, content: bytes) -> tuple[str, str]:
    standin.dataset.bulk_manifest = manifest({"SYN": "2024-08-23T15:23:15-04:00"})
    standin.dataset.bulk_files = {"SYN.zip": content}
    return f"{standin.bulk_url}/SYN.zip", f"{standin.bulk_url}/manifest.txt"


def test_a_download_is_streamed_to_its_destination_hashed_and_revalidated_with_its_etag(
    standin: EiaReplayServer, tmp_path: Path
) -> None:
    content = archive_bytes("SYN", synthetic_archive_lines(2_000))
    url, manifest_url = _serve(standin, content)
    dest = tmp_path / "SYN.zip"

    first = download_archive(url, dest, manifest=manifest_url, max_bytes=10**9)
    second = download_archive(url, dest, manifest=manifest_url, max_bytes=10**9, validators=first.validators)

    assert dest.read_bytes() == content and first.size == len(content)
    assert first.sha256 == file_sha256(dest) and first.etag and first.last_modified
    assert (first.not_modified, second.not_modified, second.etag) == (False, True, first.etag)
    assert standin.stats.zip_requests == 1 and standin.stats.statuses[304] == 1
    assert list(tmp_path.iterdir()) == [dest]  # no partial files left behind


def test_an_archive_over_the_download_cap_is_refused_and_nothing_is_left_on_disk(
    standin: EiaReplayServer, tmp_path: Path
) -> None:
    content = archive_bytes("SYN", synthetic_archive_lines(2_000))
    url, manifest_url = _serve(standin, content)

    with pytest.raises(DownloadError, match=rf"is {len(content)} bytes, more than the cap max_download_bytes=1000"):
        download_archive(url, tmp_path / "SYN.zip", manifest=manifest_url, max_bytes=1_000)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_archive_is_a_permanent_error_and_a_foreign_host_is_never_contacted(
    standin: EiaReplayServer, tmp_path: Path
) -> None:
    _, manifest_url = _serve(standin, b"")
    with pytest.raises(DownloadError, match=r"NOPE\.zip failed: HTTP 404") as caught:
        download_archive(f"{standin.bulk_url}/NOPE.zip", tmp_path / "x.zip", manifest=manifest_url, max_bytes=10)
    assert caught.value.transient is False
    before = standin.stats.requests

    with pytest.raises(UnsafeUrlError, match=r"host 'evil\.example' is not the manifest's host"):
        download_archive("http://evil.example/SYN.zip", tmp_path / "x.zip", manifest=manifest_url, max_bytes=10)
    assert standin.stats.requests == before
    assert Validators("abc", None).headers() == {"If-None-Match": "abc"}


def test_the_progress_bar_shows_lines_observations_rows_per_second_and_an_eta(db: str, tmp_path: Path) -> None:
    path = tmp_path / "SYN.zip"
    path.write_bytes(archive_bytes("SYN", synthetic_archive_lines(3_000)))
    info = verify_archive(path, "SYN", ArchiveLimits(1 << 30, 100))
    screen = io.StringIO()
    progress = RichProgress(Console(file=screen, force_terminal=True, width=160))

    load_archive(
        db,
        info,
        ArchiveVersion("v1", file_sha256(path), None, None),
        BulkLoadConfig("t", "r", "j", "SYN"),
        progress=progress,
    )

    text = screen.getvalue()
    assert "SYN" in text and "100%" in text
    assert f"/{info.lines:,} lines" in text and "3,000 observations" in text and "rows/s" in text and "ETA" in text
