"""Bulk flow tests."""
