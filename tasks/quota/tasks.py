"""Prefect tasks of the quota area: thin wrappers over the plain functions of `tasks.quota.cost`.

Why it exists: the cost-monitoring flow shows each database step as a task run in the Prefect UI;
the work itself stays in plain functions, testable without Prefect (`x_task.fn` is the function).
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.quota.cost import compute_quota_status, save_cost_snapshot

compute_quota_status_task = task(name="quota-status", cache_policy=NO_CACHE)(compute_quota_status)
save_cost_snapshot_task = task(name="record-cost-snapshot", cache_policy=NO_CACHE)(save_cost_snapshot)
