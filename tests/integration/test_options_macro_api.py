"""Options and macro over the HTTP API, in-process on a SQLite runtime, sim providers and a
ManualClock: chains routed with failover and cached for CACHE_TTL_OPTIONS_CHAIN_SEC, metrics
stored point in time, bad contracts dropped and counted, the risk-free rate taken from the
stored DGS3MO, and macro refreshes that keep every vintage so an ``as_of`` read returns the
first print."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from mds.access.keys import Role
from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Capability, OptionQuote
from mds.providers.sim.macro import REVISION_LAG, sim_macro_observations
from mds.providers.sim.provider import SimProvider
from mds.routing.router import Router
from mds.runtime import Runtime, open_runtime
from mds.services.options import OptionsService
from tests.helpers import SIM_ENV
from tests.integration.conftest import asgi_client, manual, ok, problem

#: Wednesday 2025-10-08, 11:00 in New York: a session day.
NOW = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)


@asynccontextmanager
async def opened(tmp_path: Path, **env: str) -> AsyncIterator[Runtime]:
    environ = {**SIM_ENV, "DATABASE_URL": f"sqlite:///{tmp_path}/o.db", "OPTIONS_MAX_DAYS": "60", **env}
    async with open_runtime(
        load_settings(environ), clock=ManualClock(NOW), collect=False, environ=environ
    ) as rt:
        yield rt


def client(rt: Runtime, role: Role | None = None) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return asgi_client(rt, role=role)


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with opened(tmp_path) as runtime:
        yield runtime


# -- options ---------------------------------------------------------------------------


async def test_chain_is_priced_by_mds_and_served_from_cache_within_the_ttl(rt: Runtime) -> None:
    async with client(rt) as c:
        first = ok(await c.get("/options/SPY/chain", params={"max_days": 40}))
        assert first["provider"].startswith("sim") and first["count"] == len(first["contracts"]) > 100
        assert first["rate_source"] == "RISK_FREE_RATE" and first["rate"] == rt.settings.RISK_FREE_RATE
        horizon = (NOW.date() + timedelta(days=40)).isoformat()
        assert all(k["expiration"] <= horizon for k in first["contracts"])
        quoted = [k for k in first["contracts"] if k["bid"] and k["ask"]]
        assert quoted and all(k["iv"] is not None or k["iv_reason"] for k in quoted)
        # MDS's IV recovers the vendor's (the sim reports its surface vol) from the mid, where
        # the spread is small next to the option's time value (not deep in the money).
        close = [k for k in quoted if k["iv"] is not None and 0.2 < abs(k["delta"]) < 0.8]
        assert close and all(abs(k["iv"] - k["vendor_iv"]) < 0.02 for k in close)

        manual(rt).advance(rt.settings.CACHE_TTL_OPTIONS_CHAIN_SEC / 2)
        again = ok(await c.get("/options/SPY/chain", params={"max_days": 40}))
        assert again["as_of"] == first["as_of"]  # cached: no new fetch

        manual(rt).advance(rt.settings.CACHE_TTL_OPTIONS_CHAIN_SEC)
        later = ok(await c.get("/options/SPY/chain", params={"max_days": 40}))
        assert later["as_of"] > first["as_of"]


async def test_one_expiration_and_bad_input_name_the_field(rt: Runtime) -> None:
    async with client(rt) as c:
        chain = ok(await c.get("/options/SPY/chain"))
        listed = chain["expirations"][2]
        one = ok(await c.get("/options/SPY/chain", params={"expiration": listed}))
        assert {k["expiration"] for k in one["contracts"]} == {listed}

        not_listed = (date.fromisoformat(listed) + timedelta(days=1)).isoformat()
        assert (
            problem(await c.get("/options/SPY/chain", params={"expiration": not_listed}), 422)["field"]
            == "expiration"
        )
        assert problem(await c.get("/options/SPY/chain", params={"max_days": 61}), 422)["field"] == "max_days"
        assert (
            problem(await c.get("/options/SPY/chain", params={"expiration": "2025-13-01"}), 422)["field"]
            == "expiration"
        )
        assert (
            problem(await c.get("/options/SPY/strategies", params={"type": "butterfly"}), 422)["field"]
            == "type"
        )
        problem(await c.get("/options/NOSUCH/metrics"), 404)


async def test_metrics_are_stored_point_in_time_on_each_refresh(rt: Runtime) -> None:
    async with client(rt) as c:
        m1 = ok(await c.get("/options/QQQ/metrics"))
        assert m1["rr25"] < 0 < m1["bf25"]  # the sim surface's put skew and smile
        assert 0 < m1["iv30"] < 1 and m1["implied_move"] > 0
        assert m1["implied_move_abs"] == pytest.approx(m1["implied_move"] * m1["spot"], rel=1e-9)
        assert [p["expiration"] for p in m1["term_structure"]] == sorted(m1["atm_iv"])

        manual(rt).advance(3600)
        m2 = ok(await c.get("/options/QQQ/metrics"))
        assert m2["as_of"] > m1["as_of"]

        rows = ok(await c.get("/options/QQQ/metrics/history", params={"metric": "iv30"}))["rows"]
        assert [(r["tenor"], r["value"]) for r in rows] == [("30d", m1["iv30"]), ("30d", m2["iv30"])]
        early = ok(
            await c.get(
                "/options/QQQ/metrics/history",
                params={"metric": "iv30", "end": m2["as_of"].replace("Z", "+00:00")},
            )
        )
        assert [r["as_of"] for r in early["rows"]] == [rows[0]["as_of"]]  # end is exclusive


async def test_strategies_are_bounded_sorted_and_priced_at_the_conservative_side(rt: Runtime) -> None:
    async with client(rt) as c:
        chain = ok(await c.get("/options/SPY/chain"))
        quotes = {k["contract"]: k for k in chain["contracts"]}
        body = ok(await c.get("/options/SPY/strategies", params={"type": "iron_condor", "limit": 3}))
        assert body["sort"] == "pop" and 0 < body["count"] <= 3
        pops = [s["pop"] for s in body["strategies"]]
        assert pops == sorted(pops, reverse=True)
        for s in body["strategies"]:
            assert len(s["legs"]) == 4 and s["net_kind"] == "credit"
            for leg in s["legs"]:
                q = quotes[leg["contract"]]
                assert leg["price"] == (q["ask"] if leg["side"] == "long" else q["bid"])
            assert s["max_profit"] == pytest.approx(s["net"], abs=1e-9)


async def test_a_chain_fails_over_when_the_first_provider_is_down(tmp_path: Path) -> None:
    outage = f"{(NOW - timedelta(hours=1)).isoformat()}/{(NOW + timedelta(hours=1)).isoformat()}"
    async with (
        opened(tmp_path, POLICY_OPTIONS_CHAIN="sim,sim_backup", SIM_OUTAGES=outage) as rt,
        client(rt) as c,
    ):
        chain = ok(await c.get("/options/SPY/chain", params={"max_days": 10}))
        assert chain["provider"] == "sim_backup"


class _WithBadContracts:
    """The sim's chain plus one crossed and one negative contract, as a vendor might send."""

    def __init__(self, inner: SimProvider) -> None:
        self.inner = inner
        self.name = inner.name
        self.capabilities = frozenset({Capability.OPTIONS_CHAIN})
        self.times_transport = False
        self.configured = True

    async def fetch_options_chain(
        self, symbol: str, expiration: date | None = None, *, until: date | None = None
    ) -> list[OptionQuote]:
        chain = await self.inner.fetch_options_chain(symbol, expiration, until=until)
        good = next(q for q in chain if q.bid and q.ask)
        crossed = replace(good, contract=good.contract + "X", bid=good.ask + 1.0)
        negative = replace(good, contract=good.contract + "Y", bid=-0.5)
        return [*chain, crossed, negative]

    async def aclose(self) -> None:
        return None


