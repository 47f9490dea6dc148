"""Benchmarks behind `mds bench ...`; each prints one JSON line of figures."""
