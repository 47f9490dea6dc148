"""LiveLagTracker: the lag rule against the real XNYS calendar, on a ManualClock."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from mds.calendar import MarketCalendar
from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Interval, Tier
from mds.domain.records import Cursor
from mds.ingest.live_lag import LiveLagTracker
from mds.observability.metrics import Metrics

CAL = MarketCalendar()
# Wednesday 2025-10-08, EDT: the session is 13:30Z-20:00Z.
WED = datetime(2025, 10, 8, tzinfo=UTC)


def at(day: datetime, hh: int, mm: int, ss: int = 0) -> datetime:
    return day.replace(hour=hh, minute=mm, second=ss)


class FakeCursors:
    """Just the store's cursor read."""

    def __init__(self, cursors: dict[tuple[str, Interval], datetime] | None = None) -> None:
        self.cursors = cursors or {}
        self.reads = 0

    async def get_cursor(self, symbol: str, interval: Interval, source: str) -> Cursor | None:
        assert source == "auto"
        self.reads += 1
        ts = self.cursors.get((symbol, interval))
        return None if ts is None else Cursor(symbol, interval, source, ts, ts)


def make(
    now: datetime,
    by_tier: dict[Tier, list[str]] | None = None,
    env: dict[str, str] | None = None,
    store: FakeCursors | None = None,
) -> tuple[LiveLagTracker, ManualClock, Metrics]:
    clock = ManualClock(now)
    metrics = Metrics()
    tracker = LiveLagTracker(
        settings=load_settings(env or {}),
        calendar=CAL,
        clock=clock,
        metrics=metrics,
        store=store or FakeCursors(),  # type: ignore[arg-type]
        symbols_by_tier=by_tier or {Tier.T0: ["AAPL"], Tier.T1: ["JPM"], Tier.T2: ["ZZZ"]},
    )
    return tracker, clock, metrics


def lag_of(tracker: LiveLagTracker, tier: Tier, now: datetime, interval: Interval = Interval.M1) -> float:
    lags, _ = tracker.lags(interval, [tier], now)
    assert lags.size == 1
    return float(lags[0])


def test_up_to_date_reads_zero_until_the_next_bar_closes_then_counts_up() -> None:
    tracker, clock, metrics = make(at(WED, 14, 31, 30))
    tracker.observe("AAPL", Interval.M1, at(WED, 14, 30))  # the bar that closed at 14:31
    assert lag_of(tracker, Tier.T0, at(WED, 14, 31, 30)) == 0.0
    assert lag_of(tracker, Tier.T0, at(WED, 14, 32, 0)) == 0.0  # the 14:31 bar just closed
    assert lag_of(tracker, Tier.T0, at(WED, 14, 32, 45)) == 45.0
    tracker.observe("AAPL", Interval.M1, at(WED, 14, 31))  # stored: up to date again
    assert lag_of(tracker, Tier.T0, at(WED, 14, 32, 45)) == 0.0

    clock.set(at(WED, 14, 33, 10))
    tracker.publish()
    assert metrics.value("live_lag_seconds", tier="T0", stat="max") == 10.0
    assert metrics.value("ingestion_lag_seconds", interval="1m") >= 10.0


def test_lag_counts_from_the_close_of_the_first_missing_bar() -> None:
    tracker, _, _ = make(WED)
    tracker.observe("AAPL", Interval.M1, at(WED, 14, 0))
    # The 14:01 bar is the first missing one; it closed at 14:02.
    assert lag_of(tracker, Tier.T0, at(WED, 14, 31, 30)) == 29 * 60 + 30


def test_last_bar_of_a_session_leads_to_the_next_sessions_first_bar() -> None:
    tracker, _, _ = make(WED)
    tracker.observe("AAPL", Interval.M1, at(WED, 19, 59))  # the day's last bar
    thu = WED + timedelta(days=1)
    assert lag_of(tracker, Tier.T0, at(WED, 23, 0)) == 0.0  # overnight: nothing expected
    assert lag_of(tracker, Tier.T0, at(thu, 3, 0)) == 0.0
    assert lag_of(tracker, Tier.T0, at(thu, 13, 31, 0)) == 0.0
    assert lag_of(tracker, Tier.T0, at(thu, 13, 31, 20)) == 20.0  # thursday's 13:30 bar is due


def test_weekend_reads_zero_for_an_up_to_date_series_and_counts_from_friday_otherwise() -> None:
    fri, sun, mon = (WED + timedelta(days=d) for d in (2, 4, 5))
    tracker, _, _ = make(sun, {Tier.T0: ["AAPL", "MSFT"]})
    tracker.observe("AAPL", Interval.M1, at(fri, 19, 59))
    tracker.observe("MSFT", Interval.M1, at(fri, 19, 58))  # missing friday's last bar
    lags, _ = tracker.lags(Interval.M1, [Tier.T0], at(sun, 12, 0))
    assert lags[0] == 0.0
    assert lags[1] == (at(sun, 12, 0) - at(fri, 20, 0)).total_seconds()
    lags, _ = tracker.lags(Interval.M1, [Tier.T0], at(mon, 13, 31, 5))  # Columbus Day: NYSE open
    assert lags[0] == 5.0


