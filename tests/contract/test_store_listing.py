"""Store contract, listing part (issue 14): a series' first and last stored bar, and the
first session a symbol traded, which only symbols in the universe can have recorded.

Every backend in ``conftest.BACKENDS`` must pass all of it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mds.domain.models import Bar, Interval, Tier
from mds.domain.records import UniverseEntry
from mds.storage.base import Store

W1 = datetime(2025, 10, 8, 21, 0, tzinfo=UTC)
GOOG_IPO = datetime(2004, 8, 19, 13, 30, tzinfo=UTC)
META_IPO = datetime(2012, 5, 18, 13, 30, tzinfo=UTC)


def daily(symbol: str, *days: datetime) -> list[Bar]:
    return [Bar(symbol, Interval.D1, d, 100.0, 101.0, 99.0, 100.0, 10.0, "sim") for d in days]


async def universe(store: Store, *symbols: str) -> None:
    entries = [UniverseEntry(s, Tier.T0, True, s, "XNYS") for s in symbols]
    await store.upsert_universe(entries, version_tag="listing-test", source_meta={})


async def test_series_extent_is_the_first_and_last_stored_bar_of_that_series(store: Store) -> None:
    assert await store.series_extent("GOOG", Interval.D1) is None
    days = [GOOG_IPO + timedelta(days=i) for i in (0, 1, 4)]
    await store.write_bars(daily("GOOG", days[1], days[2], days[0]), as_of=W1)
    minute = Bar("GOOG", Interval.M1, GOOG_IPO - timedelta(days=30), 1.0, 1.0, 1.0, 1.0, 1.0, "sim")
    await store.write_bars([minute, *daily("MSFT", GOOG_IPO - timedelta(days=9))], as_of=W1)
    assert await store.series_extent("GOOG", Interval.D1) == (days[0], days[2])
    # Another interval, another symbol: separate series.
    assert await store.series_extent("GOOG", Interval.M1) == (minute.ts, minute.ts)
    assert await store.series_extent("GOOG", Interval.M5) is None
    # A revision does not add a bar; the extent reads current bars only.
    await store.write_bars([daily("GOOG", days[0])[0].with_(close=120.0)], as_of=W1 + timedelta(hours=1))
    assert await store.series_extent("GOOG", Interval.D1) == (days[0], days[2])


async def test_first_trade_sessions_round_trip_and_none_forgets(store: Store) -> None:
    await universe(store, "GOOG", "META", "AAPL")
    assert await store.first_trade_sessions() == {}
    await store.set_first_trade_session("GOOG", GOOG_IPO)
    await store.set_first_trade_session("META", META_IPO)
    assert await store.first_trade_sessions() == {"GOOG": GOOG_IPO, "META": META_IPO}
    assert await store.first_trade_sessions(["GOOG", "AAPL", "NOPE"]) == {"GOOG": GOOG_IPO}
    assert await store.first_trade_sessions([]) == {}
    # Moved earlier (an earlier bar turned up), then forgotten.
    earlier = GOOG_IPO - timedelta(days=1)
    await store.set_first_trade_session("GOOG", earlier)
    assert (await store.first_trade_sessions(["GOOG"]))["GOOG"] == earlier
    await store.set_first_trade_session("META", None)
    assert await store.first_trade_sessions() == {"GOOG": earlier}


async def test_a_symbol_outside_the_universe_gets_nothing_recorded(store: Store) -> None:
    await store.set_first_trade_session("ZZZZ", GOOG_IPO)
    assert await store.first_trade_sessions() == {}
    assert await store.get_symbol("ZZZZ") is None  # no universe row was made up for it


async def test_a_universe_reload_keeps_the_recorded_session(store: Store) -> None:
    await universe(store, "GOOG")
    await store.set_first_trade_session("GOOG", GOOG_IPO)
    await universe(store, "GOOG", "AAPL")
    assert await store.first_trade_sessions() == {"GOOG": GOOG_IPO}
