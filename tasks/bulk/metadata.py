"""Series metadata and the category tree from bulk lines, upserted set-based in the batch's transaction.

ELEC alone has hundreds of thousands of series lines, so each batch's metadata goes in as one
`INSERT ... SELECT FROM unnest(arrays)` statement rather than a statement per series, and rows
whose content did not change are not rewritten (a monthly reload mostly changes nothing). The
metadata table is shared with the API path: bulk lines fill the descriptive columns and leave the
API's `route`/`facets` alone; a value the line lacks never erases one already known.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import psycopg
from psycopg.rows import TupleRow

from tasks.core.redact import scrub_text
from tasks.normalize.bulk_lines import Category, SeriesMeta
from tasks.store.tables import CATEGORIES, METADATA

_META_TEXT = (
    "name",
    "units",
    "frequency",
    "description",
    "source",
    "copyright",
    "geography",
    "iso3166",
    "last_updated",
    "dataset",
)
_META_COLUMNS = (*_META_TEXT, "latitude", "longitude", "extra")


def _json(value: object) -> str | None:
    if not value:
        return None
    # JSONB cannot hold NUL characters.
    return scrub_text(json.dumps(value, separators=(",", ":"), default=str).replace("\\u0000", ""))


def _text(value: str | None) -> str | None:
    return None if value is None else scrub_text(value)


def upsert_series_metadata(conn: psycopg.Connection[TupleRow], tenant_id: str, metas: Iterable[SeriesMeta]) -> int:
    """Upserts one row per series (the last line of a series wins); returns the number of series."""
    latest = {m.series_id: m for m in metas}
    if not latest:
        return 0
    rows = list(latest.values())
    arrays: list[list[object]] = [[m.series_id for m in rows]]
    # Free text from the archive can carry a URL with a key in it; nothing stored may hold one.
    arrays += [[_text(getattr(m, c)) for m in rows] for c in _META_TEXT]
    arrays += [[m.latitude for m in rows], [m.longitude for m in rows], [_json(m.extra) for m in rows]]
    casts = ", ".join(["%s::text[]"] * (1 + len(_META_TEXT)) + ["%s::float8[]", "%s::float8[]", "%s::text[]"])
    columns = ", ".join(_META_COLUMNS)
    updates = ", ".join(f"{c} = coalesce(excluded.{c}, m.{c})" for c in _META_COLUMNS)
    changed = " OR ".join(f"excluded.{c} IS DISTINCT FROM m.{c}" for c in _META_COLUMNS)
    conn.execute(
        f"""INSERT INTO {METADATA} AS m (tenant_id, series_id, {columns}, updated_at)
            SELECT %s, u.series_id, {", ".join(f"u.{c}" for c in _META_TEXT)}, u.latitude, u.longitude,
                   u.extra::jsonb, now()
            FROM unnest({casts}) AS u(series_id, {columns})
            ON CONFLICT (tenant_id, series_id) DO UPDATE SET {updates}, updated_at = now()
            WHERE {changed}""",
        (tenant_id, *arrays),
    )
    return len(rows)


def upsert_categories(
    conn: psycopg.Connection[TupleRow], tenant_id: str, dataset: str, categories: Iterable[Category]
) -> int:
    """Upserts category lines of `dataset` (the last line of a category wins); returns how many."""
    latest = {c.category_id: c for c in categories}
    if not latest:
        return 0
    rows = list(latest.values())
    conn.execute(
        f"""INSERT INTO {CATEGORIES} AS c (tenant_id, dataset, category_id, parent_category_id, name, notes,
                childseries, updated_at)
            SELECT %s, %s, u.category_id, u.parent_category_id, u.name, u.notes,
                   ARRAY(SELECT jsonb_array_elements_text(u.childseries::jsonb)), now()
            FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[], %s::text[])
                AS u(category_id, parent_category_id, name, notes, childseries)
            ON CONFLICT (tenant_id, dataset, category_id) DO UPDATE SET
                parent_category_id = excluded.parent_category_id, name = excluded.name, notes = excluded.notes,
                childseries = excluded.childseries, updated_at = now()
            WHERE (c.parent_category_id, c.name, c.notes, c.childseries)
                IS DISTINCT FROM (excluded.parent_category_id, excluded.name, excluded.notes, excluded.childseries)""",
        (
            tenant_id,
            dataset,
            [c.category_id for c in rows],
            [c.parent_category_id for c in rows],
            [_text(c.name) for c in rows],
            [_text(c.notes) for c in rows],
            [json.dumps(list(c.childseries)) for c in rows],
        ),
    )
    return len(rows)
