"""Anxin's core and domain: the journal, incidents, triage, matching, timers, the store and the bus.

This package imports no other package of the project.
"""
