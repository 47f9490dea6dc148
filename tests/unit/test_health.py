"""Health score arithmetic and rolling provider statistics."""

from __future__ import annotations

import pytest

from mds.errors import (
    AuthError,
    BadPayload,
    NoData,
    NotEntitled,
    RateLimited,
    Unavailable,
)
from mds.routing.health import ProviderStats, health_score, latency_component


class TestHealthScore:
    def test_perfect_provider_scores_one(self) -> None:
        assert health_score(1.0, None, 500.0, 0.0, 1.0) == pytest.approx(1.0)

    def test_worst_provider_scores_zero(self) -> None:
        assert health_score(0.0, 10_000.0, 500.0, 1.0, 0.0) == pytest.approx(0.0)

    def test_worked_example_half_open_mid_latency(self) -> None:
        # 0.45*0.5 + 0.25*(1 - 250/500) + 0.20*(1 - 0.1) + 0.10*0.9
        # = 0.225 + 0.125 + 0.18 + 0.09 = 0.62
        assert health_score(0.5, 250.0, 500.0, 0.1, 0.9) == pytest.approx(0.62)

    def test_worked_example_closed_slow_and_erring(self) -> None:
        # 0.45*1 + 0.25*(1 - 400/500) + 0.20*(1 - 0.5) + 0.10*1
        # = 0.45 + 0.05 + 0.10 + 0.10 = 0.70
        assert health_score(1.0, 400.0, 500.0, 0.5, 1.0) == pytest.approx(0.70)

    def test_worked_example_open_breaker_otherwise_perfect(self) -> None:
        # 0 + 0.25 + 0.20 + 0.10 = 0.55: an open breaker alone sits right at demote.
        assert health_score(0.0, 0.0, 500.0, 0.0, 1.0) == pytest.approx(0.55)

    def test_latency_above_cap_is_capped(self) -> None:
        # 0.45 + 0.25*0 + 0.20*0.8 + 0.10*0.5 = 0.45 + 0.16 + 0.05 = 0.66
        assert health_score(1.0, 2000.0, 500.0, 0.2, 0.5) == pytest.approx(0.66)

    def test_inputs_out_of_range_are_clamped(self) -> None:
        assert health_score(2.0, -5.0, 500.0, -1.0, 3.0) == pytest.approx(1.0)
        assert health_score(-1.0, 1e9, 500.0, 5.0, -2.0) == pytest.approx(0.0)

    @pytest.mark.parametrize("breaker", [0.0, 0.5, 1.0])
    @pytest.mark.parametrize("p95", [None, 0.0, 100.0, 499.0, 500.0, 5000.0])
    @pytest.mark.parametrize("err", [0.0, 0.37, 1.0])
    @pytest.mark.parametrize("comp", [0.0, 0.5, 1.0])
    def test_bounds(self, breaker: float, p95: float | None, err: float, comp: float) -> None:
        assert 0.0 <= health_score(breaker, p95, 500.0, err, comp) <= 1.0

    def test_latency_component(self) -> None:
        assert latency_component(None, 500.0) == 1.0
        assert latency_component(125.0, 500.0) == pytest.approx(0.75)
        assert latency_component(600.0, 500.0) == 0.0

    def test_non_positive_cap_is_refused(self) -> None:
        with pytest.raises(ValueError):
            health_score(1.0, 10.0, 0.0, 0.0, 1.0)


class TestProviderStats:
    def test_fresh_stats(self) -> None:
        s = ProviderStats()
        assert s.latency_p95_ms is None
        assert s.error_ewma == 0.0
        assert s.completeness == 1.0
        assert s.consecutive_failures == 0
        assert s.health(1.0, 500.0) == pytest.approx(1.0)

    def test_error_ewma_alpha_02(self) -> None:
        s = ProviderStats()
        s.record_failure()
        assert s.error_ewma == pytest.approx(0.2)
        s.record_failure()
        assert s.error_ewma == pytest.approx(0.36)  # 0.8*0.2 + 0.2
        s.record_success(10.0)
        assert s.error_ewma == pytest.approx(0.288)  # 0.8*0.36

    def test_consecutive_failures_reset_on_success(self) -> None:
        s = ProviderStats()
        for _ in range(3):
            s.record_failure()
        assert s.consecutive_failures == 3
        s.record_success(5.0)
        assert s.consecutive_failures == 0

    @pytest.mark.parametrize(
        "err",
        [RateLimited("sim", retry_after=5), NoData("sim"), NotEntitled("sim")],
        ids=["rate_limited", "no_data", "not_entitled"],
    )
    def test_non_failures_do_not_move_stats(self, err: Exception) -> None:
        s = ProviderStats()
        s.record_failure()
        before = (s.error_ewma, s.consecutive_failures)
        assert s.record_error(err) is False  # type: ignore[arg-type]
        assert (s.error_ewma, s.consecutive_failures) == before

    @pytest.mark.parametrize("err", [Unavailable("sim"), BadPayload("sim"), AuthError("sim")], ids=str)
    def test_failures_move_stats(self, err: Exception) -> None:
        s = ProviderStats()
        assert s.record_error(err) is True  # type: ignore[arg-type]
        assert s.error_ewma == pytest.approx(0.2)
        assert s.consecutive_failures == 1

    def test_p95_nearest_rank(self) -> None:
        s = ProviderStats()
        for ms in range(1, 21):  # 1..20 ms
            s.record_success(float(ms))
        # ceil(0.95 * 20) = 19th smallest
        assert s.latency_p95_ms == 19.0

    def test_latency_window_keeps_last_50(self) -> None:
        s = ProviderStats()
        for _ in range(50):
            s.record_success(1000.0)
        for _ in range(50):
            s.record_success(10.0)
        assert s.latency_samples == 50
        assert s.latency_p95_ms == 10.0

    def test_completeness_ewma(self) -> None:
        s = ProviderStats()
        s.record_completeness(0.5)
        assert s.completeness == pytest.approx(0.9)  # 0.8*1 + 0.2*0.5
        s.record_completeness(0.0)
        assert s.completeness == pytest.approx(0.72)

    @pytest.mark.parametrize("ratio", [-0.1, 1.1, float("nan")])
    def test_completeness_out_of_range_refused(self, ratio: float) -> None:
        with pytest.raises(ValueError):
            ProviderStats().record_completeness(ratio)

    def test_health_from_stats(self) -> None:
        s = ProviderStats()
        s.record_success(250.0)
        s.record_failure()
        s.record_completeness(0.5)
        # latency 1 - 250/500 = 0.5; error 1 - 0.2 = 0.8; completeness 0.9
        # closed: 0.45 + 0.125 + 0.16 + 0.09 = 0.825
        assert s.health(1.0, 500.0) == pytest.approx(0.825)
