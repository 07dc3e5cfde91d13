"""The catalog use case: catalog entries discovered from EIA's own metadata, validated, and priced.

What it does: `discover_route` and `discover_tree` read `/v2/<route>` and `/v2/<route>/facet/<id>`
and write entries in the catalog's format (series, area and sector facets, units per column,
`initial_start`, publication lag; facet values grouped so a full history fits a few pages)
(`discover`); `validate_entries` checks entries against live metadata and reports each problem on one
line naming the entry and the field, and `validate_for_run` is the series flow's cheaper check before
it fetches data (`validate`); `plan_catalog` and `offline_plan` say what a first and a daily run cost
in requests, quota and charge-back, and `check_daily_quota` refuses a catalog over the daily quota
(`plan`). The pure rules (series identity, grouping, page counts) are `rules`; metadata bodies are
parsed in `metadata`; `MetadataReader` caches what one run or command read (`reader`);
`eia_session` is the client stack the commands send through (`session`). The Prefect wrapper is
`tasks.catalog.tasks.validate_for_run_task`.

What it never does: send a request outside the EIA client (each one is paced, guarded by the
breaker, reserved against the quotas and counted in the ledger), fetch data rows, or write the
catalog file itself (the `eia catalog` command does).
"""

from tasks.catalog.discover import DiscoverError, DiscoverOptions, WalkResult, discover_route, discover_tree
from tasks.catalog.metadata import RouteMetadata, parse_facet_values, parse_route_metadata
from tasks.catalog.plan import CatalogPlan, CatalogTooCostly, EntryPlan, check_daily_quota, offline_plan, plan_catalog
from tasks.catalog.reader import MetadataReader
from tasks.catalog.session import SessionSettings, eia_session
from tasks.catalog.validate import Problem, RunValidation, validate_entries, validate_for_run

__all__ = [
    "CatalogPlan",
    "CatalogTooCostly",
    "DiscoverError",
    "DiscoverOptions",
    "EntryPlan",
    "MetadataReader",
    "Problem",
    "RouteMetadata",
    "RunValidation",
    "SessionSettings",
    "WalkResult",
    "check_daily_quota",
    "discover_route",
    "discover_tree",
    "eia_session",
    "offline_plan",
    "parse_facet_values",
    "parse_route_metadata",
    "plan_catalog",
    "validate_entries",
    "validate_for_run",
]
