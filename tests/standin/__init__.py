"""Tests of the EIA stand-in itself."""
