"""Benchmarks run by hand (not collected by pytest): see bench_bulk.py and the results-*.md files."""
