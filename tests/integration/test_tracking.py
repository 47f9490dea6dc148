"""Index refreshes, holdings and the tracked set over a real SQLite store (and real Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis.asyncio import Redis

from mds.calendar import MarketCalendar
from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Interval
from mds.domain.reference import Constituent, IndexName
from mds.errors import NotEntitled, Unavailable
from mds.observability.metrics import Metrics
from mds.providers.sim.market import ground_truth
from mds.services.indexes import IndexRefresher
from mds.services.tracked import TRACKED_ALL_KEY, TRACKED_NEW_KEY, TrackedService, publish_sets
from mds.storage.sqlite import SqliteStore
from tests.redis_support import redis_url

NOW = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)  # a Wednesday
CAL = MarketCalendar()


class ListSource:
    """A constituent source answering from a dict (or failing the way a vendor does)."""

    def __init__(
        self, name: str, lists: dict[str, list[str]] | None = None, error: Exception | None = None
    ) -> None:
        self.name = name
        self.lists = lists or {}
        self.error = error
        self.calls = 0

    async def fetch(self, index: IndexName) -> list[Constituent]:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return [Constituent(s, f"{s} Corp", "Industrials", "") for s in self.lists[index]]

    async def aclose(self) -> None:
        return None


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    s = SqliteStore(str(tmp_path / "t.db"))
    await s.open()
    yield s
    await s.close()


def _refresher(store: SqliteStore, clock: ManualClock, *sources: ListSource, **env: str) -> IndexRefresher:
    return IndexRefresher(
        store=store, sources=sources, clock=clock, settings=load_settings(env), metrics=Metrics()
    )


SP = [f"S{i:03d}" for i in range(100)]


async def test_fmp_first_then_wikipedia_and_every_attempt_is_recorded(store: SqliteStore) -> None:
    clock = ManualClock(NOW)
    fmp = ListSource("fmp", error=NotEntitled("fmp", "Legacy Endpoint"))
    wiki = ListSource("wikipedia", {"SP500": SP})
    r = await _refresher(store, clock, fmp, wiki).refresh("SP500")
    assert (r.applied, r.provider_used, r.fallback_used, r.fetched, r.inserted) == (
        True,
        "wikipedia",
        True,
        100,
        100,
    )
    assert "fmp" in r.reason and "Legacy Endpoint" in r.reason
    assert [x.started_at for x in await store.index_refreshes(index="SP500")] == [NOW]
    # Members join the universe so they are collected and served.
    assert (await store.get_symbol("S042")) is not None


async def test_a_constituent_change_across_two_refreshes(store: SqliteStore) -> None:
    clock = ManualClock(NOW)
    first = ListSource("fmp", {"SP500": SP})
    await _refresher(store, clock, first).refresh("SP500")
    clock.advance(7 * 86400)
    # S000 leaves, N100 joins.
    second = ListSource("fmp", {"SP500": [*SP[1:], "N100"]})
    r = await _refresher(store, clock, second).refresh("SP500")
    assert (r.fetched, r.inserted, r.reactivated, r.inactivated) == (100, 1, 0, 1)
    tracked = await TrackedService(
        store=store, calendar=CAL, clock=clock, settings=load_settings({})
    ).tracked_set()
    assert "S000" in tracked.all and "N100" in tracked.all  # the leaver stays tracked
    assert tracked.index_counts["SP500"] == 100
    clock.advance(7 * 86400)
    back = ListSource("fmp", {"SP500": SP})  # S000 rejoins, N100 leaves
    r = await _refresher(store, clock, back).refresh("SP500")
    assert (r.fetched, r.inserted, r.reactivated, r.inactivated) == (100, 0, 1, 1)
    # Past INDEX_INACTIVE_TRACKED_DAYS a leaver drops out of the tracked set (its row stays).
    clock.advance(2 * 86400)
    service = TrackedService(
        store=store, calendar=CAL, clock=clock, settings=load_settings({"INDEX_INACTIVE_TRACKED_DAYS": "1"})
    )
    assert "N100" not in (await service.tracked_set()).all
    assert {m.symbol for m in await store.index_members("SP500", active_only=False)} >= {"N100", "S000"}


async def test_an_implausibly_short_list_changes_nothing_and_says_why(store: SqliteStore) -> None:
    clock = ManualClock(NOW)
    await _refresher(store, clock, ListSource("fmp", {"SP500": SP})).refresh("SP500")
    half = ListSource("fmp", {"SP500": SP[:89]})  # under 90% of 100
    r = await _refresher(store, clock, half).refresh("SP500")
    assert not r.applied and r.fetched == 89 and r.inactivated == 0
    assert "89" in r.reason and "100" in r.reason
    assert len(await store.index_members("SP500")) == 100
    ninety = ListSource("fmp", {"SP500": SP[:90]})  # exactly 90% is plausible
    assert (await _refresher(store, clock, ninety).refresh("SP500")).inactivated == 10


async def test_every_source_failing_is_recorded_as_failed_and_changes_nothing(store: SqliteStore) -> None:
    clock = ManualClock(NOW)
    metrics = Metrics()
    refresher = IndexRefresher(
        store=store,
        sources=[
            ListSource("fmp", error=Unavailable("fmp", "503")),
            ListSource("wikipedia", error=Unavailable("wikipedia", "timeout")),
        ],
        clock=clock,
        settings=load_settings({}),
        metrics=metrics,
    )
    r = await refresher.refresh("DOW30")
    assert not r.applied and r.provider_used == "" and "fmp" in r.reason and "wikipedia" in r.reason
    assert metrics.value("index_refresh_total", index="DOW30", outcome="failed") == 1
    assert await store.index_members("DOW30") == []


async def test_tracked_new_counts_sessions_held_against_the_last_200(store: SqliteStore) -> None:
    clock = ManualClock(NOW)
    settings = load_settings({})
    service = TrackedService(store=store, calendar=CAL, clock=clock, settings=settings)
    await service.hold(["aapl", "BRK-B"])
    sessions = CAL.closed_sessions(NOW, settings.BACKFILL_TRACKED_SESSIONS)
    # AAPL holds every one of the last 200 sessions; BRK.B and SPY hold none.
    await store.write_bars(ground_truth("AAPL", Interval.D1, sessions[0].open, NOW), as_of=NOW)
    t = await service.refresh()  # also puts SPY in the universe
    assert (await store.get_symbol("SPY")) is not None
    assert t.all == {"AAPL", "BRK.B", "SPY"}
    assert t.new == {"BRK.B", "SPY"}
    # A symbol that listed 10 sessions ago is complete with 10 bars.
    await store.set_first_trade_session("SPY", sessions[-10].open)
    await store.write_bars(ground_truth("SPY", Interval.D1, sessions[-10].open, NOW), as_of=NOW)
    assert (await service.tracked_set()).new == {"BRK.B"}


async def test_holding_a_bad_ticker_is_refused_naming_it(store: SqliteStore) -> None:
    from mds.errors import InvalidRequest

    service = TrackedService(store=store, calendar=CAL, clock=ManualClock(NOW), settings=load_settings({}))
    with pytest.raises(InvalidRequest) as caught:
        await service.hold(["AAPL", "not a ticker!"])
    assert caught.value.field == "symbols" and "not a ticker!" in caught.value.message
    assert await store.holdings() == []


async def test_tracked_sets_are_published_to_redis_and_replaced_whole() -> None:
    from mds.domain.reference import TrackedSet

    client = Redis.from_url(redis_url())
    try:
        await publish_sets(client, TrackedSet(frozenset({"SPY", "AAPL", "OLD"}), frozenset({"OLD"})))
        await publish_sets(client, TrackedSet(frozenset({"SPY", "AAPL"}), frozenset()))
        assert await client.smembers(TRACKED_ALL_KEY) == {b"SPY", b"AAPL"}
        assert not await client.exists(TRACKED_NEW_KEY)
    finally:
        await client.delete(TRACKED_ALL_KEY, TRACKED_NEW_KEY)
        await client.aclose()


async def test_the_weekly_refresh_task_counts_per_index_and_fails_when_no_source_answers(
    make_pipeline,
) -> None:  # type: ignore[no-untyped-def]
    from mds.ops.catalog import backfill_new_tracked, refresh_index_constituents

    p = await make_pipeline()
    down = ListSource("fmp", error=Unavailable("fmp", "503"))
    ctx = p.task_context(
        IndexRefresher(store=p.store, sources=[down], clock=p.clock, settings=p.settings, metrics=Metrics())
    )
    failed: dict[str, object] = {}
    with pytest.raises(RuntimeError, match="not applied") as err:
        await refresh_index_constituents(ctx, failed)
    assert "fmp: " in str(err.value) and "503" in str(err.value)
    assert failed["SP500"] == {  # what the failed run records for each index
        "fetched": 0,
        "inserted": 0,
        "reactivated": 0,
        "inactivated": 0,
        "provider_used": "",
        "fallback_used": False,
        "applied": False,
        "reason": failed["SP500"]["reason"],  # type: ignore[index]
    }
    down.error, down.lists = None, {i: SP for i in ("SP500", "NASDAQ100", "DOW30")}
    done: dict[str, object] = {}
    await refresh_index_constituents(ctx, done, index="DOW30")
    assert set(done) == {"DOW30", "fetched", "inserted", "reactivated", "inactivated"}
    assert (done["fetched"], done["inserted"], done["DOW30"]["provider_used"]) == (100, 100, "fmp")  # type: ignore[index]
    # The new members are tracked:new; the nightly task queues their missing daily history.
    queued: dict[str, object] = {}
    await backfill_new_tracked(ctx, queued, sessions=20)
    assert queued["symbols"] == 101  # the index's 100 members and SPY
    assert isinstance(queued["jobs_created"], int) and queued["jobs_created"] >= 101
