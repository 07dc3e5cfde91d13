"""Test support: starting the real services the suite runs against."""
