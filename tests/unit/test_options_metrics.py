"""Options metrics: the interpolation rules on hand-built chains, and recovery of the sim surface."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta

import numpy as np
import pytest
from scipy.optimize import brentq  # type: ignore[import-untyped]
from scipy.special import ndtr  # type: ignore[import-untyped]

from mds.domain.models import OptionQuote, OptionRight
from mds.domain.options import Chain, PricedContract
from mds.options.chain import price_chain
from mds.options.metrics import T30, compute_metrics, metric_rows
from mds.options.pricing import black_price
from mds.providers.sim.market import SimMarket
from mds.providers.sim.options import SimSurface, sim_option_chain
from tests.helpers import utc

C, P = OptionRight.CALL, OptionRight.PUT
AS_OF = utc(2025, 10, 15, 15, 0)  # 11:00 in New York, a Wednesday
TODAY = date(2025, 10, 15)


def contract(
    expiration: date,
    strike: float,
    right: OptionRight,
    *,
    t: float,
    iv: float | None = None,
    delta: float | None = None,
    mid: float | None = None,
    volume: float | None = 0.0,
    oi: float | None = 0.0,
) -> PricedContract:
    q = OptionQuote(
        "ACME", f"ACME-{expiration}-{strike}-{right.value}", expiration, strike, right,
        None if mid is None else mid - 0.05, None if mid is None else mid + 0.05,
        None, volume, oi, None, AS_OF, "vendor",
    )  # fmt: skip
    return PricedContract(q, mid, t, iv, delta if delta is not None else (0.5 if right is C else -0.5))


def chain(contracts: list[PricedContract], spot: float = 100.0, rate: float = 0.0) -> Chain:
    return Chain(
        "ACME", AS_OF, spot, rate, "RISK_FREE_RATE", "vendor", contracts,
        expirations=sorted({c.expiration for c in contracts}),
    )  # fmt: skip


# -- the rules, exactly ------------------------------------------------------------------------

E1, T1 = TODAY + timedelta(days=20), 20 / 365
E2, T2 = TODAY + timedelta(days=40), 40 / 365


def test_atm_iv_is_linear_in_strike_at_the_forward_then_call_put_mean() -> None:
    # Forward = 103 (rate 0): brackets are 100 and 110, 30% of the way up.
    ivs = {(100, C): 0.30, (110, C): 0.20, (100, P): 0.32, (110, P): 0.22, (90, C): 0.9, (120, P): 0.9}
    m = compute_metrics(chain([contract(E1, k, r, t=T1, iv=v) for (k, r), v in ivs.items()], spot=103.0))
    call = 0.30 + 0.3 * (0.20 - 0.30)
    put = 0.32 + 0.3 * (0.22 - 0.32)
    assert m.atm_iv[E1.isoformat()] == pytest.approx((call + put) / 2, abs=1e-12)

    # A rate moves the forward: spot 100 at 5% for 20 days is F = 100.274; brackets 100 and 105.
    with_rate = chain(
        [contract(E1, 100, C, t=T1, iv=0.3), contract(E1, 105, C, t=T1, iv=0.2)], spot=100.0, rate=0.05
    )
    f = 100 * math.exp(0.05 * T1)
    assert compute_metrics(with_rate).atm_iv[E1.isoformat()] == pytest.approx(
        0.3 - 0.1 * (f - 100) / 5, abs=1e-12
    )


def test_atm_iv_one_side_alone_or_none() -> None:
    calls_only = [contract(E1, 100, C, t=T1, iv=0.3), contract(E1, 110, C, t=T1, iv=0.2)]
    puts_without_iv = [contract(E1, 100, P, t=T1), contract(E1, 110, P, t=T1)]
    m = compute_metrics(chain(calls_only + puts_without_iv, spot=105.0))
    assert m.atm_iv[E1.isoformat()] == pytest.approx(0.25, abs=1e-12)
    # Every strike below the forward: nothing brackets it.
    below = [contract(E1, k, r, t=T1, iv=0.3) for k in (90, 95) for r in (C, P)]
    m = compute_metrics(chain(below, spot=105.0))
    assert m.atm_iv == {E1.isoformat(): None} and m.iv30 is None
    # A strike exactly at the forward is its own value.
    at = [contract(E1, 100, C, t=T1, iv=0.31), contract(E1, 100, P, t=T1, iv=0.33)]
    assert compute_metrics(chain(at)).atm_iv[E1.isoformat()] == pytest.approx(0.32)


def _atm_chain(points: list[tuple[date, float, float]]) -> Chain:
    """Expirations whose ATM IV is exactly ``iv`` (calls and puts at the forward 100)."""
    return chain([contract(e, 100, r, t=t, iv=iv) for e, t, iv in points for r in (C, P)])


def test_iv30_interpolates_total_variance_between_the_bracketing_expirations() -> None:
    e0 = TODAY + timedelta(days=5)
    m = compute_metrics(_atm_chain([(e0, 5 / 365, 0.9), (E1, T1, 0.20), (E2, T2, 0.30)]))
    w = 0.20**2 * T1 + (0.30**2 * T2 - 0.20**2 * T1) * (T30 - T1) / (T2 - T1)
    assert m.iv30 == pytest.approx(math.sqrt(w / T30), abs=1e-12)
    assert m.iv30 != pytest.approx((0.20 + 0.30) / 2, abs=1e-3)  # not linear in volatility
    assert not m.iv30_extrapolated
    assert [(p.expiration, p.days, p.atm_iv) for p in m.term_structure] == [
        (e0, 5, 0.9),
        (E1, 20, 0.20),
        (E2, 40, 0.30),
    ]


def test_iv30_is_flat_from_the_nearest_expiration_when_none_brackets() -> None:
    e3, t3 = TODAY + timedelta(days=60), 60 / 365
    later = compute_metrics(_atm_chain([(E2, T2, 0.30), (e3, t3, 0.40)]))
    assert later.iv30 == 0.30 and later.iv30_extrapolated
    sooner = compute_metrics(_atm_chain([(TODAY + timedelta(days=7), 7 / 365, 0.5), (E1, T1, 0.25)]))
    assert sooner.iv30 == 0.25 and sooner.iv30_extrapolated


def _wing_chain(e: date, t: float, atm: float, c25: float, p25: float) -> list[PricedContract]:
    """One expiration, forward 100: ATM = ``atm``; IV at delta +0.25 = c25 and -0.25 = p25,
    each between two strikes whose deltas bracket 0.25 at 40% of the way."""
    return [
        contract(e, 80, P, t=t, iv=p25 + 0.06, delta=-0.05),
        contract(e, 90, P, t=t, iv=p25 - 0.6 * 0.02, delta=-0.19),
        contract(e, 95, P, t=t, iv=p25 + 0.4 * 0.02, delta=-0.29),  # -0.25 is 60% from -0.19
        contract(e, 100, P, t=t, iv=atm, delta=-0.5),
        contract(e, 100, C, t=t, iv=atm, delta=0.5),
        contract(e, 105, C, t=t, iv=c25 + 0.4 * 0.03, delta=0.30),  # 0.25 is 40% from 0.30
        contract(e, 110, C, t=t, iv=c25 - 0.6 * 0.03, delta=0.175),
        contract(e, 90, C, t=t, iv=0.99, delta=0.8),  # in the money: never used for a wing
        contract(e, 110, P, t=t, iv=0.99, delta=-0.8),
    ]


def test_rr25_and_bf25_interpolate_in_delta_then_total_variance() -> None:
    m = compute_metrics(chain(_wing_chain(E1, T1, 0.25, 0.22, 0.30) + _wing_chain(E2, T2, 0.27, 0.24, 0.31)))

    def at30(v1: float, v2: float) -> float:
        w = v1**2 * T1 + (v2**2 * T2 - v1**2 * T1) * (T30 - T1) / (T2 - T1)
        return math.sqrt(w / T30)

    c30, p30, atm30 = at30(0.22, 0.24), at30(0.30, 0.31), at30(0.25, 0.27)
    assert m.iv30 == pytest.approx(atm30, abs=1e-12)
    assert m.rr25 == pytest.approx(c30 - p30, abs=1e-12) and m.rr25 < 0  # puts richer: negative
    assert m.bf25 == pytest.approx((c30 + p30) / 2 - atm30, abs=1e-12) and m.bf25 > 0
    assert m.rr25_sign == "call_minus_put" and not m.rr25_extrapolated


def test_implied_move_uses_the_first_expiration_a_day_out_and_the_strike_nearest_the_forward() -> None:
    today_exp = [contract(TODAY, 100, r, t=0.01, mid=9.0) for r in (C, P)]  # 0DTE: skipped
    e = TODAY + timedelta(days=2)
    nxt = [
        contract(e, 100, C, t=2 / 365, mid=2.0),
        contract(e, 100, P, t=2 / 365, mid=1.5),
        contract(e, 105, C, t=2 / 365, mid=0.5),
        contract(e, 105, P, t=2 / 365),  # no mid: 105 has no straddle
        contract(e, 95, C, t=2 / 365, mid=7.0),
        contract(e, 95, P, t=2 / 365, mid=0.2),
    ]
    m = compute_metrics(chain(today_exp + nxt, spot=104.0))  # nearest listed strike to 104 with both: 100
    assert m.implied_move_expiration == e
    assert m.implied_move_abs == pytest.approx(3.5)
    assert m.implied_move == pytest.approx(3.5 / 104.0)


def test_put_call_ratios() -> None:
    rows = [
        contract(E1, 100, C, t=T1, volume=100, oi=1000),
        contract(E1, 110, C, t=T1, volume=None, oi=None),
        contract(E1, 100, P, t=T1, volume=150, oi=500),
        contract(E1, 90, P, t=T1, volume=50, oi=None),
    ]
    m = compute_metrics(chain(rows))
    assert m.put_call_volume_ratio == pytest.approx(2.0) and m.put_call_oi_ratio == pytest.approx(0.5)
    no_oi = compute_metrics(chain([contract(E1, 100, r, t=T1, volume=10, oi=None) for r in (C, P)]))
    assert no_oi.put_call_oi_ratio is None and no_oi.put_call_volume_ratio == 1.0
    no_calls = compute_metrics(
        chain([contract(E1, 100, C, t=T1, volume=0), contract(E1, 100, P, t=T1, volume=9)])
    )
    assert no_calls.put_call_volume_ratio is None


def test_rows_and_json() -> None:
    m = compute_metrics(chain(_wing_chain(E1, T1, 0.25, 0.22, 0.30) + _wing_chain(E2, T2, 0.27, 0.24, 0.31)))
    rows = metric_rows(m)
    by_name = {(r.metric, r.tenor): r.value for r in rows}
    assert by_name[("atm_iv", E1.isoformat())] == pytest.approx(0.25)
    assert by_name[("iv30", "30d")] == m.iv30 and by_name[("rr25", "30d")] == m.rr25
    assert by_name[("bf25", "30d")] == m.bf25
    assert ("implied_move", "") in by_name and by_name[("implied_move", "")] is None  # no mids
    assert {r.metric for r in rows} == {
        "atm_iv", "iv30", "rr25", "bf25", "implied_move", "implied_move_abs",
        "put_call_volume_ratio", "put_call_oi_ratio",
    }  # fmt: skip
    assert all(r.symbol == "ACME" and r.source == "vendor" and r.as_of == AS_OF for r in rows)
    doc = json.loads(json.dumps(m.to_json()))
    assert doc["as_of"] == AS_OF.isoformat() and doc["term_structure"][0]["expiration"] == E1.isoformat()
    assert doc["rr25"] == m.rr25 and doc["contracts"] == len(m.term_structure) * 9


def test_an_empty_chain_has_no_metrics() -> None:
    m = compute_metrics(chain([]))
    assert m.iv30 is None and m.rr25 is None and m.implied_move is None and m.term_structure == []
    assert m.put_call_volume_ratio is None and m.contracts == 0


# -- recovering the sim surface ------------------------------------------------------------------
# Tolerances: the sim's mids sit on listing ticks (0.01 / 0.05), so an IV read from a mid
# is off by up to half a tick / vega, and linear interpolation across strikes and deltas
# misses the smile's curvature a little. atm_iv and iv30: 0.005; rr25 and bf25: 0.01;
# implied_move: 2% relative. The underlyings below trade at 50+ (at a few dollars, a tick
# is a large share of a 2-day straddle and the shortest expirations would need more).

RATE = 0.04
SYMBOLS = ("SPY", "MSFT", "TSLA", "QQQ")


def _surface_30d(points: list[tuple[float, float]]) -> float:
    """The surface's values at each expiration taken to 30 days in total variance."""
    before = max((p for p in points if p[0] <= T30), key=lambda p: p[0])
    after = min((p for p in points if p[0] >= T30), key=lambda p: p[0])
    (t1, v1), (t2, v2) = before, after
    w = v1**2 * t1 + (v2**2 * t2 - v1**2 * t1) * (T30 - t1) / (t2 - t1)
    return math.sqrt(w / T30)


