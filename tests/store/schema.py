"""One description of a schema, built two ways: from a migrated database's catalogs and from the models.

The description is plain JSON, so both flavours are compared the same way: plain PostgreSQL answers
the catalog query directly; TimescaleDB (reachable only through `timescale-check`, which runs SQL
files and prints `ok FILE` or `error FILE: <message>`) answers it through a `DO` block that raises the
description as its error message.

    {table: {"unlogged": bool,
             "columns": {name: {"type": "bigint", "nullable": bool, "default": "now()" | None}},
             "primary_key": [column, ...],
             "indexes": {name: {"columns": ["period DESC", ...], "unique": bool, "where": str | None}}}}

Types are `format_type`'s, defaults `pg_get_expr`'s; partitions, views and materialized views are
not tables here (they are not models).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Index, MetaData, Table
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import UnaryExpression
from sqlalchemy.sql.operators import desc_op

Description = dict[str, dict[str, Any]]

CATALOG_QUERY = """
SELECT coalesce(jsonb_object_agg(c.relname, jsonb_build_object(
    'unlogged', c.relpersistence = 'u',
    'columns', (
        SELECT jsonb_object_agg(a.attname, jsonb_build_object(
            'type', format_type(a.atttypid, a.atttypmod),
            'nullable', NOT a.attnotnull,
            'default', pg_get_expr(d.adbin, d.adrelid)))
        FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped),
    'primary_key', coalesce((
        SELECT jsonb_agg(a.attname ORDER BY k.ord)
        FROM pg_constraint p
        CROSS JOIN LATERAL unnest(p.conkey) WITH ORDINALITY AS k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = p.conrelid AND a.attnum = k.attnum
        WHERE p.conrelid = c.oid AND p.contype = 'p'), '[]'::jsonb),
    'indexes', coalesce((
        SELECT jsonb_object_agg(ic.relname, jsonb_build_object(
            'columns', (
                SELECT jsonb_agg(pg_get_indexdef(i.indexrelid, k, true)
                    || CASE WHEN i.indoption[k - 1] & 1 = 1 THEN ' DESC' ELSE '' END ORDER BY k)
                FROM generate_series(1, i.indnkeyatts) AS k),
            'unique', i.indisunique,
            'where', pg_get_expr(i.indpred, i.indrelid, true)))
        FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
        WHERE i.indrelid = c.oid AND NOT i.indisprimary), '{}'::jsonb)
)), '{}'::jsonb)::text
FROM pg_class c
WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relispartition
"""

# Appended to the migrations for `timescale-check`: the description comes back as the error message.
RAISE_PREFIX = "schema description: "
RAISING_SQL = f"""DO $$
BEGIN
    RAISE EXCEPTION '{RAISE_PREFIX}%', ({CATALOG_QUERY});
END $$;
"""

_DIALECT = postgresql.dialect()
_ERROR = re.compile(r"^error (\S+): (.*)$")


def _type(column: Column[Any]) -> str:
    return str(column.type.compile(dialect=_DIALECT)).lower().replace(", ", ",")


def _default(table: Table, column: Column[Any]) -> str | None:
    if table.autoincrement_column is column:  # BIGSERIAL: the sequence PostgreSQL names after the column
        return f"nextval('{table.name}_{column.name}_seq'::regclass)"
    server_default = column.server_default
    if server_default is None:
        return None
    return str(server_default.arg.text)  # type: ignore[attr-defined]


def _index_column(expression: Any) -> str:
    if isinstance(expression, UnaryExpression) and expression.modifier is desc_op:
        return f"{_index_column(expression.element)} DESC"
    return str(expression.name)


def _index(index: Index) -> dict[str, Any]:
    where = index.dialect_options["postgresql"]["where"]
    return {
        "columns": [_index_column(e) for e in index.expressions],
        "unique": bool(index.unique),
        "where": None if where is None else str(where.compile(dialect=_DIALECT)),
    }


def on_flavor(index: Index, flavor: str) -> bool:
    """Whether a flavour's database holds the index (`info["flavor"]` names the one flavour that does)."""
    return index.info.get("flavor", flavor) == flavor


def describe_metadata(metadata: MetaData, flavor: str) -> Description:
    """The description of every table in `metadata`, as the catalogs of a `flavor` database would give it."""
    return {
        table.name: {
            "unlogged": "UNLOGGED" in table._prefixes,
            "columns": {
                c.name: {"type": _type(c), "nullable": bool(c.nullable), "default": _default(table, c)}
                for c in table.columns
            },
            "primary_key": [c.name for c in table.primary_key.columns],
            "indexes": {str(i.name): _index(i) for i in table.indexes if on_flavor(i, flavor)},
        }
        for table in metadata.tables.values()
    }


def differences(database: Description, models: Description) -> list[str]:
    """What differs, one line each (`table.columns.name: database ... models ...`); empty when equal."""
    found = []
    for table in sorted(database.keys() | models.keys()):
        if table not in models or table not in database:
            found.append(f"{table}: only in the {'database' if table in database else 'models'}")
            continue
        for part in ("unlogged", "primary_key", "columns", "indexes"):
            have, want = database[table][part], models[table][part]
            if isinstance(have, dict) and isinstance(want, dict):
                for name in sorted(have.keys() | want.keys()):
                    if have.get(name) != want.get(name):
                        found.append(
                            f"{table}.{part}.{name}: database {_show(have.get(name))}, models {_show(want.get(name))}"
                        )
            elif have != want:
                found.append(f"{table}.{part}: database {_show(have)}, models {_show(want)}")
    return found


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def parse_description(text: str) -> Description:
    parsed: Description = json.loads(text)
    return parsed


def timescale_checker() -> Path | None:
    """The `timescale-check` tool beside the repository (`../shared/tools`), when it and node exist."""
    tool = Path(__file__).resolve().parents[3] / "shared" / "tools" / "timescale-check" / "timescale-check"
    if not tool.is_file() or shutil.which("node") is None or shutil.which("npm") is None:
        return None
    return tool


def describe_on_timescale(tool: Path, migrations: Sequence[Path], scratch: Path) -> Description:
    """Runs the migrations on real TimescaleDB, then reads the description from the raising `DO` block."""
    probe = scratch / "9999_describe_schema.sql"
    probe.write_text(RAISING_SQL, encoding="utf-8")
    done = subprocess.run(
        [str(tool), *(str(p) for p in migrations), str(probe)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    errors = [m.groups() for m in map(_ERROR.match, done.stdout.splitlines()) if m]
    others = [f"{Path(f).name}: {message}" for f, message in errors if Path(f).name != probe.name]
    assert not others, f"migrations failed on TimescaleDB: {others}"
    found = [message for f, message in errors if Path(f).name == probe.name and message.startswith(RAISE_PREFIX)]
    assert found, f"timescale-check gave no description:\n{done.stdout}\n{done.stderr}"
    return parse_description(found[0][len(RAISE_PREFIX) :])
