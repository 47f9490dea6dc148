"""Store contract, coverage part (issue 14): the newest bar per symbol, bars since a time
per symbol, and how many distinct symbols hold bars of an interval.

Every backend in ``conftest.BACKENDS`` must pass all of it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mds.domain.models import Bar, Interval
from mds.storage.base import Store

W1 = datetime(2025, 10, 9, 21, 0, tzinfo=UTC)
DAY0 = datetime(2025, 10, 1, 13, 30, tzinfo=UTC)


def bars(symbol: str, interval: Interval, *times: datetime, close: float = 100.0) -> list[Bar]:
    return [Bar(symbol, interval, t, close, close + 1, close - 1, close, 10.0, "sim") for t in times]


def days(*offsets: int) -> list[datetime]:
    return [DAY0 + timedelta(days=i) for i in offsets]


async def seed(store: Store) -> None:
    await store.write_bars(
        [
            *bars("AAPL", Interval.D1, *days(0, 1, 2, 5, 6)),
            *bars("MSFT", Interval.D1, *days(0, 1)),
            *bars("BRK.B", Interval.D1, *days(6)),
            # Other intervals are other series: newer, but not daily.
            *bars("AAPL", Interval.M1, DAY0 + timedelta(days=8), DAY0 + timedelta(days=8, minutes=1)),
            *bars("ONLY1M", Interval.M1, DAY0),
            *bars("ONLY5M", Interval.M5, DAY0, DAY0 + timedelta(minutes=5)),
        ],
        as_of=W1,
    )


async def test_last_bar_times_is_the_newest_bar_per_symbol_of_that_interval(store: Store) -> None:
    assert await store.last_bar_times(Interval.D1, ["AAPL"]) == {}
    await seed(store)
    got = await store.last_bar_times(Interval.D1, ["AAPL", "MSFT", "BRK.B", "ONLY1M", "NOPE"])
    assert got == {"AAPL": days(6)[0], "MSFT": days(1)[0], "BRK.B": days(6)[0]}
    assert all(t.tzinfo is not None and t.utcoffset() == timedelta(0) for t in got.values())
    assert await store.last_bar_times(Interval.M1, ["AAPL", "ONLY1M", "MSFT"]) == {
        "AAPL": DAY0 + timedelta(days=8, minutes=1),
        "ONLY1M": DAY0,
    }
    assert await store.last_bar_times(Interval.M5, ["ONLY5M"]) == {"ONLY5M": DAY0 + timedelta(minutes=5)}
    assert await store.last_bar_times(Interval.D1, []) == {}
    # Duplicates in the request are harmless; only the asked symbols appear.
    assert await store.last_bar_times(Interval.D1, ["MSFT", "MSFT"]) == {"MSFT": days(1)[0]}


async def test_a_revision_is_not_a_newer_bar(store: Store) -> None:
    await seed(store)
    await store.write_bars(bars("MSFT", Interval.D1, days(0)[0], close=120.0), as_of=W1 + timedelta(hours=1))
    assert await store.last_bar_times(Interval.D1, ["MSFT"]) == {"MSFT": days(1)[0]}
    assert await store.bar_counts_since(Interval.D1, ["MSFT"], days(0)[0]) == {"MSFT": 2}


async def test_bar_counts_since_counts_bars_at_or_after_start(store: Store) -> None:
    await seed(store)
    symbols = ["AAPL", "MSFT", "BRK.B", "ONLY1M", "NOPE"]
    assert await store.bar_counts_since(Interval.D1, symbols, DAY0) == {"AAPL": 5, "MSFT": 2, "BRK.B": 1}
    # Inclusive start; symbols with nothing since are absent, not zero.
    assert await store.bar_counts_since(Interval.D1, symbols, days(2)[0]) == {"AAPL": 3, "BRK.B": 1}
    assert await store.bar_counts_since(Interval.D1, symbols, days(2)[0] + timedelta(seconds=1)) == {
        "AAPL": 2,
        "BRK.B": 1,
    }
    assert await store.bar_counts_since(Interval.D1, symbols, days(7)[0]) == {}
    assert await store.bar_counts_since(Interval.M1, symbols, DAY0) == {"AAPL": 2, "ONLY1M": 1}
    assert await store.bar_counts_since(Interval.D1, [], DAY0) == {}


async def test_symbols_with_bars_counts_distinct_symbols_per_interval(store: Store) -> None:
    for interval in Interval:
        assert await store.symbols_with_bars(interval) == 0
    await seed(store)
    assert await store.symbols_with_bars(Interval.D1) == 3  # AAPL, MSFT, BRK.B
    assert await store.symbols_with_bars(Interval.M1) == 2  # AAPL, ONLY1M
    assert await store.symbols_with_bars(Interval.M5) == 1
    assert await store.symbols_with_bars(Interval.H1) == 0
    # Many symbols: each is counted once however many bars it holds.
    many = [b for i in range(300) for b in bars(f"S{i:04d}", Interval.D1, *days(0, 1, 2))]
    await store.write_bars(many, as_of=W1)
    assert await store.symbols_with_bars(Interval.D1) == 303
    assert await store.symbols_with_bars(Interval.M1) == 2