def _vol_at_delta(surface: SimSurface, spot: float, t: float, target: float) -> float:
    """Solve the surface for the strike whose Black delta (at its own vol) is ``target``."""
    f = spot * math.exp(RATE * t)

    def gap(x: float) -> float:
        sigma = float(surface.vol(f * math.exp(x), f, t))
        d1 = (-x + 0.5 * sigma * sigma * t) / (sigma * math.sqrt(t))
        return float(ndtr(d1)) - (target if target > 0 else 1 + target)

    x = brentq(gap, -3.0, 3.0, xtol=1e-14)
    return float(surface.vol(f * math.exp(x), f, t))


@pytest.mark.parametrize("symbol", SYMBOLS)
def test_metrics_recover_the_sim_surface(symbol: str) -> None:
    market = SimMarket(42)
    quotes = sim_option_chain(market, symbol, AS_OF, rate=RATE)
    spot = quotes[0].underlying_price
    assert spot is not None and spot > 50
    priced = price_chain(
        quotes, symbol=symbol, spot=spot, as_of=AS_OF, rate=RATE, rate_source="RISK_FREE_RATE",
        provider="sim", calendar=market.calendar,
    )  # fmt: skip
    m = compute_metrics(priced)
    surface = SimSurface.for_symbol(42, symbol)
    ts = sorted({c.t for c in priced.contracts})

    for point in m.term_structure:
        assert point.atm_iv is not None
        assert point.atm_iv == pytest.approx(float(surface.atm(point.t)), abs=0.005), point

    assert m.iv30 == pytest.approx(_surface_30d([(t, float(surface.atm(t))) for t in ts]), abs=0.005)
    assert not m.iv30_extrapolated

    c30 = _surface_30d([(t, _vol_at_delta(surface, spot, t, 0.25)) for t in ts])
    p30 = _surface_30d([(t, _vol_at_delta(surface, spot, t, -0.25)) for t in ts])
    atm30 = _surface_30d([(t, float(surface.atm(t))) for t in ts])
    assert m.rr25 == pytest.approx(c30 - p30, abs=0.01)
    assert m.bf25 == pytest.approx((c30 + p30) / 2 - atm30, abs=0.01)
    assert m.rr25 is not None and m.rr25 < -0.02 and m.bf25 is not None and m.bf25 > 0.005

    # The straddle at the listed strike nearest the forward, priced on the surface itself.
    e = m.implied_move_expiration
    assert e is not None and (e - AS_OF.date()).days >= 1
    t = next(c.t for c in priced.contracts if c.expiration == e)
    f, d = spot * math.exp(RATE * t), math.exp(-RATE * t)
    strikes = np.array(sorted({c.strike for c in priced.contracts if c.expiration == e}))
    k = float(strikes[np.argmin(np.abs(strikes - f))])
    sigma = float(surface.vol(k, f, t))
    straddle = float(black_price(f, k, t, sigma, d, True) + black_price(f, k, t, sigma, d, False))
    assert m.implied_move_abs == pytest.approx(straddle, rel=0.02)
    assert m.implied_move == pytest.approx(straddle / spot, rel=0.02)
    assert m.put_call_volume_ratio is not None and m.put_call_volume_ratio > 1  # the sim's puts are busier
