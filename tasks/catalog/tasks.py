"""The Prefect tasks of the catalog use case: `x_task = task(...)(x)` over plain functions.

The series flow validates its catalog with `validate_for_run_task` before it fetches data; the
`eia catalog` commands call the plain functions (no flow run around them).
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.catalog.validate import validate_for_run

validate_for_run_task = task(name="validate-catalog", cache_policy=NO_CACHE)(validate_for_run)
