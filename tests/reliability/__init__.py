"""The reliability suite (``make reliability``): the server under abuse and faults, with figures.

Not part of the every-commit pytest run: no module here is named ``test_*.py``, so pytest collects none of
them. ``python -m tests.reliability`` runs every case and prints one table; see docs/reliability.md.
"""
