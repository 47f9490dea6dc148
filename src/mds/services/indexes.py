"""Refreshing index constituents: first source that answers wins, implausible answers change nothing.

Sources are tried in order (FMP's ``/stable`` lists first, then Wikipedia's tables; the
sim in the demo). A list that comes back with fewer than ``INDEX_MIN_KEEP_SHARE`` of the
index's last active count is refused: a page that half-loaded must not mark 250 members
as leavers. Every attempt is recorded in ``index_refreshes`` with its counters.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Protocol

import httpx

from mds.cache.base import Cache
from mds.config import Settings
from mds.constants import index_meta_key
from mds.domain.clock import Clock
from mds.domain.models import Tier
from mds.domain.reference import INDEXES, Constituent, IndexName, IndexRefresh
from mds.errors import MdsError
from mds.observability.metrics import Metrics
from mds.redact import redact
from mds.reference.sources import ConstituentSource
from mds.storage.base import ReferenceStore, UniverseStore

log = logging.getLogger(__name__)

#: Seed 004: ``index_constituents:{INDEX}:meta`` keeps {provider_used, fallback_used, count} for 24 h.
META_TTL_SEC = 86_400.0


class RefreshStore(ReferenceStore, UniverseStore, Protocol):
    """What a refresh writes: the index's rows and refresh records, and members into the universe."""


class IndexRefresher:
    def __init__(
        self,
        *,
        store: RefreshStore,
        sources: Sequence[ConstituentSource],
        clock: Clock,
        settings: Settings,
        metrics: Metrics,
        cache: Cache | None = None,
    ) -> None:
        self.store = store
        self.sources = list(sources)
        self.clock = clock
        self.settings = settings
        self.metrics = metrics
        self.cache = cache

    async def refresh_all(self) -> list[IndexRefresh]:
        return [await self.refresh(index) for index in INDEXES]

    async def refresh(self, index: IndexName) -> IndexRefresh:
        """Fetch one index's list and apply it, or record why not."""
        started = self.clock.now()
        members: list[Constituent] | None = None
        used, errors = "", []
        for source in self.sources:
            try:
                members = await source.fetch(index)
            except (MdsError, httpx.HTTPError) as exc:
                text = redact(str(exc)) or type(exc).__name__
                errors.append(text if text.startswith(f"{source.name}:") else f"{source.name}: {text}")
                continue
            used = source.name
            break
        fallback = bool(used) and used != self.sources[0].name
        if members is None:
            return await self._record(
                IndexRefresh(
                    index,
                    started,
                    0,
                    0,
                    0,
                    0,
                    "",
                    False,
                    False,
                    "; ".join(errors) or "no constituent source configured (INDEX_SOURCES)",
                ),
                outcome="failed",
            )
        last = len(await self.store.index_members(index))
        floor = math.ceil(self.settings.INDEX_MIN_KEEP_SHARE * last)
        if len(members) < max(1, floor):
            reason = (
                f"{used} returned {len(members)} members, fewer than"
                f" {self.settings.INDEX_MIN_KEEP_SHARE:.0%} of the last count {last}; nothing changed"
            )
            return await self._record(
                IndexRefresh(index, started, len(members), 0, 0, 0, used, fallback, False, reason),
                outcome="refused",
            )
        change = await self.store.apply_constituents(index, members, source=used, now=self.clock.now())
        # Members must be in the universe to be collected and served; new ones start at T2
        # until the next re-rank.
        await self.store.ensure_symbols([m.symbol for m in members], tier=Tier.T2, now=self.clock.now())
        note = "; ".join(errors)
        refresh = IndexRefresh(
            index,
            started,
            change.fetched,
            change.inserted,
            change.reactivated,
            change.inactivated,
            used,
            fallback,
            True,
            f"fell back after {note}" if note else "",
        )
        self.metrics.index_constituents_active.labels(index=index).set(len(members))
        if self.cache is not None:
            await self.cache.set(
                index_meta_key(index),
                {"provider_used": used, "fallback_used": fallback, "count": len(members)},
                ttl=META_TTL_SEC,
            )
        return await self._record(refresh, outcome="applied")

    async def _record(self, refresh: IndexRefresh, *, outcome: str) -> IndexRefresh:
        await self.store.record_index_refresh(refresh)
        self.metrics.index_refresh_total.labels(index=refresh.index, outcome=outcome).inc()
        if outcome != "applied":
            log.warning("index refresh %s %s: %s", refresh.index, outcome, refresh.reason)
        return refresh
