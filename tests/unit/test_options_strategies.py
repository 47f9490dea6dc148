"""Option strategy candidates: hand-worked payoffs, lognormal PoP checked two ways, and the bounds.

Hand-built chains; each expected figure below is worked out by hand from the quotes, with
long legs paying the ask and short legs getting the bid.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest

from mds.domain.models import OptionQuote, OptionRight
from mds.domain.options import Chain, PricedContract
from mds.options.payoff import Leg, lognormal_probability, profile
from mds.options.strategies import MAX_CANDIDATES, SortKey, Strategy, StrategyType, build_strategies

CALL, PUT = OptionRight.CALL, OptionRight.PUT
TODAY = date(2025, 3, 3)
AS_OF = datetime(2025, 3, 3, 15, tzinfo=UTC)
EXP = TODAY + timedelta(days=30)
T = 30 / 365
RATE = 0.03


def _contract(
    right: OptionRight,
    strike: float,
    bid: float | None,
    ask: float | None,
    *,
    delta: float,
    iv: float = 0.25,
    exp: date = EXP,
) -> PricedContract:
    code = f"XYZ{exp:%y%m%d}{right.value[0].upper()}{round(strike * 1000):08d}"
    quote = OptionQuote(
        underlying="XYZ",
        contract=code,
        expiration=exp,
        strike=strike,
        right=right,
        bid=bid,
        ask=ask,
        last=None,
        volume=None,
        open_interest=None,
        implied_volatility=None,
        ts=AS_OF,
        provider="test",
    )
    mid = (bid + ask) / 2 if bid and ask else None
    return PricedContract(quote, mid, (exp - TODAY).days / 365, iv, delta)


def _chain(contracts: list[PricedContract], spot: float = 100.0) -> Chain:
    return Chain("XYZ", AS_OF, spot, RATE, "test", "test", contracts)


def _only(chain: Chain, type: StrategyType) -> Strategy:
    found = build_strategies(chain, type=type, max_days=None, today=TODAY)
    assert len(found) == 1, found
    return found[0]


def _forward(spot: float, t: float = T) -> float:
    return spot * math.exp(RATE * t)


def _prob_above(x: float, forward: float, sigma: float, t: float = T) -> float:
    """P(S_T > x) for lognormal S_T with mean ``forward``: N(d2), written with erf."""
    d2 = (math.log(forward / x) - sigma * sigma * t / 2) / (sigma * math.sqrt(t))
    return 0.5 * (1 + math.erf(d2 / math.sqrt(2)))


def _monte_carlo_final_prices(forward: float, sigma: float, n: int = 1_000_000) -> np.ndarray:
    z = np.random.default_rng(20250303).standard_normal(n)
    return forward * np.exp(-sigma * sigma * T / 2 + sigma * math.sqrt(T) * z)


# Monte Carlo tolerance: 5 standard errors of a proportion over 1e6 draws (at most 0.0025).
MC_TOL = 5 * math.sqrt(0.25 / 1_000_000)


def _bs_chain(spot: float, days: list[int], strikes: np.ndarray, sigma: float = 0.25) -> list[PricedContract]:
    """A fuller chain priced by Black-Scholes (test-side), 0.05 either side of the model price."""
    out = []
    for d in days:
        t = d / 365
        fwd = _forward(spot, t)
        for k in strikes:
            d1 = (math.log(fwd / k) + sigma * sigma * t / 2) / (sigma * math.sqrt(t))
            n1, n2 = _ncdf(d1), _ncdf(d1 - sigma * math.sqrt(t))
            disc = math.exp(-RATE * t)
            call = disc * (fwd * n1 - k * n2)
            put = call - disc * (fwd - k)
            for right, price, delta in ((CALL, call, n1), (PUT, put, n1 - 1)):
                if price > 0.06:
                    c = _contract(
                        right,
                        float(k),
                        price - 0.05,
                        price + 0.05,
                        delta=delta,
                        exp=TODAY + timedelta(days=d),
                    )
                    out.append(c)
    return out


def _ncdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


# --- each type, worked by hand -------------------------------------------------------------


def test_bull_put_spread_95_100_for_1_50() -> None:
    chain = _chain(
        [
            _contract(PUT, 100, 2.00, 2.10, delta=-0.35, iv=0.30),
            _contract(PUT, 95, 0.40, 0.50, delta=-0.12, iv=0.33),  # below the band: wing only
        ],
        spot=102.0,
    )
    s = _only(chain, StrategyType.VERTICAL)
    assert [(leg.strike, leg.side, leg.price) for leg in s.legs] == [(95, 1, 0.50), (100, -1, 2.00)]
    assert s.net == pytest.approx(1.50)
    assert s.max_profit == pytest.approx(1.50)
    assert s.max_loss == pytest.approx(3.50)
    assert s.breakevens == pytest.approx((98.50,))
    assert s.return_on_risk == pytest.approx(1.50 / 3.50)
    assert s.days == 30 and s.expiration == EXP and s.multiplier == 100
    # PoP uses the sold leg's IV (0.30), not the wing's.
    assert s.pop_iv == pytest.approx(0.30)
    assert s.pop == pytest.approx(_prob_above(98.5, _forward(102.0), 0.30), abs=1e-12)


def test_bear_call_spread() -> None:
    chain = _chain(
        [_contract(CALL, 105, 1.20, 1.30, delta=0.30), _contract(CALL, 110, 0.20, 0.30, delta=0.12)]
    )
    s = _only(chain, StrategyType.VERTICAL)
    assert [(leg.strike, leg.side, leg.price) for leg in s.legs] == [(105, -1, 1.20), (110, 1, 0.30)]
    assert (s.net, s.max_profit, s.max_loss) == pytest.approx((0.90, 0.90, 4.10))
    assert s.breakevens == pytest.approx((105.90,))
    assert s.pop == pytest.approx(1 - _prob_above(105.9, _forward(100.0), 0.25), abs=1e-12)


def test_covered_call_buys_the_shares_at_spot() -> None:
    chain = _chain([_contract(CALL, 105, 1.20, 1.30, delta=0.30), _contract(CALL, 95, 6.0, 6.2, delta=0.70)])
    s = _only(chain, StrategyType.COVERED_CALL)  # the ITM 95 call is not a candidate
    stock, call = s.legs
    assert (stock.contract, stock.right, stock.strike, stock.side, stock.price) == (
        "XYZ",
        None,
        None,
        1,
        100.0,
    )
    assert (call.strike, call.side, call.price) == (105, -1, 1.20)
    assert s.net == pytest.approx(-98.80)  # debit: shares bought, call premium received
    assert (s.max_profit, s.max_loss) == pytest.approx((6.20, 98.80))
    assert s.breakevens == pytest.approx((98.80,))
    assert s.return_on_risk == pytest.approx(6.20 / 98.80)
    assert s.pop == pytest.approx(_prob_above(98.8, _forward(100.0), 0.25), abs=1e-12)


def test_cash_secured_put_pop_is_lognormal_probability_above_breakeven() -> None:
    chain = _chain([_contract(PUT, 95, 1.50, 1.60, delta=-0.25, iv=0.28)])
    s = _only(chain, StrategyType.CASH_SECURED_PUT)
    assert (s.net, s.max_profit, s.max_loss) == pytest.approx((1.50, 1.50, 93.50))
    assert s.breakevens == pytest.approx((93.50,))
    fwd = _forward(100.0)
    assert s.pop == pytest.approx(_prob_above(93.5, fwd, 0.28), abs=1e-12)
    final = _monte_carlo_final_prices(fwd, 0.28)
    profit = 1.50 - np.maximum(95 - final, 0.0)
    assert s.pop == pytest.approx(float(np.mean(profit > 0)), abs=MC_TOL)


def test_long_straddle_at_the_forward_strike() -> None:
    chain = _chain(
        [
            _contract(CALL, 95, 6.5, 6.7, delta=0.7),
            _contract(CALL, 100, 3.00, 3.10, delta=0.52, iv=0.24),
            _contract(PUT, 100, 2.80, 2.90, delta=-0.48, iv=0.26),
            _contract(PUT, 105, 6.0, 6.2, delta=-0.7),
        ]
    )
    s = _only(chain, StrategyType.STRADDLE)  # 95 and 105 lack the other side
    assert {(leg.right, leg.strike, leg.side, leg.price) for leg in s.legs} == {
        (CALL, 100, 1, 3.10),
        (PUT, 100, 1, 2.90),
    }
    assert s.net == pytest.approx(-6.00)
    assert s.max_profit is None and s.return_on_risk is None
    assert s.max_loss == pytest.approx(6.00)
    assert s.breakevens == pytest.approx((94.0, 106.0))
    fwd, sigma = _forward(100.0), 0.25  # no leg sold: the mean IV of both
    expected = (1 - _prob_above(94.0, fwd, sigma)) + _prob_above(106.0, fwd, sigma)
    assert s.pop == pytest.approx(expected, abs=1e-12)


def test_straddle_strike_follows_the_forward() -> None:
    def pair(k: float) -> list[PricedContract]:
        return [_contract(CALL, k, 2.0, 2.1, delta=0.5), _contract(PUT, k, 2.0, 2.1, delta=-0.5)]

    # Spot 99.4: strike 100 is nearer both the spot and the forward (99.65) than 97.5 is.
    s = _only(_chain(pair(97.5) + pair(100), spot=99.4), StrategyType.STRADDLE)
    assert {leg.strike for leg in s.legs} == {100}
    s = _only(_chain(pair(97.5) + pair(100), spot=98.4), StrategyType.STRADDLE)
    assert {leg.strike for leg in s.legs} == {97.5}


def test_long_strangle() -> None:
    chain = _chain(
        [
            _contract(PUT, 90, 0.90, 1.00, delta=-0.25),
            _contract(CALL, 110, 1.10, 1.20, delta=0.25),
            _contract(CALL, 120, 0.1, 0.2, delta=0.05),  # outside the wing band
        ]
    )
    s = _only(chain, StrategyType.STRANGLE)
    assert [(leg.strike, leg.side, leg.price) for leg in s.legs] == [(90, 1, 1.00), (110, 1, 1.20)]
    assert s.net == pytest.approx(-2.20)
    assert s.max_profit is None and s.max_loss == pytest.approx(2.20)
    assert s.breakevens == pytest.approx((87.80, 112.20))


def test_iron_condor_and_its_pop_by_monte_carlo() -> None:
    chain = _chain(
        [
            _contract(PUT, 85, 0.30, 0.40, delta=-0.08, iv=0.32),
            _contract(PUT, 90, 1.00, 1.10, delta=-0.20, iv=0.29),
            _contract(CALL, 110, 1.10, 1.20, delta=0.20, iv=0.23),
            _contract(CALL, 115, 0.40, 0.50, delta=0.08, iv=0.22),
        ]
    )
    s = _only(chain, StrategyType.IRON_CONDOR)
    assert [(leg.right, leg.strike, leg.side, leg.price) for leg in s.legs] == [
        (PUT, 85, 1, 0.40),
        (PUT, 90, -1, 1.00),
        (CALL, 110, -1, 1.10),
        (CALL, 115, 1, 0.50),
    ]
    assert (s.net, s.max_profit, s.max_loss) == pytest.approx((1.20, 1.20, 3.80))
    assert s.breakevens == pytest.approx((88.80, 111.20))
    sigma, fwd = (0.29 + 0.23) / 2, _forward(100.0)  # the sold legs' mean IV
    assert s.pop_iv == pytest.approx(sigma)
    assert s.pop == pytest.approx(_prob_above(88.8, fwd, sigma) - _prob_above(111.2, fwd, sigma), abs=1e-12)
    final = _monte_carlo_final_prices(fwd, sigma)
    profit = (np.maximum(85 - final, 0) - 0.40 - np.maximum(90 - final, 0) + 1.00) + (
        1.10 - np.maximum(final - 110, 0) + np.maximum(final - 115, 0) - 0.50
    )
    assert s.pop == pytest.approx(float(np.mean(profit > 0)), abs=MC_TOL)


def test_spread_that_cannot_make_money_is_not_offered() -> None:
    # Credit 0.30 - 0.40 < 0 at the conservative prices: no price at expiry makes a profit.
    chain = _chain(
        [_contract(PUT, 100, 0.30, 2.0, delta=-0.35), _contract(PUT, 95, 0.1, 0.40, delta=-0.1)], spot=102
    )
    assert build_strategies(chain, type=StrategyType.VERTICAL, max_days=None, today=TODAY) == []


# --- filters, sorting, bounds --------------------------------------------------------------

RICH_STRIKES = np.arange(70.0, 130.01, 2.5)


@pytest.mark.parametrize("type", list(StrategyType))
def test_contracts_without_bid_or_ask_are_never_used(type: StrategyType) -> None:
    good = _bs_chain(100.0, [30], RICH_STRIKES)
    # Every contract at a multiple of 10 (the ATM 100 among them) loses its bid or its ask.
    bad_codes = set()
    contracts = []
    for i, c in enumerate(good):
        if c.strike % 10 == 0:
            q = c.quote
            kind = i % 3
            bid, ask = (None, q.ask) if kind == 0 else (0.0, q.ask) if kind == 1 else (q.bid, None)
            c = _contract(c.right, c.strike, bid, ask, delta=c.delta or 0.0, iv=c.iv or 0.25)
            bad_codes.add(c.quote.contract)
        contracts.append(c)
    found = build_strategies(_chain(contracts), type=type, max_days=None, today=TODAY, limit=10_000)
    assert found, "the remaining contracts still make candidates"
    used = {leg.contract for s in found for leg in s.legs}
    assert used.isdisjoint(bad_codes)


@pytest.mark.parametrize("type", list(StrategyType))
def test_max_days_filters_expirations(type: StrategyType) -> None:
    chain = _chain(_bs_chain(100.0, [30, 60], RICH_STRIKES))
    everything = build_strategies(chain, type=type, max_days=None, today=TODAY, limit=10_000)
    assert {s.days for s in everything} == {30, 60}
    near = build_strategies(chain, type=type, max_days=45, today=TODAY, limit=10_000)
    assert near and {s.days for s in near} == {30}
    assert {s.expiration for s in near} == {EXP}


@pytest.mark.parametrize("type", list(StrategyType))
def test_empty_chain_gives_nothing(type: StrategyType) -> None:
    assert build_strategies(_chain([]), type=type, max_days=None, today=TODAY) == []


def _ranked(values: list[float | None], *, descending: bool, none_first: bool) -> bool:
    present = [v for v in values if v is not None]
    nones = [i for i, v in enumerate(values) if v is None]
    n_none = len(nones)
    expected_nones = list(range(n_none)) if none_first else list(range(len(values) - n_none, len(values)))
    return nones == expected_nones and present == sorted(present, reverse=descending)


@pytest.mark.parametrize(
    ("sort", "field", "descending", "none_first"),
    [
        (SortKey.POP, "pop", True, False),
        (SortKey.RETURN_ON_RISK, "return_on_risk", True, False),
        (SortKey.MAX_PROFIT, "max_profit", True, True),
        (SortKey.MAX_LOSS, "max_loss", False, False),
    ],
)
@pytest.mark.parametrize("type", [StrategyType.VERTICAL, StrategyType.COVERED_CALL, StrategyType.STRANGLE])
def test_sort_order_and_limit(
    type: StrategyType, sort: SortKey, field: str, descending: bool, none_first: bool
) -> None:
    chain = _chain(_bs_chain(100.0, [20, 45], RICH_STRIKES))
    full = build_strategies(chain, type=type, max_days=None, today=TODAY, limit=10_000, sort=sort)
    assert len(full) > 5
    values = [getattr(s, field) for s in full]
    assert _ranked(values, descending=descending, none_first=none_first), values
    top = build_strategies(chain, type=type, max_days=None, today=TODAY, limit=5, sort=sort)
    assert top == full[:5]


def test_sort_keys_really_reorder() -> None:
    chain = _chain(_bs_chain(100.0, [30], RICH_STRIKES))
    by_pop = build_strategies(chain, type=StrategyType.VERTICAL, max_days=None, today=TODAY, sort=SortKey.POP)
    by_ror = build_strategies(
        chain, type=StrategyType.VERTICAL, max_days=None, today=TODAY, sort=SortKey.RETURN_ON_RISK
    )
    assert by_pop[0] != by_ror[0]  # high odds and high payoff pull opposite ways
    assert by_pop[0].pop > by_ror[0].pop and (by_ror[0].return_on_risk or 0) > (by_pop[0].return_on_risk or 0)


def test_candidates_are_capped_nearest_expirations_first() -> None:
    days = list(range(7, 7 + 7 * 40, 7))
    chain = _chain(_bs_chain(100.0, days, np.arange(50.0, 150.01, 0.5)))
    found = build_strategies(chain, type=StrategyType.VERTICAL, max_days=None, today=TODAY, limit=10**6)
    assert 0 < len(found) <= MAX_CANDIDATES
    assert max(s.days for s in found) < days[-1]  # the cap cut the far expirations off


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="limit"):
        build_strategies(_chain([]), type=StrategyType.STRADDLE, max_days=None, today=TODAY, limit=0)


# --- the payoff helpers on their own -------------------------------------------------------


def _opt(right: OptionRight, strike: float, side: int, price: float) -> Leg:
    return Leg(f"{right.value}{strike}", right, strike, EXP, side, 1, price)


def test_profile_long_and_short_call() -> None:
    long_call = profile([_opt(CALL, 100, 1, 2.5)])
    assert (long_call.max_profit, long_call.max_loss) == (None, pytest.approx(2.5))
    assert long_call.breakevens == pytest.approx((102.5,))
    assert long_call.profitable == ((pytest.approx(102.5), math.inf),)
    short_call = profile([_opt(CALL, 100, -1, 2.5)])
    assert (short_call.max_profit, short_call.max_loss) == (pytest.approx(2.5), None)
    assert short_call.profitable == ((0.0, pytest.approx(102.5)),)


def test_profile_butterfly_has_two_breakevens_and_a_zero_floor_is_not_profit() -> None:
    fly = [
        _opt(CALL, 95, 1, 6.0),
        _opt(CALL, 100, -1, 3.0),
        _opt(CALL, 100, -1, 3.0),
        _opt(CALL, 105, 1, 1.0),
    ]
    shape = profile(fly)  # debit 1.00, peak 4.00 at 100
    assert (shape.max_profit, shape.max_loss) == pytest.approx((4.0, 1.0))
    assert shape.breakevens == pytest.approx((96.0, 104.0))
    # Debit 0: the payoff is exactly 0 below 95 and above 105, positive only in between.
    free = [
        _opt(CALL, 95, 1, 0.0),
        _opt(CALL, 100, -1, 0.0),
        _opt(CALL, 100, -1, 0.0),
        _opt(CALL, 105, 1, 0.0),
    ]
    assert profile(free).breakevens == pytest.approx((95.0, 105.0))
    assert profile(free).max_loss == 0.0


def test_lognormal_probability_sums_to_one_and_rejects_bad_inputs() -> None:
    parts = [(0.0, 90.0), (90.0, 104.0), (104.0, math.inf)]
    assert lognormal_probability(parts, forward=100, sigma=0.3, t=0.5) == pytest.approx(1.0, abs=1e-12)
    assert lognormal_probability([(100.0, math.inf)], forward=100, sigma=0.3, t=0.5) < 0.5  # median < mean
    with pytest.raises(ValueError):
        lognormal_probability(parts, forward=100, sigma=0.0, t=0.5)


def test_leg_rejects_a_bad_side_and_a_stock_leg_with_a_strike() -> None:
    with pytest.raises(ValueError, match="side"):
        Leg("x", CALL, 100, EXP, 0, 1, 1.0)
    with pytest.raises(ValueError, match="stock"):
        Leg("XYZ", None, 100, None, 1, 1, 100.0)
