"""The QualityStore contract, on every backend: reconciliation scores (newest per provider ×
symbol × interval), disagreements (newest first, filtered, limited), pruning, the columnar
bar read, and the confirmed-empty minutes due for a re-check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mds.domain.models import Bar, Interval
from mds.reconcile.records import DiffKind, Disagreement, QualityScore
from mds.storage.base import Store

T0 = datetime(2025, 10, 6, 13, 30, tzinfo=UTC)
MIN = timedelta(minutes=1)
DAY1 = datetime(2025, 10, 8, 1, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)


def score(
    provider: str, symbol: str, checked: datetime, compared: int = 390, faults: int = 0
) -> QualityScore:
    return QualityScore(
        provider, symbol, Interval.M1, checked, T0, T0 + 390 * MIN, compared, faults, 1, "other"
    )


def dis(
    provider: str, other: str, symbol: str, checked: datetime, minute: int, field: str = "close"
) -> Disagreement:
    return Disagreement(
        checked, provider, other, symbol, Interval.M1, T0 + minute * MIN, DiffKind.VALUE,
        field, 100.0, 101.5, 150.0, other, "polygon sided with the stored bar",
    )  # fmt: skip


async def test_scores_newest_per_pair_and_replaced_on_the_same_key(store: Store) -> None:
    await store.write_quality([score("sim", "AAPL", DAY1, faults=10), score("sim", "MSFT", DAY1)], [])
    await store.write_quality([score("sim", "AAPL", DAY2, faults=39), score("sim_backup", "AAPL", DAY2)], [])
    got = await store.quality_scores()
    assert [(s.provider, s.symbol, s.checked_at, s.faults) for s in got] == [
        ("sim", "AAPL", DAY2, 39),
        ("sim", "MSFT", DAY1, 0),
        ("sim_backup", "AAPL", DAY2, 0),
    ]
    assert got[0] == score("sim", "AAPL", DAY2, faults=39)
    assert got[0].score == 0.9
    await store.write_quality([score("sim", "AAPL", DAY2, faults=1)], [])  # same key: replaced
    assert [s.faults for s in await store.quality_scores(provider="sim", symbol="AAPL")] == [1]
    assert [s.symbol for s in await store.quality_scores(provider="sim_backup")] == ["AAPL"]
    assert await store.quality_scores(interval=Interval.D1) == []


async def test_disagreements_newest_first_filtered_and_limited(store: Store) -> None:
    old = [dis("sim", "sim_backup", "AAPL", DAY1, m) for m in (3, 1)]
    new = [dis("sim_backup", "sim", "MSFT", DAY2, 2), dis("sim", "polygon", "AAPL", DAY2, 0, "open")]
    await store.write_quality([], old)
    await store.write_quality([score("sim", "AAPL", DAY2)], new)
    got = await store.quality_disagreements()
    assert [(d.checked_at, d.symbol, d.ts) for d in got] == [
        (DAY2, "AAPL", T0),
        (DAY2, "MSFT", T0 + 2 * MIN),
        (DAY1, "AAPL", T0 + MIN),
        (DAY1, "AAPL", T0 + 3 * MIN),
    ]
    assert got[0] == new[1]
    assert len(await store.quality_disagreements(limit=2)) == 2
    assert await store.quality_disagreements(limit=0) == []
    # Either side matches a provider filter.
    assert len(await store.quality_disagreements(provider="sim_backup")) == 3
    assert [d.other_provider for d in await store.quality_disagreements(provider="polygon")] == ["polygon"]
    assert len(await store.quality_disagreements(symbol="AAPL", since=DAY2)) == 1
    assert len(await store.quality_disagreements(provider="sim", symbol="AAPL")) == 3


async def test_missing_bar_rows_keep_their_nulls(store: Store) -> None:
    row = Disagreement(
        DAY1,
        "sim",
        "sim_backup",
        "AAPL",
        Interval.M1,
        T0,
        DiffKind.MISSING,
        "bar",
        None,
        None,
        None,
        None,
        "",
    )
    await store.write_quality([], [row])
    assert await store.quality_disagreements() == [row]


async def test_delete_before_prunes_both_tables(store: Store) -> None:
    await store.write_quality([score("sim", "AAPL", DAY1)], [dis("sim", "b", "AAPL", DAY1, 0)])
    await store.write_quality([score("sim", "AAPL", DAY2)], [dis("sim", "b", "AAPL", DAY2, 0)])
    assert await store.delete_quality_before(DAY2) == 2
    assert [s.checked_at for s in await store.quality_scores()] == [DAY2]
    assert [d.checked_at for d in await store.quality_disagreements()] == [DAY2]
    assert await store.delete_quality_before(DAY1) == 0


async def test_bar_rows_are_the_current_bars_as_tuples(store: Store) -> None:
    bars = [
        Bar("AAPL", Interval.M1, T0 + m * MIN, 10.0 + m, 11.0 + m, 9.0 + m, 10.5 + m, 100.0 * m, "sim")
        for m in range(3)
    ]
    await store.write_bars(bars, as_of=DAY1)
    await store.write_bars([bars[1].with_(close=10.9, provider="sim_backup")], as_of=DAY2)  # a revision
    rows = await store.bar_rows("AAPL", Interval.M1, T0, T0 + 2 * MIN)
    assert [tuple(r) for r in rows] == [
        (int(T0.timestamp()), 10.0, 11.0, 9.0, 10.5, 0.0, "sim"),
        (int((T0 + MIN).timestamp()), 11.0, 12.0, 10.0, 10.9, 100.0, "sim_backup"),
    ]
    assert await store.bar_rows("MSFT", Interval.M1, T0, T0 + 2 * MIN) == []


async def test_empty_minutes_lists_confirmed_ones_with_their_providers(store: Store) -> None:
    epochs = [int((T0 + m * MIN).timestamp()) for m in (5, 6)]
    await store.record_empty_evidence(
        "MSFT", Interval.M1, epochs, "sim", now=DAY1, needed_answers=2, needed_providers=2
    )
    assert await store.empty_minutes(Interval.M1, T0, T0 + 390 * MIN) == []  # evidence, not confirmed
    await store.record_empty_evidence(
        "MSFT", Interval.M1, epochs, "sim_backup", now=DAY1, needed_answers=2, needed_providers=2
    )
    await store.record_empty_evidence(
        "AAPL", Interval.M1, epochs[:1], "sim", now=DAY1, needed_answers=1, needed_providers=1
    )
    got = await store.empty_minutes(Interval.M1, T0, T0 + 390 * MIN)
    assert [(m.symbol, m.ts, m.providers) for m in got] == [
        ("AAPL", T0 + 5 * MIN, ("sim",)),
        ("MSFT", T0 + 5 * MIN, ("sim", "sim_backup")),
        ("MSFT", T0 + 6 * MIN, ("sim", "sim_backup")),
    ]
    assert len(await store.empty_minutes(Interval.M1, T0, T0 + 390 * MIN, limit=2)) == 2
    assert await store.empty_minutes(Interval.M1, T0 + 6 * MIN, T0 + 390 * MIN) == got[2:]
    assert await store.empty_minutes(Interval.D1, T0, T0 + 390 * MIN) == []
