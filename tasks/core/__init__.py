"""The pure ground floor: facts and rules every other package shares.

What it does: the catalog model (`Catalog`, `load_catalog`: which EIA queries the series flow makes,
from `catalog.json`), the one frequency table (`FREQUENCY_TABLE`, `BY_NAME`, `BY_CODE`), the EIA error
taxonomy (`EiaError` and its kinds, `is_transient`) and secret redaction (`scrub`, `scrub_text`,
`register_secret`, `install_logging_filter`, `quiet_tracebacks`).

What it never does: import Prefect, httpx or a database driver, not even indirectly (an import-linter
contract in pyproject.toml keeps it so), or do I/O beyond reading its own packaged catalog.
"""

from tasks.core.catalog import Catalog, CatalogEntry, CatalogError, load_catalog, parse_catalog
from tasks.core.errors import (
    EiaAuthError,
    EiaBreakerOpen,
    EiaError,
    EiaMalformedResponse,
    EiaNotFound,
    EiaRateLimited,
    EiaRequestError,
    EiaServerError,
    EiaTimeout,
    QuotaExhausted,
    is_transient,
)
from tasks.core.frequencies import BY_CODE, BY_NAME, FREQUENCIES, FREQUENCY_TABLE, Frequency
from tasks.core.redact import install_logging_filter, quiet_tracebacks, register_secret, scrub, scrub_text

__all__ = [
    "BY_CODE",
    "BY_NAME",
    "FREQUENCIES",
    "FREQUENCY_TABLE",
    "Catalog",
    "CatalogEntry",
    "CatalogError",
    "EiaAuthError",
    "EiaBreakerOpen",
    "EiaError",
    "EiaMalformedResponse",
    "EiaNotFound",
    "EiaRateLimited",
    "EiaRequestError",
    "EiaServerError",
    "EiaTimeout",
    "Frequency",
    "QuotaExhausted",
    "install_logging_filter",
    "is_transient",
    "load_catalog",
    "parse_catalog",
    "quiet_tracebacks",
    "register_secret",
    "scrub",
    "scrub_text",
]
