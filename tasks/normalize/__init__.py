"""Pure functions that turn EIA periods, values, units and identities into typed observations."""
