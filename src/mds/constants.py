"""Names that cross process boundaries: bus topics and cache keys (Redis keys live in settings)."""

from __future__ import annotations


def bar_topic(symbol: str, interval: str) -> str:
    return f"bars:{symbol}:{interval}"


def quote_topic(symbol: str) -> str:
    return f"quotes:{symbol}"


def quote_cache_key(symbol: str) -> str:
    return f"quote:{symbol}"


QUOTE_CACHE_TTL_SEC = 60.0
