"""Black on the forward and MDS's implied volatility, checked against vollib and Let's Be Rational."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from lets_be_rational import implied_volatility_from_a_transformed_rational_guess as lbr  # type: ignore[import-untyped]
from vollib.black_scholes import black_scholes  # type: ignore[import-untyped]
from vollib.black_scholes.greeks import analytical  # type: ignore[import-untyped]
from vollib.black_scholes.implied_volatility import implied_volatility  # type: ignore[import-untyped]

from mds.domain.options import IvReason
from mds.options.pricing import (
    black_delta,
    black_price,
    black_vega,
    discount,
    forward,
    implied_vols,
    rate_from_treasury_yield,
    solve_implied_vols,
)


def _bs(flag: str, s: float, k: float, t: float, r: float, sigma: float) -> float:
    """MDS's Black-Scholes: Black on the forward, discounted."""
    return float(black_price(forward(s, r, t), k, t, sigma, discount(r, t), flag == "c"))


def test_the_golden_case_prices_and_inverts() -> None:
    golden = 5.87602423383  # S=100, K=100, t=0.5, r=0.01, sigma=0.2 (vollib's own doctest)
    assert black_scholes("c", 100, 100, 0.5, 0.01, 0.2) == pytest.approx(golden, abs=1e-9)
    assert _bs("c", 100, 100, 0.5, 0.01, 0.2) == pytest.approx(golden, abs=1e-9)
    iv, reasons = implied_vols(golden, forward(100, 0.01, 0.5), 100, 0.5, discount(0.01, 0.5), True)
    assert reasons == [None]
    assert iv[0] == pytest.approx(0.2, abs=1e-9)


def test_prices_match_vollib_and_put_call_parity() -> None:
    for flag, k, t, r, sigma in [
        ("c", 90, 0.5, 0.01, 0.2),
        ("p", 90, 0.5, 0.01, 0.2),
        ("p", 130, 2.0, 0.07, 0.6),
    ]:
        assert _bs(flag, 100, k, t, r, sigma) == pytest.approx(
            black_scholes(flag, 100, k, t, r, sigma), rel=1e-12
        )
    f, d = forward(100, 0.03, 1.5), discount(0.03, 1.5)
    call, put = black_price(f, 120, 1.5, 0.3, d, [True, False])
    assert call - put == pytest.approx(d * (f - 120), rel=1e-12)


def test_delta_and_vega_match_vollib_greeks() -> None:
    # Spot delta with no dividends: call N(d1), put N(d1) - 1; vollib's vega is per 1 vol point.
    for flag, k, t, r, sigma in [
        ("c", 95, 0.25, 0.02, 0.3),
        ("p", 95, 0.25, 0.02, 0.3),
        ("p", 140, 1.0, 0.05, 0.5),
    ]:
        f = forward(100, r, t)
        delta = black_delta(f, k, t, sigma, flag == "c")
        assert float(delta) == pytest.approx(analytical.delta(flag, 100, k, t, r, sigma), rel=1e-10)
        vega = black_vega(f, k, t, sigma, discount(r, t))
        assert float(vega) / 100 == pytest.approx(analytical.vega(flag, 100, k, t, r, sigma), rel=1e-10)
    assert 0 < float(black_delta(100, 100, 0.5, 0.2, True)) < 1
    assert -1 < float(black_delta(100, 100, 0.5, 0.2, False)) < 0
    # A dividend yield scales spot delta by e^{-qt}.
    assert float(black_delta(100, 100, 1.0, 0.2, True, math.exp(-0.03))) == pytest.approx(
        math.exp(-0.03) * float(black_delta(100, 100, 1.0, 0.2, True))
    )


def test_rates_forwards_and_the_treasury_yield() -> None:
    assert float(forward(100, 0.05, 2.0)) == pytest.approx(100 * math.exp(0.1), rel=1e-14)
    assert float(forward(100, 0.05, 2.0, dividend_yield=0.02)) == pytest.approx(
        100 * math.exp(0.06), rel=1e-14
    )
    assert float(discount(0.05, 2.0)) == pytest.approx(math.exp(-0.1), rel=1e-14)
    # DGS3MO is a percent yield: 4.2 -> ln(1.042) continuously compounded.
    assert rate_from_treasury_yield(4.2) == pytest.approx(math.log(1.042), rel=1e-14)
    assert rate_from_treasury_yield(0.0) == 0.0
    assert rate_from_treasury_yield(4.2) < 0.042


