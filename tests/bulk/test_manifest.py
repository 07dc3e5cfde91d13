"""The bulk manifest: parsed from EIA's real shape; archive URLs are followed only where they may go."""

from __future__ import annotations

from pathlib import Path

import pytest

from tasks.bulk.errors import ManifestError, UnsafeUrlError
from tasks.bulk.manifest import check_archive_url, check_dataset_code, parse_manifest

MANIFEST = "https://www.eia.gov/opendata/bulk/manifest.txt"


def test_the_real_manifest_sample_lists_each_dataset_with_its_url_and_version(samples_dir: Path) -> None:
    body = (samples_dir / "fc_bulk_manifest_trimmed.json").read_bytes()

    manifest = parse_manifest(body, url=MANIFEST)

    assert sorted(manifest.entries) == ["EBA", "ELEC", "NG"]
    elec = manifest.entry("ELEC")
    assert elec.access_url == "https://www.eia.gov/opendata/bulk/ELEC.zip"
    assert elec.last_updated == "2026-09-23T17:01:12-04:00"
    assert elec.title == "Electricity"


def test_a_dataset_missing_from_the_manifest_is_an_error_listing_what_exists(samples_dir: Path) -> None:
    manifest = parse_manifest((samples_dir / "fc_bulk_manifest_trimmed.json").read_bytes(), url=MANIFEST)

    with pytest.raises(
        ManifestError, match=r"dataset 'PET' is not in the EIA bulk manifest .* \(available: EBA, ELEC, NG\)"
    ):
        manifest.entry("PET")


@pytest.mark.parametrize("body", [b"<html>maintenance</html>", b'{"datasets": {}}', b"[]"])
def test_a_body_that_is_not_a_manifest_is_refused(body: bytes) -> None:
    with pytest.raises(ManifestError, match=r"the bulk manifest https://www\.eia\.gov/opendata/bulk/manifest\.txt"):
        parse_manifest(body, url=MANIFEST)


def test_an_archive_on_the_manifest_host_is_allowed() -> None:
    url = "https://www.eia.gov/opendata/bulk/ELEC.zip"
    assert check_archive_url(url, manifest=MANIFEST) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://evil.example/ELEC.zip", "host 'evil.example' is not the manifest's host 'www.eia.gov'"),
        ("http://www.eia.gov/opendata/bulk/ELEC.zip", "downgrades the manifest's https to http"),
        ("file:///etc/passwd", "is not an http(s) URL"),
        ("https://user:pw@www.eia.gov/ELEC.zip", "carries credentials"),
    ],
)
def test_an_archive_url_elsewhere_is_refused(url: str, message: str) -> None:
    with pytest.raises(UnsafeUrlError) as caught:
        check_archive_url(url, manifest=MANIFEST)
    assert message in str(caught.value)


def test_another_host_is_allowed_only_when_configured() -> None:
    url = "https://mirror.example.org/ELEC.zip"

    assert check_archive_url(url, manifest=MANIFEST, allowed_hosts=["Mirror.Example.org"]) == url


@pytest.mark.parametrize("code", ["../ELEC", "elec", "EL EC", "", "A" * 33])
def test_a_dataset_code_that_is_not_a_plain_code_is_refused(code: str) -> None:
    with pytest.raises(ManifestError, match="is not valid: use the manifest's upper-case code"):
        check_dataset_code(code)