async def test_bad_contracts_are_dropped_counted_and_never_served(rt: Runtime) -> None:
    sim = rt.providers["sim"]
    assert isinstance(sim, SimProvider)
    router = Router({"sim": _WithBadContracts(sim)}, rt.settings, rt.clock, rt.metrics)  # type: ignore[dict-item]
    service = OptionsService(
        router=router,
        store=rt.store,
        market=rt.market,
        macro=rt.macro,
        clock=rt.clock,
        calendar=rt.calendar,
        settings=rt.settings,
        metrics=rt.metrics,
    )
    counter = rt.metrics.provider_bad_payloads_total.labels(provider="sim")
    before = counter._value.get()
    chain = await service.chain("SPY")
    assert chain.dropped == 2 and counter._value.get() == before + 2
    assert not [c for c in chain.contracts if c.quote.contract.endswith(("X", "Y"))]


# -- macro -----------------------------------------------------------------------------


async def test_macro_refresh_stores_every_vintage_once_and_as_of_reads_the_first_print(rt: Runtime) -> None:
    async with client(rt, Role.ADMIN) as admin, client(rt, Role.READ) as reader:
        problem(await reader.post("/admin/macro/refresh"), 403)
        first = ok(await admin.post("/admin/macro/refresh", json={"factors": ["DTWEXBGS", "DGS10", "DGS2"]}))
        assert first["failed"] == [] and all(f["new_rows"] > 200 for f in first["factors"].values())
        again = ok(await admin.post("/admin/macro/refresh", json={"factors": ["DTWEXBGS"]}))
        assert again["factors"]["DTWEXBGS"]["new_rows"] == 0  # every vintage is stored once

        today = NOW.date()
        sim = rt.providers["sim"]
        assert isinstance(sim, SimProvider)
        vintages = sim_macro_observations(
            "DTWEXBGS",
            start=today - timedelta(days=60),
            end=today,
            today=today,
            seed=sim.market.seed,
            vintages=True,
        )
        revised = [o for o in vintages if o.realtime_end is not None]  # first prints later revised
        d = revised[-1]
        newest = ok(
            await reader.get("/factors/macro/DTWEXBGS/history", params={"start": d.date, "end": d.date})
        )
        then = ok(
            await reader.get(
                "/factors/macro/DTWEXBGS/history",
                params={"start": d.date, "end": d.date, "as_of": d.realtime_start},
            )
        )
        assert then["observations"][0]["value"] == d.value
        assert newest["observations"][0]["value"] != d.value
        assert newest["observations"][0]["realtime_start"] > d.realtime_start.isoformat()
        before = ok(
            await reader.get(
                "/factors/macro/DTWEXBGS/history",
                params={"start": d.date, "end": d.date, "as_of": d.realtime_start - timedelta(days=1)},
            )
        )
        assert before["count"] == 0  # not yet published on the day before its first print
        assert REVISION_LAG > 0


