"""Test suite: mirrors the packages; fixtures start PostgreSQL, Kafka (Tansu), the EIA stand-in and Prefect."""
