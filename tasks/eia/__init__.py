"""The EIA API v2 client, its error taxonomy, the catalog, and the local EIA replay server."""
