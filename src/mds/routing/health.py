"""Rolling provider statistics and the health score H.

Hand-written, as DESIGN.md asks: no library computes this routing-specific score. It is
small, pure arithmetic over a handful of rolling figures, so it lives here in full.

    H = quality · (0.45·breaker + 0.25·latency + 0.20·error + 0.10·completeness)

Every component is in [0, 1], so H is too. ``ProviderStats`` keeps the figures the
components are computed from; ``health_score`` is the pure formula.

``quality`` is the provider's data-quality score from cross-vendor reconciliation
(:mod:`mds.reconcile`): the share of its compared bars that agreed with the other vendors,
1.0 until reconciliation has scored it. It multiplies H rather than adding a fifth term
because an additive data term cannot demote: with completeness weighing 0.10, a provider
that answers fast and never fails scores H >= 0.90 whatever its data, far above the demote
threshold (0.55). Wrong prices served fast are worse than no answer, so a provider whose
bars agree with the others only half the time is worth at most half of a perfect one.
"""

from __future__ import annotations

import math
from collections import deque

from mds.errors import ProviderError

#: Weights of H's components, in the order breaker, latency, error, completeness.
BREAKER_WEIGHT = 0.45
LATENCY_WEIGHT = 0.25
ERROR_WEIGHT = 0.20
COMPLETENESS_WEIGHT = 0.10

#: Smoothing factor of the error and completeness EWMAs: a new observation weighs 20%.
EWMA_ALPHA = 0.2
#: Successful calls whose latency feeds the p95.
LATENCY_WINDOW = 50


def _clamp01(x: float) -> float:
    return min(1.0, max(0.0, x))


def latency_component(latency_p95_ms: float | None, latency_cap_ms: float) -> float:
    """``1 - min(p95 / cap, 1)``; 1.0 when there are no samples yet.

    Args:
        latency_p95_ms: p95 of recent successful calls, or None without samples.
        latency_cap_ms: the p95 at and above which the component is 0 (RECENT_LATENCY_CAP_MS).

    Returns:
        The latency component in [0, 1].
    """
    if latency_cap_ms <= 0:
        raise ValueError(f"latency cap must be positive (got {latency_cap_ms})")
    if latency_p95_ms is None:
        return 1.0
    return 1.0 - min(max(latency_p95_ms, 0.0) / latency_cap_ms, 1.0)


def health_score(
    breaker_component: float,
    latency_p95_ms: float | None,
    latency_cap_ms: float,
    error_rate: float,
    completeness: float,
    quality: float = 1.0,
) -> float:
    """The health score H of one provider, in [0, 1].

    ``H = quality·(0.45·breaker + 0.25·latency + 0.20·error + 0.10·completeness)`` where

    * breaker = 1.0 closed, 0.5 half-open, 0.0 open (passed in as ``breaker_component``);
    * latency = ``1 - min(latency_p95_ms / latency_cap_ms, 1)``, 1.0 with no samples;
    * error = ``1 - error_rate`` (the error EWMA);
    * completeness = the completeness EWMA;
    * quality = the reconciliation score (1.0 when never scored; see the module docstring).

    Inputs outside [0, 1] are clamped so a caller's rounding cannot push H out of bounds.

    Args:
        breaker_component: 1.0, 0.5 or 0.0 by breaker state.
        latency_p95_ms: p95 latency of recent successes, or None when there are none.
        latency_cap_ms: RECENT_LATENCY_CAP_MS.
        error_rate: the error EWMA, 0 (never fails) .. 1 (always fails).
        completeness: the completeness EWMA, 0 .. 1.
        quality: the data-quality score, 0 .. 1.

    Returns:
        H in [0, 1].
    """
    return _clamp01(
        _clamp01(quality)
        * (
            BREAKER_WEIGHT * _clamp01(breaker_component)
            + LATENCY_WEIGHT * latency_component(latency_p95_ms, latency_cap_ms)
            + ERROR_WEIGHT * (1.0 - _clamp01(error_rate))
            + COMPLETENESS_WEIGHT * _clamp01(completeness)
        )
    )


class ProviderStats:
    """Rolling figures for one provider: latency window, error and completeness EWMAs, and
    the latest data-quality score.

    Only outcomes that say something about the provider's health move these figures:
    a success, or a failure whose ``counts_as_failure`` is true. Rate limits, NoData and
    NotEntitled leave them untouched (rate limiting is back-off, not ill health).
    """

    def __init__(self, *, window: int = LATENCY_WINDOW, alpha: float = EWMA_ALPHA) -> None:
        if window <= 0:
            raise ValueError("window must be positive")
        if not 0.0 < alpha <= 1.0:
            raise ValueError("alpha must be in (0, 1]")
        self._alpha = alpha
        self._latencies: deque[float] = deque(maxlen=window)
        self.error_ewma = 0.0
        self.completeness = 1.0
        self.quality = 1.0
        self.consecutive_failures = 0
        self.successes = 0
        self.failures = 0

    @property
    def latency_samples(self) -> int:
        return len(self._latencies)

    @property
    def latency_p95_ms(self) -> float | None:
        """Nearest-rank p95 of the window's latencies; None before the first success.

        Nearest rank (no interpolation) keeps the figure one that was actually observed
        and makes it exact for the tiny windows a fresh provider has.
        """
        if not self._latencies:
            return None
        ordered = sorted(self._latencies)
        rank = math.ceil(0.95 * len(ordered))
        return ordered[rank - 1]

    def record_success(self, latency_ms: float | None) -> None:
        """A call answered: keep its latency (None: it made no exchange to time), pull the
        error EWMA towards 0."""
        if latency_ms is not None:
            self._latencies.append(max(0.0, float(latency_ms)))
        self.error_ewma = (1.0 - self._alpha) * self.error_ewma
        self.consecutive_failures = 0
        self.successes += 1

    def record_failure(self) -> None:
        """A call failed in a way that counts against health: pull the error EWMA towards 1."""
        self.error_ewma = (1.0 - self._alpha) * self.error_ewma + self._alpha
        self.consecutive_failures += 1
        self.failures += 1

    def record_error(self, err: ProviderError) -> bool:
        """Record ``err`` if it counts as a failure; return whether it did."""
        if err.counts_as_failure:
            self.record_failure()
            return True
        return False

    def record_completeness(self, ratio: float) -> None:
        """Fold in the share of expected bars a response delivered (0..1)."""
        if math.isnan(ratio) or not 0.0 <= ratio <= 1.0:
            raise ValueError(f"completeness ratio must be in [0, 1] (got {ratio})")
        self.completeness = (1.0 - self._alpha) * self.completeness + self._alpha * ratio

    def record_quality(self, score: float) -> None:
        """Adopt a reconciliation's data-quality score (0..1).

        Replaced, not smoothed: one reconciliation already averages over many bars and
        symbols, and a vendor found serving wrong prices should stop taking traffic now.
        """
        if math.isnan(score) or not 0.0 <= score <= 1.0:
            raise ValueError(f"quality score must be in [0, 1] (got {score})")
        self.quality = score

    def health(self, breaker_component: float, latency_cap_ms: float) -> float:
        """H for these figures and the given breaker component."""
        return health_score(
            breaker_component,
            self.latency_p95_ms,
            latency_cap_ms,
            self.error_ewma,
            self.completeness,
            self.quality,
        )