async def test_macro_snapshot_derived_spread_and_unknown_factors(rt: Runtime) -> None:
    async with client(rt, Role.ADMIN) as c:
        ok(await c.post("/admin/macro/refresh"))
        snap = ok(await c.get("/factors/macro"))["factors"]
        assert set(rt.settings.MACRO_FACTORS) | {"term_spread_10y2y"} == set(snap)
        dgs10, dgs2, spread = snap["DGS10"], snap["DGS2"], snap["term_spread_10y2y"]
        assert spread["value"] == pytest.approx(dgs10["value"] - dgs2["value"], abs=1e-6)
        for f in snap.values():
            assert f["value"] is not None and f["observations_1y"] > 200
            assert f["zscore_1y"] is not None and math.isfinite(f["zscore_1y"])
            assert f["change_20"] is not None
        history = ok(await c.get("/factors/macro/term_spread_10y2y/history", params={"start": "2025-09-01"}))
        assert history["count"] > 20
        problem(await c.get("/factors/macro/NOPE/history"), 404)
        assert (
            problem(await c.get("/factors/macro/DGS10/history", params={"as_of": "yesterday"}), 422)["field"]
            == "as_of"
        )


async def test_the_chain_rate_comes_from_the_stored_dgs3mo(rt: Runtime) -> None:
    async with client(rt, Role.ADMIN) as c:
        ok(await c.post("/admin/macro/refresh", json={"factors": ["DGS3MO"]}))
        latest = ok(await c.get("/factors/macro"))["factors"]["DGS3MO"]
        chain = ok(await c.get("/options/SPY/chain", params={"max_days": 10}))
        assert chain["rate_source"] == f"DGS3MO {latest['date']}"
        assert chain["rate"] == pytest.approx(math.log1p(latest["value"] / 100), rel=1e-12)


async def test_a_series_no_provider_has_fails_alone_and_the_others_are_stored(rt: Runtime) -> None:
    async with client(rt, Role.ADMIN) as c:
        report = ok(await c.post("/admin/macro/refresh", json={"factors": ["NOSUCHSERIES", "DGS10"]}))
    assert report["factors"]["DGS10"]["new_rows"] > 0
    assert report["factors"]["NOSUCHSERIES"]["error"].startswith("no_data"), report
