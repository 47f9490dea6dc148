"""Adjusted and bitemporal reads through the API, on a store holding raw bars across a 4:1
split and a dividend (as traded: closes ~4x higher before the split), with the actions
learned at known times.

The continuous series is the sim's ground truth; the raw one is built here from it by the
actions' definitions, so adjusting the raw series must give the ground truth back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import httpx
import numpy as np
import pytest
import talib

from mds.calendar import get_calendar
from mds.config import load_settings
from mds.corporate.adjust import cutoff
from mds.domain.actions import ActionType, CorporateAction
from mds.domain.clock import ManualClock
from mds.domain.models import Bar, Interval
from mds.providers.sim.market import ground_truth
from mds.runtime import Runtime, open_runtime
from tests.helpers import SIM_ENV
from tests.integration.conftest import asgi_client

NOW = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)
OPEN = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)
SPLIT_EX = date(2025, 6, 9)
DIV_EX = date(2025, 8, 11)
DIV = 0.5
LEARNED_SPLIT = datetime(2025, 5, 20, tzinfo=UTC)
LEARNED_DIV = datetime(2025, 7, 31, tzinfo=UTC)
CAL = get_calendar("XNYS")
START = OPEN - timedelta(days=500)


def _raw(truth: list[Bar]) -> list[Bar]:
    """As-traded bars from the continuous ``truth``: before the dividend's ex-date each price is
    truth * (c + D) / c (c the truth close before it), before the split that times 4."""
    prev = [b for b in truth if b.ts < cutoff(DIV_EX)][-1].close
    div_mult = (prev + DIV) / prev
    out = []
    for b in truth:
        m, v = 1.0, 1.0
        if b.ts < cutoff(DIV_EX):
            m *= div_mult
        if b.ts < cutoff(SPLIT_EX):
            m, v = m * 4, 0.25
        out.append(
            b._replace(
                open=b.open * m, high=b.high * m, low=b.low * m, close=b.close * m, volume=b.volume * v
            )
        )
    return out


TRUTH = ground_truth("AAPL", Interval.D1, START, OPEN)
RAW = _raw(TRUTH)


@pytest.fixture
async def rt(tmp_path) -> AsyncIterator[Runtime]:
    env = {**SIM_ENV, "DATABASE_URL": f"sqlite:///{tmp_path}/adjust.db"}
    async with open_runtime(
        load_settings(env), clock=ManualClock(NOW), demo=True, collect=False, environ=env
    ) as r:
        # Every bar learned at once, long after its session (a late backfill).
        await r.store.write_bars(RAW, as_of=NOW - timedelta(hours=1))
        split = CorporateAction("AAPL", ActionType.SPLIT, SPLIT_EX, ratio=4.0, source="sim")
        div = CorporateAction("AAPL", ActionType.DIVIDEND, DIV_EX, amount=DIV, currency="USD", source="sim")
        await r.store.write_corporate_actions([split], as_of=LEARNED_SPLIT)
        await r.store.write_corporate_actions([div], as_of=LEARNED_DIV)
        yield r


@pytest.fixture
async def client(rt: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(rt) as c:
        yield c


def _closes(body: dict) -> list[float]:
    return [b["close"] for b in body["bars"]]


async def test_history_raw_split_and_all(client: httpx.AsyncClient) -> None:
    raw = (await client.get("/stocks/AAPL/history", params={"period": "2y"})).json()
    assert raw["adjustment"] == {"mode": "raw", "actions": [], "skipped": []}
    assert _closes(raw) == [b.close for b in RAW]

    split = (await client.get("/stocks/AAPL/history", params={"period": "2y", "adjust": "split"})).json()
    assert split["adjustment"]["mode"] == "split"
    assert [(a["type"], a["ex_date"], a["factor"]) for a in split["adjustment"]["actions"]] == [
        ("split", "2025-06-09", 0.25)
    ]
    before = [b for b in RAW if b.ts < cutoff(SPLIT_EX)]
    assert _closes(split)[: len(before)] == pytest.approx([b.close / 4 for b in before], rel=1e-12)
    assert [b["volume"] for b in split["bars"]][: len(before)] == pytest.approx(
        [b.volume * 4 for b in before]
    )
    assert _closes(split)[len(before) :] == [b.close for b in RAW[len(before) :]]

    # Splits and the dividend: the continuous ground truth, to rounding.
    full = (await client.get("/stocks/AAPL/history", params={"period": "2y", "adjust": "all"})).json()
    assert [a["type"] for a in full["adjustment"]["actions"]] == ["split", "dividend"]
    assert _closes(full) == pytest.approx([b.close for b in TRUTH], rel=1e-9)
    assert [b["high"] for b in full["bars"]] == pytest.approx([b.high for b in TRUTH], rel=1e-9)


async def test_actions_learned_after_as_of_are_not_applied(rt: Runtime, client: httpx.AsyncClient) -> None:
    # MSFT: the same raw series, its bars up to 2025-07-01 learned that day.
    early = [b._replace(symbol="MSFT") for b in RAW if b.ts < cutoff(date(2025, 7, 1))]
    await rt.store.write_bars(early, as_of=datetime(2025, 7, 1, 22, 0, tzinfo=UTC))
    for a in await rt.store.corporate_actions("AAPL"):
        await rt.store.write_corporate_actions(
            [a.__class__(**{**_fields(a), "symbol": "MSFT"})], as_of=a.as_of
        )

    def read(as_of: str) -> dict:
        return {"period": "2y", "adjust": "all", "as_of": as_of}

    # On 2025-07-15 MDS knew the split, not the dividend (learned 2025-07-31).
    then = (await client.get("/stocks/MSFT/history", params=read("2025-07-15T00:00:00Z"))).json()
    assert [a["type"] for a in then["adjustment"]["actions"]] == ["split"]
    assert _closes(then)[0] == pytest.approx(early[0].close / 4, rel=1e-12)
    now = (await client.get("/stocks/MSFT/history", params=read("2025-10-08T14:00:00Z"))).json()
    # Now the dividend is known too, but MSFT has no stored close before its ex-date (bars stop
    # on 2025-06-30): it is named as skipped, not guessed.
    assert [a["type"] for a in now["adjustment"]["actions"]] == ["split"]
    assert [(a["type"], a["reason"]) for a in now["adjustment"]["skipped"]] == [
        ("dividend", "no stored close before the ex-date")
    ]
    # Before the split was learned: nothing to apply, raw prices.
    before = (await client.get("/stocks/MSFT/history", params=read("2025-05-19T00:00:00Z"))).json()
    assert before["adjustment"]["actions"] == [] and before["bars"] == []

    db = (
        await client.get(
            "/api/v1/market-data/db/history",
            params={
                "symbol": "AAPL",
                "start": "2025-05-01T00:00:00Z",
                "end": "2025-09-01T00:00:00Z",
                "adjust": "split",
            },
        )
    ).json()
    assert db["adjustment"]["mode"] == "split" and db["count"] > 0
    first = db["bars"][0]
    raw_first = next(b for b in RAW if b.ts.isoformat().replace("+00:00", "Z") == first["ts"])
    assert first["close"] == pytest.approx(raw_first.close / 4)


def _fields(action: CorporateAction) -> dict:
    return {name: getattr(action, name) for name in CorporateAction.__slots__}


async def test_an_event_date_read_is_in_that_dates_share_basis(client: httpx.AsyncClient) -> None:
    # History ending on 2025-06-06 (before the split) with adjust=split applies nothing: the
    # prices are as they traded then, and the read stops at that session.
    body = (
        await client.get(
            "/stocks/AAPL/history", params={"period": "1mo", "adjust": "split", "date": "2025-06-06"}
        )
    ).json()
    assert body["adjustment"]["actions"] == []
    last = body["bars"][-1]
    assert last["ts"].startswith("2025-06-06")
    assert last["close"] == pytest.approx([b for b in RAW if b.ts < cutoff(SPLIT_EX)][-1].close)


async def test_a_snapshot_across_the_split_equals_talib_on_the_adjusted_series(
    client: httpx.AsyncClient,
) -> None:
    snap = (await client.get("/api/v1/market/ta", params={"symbol": "AAPL"})).json()
    assert snap["adjustment"]["mode"] == "split"
    assert [a["type"] for a in snap["adjustment"]["actions"]] == ["split"]
    used = RAW[-300:]
    factor = np.array([0.25 if b.ts < cutoff(SPLIT_EX) else 1.0 for b in used])
    h = np.array([b.high for b in used]) * factor
    lo = np.array([b.low for b in used]) * factor
    c = np.array([b.close for b in used]) * factor
    assert snap["bars_used"] == 300
    assert snap["sma_200"] == pytest.approx(talib.SMA(c, 200)[-1], rel=1e-12)
    assert snap["rsi_14"] == pytest.approx(talib.RSI(c, 14)[-1], rel=1e-9)
    assert snap["atr_14"] == pytest.approx(talib.ATR(h, lo, c, 14)[-1], rel=1e-9)
    # The raw series' SMA200 would be dragged up by the pre-split closes.
    assert talib.SMA(np.array([b.close for b in used]), 200)[-1] > 1.5 * snap["sma_200"]


async def test_date_versus_as_of_on_bars_learned_after_their_session(client: httpx.AsyncClient) -> None:
    # Every bar was learned on NOW - 1h: as of 2025-07-01 MDS knew none of them.
    pit = (await client.get("/api/v1/market/ta", params={"symbol": "AAPL", "as_of": "2025-07-01"})).json()
    assert pit["bars_used"] == 0 and pit["sma_200"] is None
    assert "as_of" in pit["reasons"]["sma_200"] and "learned later" in pit["reasons"]["sma_200"]
    # Event time: the sessions up to 2025-07-01, whenever they were learned.
    on = (await client.get("/api/v1/market/ta", params={"symbol": "AAPL", "date": "2025-07-01"})).json()
    assert on["as_of"] == "2025-07-01" and on["date"] == "2025-07-01" and on["bars_used"] > 200
    used = [b for b in RAW if b.ts < cutoff(date(2025, 7, 2))][-300:]
    c = np.array([b.close / 4 if b.ts < cutoff(SPLIT_EX) else b.close for b in used])
    assert on["sma_200"] == pytest.approx(talib.SMA(c, 200)[-1], rel=1e-12)
    # Both: on 2025-07-01 with what was known at NOW - 2h: nothing yet, and the reason names as_of.
    both = (
        await client.get(
            "/api/v1/market/ta",
            params={"symbol": "AAPL", "date": "2025-07-01", "as_of": "2025-10-08T13:00:00Z"},
        )
    ).json()
    assert both["bars_used"] == 0 and "learned later" in both["reasons"]["sma_200"]
    # A date before any session stored: the reason names the event axis.
    early = (await client.get("/api/v1/market/ta", params={"symbol": "AAPL", "date": "2024-01-02"})).json()
    assert early["bars_used"] == 0
    assert early["reasons"]["sma_200"] == "no daily bars with a session on or before 2024-01-02"


async def test_recorded_history_keeps_the_adjustment_it_was_computed_with(rt: Runtime) -> None:
    from mds.runtime import analysis_service

    svc = analysis_service(rt)
    report = await svc.record_history(["AAPL"])
    assert report["recorded"] == 1
    row = await svc.history("AAPL", date(2025, 10, 7))
    assert row["adjustment"]["mode"] == "split"
    assert [(a["type"], a["ex_date"], a["factor"]) for a in row["adjustment"]["actions"]] == [
        ("split", "2025-06-09", 0.25)
    ]
    # As of a day before the bars were learned there is nothing to record (point in time).
    early = await svc.record_history(["AAPL"], as_of=date(2025, 5, 19))
    assert early["recorded"] == 0 and early["skipped_without_bars"] == ["AAPL"]


async def test_atr_is_computed_on_the_split_adjusted_series(client: httpx.AsyncClient) -> None:
    body = (await client.get("/api/v1/market/atr", params={"symbol": "AAPL"})).json()
    assert [a["type"] for a in body["adjustment"]["actions"]] == ["split"]
    used = RAW[-300:]
    factor = np.array([0.25 if b.ts < cutoff(SPLIT_EX) else 1.0 for b in used])
    h, lo, c = (np.array([getattr(b, f) for b in used]) * factor for f in ("high", "low", "close"))
    assert body["atr_14"] == pytest.approx(talib.ATR(h, lo, c, 14)[-1], rel=1e-9)
