"""Benchmarks behind `mds bench ...`; each returns one dict of figures, which the command
prints as one line of text, or as one JSON line with ``--json``."""
