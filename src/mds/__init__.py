"""MDS: a provider-independent, gap-safe, point-in-time-correct market data service."""

__version__ = "0.1.0"
