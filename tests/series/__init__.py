"""Tests of the series use case."""
