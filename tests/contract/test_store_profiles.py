"""The ProfileStore contract, on every backend: profiles are point in time (a read "as of T"
sees, per symbol, the newest profile learned at or before T), each row keeps the provider
that said it, a second write at the same (symbol, as_of) replaces the first, and a page of
symbols is answered in one read."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from mds.domain.profile import CompanyProfile
from mds.errors import StorageError
from mds.storage.base import Store

D1 = datetime(2025, 5, 20, 22, 0, tzinfo=UTC)
D2 = D1 + timedelta(days=1)
D3 = D2 + timedelta(days=1)
US = timedelta(microseconds=1)

Fetch = Callable[[str], Awaitable[list[tuple[Any, ...]]]]


def profile(
    symbol: str = "AAPL",
    market_cap: float | None = 2.95e12,
    *,
    provider: str = "fmp",
    shares: float | None = 14_935_826_000.0,
    **kw: Any,
) -> CompanyProfile:
    return CompanyProfile(symbol, provider, market_cap, shares, **kw)


async def test_profiles_are_read_as_of_the_time_mds_learned_them(store: Store) -> None:
    first = profile(
        currency="USD",
        name="Apple Inc.",
        sector="Technology",
        industry="Consumer Electronics",
        exchange="NASDAQ",
    )
    assert await store.write_profiles([first], as_of=D1) == 1
    assert await store.write_profiles([profile(market_cap=3.1e12, provider="finnhub")], as_of=D2) == 1

    assert await store.profiles(["AAPL"], as_of=D1 - US) == {}
    # At or before: a read exactly at a write's as_of sees it.
    assert await store.profiles(["AAPL"], as_of=D1) == {"AAPL": first.learned(D1)}
    between = (await store.profiles(["AAPL"], as_of=D2 - US))["AAPL"]
    assert (between.market_cap, between.provider, between.as_of) == (2.95e12, "fmp", D1)
    assert (between.currency, between.name, between.sector, between.industry, between.exchange) == (
        "USD",
        "Apple Inc.",
        "Technology",
        "Consumer Electronics",
        "NASDAQ",
    )
    newest = (await store.profiles(["AAPL"]))["AAPL"]
    assert (newest.market_cap, newest.provider, newest.as_of) == (3.1e12, "finnhub", D2)
    assert (newest.name, newest.currency) == ("", "")  # the newer row did not say; nothing carried over
    assert (await store.profiles(["AAPL"], as_of=D3))["AAPL"].as_of == D2


async def test_each_row_keeps_its_provider(store: Store) -> None:
    await store.write_profiles(
        [profile("AAPL", provider="fmp"), profile("MSFT", 3.5e12, provider="finnhub")], as_of=D1
    )
    got = await store.profiles(["AAPL", "MSFT"])
    assert {s: p.provider for s, p in got.items()} == {"AAPL": "fmp", "MSFT": "finnhub"}
    assert [p.provider for p in await store.profile_history("MSFT")] == ["finnhub"]


async def test_missing_numbers_round_trip_as_none(store: Store) -> None:
    etf = profile("SPY", None, shares=None, name="SPDR S&P 500 ETF Trust", provider="sim")
    half = profile("BRK.B", 1.0e12, shares=None)
    await store.write_profiles([etf, half], as_of=D1)
    got = await store.profiles(["SPY", "BRK.B"])
    assert got["SPY"] == etf.learned(D1)
    assert got["SPY"].market_cap is None and got["SPY"].shares_outstanding is None
    assert (got["BRK.B"].market_cap, got["BRK.B"].shares_outstanding) == (1.0e12, None)
    (hist,) = await store.profile_history("SPY")
    assert hist.market_cap is None and hist.shares_outstanding is None and hist.name == etf.name


async def test_history_is_newest_first_and_limited(store: Store) -> None:
    stamps = [D1 + timedelta(hours=h) for h in range(5)]
    for i, t in enumerate(stamps):
        await store.write_profiles([profile(market_cap=1e12 + i), profile("MSFT", 2e12 + i)], as_of=t)
    history = await store.profile_history("AAPL")
    assert [p.as_of for p in history] == stamps[::-1]
    assert [p.market_cap for p in history] == [1e12 + i for i in range(4, -1, -1)]
    assert {p.symbol for p in history} == {"AAPL"}
    assert [p.as_of for p in await store.profile_history("AAPL", limit=2)] == [stamps[4], stamps[3]]
    assert await store.profile_history("AAPL", limit=0) == []
    assert await store.profile_history("NVDA") == []


async def test_a_symbol_without_a_profile_is_absent(store: Store) -> None:
    await store.write_profiles([profile("AAPL")], as_of=D1)
    got = await store.profiles(["NVDA", "AAPL", "TSLA"])
    assert set(got) == {"AAPL"}
    assert await store.profiles(["NVDA"]) == {}


async def test_a_rewrite_at_the_same_as_of_replaces(store: Store, fetch: Fetch) -> None:
    await store.write_profiles([profile(market_cap=2.9e12, name="Apple", provider="fmp")], as_of=D1)
    again = profile(market_cap=None, shares=15e9, name="Apple Inc.", provider="finnhub")
    assert await store.write_profiles([again], as_of=D1) == 1
    assert await store.profile_history("AAPL") == [again.learned(D1)]
    assert await fetch("SELECT count(*) FROM company_profiles") == [(1,)]
    # Within one batch the last profile of a symbol is the one stored.
    batch = [profile(market_cap=1.0, provider="a"), profile(market_cap=2.0, provider="b")]
    assert await store.write_profiles(batch, as_of=D2) == 1
    newest = (await store.profiles(["AAPL"]))["AAPL"]
    assert (newest.market_cap, newest.provider, newest.as_of) == (2.0, "b", D2)
    assert await fetch("SELECT count(*) FROM company_profiles") == [(2,)]


async def test_as_of_is_an_instant_whatever_its_zone(store: Store) -> None:
    plus2 = timezone(timedelta(hours=2))
    local = D1.astimezone(plus2)
    await store.write_profiles([profile()], as_of=local)
    (stored,) = await store.profile_history("AAPL")
    assert stored.as_of == D1 and stored.as_of.utcoffset() == timedelta(0)
    assert set(await store.profiles(["AAPL"], as_of=(D1 - US).astimezone(plus2))) == set()
    assert set(await store.profiles(["AAPL"], as_of=D1.astimezone(plus2))) == {"AAPL"}


async def test_many_symbols_in_one_read(store: Store) -> None:
    symbols = [f"S{i:04d}" for i in range(1500)]
    assert await store.write_profiles([profile(s, 1e9 + i) for i, s in enumerate(symbols)], as_of=D1) == 1500
    # Every third symbol is refreshed later, by another provider.
    refreshed = symbols[::3]
    assert (
        await store.write_profiles([profile(s, 5e9, provider="finnhub") for s in refreshed], as_of=D2) == 500
    )
    page = symbols[200:700] + ["NOPE1", "NOPE2", symbols[200]]  # unknowns and a repeat

    now = await store.profiles(page)
    assert set(now) == set(symbols[200:700])
    for i in range(200, 700):
        got = now[symbols[i]]
        if i % 3 == 0:
            assert (got.market_cap, got.provider, got.as_of) == (5e9, "finnhub", D2)
        else:
            assert (got.market_cap, got.provider, got.as_of) == (1e9 + i, "fmp", D1)

    before = await store.profiles(page, as_of=D2 - US)
    assert {s: p.market_cap for s, p in before.items()} == {
        s: 1e9 + i for i, s in enumerate(symbols) if 200 <= i < 700
    }
    assert await store.profiles(page, as_of=D1 - US) == {}

    everything = await store.profiles(symbols)
    assert len(everything) == 1500
    assert sum(p.as_of == D2 for p in everything.values()) == 500


async def test_empty_inputs_need_no_database(store: Store) -> None:
    assert await store.write_profiles([], as_of=D1) == 0
    assert await store.profiles([]) == {}
    await store.close()
    # Closed: anything that reached the database would raise.
    assert await store.profiles([]) == {}
    assert await store.profiles([], as_of=D1) == {}
    with pytest.raises(StorageError):
        await store.profiles(["AAPL"])
