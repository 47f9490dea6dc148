"""One AnalysisStore contract, run against SQLite (file and memory) and PostgreSQL.

Every test takes ``analysis`` (the analysis store :func:`analysis_store_for` picks for the
conftest's ``store``), so it runs once per backend; nothing is mocked. The last test runs
the ``/api/v1/market/ta`` family on a PostgreSQL-backed runtime and compares it with the
same data on SQLite.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from mds.analysis import indicators as ind
from mds.analysis.base import (
    TECHNICAL,
    AnalysisStore,
    CacheEntry,
    HistoryEntry,
    HistoryExists,
    RecordResult,
)
from mds.api.errors import install_error_handlers
from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Bar, Interval
from mds.errors import StorageError
from mds.providers.sim.market import ground_truth
from mds.runtime import Runtime, open_runtime
from mds.storage.base import Store
from mds.storage.factory import analysis_store_for
from mds.storage.postgres import PostgresStore
from mds.storage.postgres.analysis import PostgresAnalysisStore
from mds.storage.sqlite import SqliteStore
from mds.storage.sqlite.analysis import SqliteAnalysisStore
from tests.helpers import SIM_ENV
from tests.integration.conftest import asgi_client

Fetch = Callable[[str], Awaitable[list[tuple[Any, ...]]]]

D1 = Interval.D1
S0 = datetime(2025, 9, 22, 13, 30, tzinfo=UTC)  # a session open; the bars are daily from here
L1 = datetime(2025, 9, 30, 22, 0, tzinfo=UTC)  # first learned
L2 = datetime(2025, 10, 1, 22, 0, tzinfo=UTC)  # one bar revised
L3 = datetime(2025, 10, 2, 22, 0, tzinfo=UTC)  # the newest bar learned
NOW = datetime(2025, 10, 8, 15, 0, 0, 123456, tzinfo=UTC)  # microseconds must survive
# Values that catch lossy JSON storage: nesting, null, unicode, a float needing 17 digits.
SNAP: dict[str, Any] = {
    "symbol": "SPY",
    "as_of": "2025-10-07",
    "bars_used": 300,
    "close": 0.1 + 0.2,
    "rsi_14": 55.5,
    "ma_bucket": "ABOVE_ALL",
    "stage_label": "STAGE_2",
    "stage_slope_pct": -0.25,
    "stage_dist_pct": 3.0,
    "sma_200": None,
    "reasons": {"sma_200": "needs 200 bars, 30 available — Ünïcode"},
    "gaps": [1, 2.5, None],
}


@pytest.fixture
def analysis(store: Store) -> AnalysisStore:
    return analysis_store_for(store)


async def _execute(store: Store, sql: str) -> None:
    """Run a writing statement outside the analysis store, as a careless admin would."""
    if isinstance(store, SqliteStore):
        await store.db.transaction(lambda conn: conn.execute(sql))
    else:
        assert isinstance(store, PostgresStore)
        await store.db.execute(sql)


def _bar(symbol: str, day: int, close: float) -> Bar:
    return Bar(symbol, D1, S0 + timedelta(days=day), close - 1, close + 2, close - 2, close, 1e6, "sim")


def _rows(bars: list[Bar]) -> np.ndarray:
    return np.array([(b.ts.timestamp(), b.open, b.high, b.low, b.close) for b in bars]).reshape(-1, 5)


def _history(symbol: str, day: str, kind: str = TECHNICAL, **snap: Any) -> HistoryEntry:
    return HistoryEntry(symbol, kind, day, {**SNAP, "symbol": symbol, "as_of": day, **snap}, NOW)


async def test_analysis_store_for_picks_the_backends_store(store: Store, analysis: AnalysisStore) -> None:
    want = PostgresAnalysisStore if isinstance(store, PostgresStore) else SqliteAnalysisStore
    assert type(analysis) is want


# ------------------------------------------------------------------------ daily bars
async def test_daily_bars_point_in_time(store: Store, analysis: AnalysisStore) -> None:
    spy = [_bar("SPY", d, 100.0 + d) for d in range(4)]
    newest = _bar("SPY", 4, 104.0)
    revised = spy[2].with_(close=150.0, high=152.0)
    aapl = [_bar("AAPL", d, 200.0 + d) for d in range(2)]
    await store.write_bars(spy + aapl, as_of=L1)
    await store.write_bars([revised], as_of=L2)
    await store.write_bars([newest], as_of=L3)
    end = S0 + timedelta(days=30)
    current = [spy[0], spy[1], revised, spy[3], newest]

    got = await analysis.daily_bars(["MSFT", "SPY", "AAPL"], end, as_of=None, limit=300)
    assert list(got) == ["MSFT", "SPY", "AAPL"]  # the caller's order: the engine relies on it
    assert got["MSFT"].shape == (0, 5)
    assert np.array_equal(got["SPY"], _rows(current))
    assert np.array_equal(got["AAPL"], _rows(aapl))

    cases = [
        (L1 - timedelta(microseconds=1), []),  # nothing known yet
        (L1, spy),
        (L2 - timedelta(microseconds=1), spy),  # before the revision: the original close
        (L2, [spy[0], spy[1], revised, spy[3]]),  # the revision, not yet the newest bar
        (L3, current),
    ]
    for as_of, want in cases:
        got = await analysis.daily_bars(["SPY"], end, as_of=as_of, limit=300)
        assert np.array_equal(got["SPY"], _rows(want)), as_of
        # The same rule as the bar store's own point-in-time read.
        bars = await store.read_bars("SPY", D1, S0 - timedelta(days=1), end, as_of=as_of, limit=300)
        assert np.array_equal(got["SPY"], _rows(bars)), as_of

    # ts < end is half open, and limit keeps the newest bars.
    got = await analysis.daily_bars(["SPY"], newest.ts, as_of=L2 - timedelta(microseconds=1), limit=2)
    assert np.array_equal(got["SPY"], _rows(spy[2:4]))
    got = await analysis.daily_bars(["SPY"], end, as_of=None, limit=0)
    assert got["SPY"].shape == (0, 5)
    assert await analysis.daily_bars([], end, as_of=None, limit=300) == {}


async def test_daily_bars_reads_many_symbols_in_callers_order(store: Store, analysis: AnalysisStore) -> None:
    # More symbols than either backend reads in one go, with bars at the chunk edges.
    symbols = [f"Z{i:04d}" for i in range(2100)]
    holders = {symbols[0]: 10.0, symbols[999]: 20.0, symbols[1000]: 30.0, symbols[-1]: 40.0}
    written = {s: [_bar(s, d, c + d) for d in range(3)] for s, c in holders.items()}
    await store.write_bars([b for bars in written.values() for b in bars], as_of=L1)

    got = await analysis.daily_bars(symbols + [symbols[1000]], S0 + timedelta(days=30), as_of=L1, limit=2)
    assert list(got) == symbols
    for sym in symbols:
        want = _rows(written[sym][-2:]) if sym in written else np.zeros((0, 5))
        assert np.array_equal(got[sym], want), sym
        assert got[sym].dtype == np.float64


# ---------------------------------------------------------------------------- cache
async def test_cache_upsert_and_expiry(analysis: AnalysisStore, fetch: Fetch) -> None:
    expires = NOW + timedelta(minutes=5)
    other = {**SNAP, "symbol": "AAPL", "ma_bucket": None, "stage_slope_pct": None, "bars_used": None}
    assert await analysis.put_cache([]) == 0
    n = await analysis.put_cache(
        [CacheEntry("SPY", TECHNICAL, SNAP, NOW, expires), CacheEntry("AAPL", TECHNICAL, other, NOW, expires)]
    )
    assert n == 2

    hit = await analysis.get_cache("SPY", TECHNICAL, now=expires - timedelta(microseconds=1))
    assert hit == CacheEntry("SPY", TECHNICAL, SNAP, NOW, expires)
    assert hit.computed_at.utcoffset() == timedelta(0)
    assert await analysis.get_cache("SPY", TECHNICAL, now=expires) is None  # expiry is exclusive
    assert await analysis.get_cache("SPY", TECHNICAL, now=expires + timedelta(days=1)) is None
    assert await analysis.get_cache("SPY", "fundamental", now=NOW) is None
    assert await analysis.get_cache("MSFT", TECHNICAL, now=NOW) is None

    # The headline columns an admin filters on, without parsing JSON.
    rows = await fetch(
        "SELECT symbol, as_of_date, bars_used, ma_bucket, stage_label, stage_slope_pct, stage_dist_pct"
        " FROM market_analysis_cache ORDER BY symbol"
    )
    assert [tuple(r) for r in rows] == [
        ("AAPL", "2025-10-07", 0, None, "STAGE_2", None, 3.0),
        ("SPY", "2025-10-07", 300, "ABOVE_ALL", "STAGE_2", -0.25, 3.0),
    ]

    # A refresh replaces the entry, even an expired one; within one batch the last wins.
    later = NOW + timedelta(days=1)
    fresh = {**SNAP, "as_of": "2025-10-08", "close": 101.0}
    n = await analysis.put_cache(
        [
            CacheEntry("SPY", TECHNICAL, {**SNAP, "close": 1.0}, later, later + timedelta(hours=1)),
            CacheEntry("SPY", TECHNICAL, fresh, later, later + timedelta(hours=2)),
        ]
    )
    assert n == 2
    assert await analysis.get_cache("SPY", TECHNICAL, now=later) == CacheEntry(
        "SPY", TECHNICAL, fresh, later, later + timedelta(hours=2)
    )
    assert await fetch("SELECT count(*) FROM market_analysis_cache") == [(2,)]


# -------------------------------------------------------------------------- history
async def test_history_is_immutable(store: Store, analysis: AnalysisStore, fetch: Fetch) -> None:
    first = _history("SPY", "2025-09-30")
    await analysis.insert_history(first)
    assert await analysis.get_history("SPY", TECHNICAL, "2025-09-30") == first
    assert await analysis.get_history("SPY", TECHNICAL, "2025-10-01") is None
    assert await analysis.get_history("SPY", "fundamental", "2025-09-30") is None

    with pytest.raises(HistoryExists) as err:
        await analysis.insert_history(_history("SPY", "2025-09-30", close=1.0))
    assert (err.value.symbol, err.value.analysis_type, err.value.as_of_date) == (
        "SPY",
        TECHNICAL,
        "2025-09-30",
    )
    assert await analysis.get_history("SPY", TECHNICAL, "2025-09-30") == first  # the first stands

    # Past the store, the database itself refuses rewrites.
    for sql in ("UPDATE market_analysis_history SET close = 0", "DELETE FROM market_analysis_history"):
        with pytest.raises(StorageError, match="immutable"):
            await _execute(store, sql)
    assert await fetch("SELECT symbol, close FROM market_analysis_history") == [("SPY", SNAP["close"])]


async def test_history_conflict_is_a_409(analysis: AnalysisStore) -> None:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/record")
    async def record() -> dict[str, str]:
        await analysis.insert_history(_history("SPY", "2025-09-30"))
        return {"ok": "yes"}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://mds") as client:
        assert (await client.post("/record")).status_code == 200
        r = await client.post("/record")
    assert r.status_code == 409, r.text
    assert r.json()["key"] == "SPY/technical/2025-09-30"


async def test_record_history_reports_refused_keys(analysis: AnalysisStore) -> None:
    kept = _history("SPY", "2025-09-30")
    await analysis.insert_history(kept)
    assert await analysis.record_history([]) == RecordResult([], [])

    result = await analysis.record_history(
        [
            _history("SPY", "2025-09-30", close=1.0),  # already recorded
            _history("AAPL", "2025-09-30", close=2.0),
            _history("SPY", "2025-10-01"),
            _history("AAPL", "2025-09-30", close=3.0),  # repeated within the batch
            _history("SPY", "2025-09-30", kind="fundamental"),
        ]
    )
    assert result == RecordResult(written=["AAPL", "SPY", "SPY"], refused=["SPY", "AAPL"])
    assert await analysis.get_history("SPY", TECHNICAL, "2025-09-30") == kept
    aapl = await analysis.get_history("AAPL", TECHNICAL, "2025-09-30")
    assert aapl is not None and aapl.snapshot["close"] == 2.0  # the batch's first, not its last
    assert await analysis.get_history("SPY", "fundamental", "2025-09-30") is not None

    again = await analysis.record_history([_history("SPY", "2025-10-01"), _history("MSFT", "2025-10-01")])
    assert again == RecordResult(written=["MSFT"], refused=["SPY"])


async def test_list_history_range_and_order(analysis: AnalysisStore) -> None:
    days = ["2025-10-02", "2025-09-29", "2025-10-10", "2025-09-30", "2025-10-01"]
    await analysis.record_history([_history("SPY", d, close=float(i)) for i, d in enumerate(days)])
    await analysis.record_history(
        [_history("AAPL", "2025-09-30"), _history("SPY", "2025-09-30", kind="fundamental")]
    )

    listed = await analysis.list_history("SPY", TECHNICAL, "2025-09-30", "2025-10-02")
    inside = ["2025-09-30", "2025-10-01", "2025-10-02"]  # both ends are in the range
    assert listed == [_history("SPY", d, close=float(days.index(d))) for d in inside]
    everything = await analysis.list_history("SPY", TECHNICAL, "2025-01-01", "2025-12-31")
    assert [h.as_of_date for h in everything] == sorted(days)
    assert await analysis.list_history("SPY", TECHNICAL, "2025-10-03", "2025-10-09") == []
    assert await analysis.list_history("SPY", TECHNICAL, "2025-10-02", "2025-09-30") == []
    assert [h.symbol for h in await analysis.list_history("AAPL", TECHNICAL, "2025", "2026")] == ["AAPL"]


# ------------------------------------------------- the routes on a PostgreSQL runtime
TA_NOW = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)
TA_OPEN = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)
TA_D = date(2025, 9, 30)
ENV = dict(SIM_ENV)


@asynccontextmanager
async def _ta_client(database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    """The analysis routes over a runtime on ``database_url``, with SPY's daily bars, one revised."""
    env = {**ENV, "DATABASE_URL": database_url}
    async with open_runtime(
        load_settings(env), clock=ManualClock(TA_NOW), demo=True, collect=False, environ=env
    ) as rt:
        split = datetime(2025, 10, 1, tzinfo=UTC)
        early = ground_truth("SPY", D1, TA_OPEN - timedelta(days=500), split)
        await rt.store.write_bars(early, as_of=datetime(2025, 9, 30, 22, 0, tzinfo=UTC))
        await rt.store.write_bars(
            ground_truth("SPY", D1, split, TA_OPEN), as_of=datetime(2025, 10, 7, 22, 0, tzinfo=UTC)
        )
        last = early[-1]
        bumped = round(last.close * 1.01, 2)
        await rt.store.write_bars(
            [last.with_(close=bumped, high=max(last.high, bumped))],
            as_of=datetime(2025, 10, 7, 23, 0, tzinfo=UTC),
        )
        async with asgi_client(rt) as client:  # the whole app, with an admin key
            yield client, rt


