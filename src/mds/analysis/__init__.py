"""Indicator engine, point-in-time snapshots, and the analysis cache and history."""
