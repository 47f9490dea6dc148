"""Corporate actions end to end, in-process on a SQLite runtime and a ManualClock: a refresh
through a real Router (failover included) stores actions learned now and relearns nothing;
reads are point in time; the admin refresh needs the admin role and is a job run; a daily
gap no action explains is a suspected action (listed, counted) until the split is learned,
and learning it drops kept adjusted responses and recomputes the cached snapshot."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from mds.access.keys import Role
from mds.config import load_settings
from mds.domain.actions import ActionType, CorporateAction
from mds.domain.clock import ManualClock
from mds.domain.models import Bar, Capability, Interval
from mds.errors import Unavailable
from mds.ops.catalog import CATALOG, refresh_corporate_actions
from mds.routing.router import Router
from mds.runtime import Runtime, open_runtime
from mds.services.corporate_actions import CorporateActionsService
from tests.helpers import SIM_ENV
from tests.integration.conftest import asgi_client, manual, ok, problem

#: Wednesday 2025-10-08, 11:00 in New York.
NOW = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)
REFRESH = "/api/v1/market-data/admin/corporate-actions/refresh"
SUSPECTED = "/coverage/suspected-actions"
#: AAPL's 4-for-1 split, effective at the open of Monday 2025-10-06.
SPLIT = CorporateAction(
    "AAPL", ActionType.SPLIT, date(2025, 10, 6), ratio=4.0, declared_date=date(2025, 9, 1)
)
DIVIDEND = CorporateAction(
    "AAPL", ActionType.DIVIDEND, date(2025, 8, 11), amount=0.26, currency="USD", pay_date=date(2025, 8, 14)
)


class Vendor:
    """A corporate-actions provider answering from ``actions`` (by symbol), or failing while
    ``down``; it counts the calls it was asked."""

    times_transport = False
    configured = True
    capabilities = frozenset({Capability.CORPORATE_ACTIONS})

    def __init__(self, name: str, actions: dict[str, list[CorporateAction]] | None = None) -> None:
        self.name = name
        self.actions = actions or {}
        self.down: set[str] = set()  # symbols it fails for ("*": all)
        self.calls: list[tuple[str, date, date]] = []

    async def fetch_corporate_actions(self, symbol: str, start: date, end: date) -> list[CorporateAction]:
        self.calls.append((symbol, start, end))
        if symbol in self.down or "*" in self.down:
            raise Unavailable(self.name, "503 from the test vendor")
        return [
            replace(a, source=self.name) for a in self.actions.get(symbol, []) if start <= a.ex_date <= end
        ]

    async def aclose(self) -> None:
        return None


@asynccontextmanager
async def opened(tmp_path: Path) -> AsyncIterator[Runtime]:
    env = {**SIM_ENV, "DATABASE_URL": f"sqlite:///{tmp_path}/ca.db"}
    async with open_runtime(
        load_settings(env), clock=ManualClock(NOW), demo=True, collect=False, environ=env
    ) as rt:
        yield rt


def use(rt: Runtime, *vendors: Vendor) -> CorporateActionsService:
    """Route the runtime's corporate actions to ``vendors`` (named after the policy's sim,
    sim_backup), through a real Router, for the routes and the task alike."""
    router = Router({v.name: v for v in vendors}, rt.settings, rt.clock, rt.metrics)  # type: ignore[misc]
    service = CorporateActionsService(
        store=rt.store,
        router=router,
        clock=rt.clock,
        calendar=rt.calendar,
        settings=rt.settings,
        generations=rt.market.generations,
        metrics=rt.metrics,
    )
    rt.corporate_actions = service
    rt.runs.ctx.corporate_actions = service
    return service


def client(rt: Runtime, role: Role | None = Role.ADMIN) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return asgi_client(rt, role=role)


def counter(rt: Runtime, name: str, **labels: str) -> float:
    value = rt.metrics.registry.get_sample_value(name, labels)
    return value or 0.0


def gap_bars() -> list[Bar]:
    """AAPL's raw daily bars 2025-09-29..10-07: about 400 before Monday 10-06, about 100 from
    it, as a 4:1 split leaves them."""
    days = [date(2025, 9, d) for d in (29, 30)] + [date(2025, 10, d) for d in (1, 2, 3, 6, 7)]
    out = []
    for d in days:
        px = 400.0 if d < SPLIT.ex_date else 100.0
        ts = datetime(d.year, d.month, d.day, 13, 30, tzinfo=UTC)
        out.append(Bar("AAPL", Interval.D1, ts, px, px + 2, px - 2, px + 1, 1_000_000.0, "sim"))
    return out


@pytest.fixture
async def rt(tmp_path: Path) -> AsyncIterator[Runtime]:
    async with opened(tmp_path) as runtime:
        yield runtime


async def test_a_refresh_stores_actions_learned_now_and_a_second_one_learns_nothing(rt: Runtime) -> None:
    vendor = Vendor("sim", {"AAPL": [DIVIDEND, SPLIT]})
    service = use(rt, vendor)
    d1 = await rt.market.generations.current("AAPL", Interval.D1)  # type: ignore[union-attr]
    m1 = await rt.market.generations.current("AAPL", Interval.M1)  # type: ignore[union-attr]
    msft = await rt.market.generations.current("MSFT", Interval.D1)  # type: ignore[union-attr]
    splits = counter(rt, "corporate_actions_learned_total", type="split")

    report = await service.refresh(["aapl", "MSFT"])
    assert report.symbols["AAPL"] == {
        "provider": "sim",
        "fetched": 2,
        "learned": 2,
        "suspected": 0,
        "cleared": 0,
    }
    assert report.symbols["MSFT"]["learned"] == 0 and report.changed == ["AAPL"]
    # Asked over [today - HISTORY_DAYS, today + AHEAD_DAYS].
    today = NOW.date()
    assert vendor.calls[0] == (
        "AAPL",
        today - timedelta(days=rt.settings.CORPORATE_ACTIONS_HISTORY_DAYS),
        today + timedelta(days=rt.settings.CORPORATE_ACTIONS_AHEAD_DAYS),
    )
    stored = await rt.store.corporate_actions("AAPL")
    assert [(a.type, a.ex_date, a.source, a.as_of) for a in stored] == [
        (ActionType.DIVIDEND, DIVIDEND.ex_date, "sim", NOW),
        (ActionType.SPLIT, SPLIT.ex_date, "sim", NOW),
    ]
    assert counter(rt, "corporate_actions_learned_total", type="split") == splits + 1
    # Kept adjusted responses of AAPL's series are dropped; MSFT's stay.
    assert await rt.market.generations.current("AAPL", Interval.D1) != d1  # type: ignore[union-attr]
    assert await rt.market.generations.current("AAPL", Interval.M1) != m1  # type: ignore[union-attr]
    assert await rt.market.generations.current("MSFT", Interval.D1) == msft  # type: ignore[union-attr]

    manual(rt).advance(3600)
    d1 = await rt.market.generations.current("AAPL", Interval.D1)  # type: ignore[union-attr]
    again = await service.refresh(["AAPL"])
    assert again.symbols["AAPL"]["learned"] == 0 and again.changed == []
    assert [a.as_of for a in await rt.store.corporate_actions("AAPL")] == [NOW, NOW]
    assert await rt.market.generations.current("AAPL", Interval.D1) == d1  # type: ignore[union-attr]
    assert counter(rt, "corporate_actions_learned_total", type="split") == splits + 1


async def test_the_refresh_fails_over_and_a_symbol_that_fails_everywhere_does_not_stop_the_rest(
    rt: Runtime,
) -> None:
    first = Vendor("sim", {"AAPL": [SPLIT]})
    first.down.add("*")
    second = Vendor("sim_backup", {"AAPL": [SPLIT]})
    second.down.add("TSLA")
    service = use(rt, first, second)

    report = await service.refresh(["TSLA", "AAPL"])
    assert report.symbols["AAPL"]["provider"] == "sim_backup" and report.symbols["AAPL"]["learned"] == 1
    assert report.failed == ["TSLA"] and "503 from the test vendor" in report.symbols["TSLA"]["error"]
    counters = report.counters()
    assert counters["symbols"] == 2 and counters["failed"] == 1 and counters["learned"] == 1
    assert set(counters["errors"]) == {"TSLA"}
    assert [a.source for a in await rt.store.corporate_actions("AAPL")] == ["sim_backup"]


async def test_the_admin_refresh_needs_the_admin_role_and_is_a_job_run(rt: Runtime) -> None:
    use(rt, Vendor("sim", {"AAPL": [DIVIDEND, SPLIT]}))
    async with (
        client(rt, None) as anonymous,
        client(rt, Role.READ) as reader,
        client(rt, Role.OPS) as operator,
        client(rt, Role.ADMIN) as admin,
    ):
        problem(await anonymous.post(REFRESH), 401)
        problem(await reader.post(REFRESH), 403)
        problem(await operator.post(REFRESH, json={"symbols": ["AAPL"]}), 403)
        assert await rt.store.corporate_actions("AAPL") == []
        problem(await admin.post(REFRESH, json={"symbols": ["AAPL"], "extra": 1}), 422)

        body = ok(await admin.post(REFRESH, json={"symbols": ["aapl", "MSFT"]}))
        assert (body["symbols"], body["failed"], body["learned"], body["changed"]) == (2, 0, 2, ["AAPL"])
        assert body["results"]["AAPL"]["provider"] == "sim" and body["snapshots_recomputed"] == 1

    runs = await rt.store.job_runs(task="refresh_corporate_actions")
    assert len(runs) == 1
    run = runs[0]
    assert run.status.value == "succeeded" and run.trigger.value == "api"
    assert run.params["kwargs"] == {"symbols": ["AAPL", "MSFT"]}
    assert run.counters["learned"] == 2 and run.counters["snapshots_recomputed"] == 1


async def test_actions_are_read_point_in_time(rt: Runtime) -> None:
    use(rt, Vendor("sim", {"AAPL": [DIVIDEND, SPLIT]}))
    before = (NOW - timedelta(seconds=1)).isoformat()
    async with client(rt, Role.READ) as c:
        empty = ok(await c.get("/stocks/AAPL/actions"))
        assert (empty["symbol"], empty["count"], empty["actions"]) == ("AAPL", 0, [])

        await rt.corporate_actions.refresh(["AAPL"])
        manual(rt).advance(60)

        known = ok(await c.get("/stocks/aapl/actions"))
        assert known["count"] == 2
        split = known["actions"][1]
        assert split == {
            "type": "split",
            "ex_date": "2025-10-06",
            "ratio": 4.0,
            "amount": None,
            "currency": None,
            "declared_date": "2025-09-01",
            "record_date": None,
            "pay_date": None,
            "source": "sim",
            "as_of": "2025-10-08T15:00:00Z",
        }
        assert known["actions"][0]["amount"] == 0.26 and known["actions"][0]["pay_date"] == "2025-08-14"
        # Before MDS learned them: nothing, though the ex-dates are long past.
        then = ok(await c.get("/stocks/AAPL/actions", params={"as_of": before}))
        assert then["count"] == 0 and then["as_of"] == "2025-10-08T14:59:59Z"
        at = ok(await c.get("/stocks/AAPL/actions", params={"as_of": NOW.isoformat()}))
        assert at["count"] == 2
        window = ok(await c.get("/stocks/AAPL/actions", params={"start": "2025-09-01", "end": "2025-12-31"}))
        assert [a["type"] for a in window["actions"]] == ["split"]

        assert problem(
            await c.get("/stocks/AAPL/actions", params={"start": "2025-10-02", "end": "2025-10-01"}), 422
        )["detail"].startswith("end: end 2025-10-01 is before start")
        problem(await c.get("/stocks/NOSUCH/actions"), 404)


async def test_an_unannounced_gap_is_suspected_listed_counted_and_cleared_when_the_split_is_learned(
    rt: Runtime,
) -> None:
    vendor = Vendor("sim")  # publishes nothing of AAPL yet
    service = use(rt, vendor)
    await rt.store.write_bars(gap_bars(), as_of=NOW - timedelta(hours=12))
    suspected = counter(rt, "corporate_actions_suspected_total")

    report = await service.refresh(["AAPL"])
    assert report.symbols["AAPL"]["suspected"] == 1 and report.counters()["suspected"] == 1
    assert counter(rt, "corporate_actions_suspected_total") == suspected + 1
    async with client(rt, Role.READ) as c:
        listed = ok(await c.get(SUSPECTED))
        assert listed["count"] == 1
        row = listed["suspected"][0]
        assert (row["symbol"], row["session"], row["previous_close"], row["open"]) == (
            "AAPL",
            "2025-10-06",
            401.0,
            100.0,
        )
        assert row["ratio"] == pytest.approx(4.01) and row["detected_at"] == "2025-10-08T15:00:00Z"
        assert ok(await c.get(SUSPECTED, params={"symbol": "msft"}))["count"] == 0
        assert ok(await c.get(SUSPECTED, params={"symbol": "aapl", "limit": 1}))["count"] == 1
        problem(await c.get(SUSPECTED, params={"limit": 0}), 422)

        # Seen again: not a new suspicion, not counted twice.
        manual(rt).advance(3600)
        again = await service.refresh(["AAPL"])
        assert again.symbols["AAPL"]["suspected"] == 0
        assert counter(rt, "corporate_actions_suspected_total") == suspected + 1
        assert ok(await c.get(SUSPECTED))["suspected"][0]["detected_at"] == "2025-10-08T15:00:00Z"

        # The vendor announces the split: learned, and the suspicion is cleared.
        vendor.actions["AAPL"] = [SPLIT]
        learned = await service.refresh(["AAPL"])
        assert learned.symbols["AAPL"]["learned"] == 1 and learned.symbols["AAPL"]["cleared"] == 1
        assert ok(await c.get(SUSPECTED))["count"] == 0
        assert counter(rt, "corporate_actions_suspected_total") == suspected + 1


async def test_a_kept_adjusted_response_does_not_outlive_a_learned_split(rt: Runtime) -> None:
    vendor = Vendor("sim")
    service = use(rt, vendor)
    # Five minutes of 1m bars on each side of the ex-date: about 400 on Friday, 100 on Monday.
    minutes = []
    for day, px in (
        (datetime(2025, 10, 3, 13, 30, tzinfo=UTC), 400.0),
        (datetime(2025, 10, 6, 13, 30, tzinfo=UTC), 100.0),
    ):
        for i in range(5):
            ts = day + timedelta(minutes=i)
            minutes.append(Bar("AAPL", Interval.M1, ts, px, px + 1, px - 1, px, 1000.0, "sim"))
    await rt.store.write_bars(minutes, as_of=NOW - timedelta(hours=12))
    # A closed range: its answer is kept, keyed by the series' generation.
    params = {"start": "2025-10-03T13:30:00Z", "end": "2025-10-06T13:35:00Z", "adjust": "split"}
    hits = counter(rt, "bars_response_cache_total", result="hit")
    async with client(rt, Role.READ) as c:
        first = ok(await c.get("/stocks/AAPL/intraday", params=params))
        assert [b["close"] for b in first["bars"]] == [400.0] * 5 + [100.0] * 5
        assert ok(await c.get("/stocks/AAPL/intraday", params=params)) == first
        assert counter(rt, "bars_response_cache_total", result="hit") == hits + 1  # served kept

        vendor.actions["AAPL"] = [SPLIT]
        await service.refresh(["AAPL"])
        after = ok(await c.get("/stocks/AAPL/intraday", params=params))
        assert [b["close"] for b in after["bars"]] == [100.0] * 10
        assert [a["ex_date"] for a in after["adjustment"]["actions"]] == ["2025-10-06"]
        assert counter(rt, "bars_response_cache_total", result="hit") == hits + 1  # not the old bytes


async def test_the_task_refreshes_and_recomputes_the_changed_snapshots(rt: Runtime) -> None:
    use(rt, Vendor("sim", {"AAPL": [SPLIT]}))
    cache = rt.runs.ctx.analysis.analysis
    assert await cache.get_cache("AAPL", "technical", now=NOW) is None
    counters: dict[str, Any] = {}
    await refresh_corporate_actions(rt.runs.ctx, counters, symbols=["AAPL", "MSFT"])
    assert counters["learned"] == 1 and counters["failed"] == 0 and counters["snapshots_recomputed"] == 1
    entry = await cache.get_cache("AAPL", "technical", now=NOW)
    assert entry is not None and entry.computed_at == NOW
    assert await cache.get_cache("MSFT", "technical", now=NOW) is None  # no action: not recomputed

    manual(rt).advance(60)
    again: dict[str, Any] = {}
    await refresh_corporate_actions(rt.runs.ctx, again, symbols=["AAPL"])
    assert again["learned"] == 0 and again["snapshots_recomputed"] == 0
    entry = await cache.get_cache("AAPL", "technical", now=rt.clock.now())
    assert entry is not None and entry.computed_at == NOW


async def test_the_task_fails_when_every_symbol_failed(rt: Runtime) -> None:
    down = Vendor("sim")
    down.down.add("*")
    use(rt, down)
    counters: dict[str, Any] = {}
    with pytest.raises(RuntimeError, match="every symbol failed"):
        await refresh_corporate_actions(rt.runs.ctx, counters, symbols=["AAPL", "MSFT"])
    assert counters["failed"] == 2 and set(counters["errors"]) == {"AAPL", "MSFT"}


def test_the_task_is_scheduled_before_the_open_on_weekdays_when_a_provider_is_routable() -> None:
    task = CATALOG["refresh_corporate_actions"]
    assert task.default.cron == "0 6 * * 1-5" and task.default.timezone == "America/New_York"
    assert task.default.metadata.preflight_checks == ["store", "provider:corporate_actions"]
    assert task.validate_params([], {"symbols": ["AAPL"]}) == {"symbols": ["AAPL"]}
    with pytest.raises(ValueError):
        task.validate_params([], {"symbol": "AAPL"})
