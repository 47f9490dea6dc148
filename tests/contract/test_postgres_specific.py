"""PostgresStore beyond the shared contract: migrations, mode, COPY writes, timeouts.

Each test gets its own fresh database, never mocked: ``pg_database`` (in conftest) is
already migrated (a copy of the session's template), ``pg_empty_database`` is empty, for
the tests of migration itself.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from mds.domain.models import Bar, BarStatus, Interval
from mds.domain.records import WriteResult
from mds.errors import StorageError
from mds.storage.migrate import POSTGRES_MIGRATIONS, discover
from mds.storage.postgres import PostgresStore

T0 = datetime(2024, 3, 8, 14, 30, tzinfo=UTC)
W1 = datetime(2024, 3, 8, 21, 0, tzinfo=UTC)
W2 = W1 + timedelta(hours=1)
M1 = Interval.M1
ALL_VERSIONS = [m.version for m in discover(POSTGRES_MIGRATIONS)]


def bars(n: int, *, symbols: int = 50, close: float = 100.0) -> list[Bar]:
    per = n // symbols
    return [
        Bar(f"S{s:03d}", M1, T0 + timedelta(minutes=i), 100.0, 101.0, 99.0, close, 10.0 + i, "sim")
        for s in range(symbols)
        for i in range(per)
    ]


async def test_migrations_are_idempotent(pg_empty_database: tuple[str, str]) -> None:
    _, url = pg_empty_database
    async with PostgresStore(url) as store:
        assert await store.migrate() == []
        rows = await store.db.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r[0] for r in rows] == ALL_VERSIONS
    # A second process opening the same database applies nothing either.
    second = PostgresStore(url)
    await second.open()
    try:
        assert await second.migrate() == []
    finally:
        await second.close()


async def test_two_stores_migrating_at_once_apply_each_file_once(
    pg_empty_database: tuple[str, str],
) -> None:
    _, url = pg_empty_database
    stores = [PostgresStore(url, pool_min=1, pool_max=2) for _ in range(3)]
    try:
        # open() migrates; all three race for an empty database.
        await asyncio.gather(*(s.open() for s in stores))
        rows = await stores[0].db.fetch(
            "SELECT version, count(*) FROM schema_migrations GROUP BY 1 ORDER BY 1"
        )
        assert [(v, n) for v, n in rows] == [(v, 1) for v in ALL_VERSIONS]
        assert all([await s.migrate() == [] for s in stores])
    finally:
        for s in stores:
            await s.close()


async def test_backend_info_reports_the_mode(pg_database: tuple[str, str]) -> None:
    _, url = pg_database
    async with PostgresStore(url, pool_min=1, pool_max=3) as store:
        info = await store.backend_info()
        available = await store.db.fetchrow(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')"
        )
    assert info["backend"] == "postgresql"
    assert info["pool"]["max"] == 3
    if available is not None and available[0]:
        pytest.skip("this server has timescaledb; plain-mode detection needs one without")
    assert (info["timescaledb"], info["mode"], info["rollups"]) == (False, "plain", "in_database")
    assert info["continuous_aggregates"] == []


async def test_bulk_write_goes_through_copy_and_counts_right(pg_database: tuple[str, str]) -> None:
    _, url = pg_database
    n = 50_000
    async with PostgresStore(url) as store:
        batch = bars(n)
        started = time.perf_counter()
        assert await store.write_bars(batch, as_of=W1) == WriteResult(inserted=n)
        seconds = time.perf_counter() - started
        rate = n / seconds
        print(f"\nPostgresStore.write_bars: {n} new bars in {seconds:.3f}s = {rate:,.0f} bars/s")

        started = time.perf_counter()
        assert await store.write_bars(batch, as_of=W2) == WriteResult(unchanged=n)
        print(f"identical re-write: {n / (time.perf_counter() - started):,.0f} bars/s")

        # 10% revised, 10% new (a further minute per symbol), the rest unchanged.
        changed = [b.with_(close=100.5) if i % 10 == 0 else b for i, b in enumerate(batch)]
        extra = [b.with_(ts=b.ts + timedelta(days=1)) for b in batch[: n // 10]]
        started = time.perf_counter()
        result = await store.write_bars(changed + extra, as_of=W2)
        print(f"mixed batch: {(len(changed) + len(extra)) / (time.perf_counter() - started):,.0f} bars/s")
        assert result == WriteResult(inserted=n // 10, revised=n // 10, unchanged=n - n // 10)

        [(current, history)] = await store.db.fetch(
            "SELECT (SELECT count(*) FROM candles), (SELECT count(*) FROM candle_history)"
        )
        assert (current, history) == (n + n // 10, n // 10)
        old = await store.read_bars("S000", M1, T0, T0 + timedelta(days=1), as_of=W1)
        assert {b.close for b in old} == {100.0}
    # Row-at-a-time INSERTs manage a few thousand bars/s here; COPY plus one merge
    # statement is an order of magnitude beyond that.
    assert rate > 20_000, f"{rate:,.0f} bars/s is too slow for a COPY-based write"


async def test_concurrent_revisions_of_one_bar_keep_every_revision(pg_database: tuple[str, str]) -> None:
    _, url = pg_database
    async with PostgresStore(url, pool_max=8) as store:
        bar = bars(1, symbols=1)[0]
        closes = [100.0 + i / 100 for i in range(12)]
        stamps = [W1 + timedelta(seconds=i) for i in range(12)]
        await asyncio.gather(
            *(store.write_bars([bar.with_(close=c)], as_of=w) for c, w in zip(closes, stamps, strict=True))
        )
        revisions = await store.db.fetch(
            "SELECT revision FROM candle_history UNION ALL SELECT revision FROM candles ORDER BY 1"
        )
        assert [r[0] for r in revisions] == list(range(12))


async def test_writers_racing_with_the_same_new_bars_store_each_once(pg_database: tuple[str, str]) -> None:
    # Both see an empty span and COPY straight into candles; the one that loses the race
    # hits the primary key, falls back to the merge and finds its bars already there.
    _, url = pg_database
    async with PostgresStore(url, pool_max=8) as store:
        batch = bars(20_000, symbols=20)
        results = await asyncio.gather(*(store.write_bars(batch, as_of=W1) for _ in range(4)))
        assert sum(r.inserted for r in results) == len(batch)
        assert sum(r.unchanged for r in results) == 3 * len(batch)
        assert all(r.revised == 0 for r in results)
        [(current, history)] = await store.db.fetch(
            "SELECT (SELECT count(*) FROM candles), (SELECT count(*) FROM candle_history)"
        )
        assert (current, history) == (len(batch), 0)


async def test_statement_timeout_is_set_on_every_connection(pg_database: tuple[str, str]) -> None:
    _, url = pg_database
    async with PostgresStore(url, pool_min=2, pool_max=2, statement_timeout_ms=400) as store:
        shown = await asyncio.gather(
            *(store.db.read(lambda c: c.fetchval("SHOW statement_timeout")) for _ in range(4))
        )
        assert shown == ["400ms"] * 4
        started = time.perf_counter()
        with pytest.raises(StorageError, match="statement timeout"):
            await store.db.write(lambda c: c.execute("SELECT pg_sleep(3)"))
        # A timed-out statement is not retried as if the database were down.
        assert time.perf_counter() - started < 2


async def test_closed_store_refuses_at_once(pg_database: tuple[str, str]) -> None:
    _, url = pg_database
    store = PostgresStore(url)
    with pytest.raises(StorageError):
        await store.write_bars(bars(1, symbols=1), as_of=W1)
    await store.open()
    await store.close()
    with pytest.raises(StorageError):
        await store.write_bars(bars(1, symbols=1), as_of=W1)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        # A whole normal session, one across the autumn DST change, an early close
        # (13:00 ET: the last hour is half an hour), and a range starting mid-bucket.
        (datetime(2025, 10, 8, 13, 30, tzinfo=UTC), datetime(2025, 10, 8, 20, 0, tzinfo=UTC)),
        (datetime(2025, 10, 31, 13, 30, tzinfo=UTC), datetime(2025, 11, 4, 21, 0, tzinfo=UTC)),
        (datetime(2025, 11, 28, 14, 30, tzinfo=UTC), datetime(2025, 11, 28, 18, 0, tzinfo=UTC)),
        (datetime(2025, 10, 8, 14, 7, tzinfo=UTC), datetime(2025, 10, 8, 16, 2, tzinfo=UTC)),
    ],
    ids=["session", "dst-change", "early-close", "mid-bucket"],
)
async def test_rollups_in_the_database_equal_the_services_rule(
    pg_database: tuple[str, str], start: datetime, end: datetime
) -> None:
    from mds.calendar import MarketCalendar
    from mds.providers.sim.market import ground_truth
    from mds.services.rollup import rollup

    cal = MarketCalendar()
    _, url = pg_database
    async with PostgresStore(url) as store:
        day = ground_truth("AAPL", M1, start - timedelta(days=1), end + timedelta(days=1))
        # Mixed providers, a provisional bar and a revision learned later.
        day = [
            b.with_(
                provider="sim_backup" if i % 7 == 0 else "sim",
                status=BarStatus.PROVISIONAL if i == 5 else b.status,
            )
            for i, b in enumerate(day)
        ]
        await store.write_bars(day, as_of=W1)
        await store.write_bars([day[20].with_(close=day[20].close + 3)], as_of=W2)
        sessions = [(s.open, s.close) for s in cal.sessions(start, end)]
        for as_of in (None, W1):
            rows = await store.read_bars("AAPL", M1, start, end, as_of=as_of)
            for interval in (Interval.M5, Interval.M15, Interval.H1):
                want = rollup(rows, interval, cal, datetime(2030, 1, 1, tzinfo=UTC))
                got = await store.read_rollup("AAPL", interval, start, end, sessions, as_of=as_of)
                assert got == want, (interval, as_of)
        assert want and any("+" in b.provider for b in want)


async def test_the_market_service_rolls_up_in_the_database_and_marks_open_buckets(
    pg_database: tuple[str, str],
) -> None:
    from mds.calendar import MarketCalendar
    from mds.domain.clock import ManualClock
    from mds.domain.models import Tier
    from mds.domain.records import UniverseEntry
    from mds.providers.sim.market import ground_truth
    from mds.services.market import MarketService

    _, url = pg_database
    open_ = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)
    now = datetime(2025, 10, 8, 15, 10, tzinfo=UTC)  # mid-bucket: 14:30-15:30 has not ended
    async with PostgresStore(url) as store:
        await store.upsert_universe([UniverseEntry("AAPL", Tier.T0)], version_tag="t", source_meta={})
        await store.write_bars(ground_truth("AAPL", M1, open_, now), as_of=now)
        market = MarketService(store=store, calendar=MarketCalendar(), clock=ManualClock(now))
        hourly = (await market.bars("AAPL", Interval.H1, open_, now)).bars
        assert [b.ts.hour * 60 + b.ts.minute for b in hourly] == [13 * 60 + 30, 14 * 60 + 30]
        assert [b.status for b in hourly] == [BarStatus.FINAL, BarStatus.PROVISIONAL]
        assert hourly[1].close == ground_truth("AAPL", M1, open_, now)[-1].close
