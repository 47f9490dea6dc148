"""Company profiles end to end in one process: the admin refresh fetches them through the
``profile`` route (sim, failing over to sim_backup), the store keeps each one with when it was
learned, ``GET /stocks/{symbol}/profile`` reads them point in time, and the refresh skips
symbols whose profile is fresh."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Capability
from mds.providers.sim.profile import sim_shares_outstanding
from mds.runtime import Runtime, open_runtime
from tests.helpers import SIM_ENV
from tests.integration.conftest import asgi_client

NOW = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)
REFRESH = "/api/v1/market-data/admin/profiles/refresh"

Opened = Callable[..., AbstractAsyncContextManager[tuple[Runtime, httpx.AsyncClient]]]


@pytest.fixture
def opened(tmp_path) -> Opened:  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def make(**extra: str) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
        env = {**SIM_ENV, "DATABASE_URL": f"sqlite:///{tmp_path}/profiles.db", **extra}
        async with (
            open_runtime(
                load_settings(env), clock=ManualClock(NOW), demo=True, collect=False, environ=env
            ) as rt,
            asgi_client(rt) as client,
        ):
            yield rt, client

    return make


def _ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, r.text
    return r.json()


async def test_refresh_stores_profiles_and_reads_are_point_in_time(opened: Opened) -> None:
    async with opened() as (rt, client):
        first = _ok(await client.post(REFRESH, json={"symbols": ["aapl", "MSFT", "SPY"]}))
        assert (first["asked"], first["stored"], first["failed"], first["providers"]) == (3, 3, 0, {"sim": 3})
        body = _ok(await client.get("/stocks/AAPL/profile"))
        aapl = body["profile"]
        price = await _sim_last(rt, "AAPL")
        assert aapl["provider"] == "sim" and aapl["as_of"] == "2025-10-08T15:00:00Z"
        assert aapl["shares_outstanding"] == pytest.approx(sim_shares_outstanding("AAPL"), rel=1e-6)
        assert aapl["market_cap"] == pytest.approx(aapl["shares_outstanding"] * price, rel=1e-3)
        assert aapl["name"] == "Apple Inc." and aapl["sector"] == "Information Technology"
        spy = _ok(await client.get("/stocks/SPY/profile"))["profile"]
        assert spy["market_cap"] is None and spy["shares_outstanding"] is None  # an ETF

        # A day later the price moved; a forced refresh learns a second profile, kept beside the first.
        assert isinstance(rt.clock, ManualClock)
        rt.clock.advance(86_400)
        again = _ok(await client.post(REFRESH, json={"symbols": ["AAPL"], "max_age_days": 0}))
        assert again["stored"] == 1
        body = _ok(await client.get("/stocks/AAPL/profile", params={"history": 10}))
        assert body["profile"]["as_of"] == "2025-10-09T15:00:00Z"
        assert [h["as_of"] for h in body["history"]] == ["2025-10-09T15:00:00Z", "2025-10-08T15:00:00Z"]
        assert body["profile"]["market_cap"] != aapl["market_cap"]
        before = _ok(await client.get("/stocks/AAPL/profile", params={"as_of": "2025-10-09T12:00:00Z"}))
        assert before["profile"] == aapl and before["as_of"] == "2025-10-09T12:00:00Z"

        # Within PROFILE_MAX_AGE_DAYS (7) nothing is fetched again: no vendor budget spent.
        fresh = _ok(await client.post(REFRESH, json={"symbols": ["AAPL", "MSFT"]}))
        assert (fresh["asked"], fresh["skipped_fresh"]) == (0, 2)
        assert rt.metrics.value("profile_refresh_total", outcome="stored") == 4

        runs = await rt.store.job_runs(task="refresh_company_profiles")
        assert [r.counters.get("stored") for r in runs] == [0, 1, 3]  # newest first, each recorded


async def test_unknown_and_bad_requests_answer_problem_json(opened: Opened) -> None:
    async with opened() as (_, client):
        r = await client.get("/stocks/AAPL/profile")
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")
        assert "AAPL" in r.json()["detail"]
        too_early = await client.get("/stocks/AAPL/profile", params={"as_of": "yesterday"})
        assert too_early.status_code == 422 and "as_of" in too_early.text
        bad = await client.post(REFRESH, json={"symbols": ["AAPL"], "max_age_days": -1})
        assert bad.status_code == 422 and "max_age_days" in bad.text
        extra = await client.post(REFRESH, json={"symbol": "AAPL"})
        assert extra.status_code == 422 and "symbol" in extra.text
        for body in ({"max_age_days": False}, {"max_age_days": "7"}, {"symbols": []}):
            r = await client.post(REFRESH, json=body)
            field = next(iter(body))
            assert r.status_code == 422 and field in r.text, (body, r.text)


async def test_a_provider_outage_fails_over_and_every_provider_down_is_reported(opened: Opened) -> None:
    down = f"{(NOW - timedelta(hours=1)).isoformat()}/{(NOW + timedelta(hours=1)).isoformat()}"
    async with opened(SIM_OUTAGES=down) as (rt, client):
        body = _ok(await client.post(REFRESH, json={"symbols": ["AAPL"]}))
        assert body["providers"] == {"sim_backup": 1}
        profile = (await rt.profiles.latest(["AAPL"]))["AAPL"]
        assert profile.provider == "sim_backup" and profile.market_cap is not None
    async with opened(SIM_OUTAGES=down, SIM_BACKUP_OUTAGES=down) as (rt, client):
        body = _ok(await client.post(REFRESH, json={"symbols": ["MSFT"], "max_age_days": 0}))
        assert (body["stored"], body["failed"]) == (0, 1)
        assert "unavailable" in body["results"]["MSFT"]["error"].lower()
        assert rt.metrics.value("profile_refresh_total", outcome="failed") == 1
        assert "MSFT" not in await rt.profiles.latest(["MSFT"])


async def _sim_last(rt: Runtime, symbol: str) -> float:
    """The sim's last trade now, asked the way a caller would: a routed level-1 quote."""
    routed = await rt.router.call(Capability.QUOTES_L1, lambda p: p.fetch_quotes([symbol]))
    last = routed.value[0].last
    assert last is not None
    return last
