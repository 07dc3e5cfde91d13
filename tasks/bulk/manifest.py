"""The bulk manifest: which datasets exist, where their archives are, and which version EIA publishes.

`manifest.txt` (`{"dataset": {ID: {identifier, title, accessURL, last_updated, ...}}}`) is the
only thing a monthly run fetches for a dataset that has not changed, so it decides whether an
archive is downloaded at all. An `accessURL` is followed only to the manifest's own host (or a
host the configuration allows) and never from https down to http: a tampered or misconfigured
manifest must not send the worker to fetch arbitrary URLs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from tasks.bulk.errors import DownloadError, ManifestError, UnsafeUrlError

MANIFEST_NAME: Final = "manifest.txt"
# The real manifest is about 40 kB; anything near this cap is not a manifest.
MAX_MANIFEST_BYTES: Final = 16 * 1024 * 1024
# Dataset codes become file and member names: letters, digits and underscores only.
DATASET_CODE: Final = re.compile(r"[A-Z0-9_]{1,32}")


@dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One dataset of the manifest."""

    dataset: str  # the manifest's key, e.g. "ELEC"
    title: str | None
    access_url: str
    last_updated: str  # EIA's stamp, verbatim: the version the next run compares
    modified: str | None


@dataclass(frozen=True, slots=True)
class Manifest:
    url: str
    entries: dict[str, ManifestEntry]

    def entry(self, dataset: str) -> ManifestEntry:
        try:
            return self.entries[dataset]
        except KeyError:
            available = ", ".join(sorted(self.entries)) or "none"
            raise ManifestError(
                f"dataset {dataset!r} is not in the EIA bulk manifest {self.url} (available: {available})"
            ) from None


def check_dataset_code(dataset: str) -> str:
    """The code, if it is a safe dataset code ("ELEC", "NUC_STATUS"); else ManifestError."""
    if not DATASET_CODE.fullmatch(dataset):
        raise ManifestError(
            f"dataset code {dataset!r} is not valid: use the manifest's upper-case code, e.g. ELEC or NG"
        )
    return dataset


def manifest_url(bulk_url: str) -> str:
    return f"{bulk_url.rstrip('/')}/{MANIFEST_NAME}"


def _host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def check_archive_url(url: str, *, manifest: str, allowed_hosts: Collection[str] = ()) -> str:
    """The URL, if the worker may fetch it: http(s), no credentials, the manifest's host or an allowed one.

    Redirects are checked with this too (see download.py), so a redirect cannot escape the rule.
    """
    parts = urlsplit(url)
    origin = urlsplit(manifest)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrlError(f"archive URL {url!r} is not an http(s) URL")
    if parts.username or parts.password:
        raise UnsafeUrlError(f"archive URL for host {parts.hostname!r} carries credentials; refused")
    if origin.scheme == "https" and parts.scheme != "https":
        raise UnsafeUrlError(f"archive URL {url!r} downgrades the manifest's https to http; refused")
    allowed = {_host(manifest), *(h.strip().lower() for h in allowed_hosts if h.strip())}
    if parts.hostname.lower() not in allowed:
        raise UnsafeUrlError(
            f"archive URL host {parts.hostname!r} is not the manifest's host {_host(manifest)!r}; "
            "add it to the flow parameter allowed_hosts (eia run bulk --allow-host) if it is trusted"
        )
    return url


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def parse_manifest(body: bytes, *, url: str) -> Manifest:
    """Parses manifest.txt. Entries without an accessURL or last_updated are left out (EIA lists a few)."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise ManifestError(f"the bulk manifest {url} is not JSON: {exc}") from None
    datasets = document.get("dataset") if isinstance(document, dict) else None
    if not isinstance(datasets, dict):
        raise ManifestError(f"the bulk manifest {url} has no 'dataset' object")
    entries: dict[str, ManifestEntry] = {}
    for key, raw in datasets.items():
        if not isinstance(raw, dict) or not DATASET_CODE.fullmatch(str(key)):
            continue
        access_url, last_updated = _text(raw.get("accessURL")), _text(raw.get("last_updated"))
        if access_url is None or last_updated is None:
            continue
        entries[str(key)] = ManifestEntry(
            dataset=str(key),
            title=_text(raw.get("title")),
            access_url=access_url,
            last_updated=last_updated,
            modified=_text(raw.get("modified")),
        )
    return Manifest(url, entries)


def fetch_manifest(
    bulk_url: str,
    *,
    timeout_s: float = 30.0,
    client: httpx.Client | None = None,
) -> Manifest:
    """Downloads and parses `<bulk_url>/manifest.txt`. No API key: the bulk site is public."""
    url = manifest_url(bulk_url)
    own = client is None
    http = client or httpx.Client(timeout=timeout_s, follow_redirects=False)
    try:
        with http.stream("GET", url) as response:
            if response.status_code != 200:
                transient = response.status_code >= 500 or response.status_code == 429
                raise DownloadError(
                    f"the bulk manifest {url} answered HTTP {response.status_code}", transient=transient
                )
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_MANIFEST_BYTES:
                    raise ManifestError(f"the bulk manifest {url} is larger than {MAX_MANIFEST_BYTES} bytes")
    except httpx.HTTPError as exc:
        raise DownloadError(
            f"cannot fetch the bulk manifest {url}: {type(exc).__name__}: {exc}", transient=True
        ) from None
    finally:
        if own:
            http.close()
    return parse_manifest(bytes(body), url=url)
