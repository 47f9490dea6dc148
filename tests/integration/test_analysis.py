"""Analysis snapshots over a real SQLite store filled with sim ground-truth daily bars.

Point in time: bars are written with as_of stamps, one is revised later, and a snapshot
as of an earlier date must see neither the revision nor the later bars.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import httpx
import numpy as np
import pytest
import talib

from mds.analysis import indicators as ind
from mds.analysis.base import TECHNICAL, HistoryEntry, HistoryExists
from mds.analysis.snapshot import to_day_number
from mds.calendar import get_calendar
from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Bar, Interval
from mds.errors import StorageError
from mds.providers.sim.market import ground_truth
from mds.runtime import Runtime, analysis_service, open_runtime
from mds.storage.sqlite.analysis import SqliteAnalysisStore
from tests.helpers import SIM_ENV
from tests.integration.conftest import asgi_client

NOW = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)
OPEN = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)
D = date(2025, 9, 30)  # the point-in-time date
LEARNED_D = datetime(2025, 9, 30, 22, 0, tzinfo=UTC)  # after D's close, before D ends in New York
LEARNED_LATER = datetime(2025, 10, 7, 22, 0, tzinfo=UTC)
REVISED = datetime(2025, 10, 7, 23, 0, tzinfo=UTC)
ENV = dict(SIM_ENV)
CAL = get_calendar("XNYS")


def _truth(symbol: str, start: datetime, end: datetime) -> list[Bar]:
    return ground_truth(symbol, Interval.D1, start, end)


def _arrays(bars: list[Bar]) -> tuple[np.ndarray, ...]:
    cols = np.array([(b.open, b.high, b.low, b.close) for b in bars]).T
    days = np.array([to_day_number(b.ts.date()) for b in bars])
    return (*cols, days)


def _sessions(bars: list[Bar]) -> np.ndarray:
    s = CAL.sessions(bars[0].ts - timedelta(days=10), bars[-1].ts + timedelta(days=1))
    return np.array([to_day_number(x.date) for x in s])


@pytest.fixture
async def rt(tmp_path) -> AsyncIterator[Runtime]:
    env = {**ENV, "DATABASE_URL": f"sqlite:///{tmp_path}/analysis.db"}
    async with open_runtime(
        load_settings(env), clock=ManualClock(NOW), demo=True, collect=False, environ=env
    ) as r:
        start = OPEN - timedelta(days=500)
        early = _truth("SPY", start, datetime(2025, 10, 1, tzinfo=UTC))
        late = _truth("SPY", datetime(2025, 10, 1, tzinfo=UTC), OPEN)
        await r.store.write_bars(early, as_of=LEARNED_D)
        await r.store.write_bars(late, as_of=LEARNED_LATER)
        # D's bar is revised after the fact: close up 1 %.
        last = early[-1]
        bumped = round(last.close * 1.01, 2)
        await r.store.write_bars([last.with_(close=bumped, high=max(last.high, bumped))], as_of=REVISED)
        # A short history: about 30 bars.
        await r.store.write_bars(_truth("AAPL", OPEN - timedelta(days=44), OPEN), as_of=NOW)
        yield r


@pytest.fixture
async def client(rt: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(rt) as c:
        yield c


def _assert_talib_equal(snap: dict, bars: list[Bar]) -> None:
    o, h, lo, c, _ = _arrays(bars)
    assert snap["rsi_14"] == talib.RSI(c, 14)[-1]
    assert snap["sma_200"] == talib.SMA(c, 200)[-1]
    assert snap["ema_200"] == talib.EMA(c, 200)[-1]
    assert snap["atr_14"] == talib.ATR(h, lo, c, 14)[-1]
    assert snap["adx_14"] == talib.ADX(h, lo, c, 14)[-1]
    assert snap["macd_signal"] == talib.MACD(c, 12, 26, 9)[1][-1]


async def test_point_in_time_snapshot_ignores_later_bars_and_revisions(rt: Runtime) -> None:
    svc = analysis_service(rt)
    then = await svc.snapshot("SPY", as_of=D)
    bars_then = _truth("SPY", OPEN - timedelta(days=500), datetime(2025, 10, 1, tzinfo=UTC))[-300:]
    assert then["as_of"] == "2025-09-30" and then["bars_used"] == 300
    assert then["close"] == bars_then[-1].close  # the original, not the revision
    _assert_talib_equal(then, bars_then)
    assert then == {
        **ind.compute_one(*_arrays(bars_then), symbol="SPY", sessions=_sessions(bars_then)),
        "source": "computed",
        "computed_as_of": then["computed_as_of"],
        # No action is known for SPY: split-adjusted (the default) equals raw.
        "adjustment": {"mode": "split", "actions": [], "skipped": []},
    }

    now = await svc.snapshot("spy")
    assert now["as_of"] == "2025-10-07" and now["source"] == "computed"
    stored = await rt.store.read_bars("SPY", Interval.D1, OPEN - timedelta(days=600), OPEN, limit=300)
    _assert_talib_equal(now, stored)
    revised = [b for b in stored if b.ts.date() == D]
    assert revised[0].close == round(bars_then[-1].close * 1.01, 2)

    # Asked as of a moment before the revision but after the later bars were learned.
    mid = await svc.snapshot("SPY", as_of=LEARNED_LATER + timedelta(minutes=1))
    assert mid["as_of"] == "2025-10-07"
    assert mid["perf_5d"] != now["perf_5d"]  # 5 sessions back is D: original vs revised close


async def test_bulk_reader_matches_read_bars(rt: Runtime) -> None:
    reader = SqliteAnalysisStore(rt.store)  # type: ignore[arg-type]
    for as_of in (None, LEARNED_D, REVISED - timedelta(seconds=1), REVISED):
        got = await reader.daily_bars(["SPY", "AAPL", "MSFT"], OPEN, as_of=as_of, limit=300)
        for sym in ("SPY", "AAPL", "MSFT"):
            bars = await rt.store.read_bars(
                sym, Interval.D1, OPEN - timedelta(days=2000), OPEN, as_of=as_of, limit=300
            )
            want = np.array([(b.ts.timestamp(), b.open, b.high, b.low, b.close) for b in bars]).reshape(-1, 5)
            assert np.array_equal(got[sym], want), (sym, as_of)


async def test_cache_is_served_until_a_new_bar_arrives(rt: Runtime) -> None:
    svc = analysis_service(rt)
    first = await svc.snapshot("SPY")
    second = await svc.snapshot("SPY")
    assert (first["source"], second["source"]) == ("computed", "cache")
    assert {k: v for k, v in second.items() if k not in ("source",)} == {
        k: v for k, v in first.items() if k != "source"
    }
    # A new bar learned after the snapshot makes it stale.
    rt.clock.set(NOW + timedelta(days=1))  # type: ignore[attr-defined]
    nxt = _truth("SPY", OPEN, OPEN + timedelta(days=1))
    await rt.store.write_bars(nxt, as_of=NOW + timedelta(hours=12))
    third = await svc.snapshot("SPY")
    assert third["source"] == "computed" and third["as_of"] == "2025-10-08"


async def test_refresh_and_history_are_immutable(rt: Runtime) -> None:
    svc = analysis_service(rt)
    out = await svc.refresh()
    assert out["symbols"] == len(await rt.store.universe())
    assert "SPY" not in out["without_bars"] and "MSFT" in out["without_bars"]
    cached = await svc.analysis.get_cache("SPY", TECHNICAL, now=NOW)
    assert cached is not None and cached.snapshot["as_of"] == "2025-10-07"

    first = await svc.record_history(["SPY", "AAPL", "MSFT"])
    assert first["recorded"] == 2 and first["refused"] == [] and first["skipped_without_bars"] == ["MSFT"]
    again = await svc.record_history(["SPY", "AAPL"])
    assert again["recorded"] == 0 and again["refused"] == ["AAPL", "SPY"]
    pit = await svc.record_history(["SPY"], as_of=D)
    assert pit["recorded"] == 1
    row = await svc.analysis.get_history("SPY", TECHNICAL, "2025-09-30")
    assert row is not None and row.snapshot["close"] == (await svc.snapshot("SPY", as_of=D))["close"]

    with pytest.raises(HistoryExists):
        await svc.analysis.insert_history(HistoryEntry("SPY", TECHNICAL, "2025-09-30", {"close": 1.0}, NOW))
    store = rt.store
    with pytest.raises(StorageError, match="immutable"):
        await store.db.transaction(  # type: ignore[attr-defined]
            lambda conn: conn.execute("UPDATE market_analysis_history SET close = 0")
        )
    with pytest.raises(StorageError, match="immutable"):
        await store.db.transaction(  # type: ignore[attr-defined]
            lambda conn: conn.execute("DELETE FROM market_analysis_history")
        )
    kept = await svc.analysis.list_history("SPY", TECHNICAL, "2025-01-01", "2025-12-31")
    assert [h.as_of_date for h in kept] == ["2025-09-30", "2025-10-07"]
    assert kept[0].snapshot == row.snapshot


async def test_snapshot_as_mds_ta_prints_it(rt: Runtime) -> None:
    snap = await analysis_service(rt).snapshot("AAPL")
    assert snap["symbol"] == "AAPL" and snap["bars_used"] == len(
        _truth("AAPL", OPEN - timedelta(days=44), OPEN)
    )
    assert snap["sma_200"] is None and "200" in snap["reasons"]["sma_200"]
    json.dumps(snap, allow_nan=False)


async def test_api_ta_atr_prices(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/market/ta", params={"symbol": "SPY"})
    assert r.status_code == 200, r.text
    body = r.json()
    for f in ind.FIELDS:
        assert f in body
    assert body["ma_bucket"] in ind.BUCKETS and body["stage_label"] in ind.STAGES
    assert all(body[f] is not None for f in ind.TALIB_FIELDS + ind.HAND_FLOAT_FIELDS)

    r = await client.get("/api/v1/market/ta", params={"symbol": "SPY", "as_of": "2025-09-30"})
    assert r.status_code == 200 and r.json()["as_of"] == "2025-09-30"

    r = await client.get("/api/v1/market/ta", params={"symbol": "AAPL"})
    short = r.json()
    assert r.status_code == 200 and short["sma_50"] is None and short["reasons"]["sma_50"]
    assert short["perf_252d"] is None and short["rsi_14"] is not None
    assert "NaN" not in r.text

    r = await client.get("/api/v1/market/atr", params={"symbol": "SPY"})
    atr = r.json()
    assert (
        r.status_code == 200 and atr["atr_14"] > 0 and atr["regime"] in ("LOW", "NORMAL", "HIGH", "EXTREME")
    )

    r = await client.get("/api/v1/market/prices", params={"symbol": "SPY", "range": "200d", "interval": "1d"})
    prices = r.json()
    assert r.status_code == 200 and prices["count"] == 199  # today's session has no daily bar yet
    assert prices["bars"][-1]["ts"] == "2025-10-07T13:30:00Z"


async def test_api_errors(client: httpx.AsyncClient) -> None:
    for path in ("/api/v1/market/ta", "/api/v1/market/atr", "/api/v1/market/prices"):
        r = await client.get(path, params={"symbol": "NOPE"})
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
    r = await client.get("/api/v1/market/ta", params={"symbol": "SPY", "as_of": "2025-13-01"})
    assert r.status_code == 422 and r.json()["field"] == "as_of"
    r = await client.get("/api/v1/market/prices", params={"symbol": "SPY", "range": "forever"})
    assert r.status_code == 422 and r.json()["field"] == "range"
    r = await client.get("/api/v1/market/prices", params={"symbol": "SPY", "interval": "2d"})
    assert r.status_code == 422 and r.json()["field"] == "interval"
    r = await client.post("/api/v1/market-data/admin/history/record", json={"analysis_type": "Bad Type"})
    assert r.status_code == 422 and r.json()["field"] == "analysis_type"


async def test_api_refresh_and_record(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/market-data/admin/indicators/refresh-index")
    assert r.status_code == 200 and r.json()["symbols"] > 2
    r = await client.post("/api/v1/market-data/admin/indicators/refresh-index", json={"symbols": ["SPY"]})
    assert r.status_code == 200 and r.json()["symbols"] == 1
    r = await client.post("/api/v1/market-data/admin/history/record", json={"symbols": ["SPY"]})
    assert r.status_code == 200 and r.json()["recorded"] == 1
    r = await client.post("/api/v1/market-data/admin/history/record", json={"symbols": ["SPY"]})
    assert r.status_code == 200 and r.json()["refused"] == ["SPY"]
    r = await client.post("/api/v1/market-data/admin/history/record", json={"symbols": ["NOPE"]})
    assert r.status_code == 404
