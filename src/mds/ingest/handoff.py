"""Live workers hand the holes they find to the backfill side and go on at once.

A live job that finds a hole (its cursor jumped past LIVE_MAX_WINDOW_MINUTES, or an
answer lacked bars) must not wait while that hole is cut, merged, persisted and queued:
after an outage every symbol of a sweep finds one at the same moment, and enqueueing
them inline held T0's live jobs up for minutes. ``submit`` only appends (no await), and
one task enqueues what has gathered in batches, T0 first.

Nothing is lost if the process stops with holes still pending here: the store is
unchanged, so the next gap scan finds them again. The same holds when more than
``max_pending`` gaps wait (a runaway): the surplus is dropped and counted, not queued in
memory without bound.
"""

from __future__ import annotations

import asyncio
import logging

from mds.domain.models import Tier
from mds.ingest.backfill import Backfiller
from mds.ingest.gaps import Gap

log = logging.getLogger(__name__)


class GapHandoff:
    def __init__(self, backfiller: Backfiller, *, max_pending: int = 100_000) -> None:
        self.backfiller = backfiller
        self.max_pending = max_pending
        self.dropped = 0
        self._pending: dict[Tier, list[Gap]] = {t: [] for t in Tier}
        self._ready = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    def submit(self, gaps: list[Gap], tier: Tier) -> None:
        """Queue ``gaps`` for enqueueing; never waits."""
        if not gaps:
            return
        room = self.max_pending - self.pending()
        if room < len(gaps):
            self.dropped += len(gaps) - max(room, 0)
            gaps = gaps[: max(room, 0)]
        if gaps:
            self._pending[tier].extend(gaps)
            self._idle.clear()
            self._ready.set()

    def pending(self) -> int:
        return sum(len(g) for g in self._pending.values())

    async def run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            await self._drain()

    async def _drain(self) -> None:
        for tier in Tier:  # T0 first
            batch, self._pending[tier] = self._pending[tier], []
            if not batch:
                continue
            try:
                await self.backfiller.enqueue_gaps(batch, tier)
            except Exception:  # the next gap scan finds these again; keep serving
                log.exception("enqueueing %d %s gaps from live jobs failed", len(batch), tier.value)
        if not self.pending():
            self._idle.set()
        else:
            self._ready.set()

    async def flush(self) -> None:
        """Wait until every gap submitted so far has been enqueued (for tests and shutdown)."""
        await self._idle.wait()