def test_dst_change_day_uses_the_new_utc_open() -> None:
    # Friday 2025-03-07 closes 21:00Z (EST); Monday 2025-03-10 opens 13:30Z (EDT).
    fri, mon = datetime(2025, 3, 7, tzinfo=UTC), datetime(2025, 3, 10, tzinfo=UTC)
    tracker, _, _ = make(mon)
    tracker.observe("AAPL", Interval.M1, at(fri, 20, 59))
    assert lag_of(tracker, Tier.T0, at(mon, 13, 0)) == 0.0
    assert lag_of(tracker, Tier.T0, at(mon, 13, 31, 0)) == 0.0
    assert lag_of(tracker, Tier.T0, at(mon, 13, 31, 30)) == 30.0  # not 14:31: the open moved
    assert lag_of(tracker, Tier.T0, at(mon, 14, 31, 30)) == 3630.0


def test_early_close_day() -> None:
    # 2025-11-28 closes at 18:00Z; the next bar after 17:59 is Monday's first.
    fri, mon = datetime(2025, 11, 28, tzinfo=UTC), datetime(2025, 12, 1, tzinfo=UTC)
    tracker, _, _ = make(fri)
    tracker.observe("AAPL", Interval.M1, at(fri, 17, 59))
    assert lag_of(tracker, Tier.T0, at(fri, 19, 0)) == 0.0
    assert lag_of(tracker, Tier.T0, at(mon, 14, 32)) == 60.0  # EST again: 14:30 open


def test_an_old_backfill_write_does_not_move_the_lag() -> None:
    tracker, _, metrics = make(at(WED, 14, 31, 30))
    tracker.observe("AAPL", Interval.M1, at(WED, 14, 30))
    tracker.publish(at(WED, 14, 32, 30))
    before = metrics.value("live_lag_seconds", tier="T0", stat="max")
    tracker.observe("AAPL", Interval.M1, datetime(2025, 9, 2, 13, 30, tzinfo=UTC))  # a backfill
    tracker.publish(at(WED, 14, 32, 30))
    assert before == 30.0
    assert metrics.value("live_lag_seconds", tier="T0", stat="max") == before
    assert tracker.newest("AAPL", Interval.M1) == at(WED, 14, 30)


