"""Standalone fuzz targets: ``python -m tests.fuzz.<target> --seconds N``."""
