"""Versioned SQL migrations, shipped as package data so `eia init` works from an installed wheel.

Layout: `common/` runs everywhere; `timescale/` and `postgres/` hold the flavour-specific files.
A version number appears once per flavour: either in `common/` or in both flavour folders.
"""

from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent
