"""price_chain: validation, mids, times to expiry, IV and delta of a vendor chain; filter_chain."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from mds.calendar import get_calendar
from mds.domain.models import OptionQuote, OptionRight
from mds.domain.options import IvReason
from mds.options.chain import expiry_close, filter_chain, price_chain, validate_quotes, year_fraction
from mds.options.pricing import black_delta, black_price, discount, forward
from tests.helpers import utc

AS_OF = utc(2025, 11, 20, 15, 0)  # a Thursday; 2025-11-28 is the early close after Thanksgiving
SPOT, RATE = 100.0, 0.04
CAL = get_calendar("XNYS")
C, P = OptionRight.CALL, OptionRight.PUT


def quote(
    strike: float = 100.0,
    right: OptionRight = C,
    expiration: date = date(2025, 12, 19),
    *,
    bid: float | None = 2.0,
    ask: float | None = 2.2,
    underlying: str = "ACME",
    contract: str | None = None,
    **extra: object,
) -> OptionQuote:
    flag = "C" if right is C else "P"
    occ = contract or f"{underlying}{expiration:%y%m%d}{flag}{round(strike * 1000):08d}"
    fields: dict[str, object] = {
        "last": None,
        "volume": 10.0,
        "open_interest": 100.0,
        "implied_volatility": None,
        "ts": AS_OF,
        "provider": "vendor",
    }
    fields.update(extra)
    return OptionQuote(underlying, occ, expiration, strike, right, bid, ask, **fields)  # type: ignore[arg-type]


def priced(quotes: list[OptionQuote], **kw: object) -> object:
    args: dict[str, object] = {
        "symbol": "ACME",
        "spot": SPOT,
        "as_of": AS_OF,
        "rate": RATE,
        "rate_source": "RISK_FREE_RATE",
        "provider": "vendor",
        "calendar": CAL,
    }
    args.update(kw)
    return price_chain(quotes, **args)  # type: ignore[arg-type]


def test_expiry_is_the_session_close_or_four_pm_new_york() -> None:
    assert expiry_close(date(2025, 12, 19), CAL) == utc(2025, 12, 19, 21, 0)  # 16:00 EST
    assert expiry_close(date(2025, 11, 28), CAL) == utc(2025, 11, 28, 18, 0)  # early close 13:00 EST
    assert expiry_close(date(2025, 11, 28)) == utc(2025, 11, 28, 21, 0)  # no calendar: 16:00
    assert expiry_close(date(2025, 7, 18)) == utc(2025, 7, 18, 20, 0)  # 16:00 EDT
    assert year_fraction(utc(2025, 1, 1), utc(2025, 1, 2)) == pytest.approx(1 / 365)


def test_a_chain_is_priced_sorted_and_solved() -> None:
    t = year_fraction(AS_OF, utc(2025, 12, 19, 21, 0))
    f, d = forward(SPOT, RATE, t), discount(RATE, t)
    # Quotes whose mids are the model prices at known volatilities.
    wanted = {(95.0, P): 0.32, (100.0, C): 0.28, (100.0, P): 0.29, (105.0, C): 0.26}
    quotes = []
    for (k, right), sigma in reversed(list(wanted.items())):  # out of order on purpose
        mid = float(black_price(f, k, t, sigma, d, right is C))
        quotes.append(quote(k, right, bid=mid - 0.05, ask=mid + 0.05))
    chain = priced(quotes)
    assert [(c.strike, c.right) for c in chain.contracts] == list(wanted)  # (expiration, strike, right)
    assert chain.dropped == 0 and chain.expirations == [date(2025, 12, 19)]
    assert chain.symbol == "ACME" and chain.rate == RATE and chain.rate_source == "RISK_FREE_RATE"
    for c in chain.contracts:
        sigma = wanted[(c.strike, c.right)]
        assert c.t == pytest.approx(t)
        assert c.mid == pytest.approx((c.quote.bid + c.quote.ask) / 2)
        assert c.iv == pytest.approx(sigma, abs=1e-9) and c.iv_reason is None
        assert c.delta == pytest.approx(float(black_delta(f, c.strike, t, sigma, c.right is C)), abs=1e-9)


def test_missing_bids_and_asks_and_impossible_mids_get_a_reason() -> None:
    chain = priced(
        [
            quote(90, bid=None, ask=0.5),
            quote(95, bid=0.0, ask=0.5),
            quote(100, bid=1.0, ask=None),
            quote(60, bid=30.0, ask=30.1),  # mid below the forward intrinsic (~40.5)
        ]
    )
    reasons = {c.strike: c.iv_reason for c in chain.contracts}
    assert reasons == {
        60: IvReason.BELOW_INTRINSIC,
        90: IvReason.NO_BID,
        95: IvReason.NO_BID,
        100: IvReason.NO_ASK,
    }
    for c in chain.contracts:
        assert c.iv is None and c.delta is None
    assert [c.mid for c in chain.contracts] == [30.05, None, None, None]


def test_unfit_contracts_are_dropped_and_counted() -> None:
    good = quote(100)
    bad = [
        quote(100, bid=2.5, ask=2.0),  # crossed
        quote(100, bid=-0.1),  # negative bid
        quote(100, last=-1.0),  # negative last
        quote(100, ask=float("nan")),  # NaN price
        quote(0.0),  # no strike
        quote(100, underlying="OTHER"),  # another underlying
        quote(100, contract="ACME251219P00100000"),  # OCC says put, the field says call
        quote(100, contract="ACME260116C00100000"),  # OCC says another expiration
    ]
    kept, reasons = validate_quotes([good, *bad], "acme")
    assert kept == [good]
    assert reasons == {
        "crossed": 1,
        "negative_price": 3,
        "missing_strike": 1,
        "underlying_mismatch": 1,
        "right_mismatch": 1,
        "expiration_mismatch": 1,
    }
    chain = priced([good, *bad])
    assert chain.dropped == len(bad) and [c.quote for c in chain.contracts] == [good]
    # A vendor symbol without an OCC tail (or with a prefix such as Polygon's "O:") is fine.
    assert (
        validate_quotes([quote(100, contract="O:ACME251219C00100000"), quote(100, contract="x")], "ACME")[1]
        == {}
    )


def test_expired_contracts_are_left_out_not_counted() -> None:
    quotes = [quote(100, expiration=date(2025, 11, 20)), quote(100, expiration=date(2025, 11, 21))]
    after_close = priced(quotes, as_of=utc(2025, 11, 20, 21, 0))  # 16:00 EST: the 20th expired
    assert after_close.expirations == [date(2025, 11, 21)] and after_close.dropped == 0
    before_close = priced(quotes, as_of=utc(2025, 11, 20, 20, 59))
    assert before_close.expirations == [date(2025, 11, 20), date(2025, 11, 21)]
    assert before_close.contracts[0].t == pytest.approx(60 / (365 * 86400))


def test_a_dividend_yield_moves_the_forward() -> None:
    t = year_fraction(AS_OF, utc(2025, 12, 19, 21, 0))
    f = forward(SPOT, RATE, t, 0.03)
    mid = float(black_price(f, 100, t, 0.3, discount(RATE, t), True))
    chain = priced([quote(100, bid=mid - 0.01, ask=mid + 0.01)], dividend_yield=0.03)
    assert chain.contracts[0].iv == pytest.approx(0.3, abs=1e-9)
    assert chain.dividend_yield == 0.03
    assert chain.contracts[0].delta == pytest.approx(
        math.exp(-0.03 * t) * float(black_delta(f, 100, t, 0.3, True)), abs=1e-9
    )


def test_filter_chain_by_expiration_and_horizon() -> None:
    exps = [date(2025, 11, 21), date(2025, 12, 19), date(2026, 3, 20)]
    chain = priced([quote(100, right, e) for e in exps for right in (C, P)])
    today = date(2025, 11, 20)
    one = filter_chain(chain, expiration=date(2025, 12, 19), today=today)
    assert one.expirations == [date(2025, 12, 19)] and len(one.contracts) == 2
    near = filter_chain(chain, max_days=30, today=today)
    assert near.expirations == exps[:2] and {c.expiration for c in near.contracts} == set(exps[:2])
    assert filter_chain(chain, expiration=date(2025, 12, 12), today=today).contracts == []
    assert filter_chain(chain, today=today) == chain


def test_as_of_must_be_aware_and_is_kept_in_utc() -> None:
    chain = priced([quote(100)], as_of=datetime(2025, 11, 20, 10, 0, tzinfo=ZoneInfo("America/New_York")))
    assert chain.as_of == AS_OF and chain.as_of.tzinfo is UTC
    with pytest.raises(ValueError, match="naive"):
        priced([quote(100)], as_of=datetime(2025, 11, 20, 15, 0))


def test_a_mid_whose_time_value_is_inside_the_spread_gets_no_iv() -> None:
    # Deep in the money, 29 days out: intrinsic on the forward ~40.1. A 40.00/41.00 quote has
    # 0.40 of time value against a 0.50 half-spread: any volatility from ~0 to ~0.6 fits it.
    t = year_fraction(AS_OF, expiry_close(date(2025, 12, 19), CAL))
    intrinsic = float(discount(RATE, t) * (forward(SPOT, RATE, t) - 60.0))
    wide = quote(60, bid=intrinsic - 0.1, ask=intrinsic + 0.9)
    # The same strike quoted tightly around a price with real time value is solved.
    fair = float(black_price(forward(SPOT, RATE, t), 60.0, t, 0.9, discount(RATE, t), True))
    tight = quote(
        60, bid=fair - 0.02, ask=fair + 0.02, expiration=date(2025, 12, 19), contract="ACME251219C00060001"
    )
    chain = priced([wide, tight])
    by_contract = {c.quote.contract: c for c in chain.contracts}
    vague = by_contract[wide.contract]
    assert vague.iv is None and vague.iv_reason is IvReason.SPREAD_EXCEEDS_TIME_VALUE
    assert vague.mid is not None and vague.mid > intrinsic  # above intrinsic: not BELOW_INTRINSIC
    solved = by_contract["ACME251219C00060001"]
    assert solved.iv == pytest.approx(0.9, abs=0.01) and solved.iv_reason is None
