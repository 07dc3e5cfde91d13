"""Everything below the flows, floor by floor (README, "Layout"); every import points down.

- use cases: `series`, `bulk`, `load`, `monitoring`, `quota`. Each has one `tasks.py` of Prefect
  wrappers (`x_task = task(...)(x)`) over plain functions; nothing else in a use case calls Prefect.
- adapters: `eia` (HTTP), `store` (PostgreSQL), `publish` (Kafka), `quality` (Soda).
- ground: `normalize` and `core`, pure.
- `standin`: the EIA stand-in, for the demo and the tests only.

The contracts in pyproject.toml (`lint-imports`) keep the floors apart.
"""
