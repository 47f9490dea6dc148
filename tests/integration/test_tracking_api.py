"""Holdings, the tracked set and the index backfill over the HTTP API (the demo's sim lists)."""

from __future__ import annotations

import httpx

from mds.domain.models import Interval
from mds.runtime import Runtime


async def test_holdings_join_and_leave_the_tracked_set(api: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, rt = api
    r = await client.post(
        "/api/v1/market-data/admin/holdings", json={"symbols": ["brk-b", "AAPL"], "note": "ira"}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"changed": ["AAPL", "BRK.B"], "held": ["AAPL", "BRK.B"]}
    tracked = (await client.get("/api/v1/market-data/tracked")).json()
    assert {"AAPL", "BRK.B", "SPY"} <= set(tracked["all"]) and tracked["tracked_count"] == len(tracked["all"])
    assert "BRK.B" in tracked["new"]  # no daily history yet
    assert (await rt.store.get_symbol("BRK.B")) is not None  # in the universe, so it is collected

    r = await client.delete(
        "/api/v1/market-data/admin/holdings", params=[("symbols", "BRK.B"), ("symbols", "NOPE")]
    )
    assert r.status_code == 200 and r.json() == {"changed": ["BRK.B"], "held": ["AAPL"]}
    assert "BRK.B" not in (await client.get("/api/v1/market-data/tracked")).json()["all"]


async def test_a_bad_ticker_is_a_problem_naming_the_field(api: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, rt = api
    r = await client.post("/api/v1/market-data/admin/holdings", json={"symbols": ["AAPL", "DROP TABLE"]})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["field"].startswith("symbols") and "'DROP TABLE' is not a ticker" in r.json()["detail"]
    assert await rt.store.holdings() == []  # nothing half-applied
    r = await client.post("/api/v1/market-data/admin/backfill/index", params={"index": "R2K"})
    assert r.status_code == 422 and r.json()["field"] == "index"


async def test_index_backfill_refreshes_constituents_then_queues_the_missing_daily_history(
    api: tuple[httpx.AsyncClient, Runtime],
) -> None:
    client, rt = api
    r = await client.post("/api/v1/market-data/admin/backfill/index", params={"index": "DOW30"})
    assert r.status_code == 202, r.text
    body = r.json()
    refresh = body["refresh"]
    assert refresh["applied"] and refresh["provider_used"] == "sim" and not refresh["fallback_used"]
    members = (await client.get("/api/v1/market-data/indexes/constituents", params={"index": "DOW30"})).json()
    assert members["active"] == refresh["fetched"] == body["symbols"] > 0
    assert members["last_refresh"]["inserted"] == refresh["fetched"]
    # Every member lacks most of its 200 sessions (AAPL holds 40 days): one job or more each.
    assert body["jobs_created"] >= body["symbols"]
    jobs = await rt.store.active_backfills_many([m["symbol"] for m in members["members"]], Interval.D1)
    assert set(jobs) == {m["symbol"] for m in members["members"]}

    again = await client.post("/api/v1/market-data/admin/backfill/index", params={"index": "DOW30"})
    assert again.status_code == 202
    assert again.json()["jobs_created"] == 0 and again.json()["refresh"]["inserted"] == 0  # nothing twice
    tracked = (await client.get("/api/v1/market-data/tracked")).json()
    assert tracked["indices"]["DOW30"] == refresh["fetched"]