def test_iv_equals_vollib_on_a_grid_wherever_vollib_answers() -> None:
    spot = 100.0
    strikes = np.arange(50.0, 201.0, 10.0)
    tenors = [1 / 365, 7 / 365, 30 / 365, 0.25, 0.5, 1.0, 2.0]
    rates = [-0.01, 0.0, 0.03, 0.08]
    sigmas = [0.05, 0.15, 0.3, 0.6, 1.0, 1.5]
    cases = list(itertools.product(strikes.tolist(), tenors, rates, sigmas, "cp"))
    prices = np.array([black_scholes(flag, spot, k, t, r, s) for k, t, r, s, flag in cases])
    k, t, r = (np.array([c[i] for c in cases]) for i in range(3))
    call = np.array([c[4] == "c" for c in cases])
    solution = solve_implied_vols(prices, forward(spot, r, t), k, t, discount(r, t), call)

    answered = zero = 0
    for i, (strike, tenor, rate, _, flag) in enumerate(cases):
        try:
            theirs = implied_volatility(prices[i], spot, strike, tenor, rate, flag)
        except Exception:  # vollib: below intrinsic / above maximum
            assert math.isnan(solution.iv[i]) and solution.reasons[i] is not None
            continue
        if theirs == 0.0:  # no time value left in the float price: only sigma = 0 fits
            zero += 1
            assert math.isnan(solution.iv[i]) and solution.reasons[i] is IvReason.NO_SOLUTION
            continue
        answered += 1
        assert solution.iv[i] == pytest.approx(theirs, abs=1e-6), cases[i]
        assert solution.reasons[i] is None
    assert answered > 0.75 * len(cases) and zero > 0
    # Most of the grid is settled by the vectorised stage; the rest by Let's Be Rational.
    assert 0 < solution.fallback.sum() < 0.5 * len(cases)


def test_a_price_no_volatility_fits_gets_nan_and_its_reason() -> None:
    f, d = forward(100, 0.02, 0.5), discount(0.02, 0.5)
    intrinsic_call = d * (f - 90)  # discounted forward intrinsic of the 90 call
    prices = [intrinsic_call - 0.05, d * f * 1.001, d * 110 * 1.0, 5.0, 5.0, float("nan")]
    strikes = [90, 100, 110, 100, 100, 100]
    t = [0.5, 0.5, 0.5, 0.0, -0.1, 0.5]
    call = [True, True, False, True, True, True]
    iv, reasons = implied_vols(prices, f, strikes, t, d, call)
    assert reasons == [
        IvReason.BELOW_INTRINSIC,
        IvReason.ABOVE_MAXIMUM,  # a call worth more than the forward
        IvReason.ABOVE_MAXIMUM,  # a put worth its strike
        IvReason.EXPIRED,
        IvReason.EXPIRED,
        IvReason.NO_SOLUTION,
    ]
    assert np.isnan(iv).all()
    # Exactly intrinsic: only sigma = 0 reproduces it, so no IV (not a garbage 0).
    iv, reasons = implied_vols(d * (f - 50), f, 50, 0.5, d, True)
    assert math.isnan(iv[0]) and reasons == [IvReason.NO_SOLUTION]


def test_deep_otm_contracts_halley_cannot_settle_go_to_lets_be_rational() -> None:
    # Prices around 1e-44 .. 1e-7 of the forward: Halley from the Manaster-Koehler point
    # needs far more steps than it is given, so these must come back from the fallback.
    cases = [(200.0, 0.25, 0.1), (150.0, 0.02, 0.2), (300.0, 1.0, 0.2)]
    f = 100.0
    prices = [float(black_price(f, k, t, s, 1.0, True)) for k, t, s in cases]
    solution = solve_implied_vols(prices, f, [c[0] for c in cases], [c[1] for c in cases], 1.0, True)
    assert solution.fallback.all()
    for i, (k, t, sigma) in enumerate(cases):
        assert solution.iv[i] == pytest.approx(lbr(prices[i], f, k, t, 1.0), rel=1e-12)
        assert solution.iv[i] == pytest.approx(sigma, rel=1e-9)
    # A plain near-the-money contract never needs it.
    near = solve_implied_vols(black_price(f, 105, 0.3, 0.25, 1.0, False), f, 105, 0.3, 1.0, False)
    assert not near.fallback.any() and near.iv[0] == pytest.approx(0.25, abs=1e-10)


def test_inputs_broadcast_and_empty_input_is_fine() -> None:
    iv, reasons = implied_vols(np.empty(0), 100, 100, 0.5, 1.0, True)
    assert iv.size == 0 and reasons == []
    prices = black_price(100, [90, 100, 110], 0.5, 0.3, 0.99, True)
    iv, reasons = implied_vols(prices, 100, [90, 100, 110], 0.5, 0.99, True)
    assert np.allclose(iv, 0.3, atol=1e-10) and reasons == [None, None, None]
