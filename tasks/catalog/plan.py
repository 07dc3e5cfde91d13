"""What a catalog costs in EIA requests, before it runs: for a first run and for a daily run.

Per entry, one `length=0` probe reads EIA's `total` for the first run's request (the series planner's
own request, from `initial_start`), so the first run's pages are exact. The daily run of an entry the
database already holds is probed the same way from its watermark; for an entry not loaded yet it is
estimated from the first run's rows, the route's span (`startPeriod`..`endPeriod`) and the trailing
window the incremental run re-fetches. A run also spends one metadata request per route of the
entries the table holds nothing of yet (the series flow validates those before it fetches data), so a
first run pays them and a daily run of a loaded catalog does not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from tasks.catalog.reader import MetadataReader
from tasks.catalog.rules import PAGE_SIZE, pages_for, period_count, window_periods
from tasks.core.catalog import Catalog, CatalogError
from tasks.core.errors import STOP_CAUSES, EiaError, EiaRunStopped
from tasks.eia.client import EiaClient
from tasks.quota.budget import CostPolicy, effective_limits, spend_usd, to_cents
from tasks.series.plan import FetchRequest, plan_requests


class CatalogTooCostly(CatalogError):
    """A catalog whose daily run would exceed the daily quota; the message is the plan's report."""


@dataclass(slots=True)
class EntryPlan:
    key: str
    kind: str  # "route" | "seriesid"
    first_rows: int | None  # API rows of a first run (EIA's `total`), None when the probe failed
    first_run: int  # requests of a first run
    daily_run: int  # requests of a daily run with no new data
    daily_estimated: bool  # the daily run was estimated, not probed
    note: str = ""

    @property
    def first_run_bound(self) -> float:
        """The request economy's bound for a first run: 1.05 * ceil(rows / page size)."""
        return 1.05 * math.ceil((self.first_rows or 0) / PAGE_SIZE)


@dataclass(slots=True)
class CatalogPlan:
    entries: list[EntryPlan]
    first_routes: int  # metadata requests of a first run: every route is validated
    daily_routes: int  # metadata requests of a daily run: routes of entries that loaded nothing yet
    planning_requests: int  # what making this plan cost
    policy: CostPolicy = field(default_factory=CostPolicy)
    page_size: int = PAGE_SIZE

    @property
    def first_run(self) -> int:
        return self.first_routes + sum(e.first_run for e in self.entries)

    @property
    def daily_run(self) -> int:
        return self.daily_routes + sum(e.daily_run for e in self.entries)

    def as_dict(self) -> dict[str, Any]:
        limits = effective_limits(self.policy)
        rate = self.policy.cost_per_1000_requests

        def run(requests: int) -> dict[str, Any]:
            return {
                "requests": requests,
                "percent_of_hourly_quota": str(to_cents(Decimal(100 * requests) / limits.hourly)),
                "percent_of_daily_quota": str(to_cents(Decimal(100 * requests) / limits.daily)),
                "hours_at_hourly_quota": math.ceil(requests / limits.hourly),
                "fits_daily_quota": requests <= limits.daily,
                "cost_usd": str(spend_usd(requests, rate)),
            }

        return {
            "entries": [
                {
                    "entry": e.key,
                    "kind": e.kind,
                    "first_run_rows": e.first_rows,
                    "first_run_requests": e.first_run,
                    "first_run_bound": round(e.first_run_bound, 2),
                    "daily_run_requests": e.daily_run,
                    "daily_run_estimated": e.daily_estimated,
                    "note": e.note,
                }
                for e in self.entries
            ],
            "validation_requests": {"first_run": self.first_routes, "daily_run": self.daily_routes},
            "first_run": run(self.first_run),
            "daily_run": run(self.daily_run),
            "hourly_quota": limits.hourly,
            "daily_quota": limits.daily,
            "cost_per_1000_requests_usd": str(rate),
            "planning_requests": self.planning_requests,
        }


def offline_plan(catalog: Catalog, policy: CostPolicy) -> CatalogPlan:
    """The least a run can cost, without a request: one request per entry and per series id (a first
    run adds one metadata request per route). A catalog whose daily run is over the daily quota even
    so cannot run daily."""
    entries = [EntryPlan(e.id, "route", None, 1, 1, True, "at least") for e in catalog.entries]
    entries += [EntryPlan(s, "seriesid", None, 1, 1, True, "at least") for s in catalog.series_ids]
    routes = len({e.route for e in catalog.entries})
    return CatalogPlan(entries, routes, 0, 0, policy)


def check_daily_quota(plan: CatalogPlan) -> None:
    """Raises `CatalogTooCostly` (with the report) when a daily run would exceed the daily quota."""
    limit = effective_limits(plan.policy).daily
    if plan.daily_run > limit:
        raise CatalogTooCostly(
            f"the catalog's daily run needs at least {plan.daily_run:,} EIA requests "
            f"({len(plan.entries):,} entries and series ids), "
            f"over the daily quota of {limit:,}: split the catalog or raise daily_request_limit "
            "(see `eia catalog plan FILE`)"
        )


async def _probe(client: EiaClient, request: FetchRequest) -> int | None:
    page = await client.fetch_page(request.path, list(request.params), offset=0, length=0)
    return page.total


def _estimate_daily(first_rows: int, history_periods: int | None, frequency: str) -> int:
    if not history_periods:
        return first_rows
    return math.ceil(first_rows * min(1.0, window_periods(frequency) / history_periods))


async def plan_catalog(
    reader: MetadataReader,
    client: EiaClient,
    catalog: Catalog,
    *,
    watermarks: Mapping[str, datetime],
    policy: CostPolicy,
    page_size: int = PAGE_SIZE,
) -> CatalogPlan:
    """Probes each entry and series id once (twice when the database already holds it)."""
    sent_before = client.requests_sent
    first = plan_requests(catalog.entries, catalog.series_ids, watermarks={})
    daily = {r.key: r for r in plan_requests(catalog.entries, catalog.series_ids, watermarks=watermarks)}
    entries: list[EntryPlan] = []
    for request in first:
        try:
            rows = await _probe(client, request)
        except EiaError as exc:
            if exc.kind in STOP_CAUSES or isinstance(exc, EiaRunStopped):  # no other request can succeed
                raise
            entries.append(EntryPlan(request.key, request.kind, None, 1, 1, True, f"probe failed: {exc}"))
            continue
        total = rows or 0
        first_run = pages_for(total, page_size)
        if request.key in watermarks:
            window = await _probe(client, daily[request.key]) or 0
            entries.append(EntryPlan(request.key, request.kind, total, first_run, pages_for(window, page_size), False))
            continue
        history: int | None = None
        if request.entry is not None:
            try:
                meta = await reader.route(request.entry.route)
            except EiaError:
                meta = None
            if meta is not None and meta.start and meta.end:
                shape = meta.default_frequency or request.frequency
                history = period_count(meta.start, meta.end, shape, request.frequency)
        window_rows = _estimate_daily(total, history, request.frequency)
        if request.kind == "seriesid":
            window_rows = min(total, window_periods(request.frequency))
        entries.append(EntryPlan(request.key, request.kind, total, first_run, pages_for(window_rows, page_size), True))
    # After a first run, only entries that loaded nothing are validated again.
    by_id = {e.id: e for e in catalog.entries}
    empty = {by_id[p.key].route for p in entries if p.key in by_id and not p.first_rows and p.key not in watermarks}
    return CatalogPlan(
        entries,
        len({e.route for e in catalog.entries}),
        len(empty),
        client.requests_sent - sent_before,
        policy,
        page_size,
    )
