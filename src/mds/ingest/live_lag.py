"""How far the live series trail the market: ``live_lag_seconds`` and ``ingestion_lag_seconds``.

Hand-written: the lag rule below is MDS's own. The rule, for one series (a symbol at one
interval):

    Take the newest bar the store holds. Find the first bar the exchange calendar expects
    after it (the next bar in the same session, else the first bar of the next session).
    If that bar closes (``bar_end``) after now, the series is up to date: lag 0.
    Otherwise lag = now - that bar's close.

So the lag is 0 while the series holds everything that could be had, and grows from the
moment the next bar could first be had. A T0 series swept every 60 s whose newest bar is
the one that closed at 14:31 reads 0 until 14:32:00 (when the 14:31 bar closes), then
counts up until that bar is stored. Overnight, on weekends and holidays no bar is
expected, so an up-to-date series stays at 0; a series still missing Friday's last bar
counts from Friday's close. A symbol with no stored bar at all counts from the close of
the first bar that closes after tracking began (not from 1970).

What is tracked: the 1m series of every symbol in a tier with a ``bars_1m`` cadence
(``live_lag_seconds{tier,stat}``: stat ``max`` and ``p95`` over that tier's symbols, and
``ingestion_lag_seconds{interval="1m"}``: the worst over all of them), and the 1d series
of every symbol in a tier with an ``eod`` cadence (only
``ingestion_lag_seconds{interval="1d"}``). Writes are observed as they happen, live or
backfill alike (the store holds the bar either way; an old bar never moves the newest
back); the start-up seed, and in a scaled-out deployment a periodic refresh, read the
store's ``auto`` cursors so writes by other processes are seen too. Every process's view
can only trail the store, so its lag never understates the truth.

Per publish the cost is a few numpy passes over one int64 per symbol and interval, and
the session table is rebuilt at most once a day.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from mds.calendar import MarketCalendar
from mds.config import Settings
from mds.domain.clock import Clock
from mds.domain.models import Interval, Tier
from mds.observability.metrics import Metrics
from mds.storage.base import UniverseStore

log = logging.getLogger(__name__)

#: The source of the cursor over every provider (mds.ingest.ingestor.AUTO_SOURCE).
_AUTO = "auto"
#: "No bar stored" in the newest-ts arrays (real epochs are positive).
_NONE = np.int64(-1)
_DAY = 86_400
#: Sessions are looked up this far past now, so "the session after" always exists.
_AHEAD = 40 * _DAY
_TRACKED = (Interval.M1, Interval.D1)
_TIER_CODE = {t: i for i, t in enumerate(Tier)}
#: Real seconds the publish loop waits at least between passes.
_MIN_REAL_PAUSE = 0.1
#: A periodic refresh re-reads 1d cursors on every Nth pass only.
_DAILY_REFRESH_RATIO = 10


class LiveLagTracker:
    """Newest stored bar per live symbol, and the lag metrics computed from it.

    Args:
        symbols_by_tier: The universe; symbols outside it are ignored by ``observe``.
        publish_every: Clock seconds between publishes in ``run``.
        refresh_every: Clock seconds between re-reads of the store's cursors in ``run``
            (None: only the start-up seed; right when this process makes every write).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        calendar: MarketCalendar,
        clock: Clock,
        metrics: Metrics,
        store: UniverseStore,
        symbols_by_tier: Mapping[Tier, Sequence[str]],
        publish_every: float = 5.0,
        refresh_every: float | None = None,
    ) -> None:
        self.settings = settings
        self.calendar = calendar
        self.clock = clock
        self.metrics = metrics
        self.store = store
        self.publish_every = publish_every
        self.refresh_every = refresh_every
        self.started_at = clock.now()
        self._symbols: list[str] = []
        codes: list[int] = []
        for tier, symbols in symbols_by_tier.items():
            self._symbols.extend(symbols)
            codes.extend([_TIER_CODE[Tier(tier)]] * len(symbols))
        self._index = {s: i for i, s in enumerate(self._symbols)}
        self._tiers = np.asarray(codes, dtype=np.int8)
        self._newest = {iv: np.full(len(self._symbols), _NONE, dtype=np.int64) for iv in _TRACKED}
        self._anchor: dict[Interval, int] = {}
        self._sessions: tuple[int, int, np.ndarray, np.ndarray] | None = None  # lo, hi, opens, closes
        self._seeded: set[tuple[Tier, Interval]] = set()
        self._snapshot: dict[str, Any] = {}
        self._published_tiers: set[Tier] = set()
        self._task: asyncio.Task[None] | None = None

    # -- what is tracked ----------------------------------------------------------------

    def live_tiers(self) -> list[Tier]:
        """Tiers collected live (a ``bars_1m`` cadence): their 1m series are tracked."""
        return [t for t in Tier if self.settings.cadence(t).bars_1m]

    def eod_tiers(self) -> list[Tier]:
        """Tiers with an ``eod`` cadence: their 1d series feed ingestion_lag_seconds{1d}."""
        return [t for t in Tier if self.settings.cadence(t).eod]

    def tracked(self) -> set[tuple[Tier, Interval]]:
        return {(t, Interval.M1) for t in self.live_tiers()} | {(t, Interval.D1) for t in self.eod_tiers()}

    def update_settings(self, settings: Settings) -> None:
        """Adopt reloaded cadences; series newly tracked are seeded on the next ``run`` pass."""
        self.settings = settings

    # -- input ------------------------------------------------------------------------

    def observe(self, symbol: str, interval: Interval, newest: datetime) -> None:
        """The store now holds ``symbol``'s bar at ``newest``; keeps the newest seen (O(1))."""
        i = self._index.get(symbol)
        arr = self._newest.get(interval)
        if i is None or arr is None:
            return
        e = int(newest.timestamp())
        if e > arr[i]:
            arr[i] = e

    def newest(self, symbol: str, interval: Interval) -> datetime | None:
        """The newest bar time seen for a series (None when nothing is known)."""
        i = self._index.get(symbol)
        arr = self._newest.get(interval)
        if i is None or arr is None or arr[i] == _NONE:
            return None
        return datetime.fromtimestamp(int(arr[i]), UTC)

    async def seed(self, series: Iterable[tuple[Tier, Interval]] | None = None) -> int:
        """Read the store's ``auto`` cursors of ``series`` (default: everything tracked).

        Returns how many cursors were found. Keeps the max, so it may run at any time.
        """
        found = 0
        for tier, interval in sorted(self.tracked() if series is None else series):
            code = _TIER_CODE[tier]
            for i in np.flatnonzero(self._tiers == code).tolist():
                cursor = await self.store.get_cursor(self._symbols[i], interval, _AUTO)
                if cursor is not None:
                    self.observe(cursor.symbol, interval, cursor.last_ts)
                    found += 1
            self._seeded.add((tier, interval))
        return found

    # -- lag ----------------------------------------------------------------------------

    def lags(self, interval: Interval, tiers: Iterable[Tier], now: datetime) -> tuple[np.ndarray, np.ndarray]:
        """(lag seconds, tier codes) of every symbol in ``tiers`` at ``interval``."""
        mask = np.isin(self._tiers, [_TIER_CODE[t] for t in tiers])
        newest = self._newest[interval][mask]
        now_s = now.timestamp()
        closes = np.full(newest.shape, self._anchor_close(interval), dtype=np.int64)
        have = newest != _NONE
        if have.any():
            closes[have] = self._next_closes(interval, newest[have], now_s)
        return np.maximum(0.0, now_s - closes), self._tiers[mask]

    def _next_closes(self, interval: Interval, newest: np.ndarray, now_s: float) -> np.ndarray:
        """Close of the first bar the calendar expects after each of ``newest`` (vectorised)."""
        opens, closes = self._session_arrays(int(newest.min()), int(now_s))
        last = len(opens) - 1
        i = np.searchsorted(opens, newest, side="right") - 1  # the session holding the bar
        after = np.minimum(i + 1, last)  # the session after it
        if interval is Interval.D1:
            return closes[after]
        step = interval.seconds
        held = np.maximum(i, 0)
        cand = newest + step
        same = (i >= 0) & (cand < closes[held])
        nxt: np.ndarray = np.where(
            same,
            np.minimum(cand + step, closes[held]),
            np.minimum(opens[after] + step, closes[after]),
        )
        return nxt

    def _session_arrays(self, lo: int, now_s: int) -> tuple[np.ndarray, np.ndarray]:
        """Session open/close epochs from the one holding ``lo`` to well past now; cached."""
        cached = self._sessions
        if cached is not None and cached[0] <= lo and cached[1] >= now_s + _AHEAD // 2:
            return cached[2], cached[3]
        start = (lo // _DAY - 1) * _DAY
        end = (now_s // _DAY + 1) * _DAY + _AHEAD
        sessions = self.calendar.sessions(
            datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
        )
        opens = np.fromiter((int(s.open.timestamp()) for s in sessions), dtype=np.int64, count=len(sessions))
        closes = np.fromiter(
            (int(s.close.timestamp()) for s in sessions), dtype=np.int64, count=len(sessions)
        )
        self._sessions = (start, end, opens, closes)
        return opens, closes

    def _anchor_close(self, interval: Interval) -> int:
        """Where a series with nothing stored counts from: the close of the first bar that
        closes after tracking began."""
        found = self._anchor.get(interval)
        if found is None:
            t0 = self.started_at
            session = self.calendar.session_for(t0)
            if session is None:
                bar = self.calendar.next_open(t0)
            elif interval is Interval.D1:
                bar = session.open
            else:
                k = int((t0 - session.open).total_seconds()) // interval.seconds
                bar = session.open + timedelta(seconds=k * interval.seconds)
            found = self._anchor[interval] = int(self.calendar.bar_end(bar, interval).timestamp())
        return found

    # -- output -------------------------------------------------------------------------

    def publish(self, now: datetime | None = None) -> dict[str, Any]:
        """Set the lag gauges for ``now`` (default: the clock) and return ``snapshot()``."""
        now = now or self.clock.now()
        live = self.live_tiers()
        lags, codes = self.lags(Interval.M1, live, now)
        tiers: dict[str, dict[str, float | int]] = {}
        for tier in live:
            sub = lags[codes == _TIER_CODE[tier]]
            worst = float(sub.max()) if sub.size else 0.0
            p95 = float(np.percentile(sub, 95)) if sub.size else 0.0
            self.metrics.live_lag_seconds.labels(tier=tier.value, stat="max").set(worst)
            self.metrics.live_lag_seconds.labels(tier=tier.value, stat="p95").set(p95)
            tiers[tier.value] = {"max_s": round(worst, 3), "p95_s": round(p95, 3), "symbols": int(sub.size)}
        for tier in self._published_tiers - set(live):  # no longer collected live
            for stat in ("max", "p95"):
                with contextlib.suppress(KeyError):
                    self.metrics.live_lag_seconds.remove(tier.value, stat)
        self._published_tiers = set(live)
        worst_by_interval = {Interval.M1.value: float(lags.max()) if lags.size else 0.0}
        daily, _ = self.lags(Interval.D1, self.eod_tiers(), now)
        worst_by_interval[Interval.D1.value] = float(daily.max()) if daily.size else 0.0
        for interval, worst in worst_by_interval.items():
            self.metrics.ingestion_lag_seconds.labels(interval=interval).set(worst)
        self._snapshot = {
            "tiers": tiers,
            "intervals": {k: round(v, 3) for k, v in worst_by_interval.items()},
            "at": now.isoformat(),
        }
        return self.snapshot()

    def snapshot(self) -> dict[str, Any]:
        """The last publish: ``tiers`` ({tier: max_s, p95_s, symbols}), ``intervals`` (worst
        lag per interval), ``at``, and ``seeded`` (whether the start-up seed is done)."""
        return {**self._snapshot, "seeded": bool(self._seeded)}

    # -- loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Seed from the store, then publish every ``publish_every`` clock seconds (and
        re-read the cursors every ``refresh_every``). Nothing is published before the seed
        has succeeded once, so a series with an old cursor never reads as freshly started."""
        while not await self._seed_safely(None):
            await self._pause()
        refreshed, passes = self.clock.now(), 0
        while True:
            try:
                self.publish()
            except Exception:  # the metrics must outlive one bad pass
                log.exception("live lag publish failed")
            await self._pause()
            pending = self.tracked() - self._seeded
            if pending:  # a reload made more series live
                await self._seed_safely(pending)
            every = self.refresh_every
            if every is not None and (self.clock.now() - refreshed).total_seconds() >= every:
                passes += 1
                # Daily bars arrive once a session: their cursors are re-read 10x less often.
                daily = passes % _DAILY_REFRESH_RATIO == 0
                await self._seed_safely({s for s in self.tracked() if daily or s[1] is Interval.M1})
                refreshed = self.clock.now()

    async def _pause(self) -> None:
        # Clock seconds, so a replay at 60x publishes 60x as often; never less than a moment
        # of real time, so a clock whose sleep returns at once (ManualClock) cannot spin us.
        await asyncio.gather(self.clock.sleep(self.publish_every), asyncio.sleep(_MIN_REAL_PAUSE))

    async def _seed_safely(self, series: set[tuple[Tier, Interval]] | None) -> bool:
        try:
            await self.seed(series)
        except Exception:  # a store outage must not end the loop; the next pass retries
            log.exception("live lag: reading cursors failed")
            return False
        return True

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="live-lag")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
