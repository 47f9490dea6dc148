"""The kept-bytes fast path answers exactly as the full route does, and never stale."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from mds.domain.models import Interval, Tier
from mds.domain.records import UniverseEntry
from mds.runtime import Runtime
from mds.services import market as market_module
from mds.services.bar_cache import SeriesGenerations

OPEN = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)  # the api fixture (conftest) holds 1m bars from here
CLOSED = {"start": "2025-10-08T13:30:00Z", "end": "2025-10-08T14:00:00Z"}


def cache_count(rt: Runtime, result: str) -> float:
    return rt.metrics.value("bars_response_cache_total", result=result)


async def test_a_kept_answer_is_the_routes_answer_byte_for_byte(api, monkeypatch) -> None:
    client, rt = api
    route_path = rt.market.bars_json

    async def not_the_route(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("the fast path should have answered")

    for interval in ("1m", "5m", "1h"):
        params = {**CLOSED, "interval": interval}
        monkeypatch.setattr(rt.market, "bars_json", route_path)
        full = await client.get("/stocks/AAPL/intraday", params=params)
        assert full.status_code == 200
        hits = cache_count(rt, "hit")
        monkeypatch.setattr(rt.market, "bars_json", not_the_route)
        fast = await client.get("/stocks/aapl/intraday", params=params)  # symbols are case-blind
        assert cache_count(rt, "hit") == hits + 1
        assert fast.status_code == 200
        assert fast.content == full.content
        assert fast.headers["content-type"] == "application/json"
        assert int(fast.headers["content-length"]) == len(full.content)
    monkeypatch.setattr(rt.market, "bars_json", route_path)
    assert len((await client.get("/stocks/AAPL/intraday", params=CLOSED)).json()["bars"]) == 30


async def test_what_the_route_refuses_is_still_refused(api) -> None:
    client, rt = api
    assert (await client.get("/stocks/AAPL/intraday", params=CLOSED)).status_code == 200  # kept now
    bad = [
        ({**CLOSED, "interval": "2m"}, 422, "interval"),
        ({**CLOSED, "interval": "1d"}, 422, "interval"),
        ({**CLOSED, "end": "2025-10-08T14:00:00"}, 422, "end"),  # no zone
        ({"start": CLOSED["end"], "end": CLOSED["start"]}, 422, "start"),
    ]
    for params, status, field in bad:
        r = await client.get("/stocks/AAPL/intraday", params=params)
        assert r.status_code == status, (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["field"] == field
    r = await client.get("/stocks/NOPE/intraday", params=CLOSED)
    assert r.status_code == 404 and "NOPE" in r.json()["detail"]
    # An open range (no end: up to now) is always built afresh.
    bypass = cache_count(rt, "bypass")
    assert (await client.get("/stocks/AAPL/intraday", params={"start": CLOSED["start"]})).status_code == 200
    assert cache_count(rt, "bypass") == bypass + 1


async def test_a_revision_or_a_removal_is_seen_through_the_fast_path(api, monkeypatch) -> None:
    client, rt = api
    monkeypatch.setattr(market_module, "_SYMBOL_SECONDS", 0.05)
    before = (await client.get("/stocks/AAPL/intraday", params=CLOSED)).json()["bars"]
    assert (await client.get("/stocks/AAPL/intraday", params=CLOSED)).json()["bars"] == before

    first = (await rt.store.read_bars("AAPL", Interval.M1, OPEN, OPEN + timedelta(minutes=1)))[0]
    rt.clock.advance(60)  # type: ignore[attr-defined]
    await rt.store.write_bars([first.with_(close=first.close + 2)], as_of=rt.clock.now())
    await SeriesGenerations(rt.cache).bump("AAPL", Interval.M1)  # as the ingestor does
    after = (await client.get("/stocks/AAPL/intraday", params=CLOSED)).json()["bars"]
    assert after[0]["close"] == before[0]["close"] + 2 and after[1:] == before[1:]
    # What was known before the revision, asked for by as_of, is kept and stays as it was.
    as_of = {**CLOSED, "as_of": "2025-10-08T15:00:00Z"}
    for _ in range(2):
        assert (await client.get("/stocks/AAPL/intraday", params=as_of)).json()["bars"] == before

    # Taken out of the universe (by any process): not served once the entry is re-read.
    await rt.store.upsert_universe([UniverseEntry("MSFT", Tier.T0)], version_tag="v2", source_meta={})
    await asyncio.sleep(0.1)
    r = await client.get("/stocks/AAPL/intraday", params=CLOSED)
    assert r.status_code == 404
