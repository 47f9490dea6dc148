"""``GET /stats/quality`` over HTTP, in process, on a SQLite demo runtime: sim and a noisy
sim_backup (no third provider, so disagreements are listed but blamed on nobody)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from mds.access.keys import Role
from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Interval
from mds.ops.catalog import CATALOG
from mds.reconcile.service import Reconciler, ReconcileSettings
from mds.runtime import Runtime, open_runtime
from tests.helpers import SIM_ENV
from tests.integration.conftest import asgi_client, ok

NOW = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)
QUALITY = "/stats/quality"


@asynccontextmanager
async def opened(tmp_path: Path, **env: str) -> AsyncIterator[Runtime]:
    environ = {
        **SIM_ENV,
        "DATABASE_URL": f"sqlite:///{tmp_path}/q.db",
        "SIM_BACKUP_PRICE_NOISE": "0.01",
        **env,
    }
    async with open_runtime(
        load_settings(environ), clock=ManualClock(NOW), collect=False, environ=environ
    ) as rt:
        yield rt


def client(rt: Runtime, role: Role | None = None) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return asgi_client(rt, role=role)


async def reconcile(rt: Runtime) -> None:
    monday = rt.calendar.session_on(date(2025, 10, 6))
    assert monday is not None
    for symbol in ("AAPL", "MSFT"):
        bars = await rt.providers["sim"].fetch_bars(symbol, Interval.M1, monday.open, monday.close)
        await rt.store.write_bars(bars, as_of=monday.close + timedelta(minutes=5))
    reconciler = Reconciler(
        store=rt.store,
        router=rt.router,
        calendar=rt.calendar,
        clock=rt.clock,
        settings=ReconcileSettings(max_disagreements_per_symbol=10),
        metrics=rt.metrics,
    )
    await reconciler.run(symbols=["AAPL", "MSFT"])


async def test_quality_lists_scores_pairs_and_disagreements(tmp_path: Path) -> None:
    async with opened(tmp_path) as rt, client(rt) as c:
        empty = ok(await c.get(QUALITY))
        assert empty == {"threshold": 0.99, "providers": [], "pairs": [], "disagreements": []}
        await reconcile(rt)
        body = ok(await c.get(QUALITY, params={"limit": 5}))
        assert [p["provider"] for p in body["providers"]] == ["sim", "sim_backup"]
        sim = body["providers"][0]
        assert sim["score"] == 1.0 and sim["symbols"] == 2 and sim["compared"] == 780 and sim["faults"] == 0
        assert sim["state"] == "closed" and sim["routed_quality"] == 1.0
        assert [(p["provider"], p["symbol"]) for p in body["pairs"]] == [
            ("sim", "AAPL"),
            ("sim", "MSFT"),
            ("sim_backup", "AAPL"),
            ("sim_backup", "MSFT"),
        ]
        pair = body["pairs"][0]
        assert pair["start"] == "2025-10-06T13:30:00Z" and pair["end"] == "2025-10-06T20:00:00Z"
        assert pair["unresolved"] > 300 and pair["flagged"] is False
        assert len(body["disagreements"]) == 5
        d = body["disagreements"][0]
        assert (d["provider"], d["other_provider"], d["kind"], d["blamed"]) == (
            "sim",
            "sim_backup",
            "value",
            None,
        )
        assert d["note"] == "no third provider to settle it" and d["diff"] > 1

        msft = ok(await c.get(QUALITY, params={"symbol": "msft", "provider": "sim_backup"}))
        assert {p["symbol"] for p in msft["pairs"]} == {"MSFT"}
        assert {p["provider"] for p in msft["pairs"]} == {"sim_backup"}
        assert msft["disagreements"] and {d["symbol"] for d in msft["disagreements"]} == {"MSFT"}
        assert ok(await c.get(QUALITY, params={"limit": 0}))["disagreements"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "-1"}, "limit"),
        ({"limit": "5000"}, "limit"),
        ({"symbol": "A B"}, "symbol"),
        ({"provider": "X!"}, "provider"),
    ],
)
async def test_bad_parameters_get_problem_json(tmp_path: Path, params: dict[str, str], field: str) -> None:
    async with opened(tmp_path) as rt, client(rt) as c:
        r = await c.get(QUALITY, params=params)
        assert r.status_code == 422
        assert r.headers["content-type"].startswith("application/problem+json")
        assert field in r.text


async def test_quality_needs_a_key_when_reads_do(tmp_path: Path) -> None:
    async with opened(tmp_path, AUTH_READ_REQUIRED="true") as rt:
        async with client(rt) as anonymous:
            assert (await anonymous.get(QUALITY)).status_code == 401
        async with client(rt, Role.READ) as reader:
            ok(await reader.get(QUALITY))


async def test_the_catalog_task_reconciles_a_sample_and_records_counters(tmp_path: Path) -> None:
    async with opened(tmp_path) as rt:
        monday = rt.calendar.session_on(date(2025, 10, 6))
        assert monday is not None
        bars = await rt.providers["sim"].fetch_bars("AAPL", Interval.M1, monday.open, monday.close)
        await rt.store.write_bars(bars, as_of=monday.close)
        task = CATALOG["reconcile_providers"]
        params = task.validate_params([], {"symbols": ["aapl"]})
        counters: dict[str, Any] = {}
        await task.fn(rt.runs.ctx, counters, **params)
        assert counters["symbols"] == 1 and counters["compared_bars"] == 390
        assert counters["scores"] == {"sim": 1.0, "sim_backup": 1.0}  # two providers: nobody blamed
        assert counters["empty_recheck"] == {"checked": 0, "cleared": 0, "still_empty": 0, "unanswered": 0}
        assert counters["pruned"] == 0
        assert [s.symbol for s in await rt.store.quality_scores(provider="sim")] == ["AAPL"]
        with pytest.raises(ValueError):
            task.validate_params([], {"interval": "5m"})