def test_max_and_p95_over_a_tiers_symbols() -> None:
    symbols = [f"S{i}" for i in range(100)]
    now = at(WED, 15, 0)
    tracker, _, metrics = make(now, {Tier.T0: symbols, Tier.T1: ["JPM"]})
    for i, s in enumerate(symbols):
        tracker.observe(s, Interval.M1, at(WED, 14, 58 - i // 10))  # 10 symbols per minute behind
    snap = tracker.publish(now)  # the newest ones' next bar (14:59) closes right now
    assert snap["tiers"]["T0"]["symbols"] == 100 and snap["tiers"]["T0"]["max_s"] == 540.0
    later = at(WED, 15, 0, 30)
    snap = tracker.publish(later)
    expected = np.array([30 + 60 * (i // 10) for i in range(100)], dtype=float)
    assert metrics.value("live_lag_seconds", tier="T0", stat="max") == expected.max() == 570.0
    assert metrics.value("live_lag_seconds", tier="T0", stat="p95") == pytest.approx(
        np.percentile(expected, 95)
    )
    assert snap["tiers"]["T0"]["max_s"] == 570.0
    assert metrics.value("ingestion_lag_seconds", interval="1m") == 570.0


def test_a_tier_without_a_live_cadence_is_not_tracked() -> None:
    now = at(WED, 15, 0)
    tracker, _, metrics = make(now)
    tracker.observe("AAPL", Interval.M1, at(WED, 14, 59))
    tracker.observe("JPM", Interval.M1, at(WED, 14, 59))
    tracker.observe("ZZZ", Interval.M1, datetime(2025, 9, 2, 13, 30, tzinfo=UTC))  # T2: no bars_1m
    snap = tracker.publish(now)
    assert set(snap["tiers"]) == {"T0", "T1"}
    assert "T2" not in metrics.render().decode().split("live_lag_seconds{")[-1]
    assert metrics.registry.get_sample_value("live_lag_seconds", {"tier": "T2", "stat": "max"}) is None
    assert metrics.value("ingestion_lag_seconds", interval="1m") == 0.0  # ZZZ's stale 1m is not live

    # A reload that makes T1 end-of-day only removes its series.
    tracker.update_settings(load_settings({"CADENCE_T1": '{"bars_1m": null, "eod": 1}'}))
    assert [t.value for t in tracker.live_tiers()] == ["T0"]
    tracker.publish(now)
    assert metrics.registry.get_sample_value("live_lag_seconds", {"tier": "T1", "stat": "max"}) is None


def test_daily_series_feed_only_the_1d_ingestion_lag() -> None:
    thu = WED + timedelta(days=1)
    tracker, _, metrics = make(thu)
    for s in ("AAPL", "JPM", "ZZZ"):
        tracker.observe(s, Interval.D1, at(WED, 13, 30))  # wednesday's daily bar
    tracker.observe("ZZZ", Interval.D1, at(WED - timedelta(days=1), 13, 30))  # no-op: older
    assert lag_of(tracker, Tier.T2, at(thu, 19, 0), Interval.D1) == 0.0  # thursday's bar still open
    assert lag_of(tracker, Tier.T2, at(thu, 20, 30), Interval.D1) == 1800.0
    snap = tracker.publish(at(thu, 20, 30))
    assert metrics.value("ingestion_lag_seconds", interval="1d") == 1800.0
    assert snap["intervals"]["1d"] == 1800.0
    assert set(snap["tiers"]) == {"T0", "T1"}  # 1d does not feed live_lag_seconds


def test_a_symbol_with_no_bar_counts_from_when_tracking_began() -> None:
    tracker, _, _ = make(at(WED, 14, 30, 30))
    # Tracking began inside the 14:30 bar: that bar closes at 14:31.
    assert lag_of(tracker, Tier.T0, at(WED, 14, 30, 50)) == 0.0
    assert lag_of(tracker, Tier.T0, at(WED, 14, 35)) == 240.0
    night, _, _ = make(at(WED, 23, 0))
    thu = WED + timedelta(days=1)
    assert lag_of(night, Tier.T0, at(thu, 13, 31)) == 0.0
    assert lag_of(night, Tier.T0, at(thu, 13, 32)) == 60.0
    assert lag_of(night, Tier.T2, at(thu, 20, 10), Interval.D1) == 600.0


async def test_seed_reads_the_auto_cursors_of_tracked_series_and_keeps_the_max() -> None:
    store = FakeCursors(
        {
            ("AAPL", Interval.M1): at(WED, 14, 0),
            ("JPM", Interval.M1): at(WED, 13, 45),
            ("ZZZ", Interval.M1): at(WED, 14, 0),  # T2 1m: not tracked, never read
            ("ZZZ", Interval.D1): at(WED, 13, 30),
        }
    )
    tracker, _, _ = make(at(WED, 15, 0), store=store)
    tracker.observe("AAPL", Interval.M1, at(WED, 14, 50))  # a write seen before the seed
    found = await tracker.seed()
    assert found == 3
    assert store.reads == 2 + 3  # 1m for T0, T1; 1d for every tier
    assert tracker.newest("AAPL", Interval.M1) == at(WED, 14, 50)
    assert tracker.newest("JPM", Interval.M1) == at(WED, 13, 45)
    assert tracker.newest("ZZZ", Interval.M1) is None
    assert tracker.snapshot()["seeded"] is True


async def test_run_seeds_then_publishes() -> None:
    store = FakeCursors({("AAPL", Interval.M1): at(WED, 14, 0)})
    tracker, _, metrics = make(at(WED, 14, 10), store=store)
    tracker.start()
    try:
        for _ in range(50):
            if tracker.snapshot().get("tiers"):
                break
            await asyncio.sleep(0.01)
        assert tracker.snapshot()["tiers"]["T0"]["max_s"] >= 8 * 60
        assert metrics.value("live_lag_seconds", tier="T0", stat="max") >= 8 * 60
    finally:
        await tracker.stop()


def test_publish_over_8000_symbols_is_cheap() -> None:
    rng = np.random.default_rng(7)
    symbols = [f"S{i}" for i in range(8000)]
    now = at(WED, 15, 0)
    tracker, _, _ = make(now, {Tier.T0: symbols[:1200], Tier.T1: symbols[1200:4200], Tier.T2: symbols[4200:]})
    minutes = rng.integers(0, 60 * 24 * 30, size=len(symbols))
    for s, m in zip(symbols, minutes.tolist(), strict=True):
        ts = at(WED, 14, 59) - timedelta(minutes=m)
        if CAL.is_open(ts):
            tracker.observe(s, Interval.M1, ts)
        tracker.observe(s, Interval.D1, at(WED - timedelta(days=1), 13, 30))
    tracker.publish(now)  # builds the session table once
    t0 = time.perf_counter()
    for k in range(10):
        tracker.publish(now + timedelta(seconds=k))
    assert (time.perf_counter() - t0) / 10 < 0.02


async def test_refresh_sees_writes_made_by_other_processes() -> None:
    store = FakeCursors({("AAPL", Interval.M1): at(WED, 14, 0)})
    tracker, _, _ = make(at(WED, 14, 10), store=store)
    tracker.refresh_every = 5.0  # scaled out: re-read the cursors every 5 clock seconds
    tracker.start()
    try:
        for _ in range(50):
            if tracker.snapshot().get("tiers"):
                break
            await asyncio.sleep(0.01)
        store.cursors[("AAPL", Interval.M1)] = at(WED, 14, 9)  # another worker stored up to 14:09
        for _ in range(100):
            if tracker.newest("AAPL", Interval.M1) == at(WED, 14, 9):
                break
            await asyncio.sleep(0.02)
        assert tracker.newest("AAPL", Interval.M1) == at(WED, 14, 9)
    finally:
        await tracker.stop()
