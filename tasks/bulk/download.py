"""Downloading a bulk archive: streamed to a file next to its destination, capped, hashed, conditional.

Archives are hundreds of megabytes (EBA.zip is about 700 MB), so the body is streamed to disk in
chunks, never held in memory, and refused once it passes the size cap. The SHA-256 computed on
the way identifies the archive version a checkpoint belongs to. With the ETag / Last-Modified of
a copy we already have, the request is conditional: a 304 means "what you have is current".

Two deliberate differences from the API client:
- No EIA API key. The bulk site is public; sending the key would only spread it.
- No `api_eia` concurrency slot. That global limit (3 slots) paces requests to the API gateway,
  whose quota a key can exhaust; a bulk download is one request to www.eia.gov per dataset per
  month, and holding a slot through a multi-minute transfer would stall the daily series flow.
  Instead a run downloads its datasets one at a time (the flow is sequential), which is polite
  enough for a static file server.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import httpx

from tasks.bulk.errors import DownloadError
from tasks.bulk.manifest import check_archive_url

CHUNK_BYTES: Final = 1 << 20
MAX_REDIRECTS: Final = 5


@dataclass(frozen=True, slots=True)
class Validators:
    """What a server told us about a copy we hold, for a conditional request."""

    etag: str | None
    last_modified: str | None

    def headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


@dataclass(frozen=True, slots=True)
class Download:
    """The outcome: a new file at `path`, or `not_modified` (the server confirmed the validators)."""

    url: str
    path: Path
    not_modified: bool
    etag: str | None
    last_modified: str | None
    sha256: str | None  # None when not modified (nothing was read)
    size: int

    @property
    def validators(self) -> Validators:
        return Validators(self.etag, self.last_modified)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _status_error(url: str, status: int) -> DownloadError:
    transient = status >= 500 or status in (408, 429)
    return DownloadError(f"downloading {url} failed: HTTP {status}", transient=transient)


def download_archive(
    url: str,
    dest: Path,
    *,
    manifest: str,
    allowed_hosts: Collection[str] = (),
    max_bytes: int,
    timeout_s: float = 60.0,
    validators: Validators | None = None,
    on_bytes: Callable[[int, int | None], None] | None = None,
) -> Download:
    """Streams `url` to `dest` (replaced atomically once complete), or reports 304 Not Modified.

    Every request, redirects included, must pass `check_archive_url`. `on_bytes(done, total)`
    reports progress; `total` is the Content-Length when the server sends one.
    """
    check_archive_url(url, manifest=manifest, allowed_hosts=allowed_hosts)

    def check_hop(request: httpx.Request) -> None:
        check_archive_url(str(request.url), manifest=manifest, allowed_hosts=allowed_hosts)

    http = httpx.Client(
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        event_hooks={"request": [check_hop]},
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp: Path | None = None
    try:
        headers = validators.headers() if validators else {}
        with http.stream("GET", url, headers=headers) as response:
            etag = response.headers.get("etag")
            last_modified = response.headers.get("last-modified")
            if response.status_code == 304:
                return Download(
                    url,
                    dest,
                    True,
                    etag or (validators.etag if validators else None),
                    last_modified or (validators.last_modified if validators else None),
                    None,
                    0,
                )
            if response.status_code != 200:
                raise _status_error(url, response.status_code)
            declared = response.headers.get("content-length")
            total = int(declared) if declared and declared.isdigit() else None
            if total is not None and total > max_bytes:
                raise DownloadError(
                    f"{url} is {total} bytes, more than the cap max_download_bytes={max_bytes}; refused"
                )
            digest = hashlib.sha256()
            size = 0
            with tempfile.NamedTemporaryFile(
                dir=dest.parent, prefix=f".{dest.name}.", suffix=".part", delete=False
            ) as out:
                tmp = Path(out.name)
                for chunk in response.iter_bytes(CHUNK_BYTES):
                    size += len(chunk)
                    if size > max_bytes:
                        raise DownloadError(
                            f"{url} is larger than the cap max_download_bytes={max_bytes}; download stopped"
                        )
                    digest.update(chunk)
                    out.write(chunk)
                    if on_bytes is not None:
                        on_bytes(size, total)
            os.replace(tmp, dest)
            tmp = None
            return Download(url, dest, False, etag, last_modified, digest.hexdigest(), size)
    except httpx.TooManyRedirects:
        raise DownloadError(f"downloading {url} failed: more than {MAX_REDIRECTS} redirects") from None
    except httpx.HTTPError as exc:
        raise DownloadError(f"downloading {url} failed: {type(exc).__name__}: {exc}", transient=True) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
        http.close()
