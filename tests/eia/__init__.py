"""Tests of the EIA client, catalog and the local EIA replay server."""
