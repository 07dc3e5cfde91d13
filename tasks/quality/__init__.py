"""The data-quality adapter: the rule registry, the Soda contract generated from it, and the gate.

What it does: `RULES` is the one registry of quality rules, each with a severity, a scope (row or
batch) and a SQL predicate (`rules`); the Soda Core 4 contract and the SQL that finds a rule's offending
rows are generated from it (`contract`); `run_gate` verifies a staged batch with Soda and returns a
`GateResult`: which rules failed, which of them name rows (`row_failures`) and which block the batch
(`batch_failures`) (`gate`); `list_quarantine` and `quality_report` read what was quarantined and
checked (`inspect`).

What it never does: move, quarantine or merge a row. It judges; the load (`tasks.load`) acts on the
verdict.
"""

from tasks.quality.contract import contract_yaml, data_source_yaml, offending_rows_sql
from tasks.quality.gate import BATCH_BLOCKED, CheckOutcome, GateResult, prepare_batch, run_gate
from tasks.quality.inspect import list_quarantine, quality_report
from tasks.quality.rules import RULES, Rule, rule

__all__ = [
    "BATCH_BLOCKED",
    "RULES",
    "CheckOutcome",
    "GateResult",
    "Rule",
    "contract_yaml",
    "data_source_yaml",
    "list_quarantine",
    "offending_rows_sql",
    "prepare_batch",
    "quality_report",
    "rule",
    "run_gate",
]
