"""Reconciliation arithmetic: ticks, percent, missing/extra bars, verdicts and scores; the
sim's price noise; the quality factor of the health score."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mds.domain.models import Bar, Interval
from mds.errors import ConfigError
from mds.providers.sim.faults import FaultInjector, SimFaults
from mds.reconcile.compare import (
    OTHER,
    STORED,
    Series,
    Tolerance,
    compare,
    judge,
    price_diff_ticks,
    volume_diff_pct,
)
from mds.reconcile.records import DiffKind, QualityScore
from mds.reconcile.service import pooled
from mds.routing.health import ProviderStats, health_score

T0 = datetime(2025, 10, 6, 13, 30, tzinfo=UTC)
TOL = Tolerance(price_ticks=1.0, volume_pct=10.0)


def bar(minute: int, close: float = 100.0, volume: float = 1000.0, provider: str = "a") -> Bar:
    return Bar(
        "AAPL",
        Interval.M1,
        T0 + timedelta(minutes=minute),
        close,
        close + 0.05,
        close - 0.05,
        close,
        volume,
        provider,
    )


def test_price_diff_in_ticks_and_volume_in_percent() -> None:
    assert price_diff_ticks(100.00, 100.03) == 3.0
    assert price_diff_ticks(0.03, 0.02) == 1.0  # float noise does not make it 0.9999
    assert volume_diff_pct(1000.0, 900.0) == 10.0  # of the larger, so symmetric
    assert volume_diff_pct(900.0, 1000.0) == 10.0
    assert volume_diff_pct(0.0, 0.0) == 0.0
    assert volume_diff_pct(0.0, 5.0) == 100.0


def test_tolerances_are_inclusive() -> None:
    stored = Series.of([bar(0, 100.00), bar(1, 100.00), bar(2, 100.0, 1000.0), bar(3, 100.0, 1000.0)])
    other = Series.of([bar(0, 100.01), bar(1, 100.02), bar(2, 100.0, 900.0), bar(3, 100.0, 899.0)])
    result = compare(stored, other, TOL)
    assert (result.matched, result.agreeing) == (4, 2)
    by_ts = {d.ts: d for d in result.diffs}
    one = by_ts[int((T0 + timedelta(minutes=1)).timestamp())]
    assert one.kind is DiffKind.VALUE and one.stored_provider == "a"
    assert {f.field: f.diff for f in one.fields} == {"open": 2.0, "high": 2.0, "low": 2.0, "close": 2.0}
    three = by_ts[int((T0 + timedelta(minutes=3)).timestamp())]
    assert [(f.field, f.stored, f.other, f.diff) for f in three.fields] == [("volume", 1000.0, 899.0, 10.1)]


def test_missing_and_extra_bars() -> None:
    stored = Series.of([bar(0), bar(1), bar(3)])
    other = Series.of([bar(0, provider="b"), bar(2, provider="b"), bar(3, provider="b")])
    result = compare(stored, other, TOL)
    assert (result.matched, result.agreeing, result.missing, result.extra) == (2, 2, 1, 1)
    kinds = [(d.kind, d.ts - int(T0.timestamp()), d.stored_provider) for d in result.diffs]
    assert kinds == [(DiffKind.EXTRA, 60, "a"), (DiffKind.MISSING, 120, None)]


def test_series_sorts_unordered_bars() -> None:
    s = Series.of([bar(2, 3.0), bar(0, 1.0), bar(1, 2.0)])
    assert s.ts.tolist() == [int((T0 + timedelta(minutes=m)).timestamp()) for m in range(3)]
    assert s.prices[3].tolist() == [1.0, 2.0, 3.0]


def test_referee_sides_with_the_majority() -> None:
    stored = Series.of([bar(0, 100.0), bar(1, 100.0), bar(2, 100.0), bar(3, 100.0)])
    other = Series.of([bar(0, 101.0, provider="b"), bar(1, 101.0, provider="b"), bar(3, 100.0, provider="b")])
    referee = Series.of(
        [bar(0, 100.0, provider="c"), bar(1, 101.0, provider="c"), bar(2, 100.0, provider="c")]
    )
    result = compare(stored, other.drop_times(other.ts[:0]), TOL)
    verdicts = {d.ts - int(T0.timestamp()): judge(d, stored, other, referee, TOL) for d in result.diffs}
    # minute 0: referee agrees with stored; 1: with the other; 2: other lacks a bar two have.
    assert verdicts == {0: OTHER, 60: STORED, 120: OTHER}
    # Minute 3 matched and agreed; without a referee nothing is decided.
    assert all(judge(d, stored, other, None, TOL) is None for d in result.diffs)


def test_referee_agreeing_with_neither_decides_nothing() -> None:
    stored, other = Series.of([bar(0, 100.0)]), Series.of([bar(0, 102.0, provider="b")])
    [diff] = compare(stored, other, TOL).diffs
    assert judge(diff, stored, other, Series.of([bar(0, 104.0, provider="c")]), TOL) is None
    assert (
        judge(diff, stored, other, Series.of([bar(5, 100.0, provider="c")]), TOL) is None
    )  # referee lacks it


def test_a_bar_only_the_store_has_is_blamed_on_the_store_when_the_referee_lacks_it_too() -> None:
    stored, other = Series.of([bar(0), bar(1)]), Series.of([bar(0, provider="b")])
    [diff] = compare(stored, other, TOL).diffs
    assert diff.kind is DiffKind.EXTRA
    assert judge(diff, stored, other, Series.of([bar(0, provider="c")]), TOL) == STORED
    assert judge(diff, stored, other, Series.of([bar(0, provider="c"), bar(1, provider="c")]), TOL) == OTHER


def test_a_hole_in_the_store_is_blamed_on_nobody() -> None:
    stored, other = Series.of([bar(0)]), Series.of([bar(0, provider="b"), bar(1, provider="b")])
    [diff] = compare(stored, other, TOL).diffs
    assert diff.kind is DiffKind.MISSING
    assert judge(diff, stored, other, Series.of([bar(0, provider="c"), bar(1, provider="c")]), TOL) is None
    assert judge(diff, stored, other, Series.of([bar(0, provider="c")]), TOL) == OTHER  # b invented it


def test_without_drops_a_providers_bars() -> None:
    s = Series.of([bar(0, provider="a"), bar(1, provider="b"), bar(2, provider="a")])
    assert s.without("b").providers == ("a", "a") and len(s.without("b")) == 2
    assert s.without("z") is s


def test_score_and_pooling() -> None:
    def q(provider: str, compared: int, faults: int) -> QualityScore:
        return QualityScore(provider, "X", Interval.M1, T0, T0, T0, compared, faults, 0, "o")

    assert q("a", 0, 0).score == 1.0
    assert q("a", 390, 39).score == pytest.approx(0.9)
    assert pooled([q("a", 100, 10), q("a", 300, 0), q("b", 0, 0), q("c", 10, 10)]) == {
        "a": pytest.approx(0.975),
        "c": 0.0,
    }


def test_quality_multiplies_health_and_can_demote_alone() -> None:
    assert health_score(1.0, None, 500.0, 0.0, 1.0) == pytest.approx(1.0)
    # Completeness alone moves a perfect provider at most to 0.90: never below 0.55.
    assert health_score(1.0, None, 500.0, 0.0, 0.0) == pytest.approx(0.90)
    assert health_score(1.0, None, 500.0, 0.0, 1.0, 0.5) == pytest.approx(0.5)
    assert health_score(1.0, None, 500.0, 0.0, 1.0, 2.0) == pytest.approx(1.0)  # clamped
    stats = ProviderStats()
    stats.record_quality(0.4)
    assert stats.health(1.0, 500.0) == pytest.approx(0.4)
    for bad in (-0.1, 1.1, float("nan")):
        with pytest.raises(ValueError):
            stats.record_quality(bad)


def test_price_noise_setting_is_read_and_checked() -> None:
    assert SimFaults.from_env({"SIM_BACKUP_PRICE_NOISE": "0.01"}, "SIM_BACKUP_").price_noise == 0.01
    assert SimFaults.from_env({}, "SIM_").price_noise == 0.0
    for raw, setting in (
        ("2", "SIM_BACKUP_PRICE_NOISE"),
        ("-0.1", "SIM_BACKUP_PRICE_NOISE"),
        ("x", "SIM_BACKUP_PRICE_NOISE"),
    ):
        with pytest.raises(ConfigError) as info:
            SimFaults.from_env({"SIM_BACKUP_PRICE_NOISE": raw}, "SIM_BACKUP_")
        assert info.value.setting == setting


def test_price_noise_moves_prices_and_keeps_bars_valid() -> None:
    bars = [bar(m, 50.0 + m * 0.1, provider="sim") for m in range(390)]
    noisy = FaultInjector("sim", SimFaults(price_noise=0.01), rng_seed=1).degrade(bars)
    assert len(noisy) == len(bars)
    assert all(not b.problems() for b in noisy)
    moved = [abs(n.close - b.close) / b.close for n, b in zip(noisy, bars, strict=True)]
    assert sum(1 for m in moved if m > 0.001) > 300  # most bars off by more than 0.1%
    assert max(moved) < 0.1
    assert [b.volume for b in noisy] == [b.volume for b in bars]
    clean = FaultInjector("sim", SimFaults(), rng_seed=1).degrade(bars)
    assert clean == bars
