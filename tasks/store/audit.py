"""The audit log (`eia_audit_log`): who changed what, written in the caller's transaction.

Why it exists: quota resets, the breaker reset, budget changes and quarantine replays are operator
actions the runbook asks to be traceable; each writes one row here, in the same transaction as the
change itself where there is one, so a change is never kept without its record.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg.rows import TupleRow

from tasks.store.tables import AUDIT_LOG


def write_audit(conn: psycopg.Connection[TupleRow], actor: str, action: str, details: Mapping[str, Any]) -> None:
    """Appends one audit row; `details` is stored as JSON (values JSON cannot hold are written as text)."""
    conn.execute(
        f"INSERT INTO {AUDIT_LOG} (actor, action, details) VALUES (%s, %s, %s::jsonb)",
        (actor, action, json.dumps(dict(details), default=str)),
    )
