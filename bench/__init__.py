"""Benchmarks: ``python -m bench`` runs every ``bench_*.py``, each timed against a floor of the same run."""
