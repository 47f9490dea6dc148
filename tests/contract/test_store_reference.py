"""The ReferenceStore contract and the universe's import bookkeeping, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mds.domain.models import Bar, Interval, Tier
from mds.domain.records import UniverseEntry
from mds.domain.reference import Constituent, IndexRefresh
from mds.storage.base import Store

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(days=7)
T2 = T1 + timedelta(days=7)


def _members(*symbols: str) -> list[Constituent]:
    return [Constituent(s, f"{s} Inc.", "Information Technology", "Software") for s in symbols]


async def test_a_leaver_is_kept_inactive_and_a_rejoiner_is_reactivated(store: Store) -> None:
    first = await store.apply_constituents("SP500", _members("AAPL", "MSFT", "XYZ"), source="fmp", now=T0)
    assert (first.fetched, first.inserted, first.reactivated, first.inactivated) == (3, 3, 0, 0)

    second = await store.apply_constituents(
        "SP500", _members("AAPL", "MSFT", "NEW"), source="wikipedia", now=T1
    )
    assert (second.fetched, second.inserted, second.reactivated, second.inactivated) == (3, 1, 0, 1)
    everyone = {m.symbol: m for m in await store.index_members("SP500", active_only=False)}
    assert set(everyone) == {"AAPL", "MSFT", "XYZ", "NEW"}  # nobody deleted
    assert not everyone["XYZ"].is_active and everyone["XYZ"].became_inactive_at == T1
    assert everyone["AAPL"].is_active and everyone["AAPL"].source == "wikipedia"
    assert everyone["AAPL"].first_seen_at == T0  # a refresh keeps when it was first seen
    assert [m.symbol for m in await store.index_members("SP500")] == ["AAPL", "MSFT", "NEW"]

    third = await store.apply_constituents(
        "SP500", _members("AAPL", "MSFT", "NEW", "XYZ"), source="fmp", now=T2
    )
    assert (third.fetched, third.inserted, third.reactivated, third.inactivated) == (4, 0, 1, 0)
    back = {m.symbol: m for m in await store.index_members("SP500")}["XYZ"]
    assert back.is_active and back.became_inactive_at is None and back.first_seen_at == T0


async def test_indexes_are_kept_apart(store: Store) -> None:
    await store.apply_constituents("SP500", _members("AAPL", "MSFT"), source="fmp", now=T0)
    await store.apply_constituents("DOW30", _members("MSFT", "BA"), source="fmp", now=T0)
    await store.apply_constituents("DOW30", _members("MSFT"), source="fmp", now=T1)
    assert [m.symbol for m in await store.index_members("SP500")] == ["AAPL", "MSFT"]
    assert [(m.index, m.symbol, m.is_active) for m in await store.index_members(active_only=False)] == [
        ("DOW30", "BA", False),
        ("DOW30", "MSFT", True),
        ("SP500", "AAPL", True),
        ("SP500", "MSFT", True),
    ]


async def test_refresh_records_round_trip_newest_first(store: Store) -> None:
    a = IndexRefresh("SP500", T0, 503, 503, 0, 0, "fmp", False, True, "")
    b = IndexRefresh("SP500", T1, 12, 0, 0, 0, "wikipedia", True, False, "fewer than 90%")
    c = IndexRefresh("DOW30", T1, 30, 30, 0, 0, "fmp", False, True, "")
    for r in (a, b, c):
        await store.record_index_refresh(r)
    assert await store.index_refreshes(index="SP500") == [b, a]
    assert (await store.index_refreshes(limit=1))[0].started_at == T1


async def test_holdings_add_and_remove_report_what_changed(store: Store) -> None:
    assert await store.add_holdings(["MSFT", "AAPL"], note="ira", now=T0) == ["AAPL", "MSFT"]
    assert await store.add_holdings(["AAPL", "TSLA"], note="", now=T1) == ["TSLA"]
    held = await store.holdings()
    assert [(h.symbol, h.added_at, h.note) for h in held] == [
        ("AAPL", T0, "ira"),
        ("MSFT", T0, "ira"),
        ("TSLA", T1, ""),
    ]
    assert await store.remove_holdings(["MSFT", "NOPE"]) == ["MSFT"]
    assert [h.symbol for h in await store.holdings()] == ["AAPL", "TSLA"]


async def test_an_import_counts_added_removed_unchanged_and_records_tier_changes(store: Store) -> None:
    first = [UniverseEntry("AAPL", Tier.T0), UniverseEntry("MSFT", Tier.T1), UniverseEntry("GONE", Tier.T2)]
    c1 = await store.upsert_universe(first, version_tag="v1", source_meta={}, now=T0, source="nasdaq-trader")
    assert (c1.added, c1.removed, c1.unchanged, c1.tier_changes) == (3, 0, 0, 0)

    second = [
        UniverseEntry("AAPL", Tier.T0),
        UniverseEntry("MSFT", Tier.T0, etf=False),
        UniverseEntry("QQQ", Tier.T1, etf=True),
    ]
    c2 = await store.upsert_universe(
        second,
        version_tag="v2",
        source_meta={},
        now=T1,
        source="nasdaq-trader",
        file_time=T1 - timedelta(hours=3),
        measures={"MSFT": 9.5e9},
        keep_active=["HELD"],
    )
    assert (c2.added, c2.removed, c2.unchanged, c2.tier_changes) == (1, 1, 2, 1)
    gone = await store.get_symbol("GONE")
    assert gone is not None and not gone.active  # inactive, never deleted
    qqq = await store.get_symbol("QQQ")
    assert qqq is not None and qqq.etf and qqq.active
    versions = await store.universe_versions()
    assert [(v.version_tag, v.added, v.removed, v.unchanged) for v in versions] == [
        ("v2", 1, 1, 2),
        ("v1", 3, 0, 0),
    ]
    assert versions[0].file_time == T1 - timedelta(hours=3) and versions[0].source == "nasdaq-trader"
    moves = await store.tier_changes(symbol="MSFT")
    assert [(m.old_tier, m.new_tier, m.measure, m.reason) for m in moves] == [
        (Tier.T1, Tier.T0, 9.5e9, "v2"),
        (None, Tier.T1, None, "v1"),
    ]


async def test_keep_active_protects_tracked_symbols_from_an_import(store: Store) -> None:
    await store.upsert_universe(
        [UniverseEntry("HELD", Tier.T2), UniverseEntry("X", Tier.T2)], version_tag="v1", source_meta={}
    )
    change = await store.upsert_universe(
        [UniverseEntry("Y", Tier.T2)], version_tag="v2", source_meta={}, keep_active={"HELD"}
    )
    assert change.removed == 1
    assert {e.symbol for e in await store.universe()} == {"HELD", "Y"}


async def test_set_tiers_moves_only_what_changed(store: Store) -> None:
    await store.upsert_universe(
        [UniverseEntry("A", Tier.T0), UniverseEntry("B", Tier.T1), UniverseEntry("C", Tier.T2)],
        version_tag="v1",
        source_meta={},
        now=T0,
    )
    moved = await store.set_tiers(
        {"A": Tier.T1, "B": Tier.T1, "C": Tier.T0, "ABSENT": Tier.T0},
        measures={"C": 5.0},
        reason="retier",
        now=T1,
    )
    assert moved == 2
    assert {e.symbol: e.tier for e in await store.universe()} == {"A": Tier.T1, "B": Tier.T1, "C": Tier.T0}
    latest = await store.tier_changes(limit=2)
    assert {(m.symbol, m.old_tier, m.new_tier, m.reason) for m in latest} == {
        ("A", Tier.T0, Tier.T1, "retier"),
        ("C", Tier.T2, Tier.T0, "retier"),
    }


async def test_ensure_symbols_adds_new_and_reactivates_without_touching_tiers(store: Store) -> None:
    await store.upsert_universe(
        [UniverseEntry("OLD", Tier.T0), UniverseEntry("ON", Tier.T1)], version_tag="v1", source_meta={}
    )
    await store.upsert_universe(
        [UniverseEntry("ON", Tier.T1)], version_tag="v2", source_meta={}
    )  # OLD inactive
    assert await store.ensure_symbols(["ON", "OLD", "NEW"], tier=Tier.T2, now=T1) == ["NEW", "OLD"]
    tiers = {e.symbol: (e.tier, e.active) for e in await store.universe(active_only=False)}
    assert tiers == {"OLD": (Tier.T0, True), "ON": (Tier.T1, True), "NEW": (Tier.T2, True)}


async def test_dollar_volume_medians_look_at_the_last_n_daily_bars(store: Store) -> None:
    start = datetime(2025, 1, 2, 14, 30, tzinfo=UTC)
    bars = [
        Bar("AAPL", Interval.D1, start + timedelta(days=i), 1, 1, 1, close, 100.0, "sim")
        for i, close in enumerate([1000.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    ]
    await store.write_bars(bars, as_of=T0)
    medians = await store.dollar_volume_medians(["AAPL", "NONE"], sessions=5)
    assert medians == {"AAPL": 300.0}  # median of closes 1..5 x 100; the old 1000 is outside
