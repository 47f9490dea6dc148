"""The OptionsMetricsStore and MacroStore contract, on every backend.

``options_metrics`` rows are computed at ``T0 + n minutes``; ``macro_factors`` rows are
vintages of FRED-style series (first print, then a revision).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

from mds.config import DEFAULT_MACRO_FACTORS
from mds.domain.macro import MacroObservation, MacroRow
from mds.domain.options import OptionsMetricRow
from mds.providers.sim.macro import sim_macro_observations
from mds.storage.base import Store

T0 = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
LEARNED = datetime(2026, 1, 6, 22, 0, tzinfo=UTC)


def metric(
    n: int, name: str = "atm_iv", tenor: str = "30d", value: float | None = 0.2, symbol: str = "SPY"
) -> OptionsMetricRow:
    return OptionsMetricRow(symbol, T0 + n * MIN, name, tenor, value, "sim")


def macro(day: int, value: float | None, published: date, key: str = "DGS10") -> MacroRow:
    return MacroRow(key, date(2025, 12, day), value, published, LEARNED, "fred")


def as_rows(obs: list[MacroObservation], learned: datetime = LEARNED) -> list[MacroRow]:
    return [MacroRow(o.series, o.date, o.value, o.realtime_start, learned, o.provider) for o in obs]


# -- options_metrics --------------------------------------------------------------------


async def test_options_writes_are_idempotent_and_count_new_rows(store: Store) -> None:
    rows = [metric(0), metric(0, "iv30"), metric(0, "rr25", "30d", -0.03)]
    assert await store.write_options_metrics(rows) == 3
    assert await store.write_options_metrics(rows) == 0
    # Same key with another value: kept as it was. One new row among old ones counts once.
    assert await store.write_options_metrics([metric(0, value=0.9), metric(1), metric(1)]) == 1
    assert await store.write_options_metrics([]) == 0
    history = await store.options_metrics_history("SPY", metric="atm_iv")
    assert [(r.as_of, r.value) for r in history] == [(T0, 0.2), (T0 + MIN, 0.2)]


async def test_options_rows_round_trip(store: Store) -> None:
    plus2 = timezone(timedelta(hours=2))
    row = OptionsMetricRow(
        "QQQ",
        datetime(2026, 1, 5, 17, 0, 0, 123456, tzinfo=plus2),
        "implied_move",
        "2026-01-16",
        None,
        "yahoo",
    )
    await store.write_options_metrics([row])
    (back,) = await store.latest_options_metrics("QQQ")
    assert back == row  # the same instant, microseconds kept; None stays None
    assert back.as_of.utcoffset() == timedelta(0)


async def test_options_history_filters_bounds_and_limit(store: Store) -> None:
    rows = [
        metric(n, name, tenor, float(n))
        for n in range(5)
        for name, tenor in (("atm_iv", "30d"), ("atm_iv", "2026-02-20"), ("bf25", "30d"))
    ]
    rows.append(metric(2, symbol="QQQ"))
    await store.write_options_metrics(rows)

    everything = await store.options_metrics_history("SPY")
    assert len(everything) == 15
    assert [(r.as_of, r.metric, r.tenor) for r in everything] == sorted(
        (r.as_of, r.metric, r.tenor) for r in everything
    )
    assert {r.symbol for r in everything} == {"SPY"}

    tenor = await store.options_metrics_history("SPY", metric="atm_iv", tenor="2026-02-20")
    assert [(r.value, r.tenor) for r in tenor] == [(float(n), "2026-02-20") for n in range(5)]
    by_metric = await store.options_metrics_history("SPY", metric="bf25")
    assert {(r.metric, r.tenor) for r in by_metric} == {("bf25", "30d")} and len(by_metric) == 5

    # start <= as_of < end
    window = await store.options_metrics_history("SPY", metric="bf25", start=T0 + MIN, end=T0 + 3 * MIN)
    assert [r.value for r in window] == [1.0, 2.0]
    # more than `limit` match: the newest `limit`, oldest first
    newest = await store.options_metrics_history("SPY", metric="atm_iv", tenor="30d", limit=2)
    assert [r.value for r in newest] == [3.0, 4.0]
    newest_all = await store.options_metrics_history("SPY", limit=4)
    assert [(r.value, r.metric, r.tenor) for r in newest_all] == [
        (3.0, "bf25", "30d"),
        (4.0, "atm_iv", "2026-02-20"),
        (4.0, "atm_iv", "30d"),
        (4.0, "bf25", "30d"),
    ]
    assert await store.options_metrics_history("SPY", limit=0) == []
    assert await store.options_metrics_history("DIA") == []


async def test_latest_is_the_newest_computation_only(store: Store) -> None:
    await store.write_options_metrics([metric(0, "atm_iv"), metric(0, "iv30"), metric(0, "rr25")])
    await store.write_options_metrics([metric(5, "iv30", value=0.25), metric(5, "atm_iv", "2026-02-20", 0.3)])
    await store.write_options_metrics([metric(9, symbol="QQQ")])
    latest = await store.latest_options_metrics("SPY")
    assert [(r.as_of, r.metric, r.tenor, r.value) for r in latest] == [
        (T0 + 5 * MIN, "atm_iv", "2026-02-20", 0.3),
        (T0 + 5 * MIN, "iv30", "30d", 0.25),
    ]
    assert await store.latest_options_metrics("DIA") == []


# -- macro_factors ----------------------------------------------------------------------


async def test_macro_writes_are_idempotent_and_a_vintage_never_changes(store: Store) -> None:
    rows = [
        macro(1, 4.10, date(2025, 12, 2)),
        macro(1, 4.15, date(2025, 12, 5)),
        macro(2, 4.2, date(2025, 12, 3)),
    ]
    assert await store.write_macro_rows(rows) == 3
    assert await store.write_macro_rows(rows) == 0
    changed = [macro(1, 9.99, date(2025, 12, 2)), macro(3, None, date(2025, 12, 4))]
    assert await store.write_macro_rows(changed) == 1
    assert await store.write_macro_rows([]) == 0
    early = await store.macro_history("DGS10", as_of=date(2025, 12, 2))
    assert [(r.date.day, r.value) for r in early] == [(1, 4.10)]


async def test_macro_as_of_returns_the_vintage_known_then(store: Store) -> None:
    await store.write_macro_rows(
        [
            macro(1, 4.10, date(2025, 12, 2)),  # first print ...
            macro(1, 4.15, date(2025, 12, 5)),  # ... revised three business days later
            macro(2, 4.20, date(2025, 12, 3)),
            macro(3, None, date(2025, 12, 4)),  # missing, stays missing
            macro(4, 4.30, date(2025, 12, 5)),  # first published after the earlier as_of
        ]
    )
    latest = await store.macro_history("DGS10")
    assert [(r.date.day, r.value, r.realtime_start) for r in latest] == [
        (1, 4.15, date(2025, 12, 5)),
        (2, 4.20, date(2025, 12, 3)),
        (3, None, date(2025, 12, 4)),
        (4, 4.30, date(2025, 12, 5)),
    ]
    then = await store.macro_history("DGS10", as_of=date(2025, 12, 4))
    assert [(r.date.day, r.value) for r in then] == [(1, 4.10), (2, 4.20), (3, None)]
    # as_of is inclusive: a vintage known from that day counts.
    assert [r.value for r in await store.macro_history("DGS10", as_of=date(2025, 12, 5))][:1] == [4.15]
    assert await store.macro_history("DGS10", as_of=date(2025, 12, 1)) == []
    row = latest[0]
    assert (row.factor_key, row.as_of, row.source) == ("DGS10", LEARNED, "fred")


async def test_macro_bounds_are_inclusive_and_keys_separate(store: Store) -> None:
    await store.write_macro_rows([macro(d, float(d), date(2025, 12, d + 1)) for d in range(1, 11)])
    await store.write_macro_rows(
        [macro(5, 1.0, date(2025, 12, 6), key="VIXCLS"), macro(5, 2.0, date(2025, 12, 6), key="DFF")]
    )
    window = await store.macro_history("DGS10", start=date(2025, 12, 3), end=date(2025, 12, 6))
    assert [r.date.day for r in window] == [3, 4, 5, 6]
    assert [r.date.day for r in await store.macro_history("DGS10", start=date(2025, 12, 9))] == [9, 10]
    assert [r.date.day for r in await store.macro_history("DGS10", end=date(2025, 12, 1))] == [1]
    assert [r.value for r in await store.macro_history("VIXCLS")] == [1.0]
    assert await store.macro_history("NOPE") == []
    assert await store.macro_factor_keys() == ["DFF", "DGS10", "VIXCLS"]


async def test_stored_vintages_answer_as_of_like_the_sim_knew_then(store: Store) -> None:
    """Every vintage of two years of ten series, written in one go each; then a read as of
    any day equals what the sim had published by that day. (No timing here: speed targets
    live in benchmarks, not in tests on a shared machine.)"""
    start, end, today = date(2024, 1, 1), date(2025, 12, 31), date(2026, 1, 5)
    written = 0
    for series in DEFAULT_MACRO_FACTORS:
        vintages = sim_macro_observations(series, start=start, end=end, today=today, vintages=True)
        written += await store.write_macro_rows(as_rows(vintages))
    assert written > 10 * 523  # every date, plus the revisions
    assert await store.macro_factor_keys() == sorted(DEFAULT_MACRO_FACTORS)

    for series in ("DTWEXBGS", "DGS10", "T10Y2Y"):
        for as_of in (date(2024, 3, 6), date(2025, 6, 3), today):
            known = sim_macro_observations(series, start=start, end=end, today=as_of)
            read = await store.macro_history(series, as_of=as_of)
            assert [(r.date, r.value, r.realtime_start) for r in read] == [
                (o.date, o.value, o.realtime_start) for o in known
            ], (series, as_of)
