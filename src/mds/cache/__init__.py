"""Caches behind the Cache protocol: in-process (embedded) and Redis."""

from mds.cache.base import Cache
from mds.cache.memory import InMemoryCache

__all__ = ["Cache", "InMemoryCache"]
