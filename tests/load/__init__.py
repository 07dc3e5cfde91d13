"""Tests of the load use case: one batch through the gate, and the quarantine replay."""