async def test_ta_route_on_postgres_runtime(pg_database: tuple[str, str], tmp_path: Path) -> None:
    _, url = pg_database
    async with _ta_client(url) as (client, rt):
        assert isinstance(rt.store, PostgresStore)
        r = await client.get("/api/v1/market/ta", params={"symbol": "SPY"})
        assert r.status_code == 200, r.text
        snap = r.json()
        assert snap["source"] == "computed" and snap["as_of"] == "2025-10-07" and snap["bars_used"] == 300
        assert all(snap[f] is not None for f in ind.TALIB_FIELDS + ind.HAND_FLOAT_FIELDS), snap
        latest = await rt.store.latest_bar("SPY", D1)
        assert latest is not None and snap["close"] == latest.close

        # The second answer comes from the PostgreSQL cache, unchanged.
        r = await client.get("/api/v1/market/ta", params={"symbol": "SPY"})
        cached = r.json()
        assert r.status_code == 200 and cached["source"] == "cache"
        assert {k: v for k, v in cached.items() if k != "source"} == {
            k: v for k, v in snap.items() if k != "source"
        }

        r = await client.get("/api/v1/market/ta", params={"symbol": "SPY", "as_of": TA_D.isoformat()})
        then = r.json()
        assert r.status_code == 200 and then["as_of"] == "2025-09-30"
        original = ground_truth("SPY", D1, TA_OPEN - timedelta(days=500), datetime(2025, 10, 1, tzinfo=UTC))
        assert then["close"] == original[-1].close  # the revision was learned later

        r = await client.post("/api/v1/market-data/admin/indicators/refresh-index", json={"symbols": ["SPY"]})
        assert r.status_code == 200 and r.json()["symbols"] == 1
        for want in ({"recorded": 1, "refused": []}, {"recorded": 0, "refused": ["SPY"]}):
            r = await client.post("/api/v1/market-data/admin/history/record", json={"symbols": ["SPY"]})
            assert r.status_code == 200, r.text
            assert {k: r.json()[k] for k in want} == want

    # The same data on SQLite gives the same snapshots.
    async with _ta_client(f"sqlite:///{tmp_path}/ta.db") as (client, _):
        sqlite_now = (await client.get("/api/v1/market/ta", params={"symbol": "SPY"})).json()
        sqlite_then = (
            await client.get("/api/v1/market/ta", params={"symbol": "SPY", "as_of": TA_D.isoformat()})
        ).json()
    assert sqlite_now == snap
    assert sqlite_then == then
