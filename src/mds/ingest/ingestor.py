"""Fetch one symbol's bars for a range through the router, check them, store them.

This is the single path by which bars enter the store, for live jobs and backfills
alike, so the checks (payload validation, status, completeness, cursors, gap check)
cannot differ between the two.

Listings (issue 14): sessions before a symbol's first trade are not expected. The first
trade is learned from daily answers: when a provider answered a daily range and every
session of it before the series' first stored bar was lacking, that bar's session is the
first trade (:meth:`BarIngestor._learn_listing` says when the evidence suffices). A bar
that turns up before the recorded session moves it earlier; nothing moves it later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Protocol

import numpy as np

from mds.calendar import MarketCalendar
from mds.domain.clock import Clock
from mds.domain.models import Bar, BarStatus, Interval, capability_for_interval
from mds.domain.records import WriteResult
from mds.errors import NoData
from mds.ingest.gaps import Gap, gaps_for
from mds.observability.metrics import Metrics
from mds.providers.base import Provider, validate_bars
from mds.routing.router import Router
from mds.services.bar_cache import SeriesGenerations
from mds.storage.base import BarStore, ContinuityStore, ListingStore, UniverseStore

if TYPE_CHECKING:
    from mds.ingest.live_lag import LiveLagTracker
    from mds.ingest.streaming import BarStreamer

log = logging.getLogger(__name__)

AUTO_SOURCE = "auto"  # the cursor over every provider; per-provider cursors use the provider's name

#: Sessions that must be lacking before a series' first stored daily bar for the answer to
#: show a listing. Fewer stay gaps (retried): a provider may drop a day or two at random,
#: not a trading week right before the first bar anyone has.
LISTING_MIN_SESSIONS = 5
#: Wall seconds the known first-trade sessions are trusted before they are read again (one
#: query for every symbol); what this process learns itself it knows at once.
LISTINGS_TTL_SECONDS = 60.0


@dataclass(frozen=True)
class IngestOutcome:
    symbol: str
    interval: Interval
    provider: str | None
    received: int
    inserted: int
    revised: int
    gaps: list[Gap] = field(default_factory=list)
    #: Closed bars of the range before the symbol's first trade: not expected, so no gap.
    before_listing: int = 0
    #: The exchange-local day of the symbol's first trade, when known.
    first_trade: date | None = None

    @property
    def complete(self) -> bool:
        return not self.gaps

    @property
    def listing_note(self) -> str | None:
        """What a finished job says about the bars it skipped, e.g. "N sessions before ... skipped"."""
        if not self.before_listing or self.first_trade is None:
            return None
        what = "sessions" if self.interval is Interval.D1 else "bars"
        return f"{self.before_listing} {what} before {self.symbol}'s first trade {self.first_trade} skipped"


class IngestStore(BarStore, UniverseStore, ContinuityStore, ListingStore, Protocol):
    """What ingesting needs: bar writes and timestamps, the cursors, "no trades" evidence,
    and when each symbol began to trade."""


class BarIngestor:
    def __init__(
        self,
        *,
        store: IngestStore,
        router: Router,
        calendar: MarketCalendar,
        clock: Clock,
        metrics: Metrics,
        streamer: BarStreamer | None = None,
        generations: SeriesGenerations | None = None,
        confirm_empty_answers: int = 3,
        live_lag: LiveLagTracker | None = None,
    ) -> None:
        self.live_lag = live_lag
        self.confirm_empty_answers = confirm_empty_answers
        self.generations = generations
        self.store = store
        self.router = router
        self.calendar = calendar
        self.clock = clock
        self.metrics = metrics
        self.streamer = streamer
        self._listings: dict[str, datetime] = {}
        self._listings_read_at: float | None = None

    async def ingest(
        self,
        symbol: str,
        interval: Interval,
        start: datetime,
        end: datetime,
        *,
        hint: str | None = None,
        batch_size: int | None = None,
    ) -> IngestOutcome:
        """Fetch ``start <= ts < end``, store it, and report what is still missing.

        ``batch_size`` caps the bars per store write (LIVE_BATCH_SIZE, BACKFILL_BATCH_SIZE);
        None writes the answer in one. Raises NoProviderAvailable when no provider could
        answer; the caller decides whether to retry. A range with no session in it returns
        at once.
        """
        now = self.clock.now()
        end = min(end, now)
        every = self._expected_closed(interval, start, end, now)
        if start >= end or not self.calendar.sessions(start, end):
            # No session in the range (a night, a weekend, the future): nothing to ask for.
            return IngestOutcome(symbol, interval, None, 0, 0, 0)
        listed = await self.first_trade(symbol)
        if listed is not None and listed >= end:
            # Wholly before the symbol's first trade: nothing to ask for either.
            return self._outcome(symbol, interval, None, 0, None, [], every, listed)
        expected = _since(every, listed)

        async def fetch(provider: Provider) -> list[Bar]:
            bars = await provider.fetch_bars(symbol, interval, start, end)
            return validate_bars(provider.name, bars, symbol=symbol, interval=interval, start=start, end=end)

        try:
            routed = await self.router.call(capability_for_interval(interval), fetch, hint=hint)
            bars, provider = routed.value, routed.provider
        except NoData:
            bars, provider = [], None

        bars = [self._with_status(b, now) for b in bars]
        since = self.streamer.horizon(interval, now) if self.streamer is not None else None
        result = await write_batched(
            self.store, bars, as_of=now, changed_since=since, batch_size=batch_size, metrics=self.metrics
        )
        if result.written and self.generations is not None:
            # Straight after the commit, before anything else can fail: kept responses of
            # this series are never served again.
            await self.generations.bump(symbol, interval)
        for outcome, n in (
            ("inserted", result.inserted),
            ("revised", result.revised),
            ("unchanged", result.unchanged),
        ):
            if n:
                self.metrics.bars_written_total.labels(interval=interval.value, outcome=outcome).inc(n)

        got = np.fromiter((int(b.ts.timestamp()) for b in bars), dtype=np.int64, count=len(bars))
        if provider is not None and expected.size:
            self.router.record_completeness(provider, float(np.isin(expected, got).mean()))

        if bars and listed is not None:
            earliest = min(b.ts for b in bars)
            if earliest < listed:  # it traded before the recorded session after all
                listed = await self._record_listing(symbol, self._session_open(earliest))
                expected = _since(every, listed)
        await self._advance_cursors(symbol, interval, bars, provider, now)
        if result.changed and self.streamer is not None:
            await self.streamer.written(bars, result.changed, now)

        present = np.asarray(await self.store.bar_timestamps(symbol, interval, start, end), dtype=np.int64)
        if provider is not None and interval.is_intraday:
            present = await self._weigh_empty_minutes(symbol, interval, expected, present, provider, now)
        else:
            present = np.union1d(present, await self.store.confirmed_empty(symbol, interval, start, end))
        if interval is Interval.D1 and listed is None:
            listed = await self._learn_listing(symbol, expected, present, end)
            expected = _since(every, listed)
        gaps = gaps_for(symbol, interval, expected, present)
        if gaps:
            self.metrics.gaps_found_total.labels(interval=interval.value).inc(len(gaps))
        return self._outcome(symbol, interval, provider, len(bars), result, gaps, every, listed)

    def _outcome(
        self,
        symbol: str,
        interval: Interval,
        provider: str | None,
        received: int,
        result: WriteResult | None,
        gaps: list[Gap],
        every: np.ndarray,
        listed: datetime | None,
    ) -> IngestOutcome:
        skipped = int(every.size - _since(every, listed).size)
        return IngestOutcome(
            symbol,
            interval,
            provider,
            received,
            result.inserted if result is not None else 0,
            result.revised if result is not None else 0,
            gaps,
            before_listing=skipped,
            first_trade=None if listed is None else self._session_day(listed),
        )

    # -- listings ----------------------------------------------------------------------
    async def first_trade(self, symbol: str) -> datetime | None:
        """The first session ``symbol`` traded, when known (see LISTINGS_TTL_SECONDS)."""
        t = time.monotonic()
        if self._listings_read_at is None or t - self._listings_read_at >= LISTINGS_TTL_SECONDS:
            self._listings = await self.store.first_trade_sessions()
            self._listings_read_at = t
        return self._listings.get(symbol)

    async def _record_listing(self, symbol: str, session: datetime) -> datetime:
        await self.store.set_first_trade_session(symbol, session)
        self._listings[symbol] = session
        log.info("%s first traded on %s", symbol, self._session_day(session))
        return session

    async def _learn_listing(
        self, symbol: str, expected: np.ndarray, present: np.ndarray, end: datetime
    ) -> datetime | None:
        """The first trade a daily answer for ``[.., end)`` shows, recorded; None if it shows none.

        It shows one when the sessions it lacked include at least LISTING_MIN_SESSIONS
        before the series' first stored bar, every expected session before that bar, and
        nothing unasked lies between the range and that bar: a range that ends before
        sessions no one has asked about yet (an older chunk run before a newer one) proves
        nothing, and stays a gap to retry.
        """
        lacking = expected[~np.isin(expected, present)]
        if lacking.size < LISTING_MIN_SESSIONS:
            return None
        extent = await self.store.series_extent(symbol, Interval.D1)
        if extent is None:  # no bar at all: a listing cannot be told from a failure
            return None
        first = extent[0]
        before = expected[expected < int(first.timestamp())]
        if before.size < LISTING_MIN_SESSIONS or not np.isin(before, lacking).all():
            return None
        if first >= end and self.calendar.expected_epochs(Interval.D1, end, first).size:
            return None
        return await self._record_listing(symbol, first)

    def _session_open(self, ts: datetime) -> datetime:
        session = self.calendar.session_for(ts)
        return ts if session is None else session.open

    def _session_day(self, ts: datetime) -> date:
        session = self.calendar.session_for(ts)
        return ts.date() if session is None else session.date

    async def _weigh_empty_minutes(
        self,
        symbol: str,
        interval: Interval,
        expected: np.ndarray,
        present: np.ndarray,
        provider: str,
        now: datetime,
    ) -> np.ndarray:
        """Count a successful answer that lacked minutes as evidence of "no trades".

        A minute is confirmed empty (and stops being a gap) once GAP_CONFIRM_EMPTY_ANSWERS
        successful answers lacked it, from two different providers when two are routable;
        a bar that arrives later clears it. Returns ``present`` plus every confirmed minute.
        """
        lacking = expected[~np.isin(expected, present)]
        if lacking.size:
            routable = len(self.router.order(capability_for_interval(interval)))
            await self.store.record_empty_evidence(
                symbol,
                interval,
                lacking.tolist(),
                provider,
                now=now,
                needed_answers=self.confirm_empty_answers,
                needed_providers=min(2, max(1, routable)),
            )
        if expected.size == 0:
            return present
        start = datetime.fromtimestamp(int(expected[0]), UTC)
        end = datetime.fromtimestamp(int(expected[-1]) + interval.seconds, UTC)
        confirmed = await self.store.confirmed_empty(symbol, interval, start, end)
        return np.union1d(present, np.asarray(confirmed, dtype=np.int64))

    async def find_gaps(self, symbol: str, interval: Interval, start: datetime, end: datetime) -> list[Gap]:
        """Closed bars the calendar expects in the range that the store does not hold."""
        now = self.clock.now()
        expected = self._expected_closed(interval, start, min(end, now), now)
        if expected.size:
            expected = _since(expected, await self.first_trade(symbol))
        if expected.size == 0:
            return []
        present = np.asarray(await self.store.bar_timestamps(symbol, interval, start, end), dtype=np.int64)
        present = np.union1d(present, await self.store.confirmed_empty(symbol, interval, start, end))
        return gaps_for(symbol, interval, expected, present)

    def _expected_closed(
        self, interval: Interval, start: datetime, end: datetime, now: datetime
    ) -> np.ndarray:
        """Expected bar times in range whose interval has closed by ``now``."""
        if start >= end:
            return np.empty(0, dtype=np.int64)
        expected = self.calendar.expected_epochs(interval, start, end)
        if expected.size == 0:
            return expected
        # The last expected bar may still be open; drop it if its end is after now.
        last = datetime.fromtimestamp(int(expected[-1]), UTC)
        if self.calendar.bar_end(last, interval) > now:
            expected = expected[:-1]
        return expected

    def _with_status(self, bar: Bar, now: datetime) -> Bar:
        closed = self.calendar.bar_end(bar.ts, bar.interval) <= now
        status = BarStatus.FINAL if closed and bar.status is BarStatus.FINAL else BarStatus.PROVISIONAL
        return bar if status is bar.status else bar.with_(status=status)

    async def _advance_cursors(
        self, symbol: str, interval: Interval, bars: list[Bar], provider: str | None, now: datetime
    ) -> None:
        final = [b.ts for b in bars if b.status is BarStatus.FINAL]
        if not final:
            return
        newest = max(final)
        await self.store.advance_cursor(symbol, interval, AUTO_SOURCE, newest, now=now)
        if provider is not None:
            await self.store.advance_cursor(symbol, interval, provider, newest, now=now)
        if self.live_lag is not None:
            # Live or backfill alike: the tracker keeps the newest, so an old bar moves nothing.
            self.live_lag.observe(symbol, interval, newest)


def _since(expected: np.ndarray, listed: datetime | None) -> np.ndarray:
    """The expected bar times at or after the first trade (all of them when it is unknown)."""
    if listed is None or expected.size == 0:
        return expected
    return expected[expected >= int(listed.timestamp())]


async def write_batched(
    store: BarStore,
    bars: Sequence[Bar],
    *,
    as_of: datetime,
    changed_since: datetime | None,
    batch_size: int | None,
    metrics: Metrics,
) -> WriteResult:
    """Store ``bars`` in writes of at most ``batch_size`` (one transaction each), summed.

    Bounds how long one write holds its transaction and locks: a daily backfill reaching
    back years, or a wide live window, is not one huge statement. Each write is
    idempotent, so a failure part-way leaves stored batches that a retry finds unchanged.
    ``write_batch_ms`` is observed per write. An empty answer is still one (empty) write.
    """
    step = batch_size or max(len(bars), 1)
    total = WriteResult()
    for i in range(0, max(len(bars), 1), step):
        t0 = time.perf_counter()
        r = await store.write_bars(bars[i : i + step], as_of=as_of, changed_since=changed_since)
        metrics.write_batch_ms.observe((time.perf_counter() - t0) * 1000)
        total = WriteResult(
            inserted=total.inserted + r.inserted,
            revised=total.revised + r.revised,
            unchanged=total.unchanged + r.unchanged,
            changed=total.changed + r.changed,
        )
    return total
