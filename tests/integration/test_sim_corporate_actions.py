"""The whole chain on sim data: the sim market's raw daily bars across a 4:1 split and a
dividend (SIM_SPLITS, SIM_DIVIDENDS) are fetched through the router and stored, the actions
are learned by the admin refresh from the sim provider, and adjusted reads give back the
sim's continuous series, with factors computed by hand."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import httpx
import pytest

from mds.config import load_settings
from mds.corporate.adjust import cutoff
from mds.domain.clock import ManualClock
from mds.domain.models import Capability, Interval
from mds.providers.base import Provider
from mds.providers.sim.actions import sim_actions_from_env
from mds.providers.sim.market import ground_truth
from mds.runtime import Runtime, open_runtime
from tests.helpers import SIM_ENV
from tests.integration.conftest import asgi_client

NOW = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)
START = datetime(2025, 1, 2, tzinfo=UTC)
END = datetime(2025, 10, 8, tzinfo=UTC)
ACTIONS = {"SIM_SPLITS": "AAPL=2025-06-09:4", "SIM_DIVIDENDS": "AAPL=2025-08-11:0.26"}


@pytest.fixture
async def served(tmp_path) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    env = {**SIM_ENV, **ACTIONS, "DATABASE_URL": f"sqlite:///{tmp_path}/sim-actions.db"}
    async with open_runtime(
        load_settings(env), clock=ManualClock(NOW), demo=True, collect=False, environ=env
    ) as rt:

        async def daily(p: Provider) -> list:  # type: ignore[type-arg]
            return await p.fetch_bars("AAPL", Interval.D1, START, END)

        routed = await rt.router.call(Capability.EOD, daily)
        await rt.store.write_bars(routed.value, as_of=NOW)
        async with asgi_client(rt) as client:
            yield rt, client


async def test_sim_raw_bars_adjusted_by_learned_actions_give_the_continuous_series(
    served: tuple[Runtime, httpx.AsyncClient],
) -> None:
    rt, client = served
    params = {"start": START.isoformat(), "end": END.isoformat()}
    raw = (await client.get("/stocks/AAPL/history", params=params)).json()
    # Nothing learned yet: an adjusted read applies nothing and says so.
    unadjusted = (await client.get("/stocks/AAPL/history", params={**params, "adjust": "all"})).json()
    assert unadjusted["adjustment"]["actions"] == [] and unadjusted["bars"] == raw["bars"]

    refresh = await client.post(
        "/api/v1/market-data/admin/corporate-actions/refresh", json={"symbols": ["AAPL"]}
    )
    assert refresh.status_code == 200, refresh.text
    actions = (await client.get("/stocks/AAPL/actions")).json()["actions"]
    assert [(a["type"], a["ex_date"], a["ratio"], a["amount"]) for a in actions] == [
        ("split", "2025-06-09", 4.0, None),
        ("dividend", "2025-08-11", None, 0.26),
    ]
    assert all(a["source"].startswith("sim") for a in actions)

    # Hand-computed factors: 1/4 before 2025-06-09; 1 - 0.26 / (raw close of 2025-08-08)
    # before 2025-08-11.
    closes = {b["ts"][:10]: b["close"] for b in raw["bars"]}
    div_factor = 1 - 0.26 / closes["2025-08-08"]
    assert closes["2025-06-06"] / closes["2025-06-09"] > 3  # the split shows in raw prices
    full = (await client.get("/stocks/AAPL/history", params={**params, "adjust": "all"})).json()
    for bar, adj in zip(raw["bars"], full["bars"], strict=True):
        ts = datetime.fromisoformat(bar["ts"].replace("Z", "+00:00"))
        f = (0.25 if ts < cutoff(date(2025, 6, 9)) else 1.0) * (
            div_factor if ts < cutoff(date(2025, 8, 11)) else 1.0
        )
        assert adj["close"] == pytest.approx(bar["close"] * f, rel=1e-12)
    # ... which is the sim's continuous (split- and dividend-adjusted) series.
    truth = ground_truth("AAPL", Interval.D1, START, END)
    assert [b["close"] for b in full["bars"]] == pytest.approx([b.close for b in truth], rel=1e-9)
    # And raw is the sim's as-traded series.
    as_traded = ground_truth("AAPL", Interval.D1, START, END, actions=sim_actions_from_env(ACTIONS))
    assert [b["close"] for b in raw["bars"]] == pytest.approx([b.close for b in as_traded], rel=1e-12)
    # The refresh found no unexplained jump: the split explains the gap.
    assert (await client.get("/coverage/suspected-actions", params={"symbol": "AAPL"})).json()[
        "suspected"
    ] == []
    assert rt.metrics.value("corporate_actions_learned_total", type="split") == 1
