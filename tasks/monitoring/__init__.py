"""Monitoring: pure computations (staleness, quality, ingestion health, SLA/KPI) and their storage.

The monitoring flows and the collector only orchestrate; every verdict is computed here from plain
values with a fixed `now`, so each one is unit-testable without a server or a clock.
"""
