"""Price a vendor's option chain: validate it, take mids, solve IV and delta in one pass.

Time to expiry is ACT/365 from the chain's ``as_of`` to the expiration's session close
(the calendar's close, early closes included; 16:00 America/New_York when no calendar
knows the date). Contracts already expired are left out; contracts a vendor sent unfit
(crossed, negative, without a strike, or for another underlying or expiration) are
dropped and counted in ``Chain.dropped``, never priced.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from mds.calendar import MarketCalendar
from mds.domain.models import OptionQuote, OptionRight, ensure_utc
from mds.domain.options import Chain, IvReason, PricedContract
from mds.options.pricing import black_delta, discount, forward, implied_vols

__all__ = ["expiry_close", "filter_chain", "price_chain", "validate_quotes", "year_fraction"]

log = logging.getLogger(__name__)

_NEW_YORK = ZoneInfo("America/New_York")
_YEAR_SECONDS = 365 * 86_400
#: The tail of an OCC symbol (after the root): yymmdd, C or P, strike x 1000 in 8 digits.
_OCC_TAIL = re.compile(r"(\d{6})([CP])(\d{8})$")


def expiry_close(expiration: date, calendar: MarketCalendar | None = None) -> datetime:
    """When an expiration stops trading: its session's close, else 16:00 New York time (UTC)."""
    if calendar is not None:
        try:
            session = calendar.session_on(expiration)
        except ValueError:  # beyond the dates the calendar covers
            session = None
        if session is not None:
            return session.close
    return datetime.combine(expiration, time(16), _NEW_YORK).astimezone(UTC)


def year_fraction(start: datetime, end: datetime) -> float:
    """Years from ``start`` to ``end``, ACT/365 (negative when ``end`` is earlier)."""
    return (ensure_utc(end) - ensure_utc(start)).total_seconds() / _YEAR_SECONDS


def _is_bad_number(value: float | None) -> bool:
    return value is not None and not value >= 0  # negative or NaN


def _problem(q: OptionQuote, symbol: str, yymmdd: dict[date, str]) -> str | None:
    """Why a vendor's contract is unfit to price, or None (``yymmdd`` memoises date codes)."""
    if q.underlying.upper() != symbol:
        return "underlying_mismatch"
    if q.strike is None or not q.strike > 0:  # also refuses NaN
        return "missing_strike"
    if (
        _is_bad_number(q.bid)
        or _is_bad_number(q.ask)
        or _is_bad_number(q.last)
        or _is_bad_number(q.volume)
        or _is_bad_number(q.open_interest)
    ):
        return "negative_price"
    if q.bid is not None and q.ask is not None and q.bid > q.ask:
        return "crossed"
    occ = _OCC_TAIL.search(q.contract)
    if occ is not None:
        code = yymmdd.get(q.expiration)
        if code is None:
            code = yymmdd[q.expiration] = q.expiration.strftime("%y%m%d")
        if occ.group(1) != code:
            return "expiration_mismatch"
        if (occ.group(2) == "C") != (q.right is OptionRight.CALL):
            return "right_mismatch"
    return None


def validate_quotes(quotes: Sequence[OptionQuote], symbol: str) -> tuple[list[OptionQuote], Counter[str]]:
    """Split a vendor chain into the contracts fit to price and a count of why the rest are not.

    Unfit: another underlying than ``symbol``; a missing, NaN or non-positive strike; a
    negative (or NaN) bid, ask, last, volume or open interest; a crossed quote (bid > ask);
    an OCC symbol whose date or right disagrees with the contract's own fields.
    """
    good: list[OptionQuote] = []
    reasons: Counter[str] = Counter()
    upper = symbol.upper()
    yymmdd: dict[date, str] = {}
    for q in quotes:
        problem = _problem(q, upper, yymmdd)
        if problem is None:
            good.append(q)
        else:
            reasons[problem] += 1
    return good, reasons


def _mid(q: OptionQuote) -> tuple[float | None, IvReason | None]:
    if q.bid is None or q.bid <= 0:
        return None, IvReason.NO_BID
    if q.ask is None or q.ask <= 0:
        return None, IvReason.NO_ASK
    return (q.bid + q.ask) / 2.0, None


def price_chain(
    quotes: Sequence[OptionQuote],
    *,
    symbol: str,
    spot: float,
    as_of: datetime,
    rate: float,
    rate_source: str,
    provider: str,
    calendar: MarketCalendar | None = None,
    dividend_yield: float = 0.0,
) -> Chain:
    """Validate, then price every live contract of a vendor chain with MDS's own IV and delta.

    Args:
        quotes: The vendor's contracts (any order, any expirations).
        symbol: The underlying they must all be for.
        spot: The underlying's price the chain is priced against.
        as_of: When the chain is priced (times to expiry are measured from here).
        rate: Continuously compounded risk-free rate.
        rate_source: Where ``rate`` came from (``DGS3MO`` or ``RISK_FREE_RATE``).
        provider: The vendor the chain came from.
        calendar: Gives each expiration's session close; 16:00 New York without it.
        dividend_yield: Continuous dividend yield (0 unless known).

    Returns:
        The chain, contracts sorted by (expiration, strike, right). ``mid`` is
        (bid + ask) / 2 when both are quoted and bid > 0; the IV of the whole chain is solved
        in one vectorised call (:func:`~mds.options.pricing.implied_vols`) and is None, with
        a reason, where no bid or ask, or where the mid has no volatility. Expired contracts
        are left out; unfit ones are dropped and counted in ``dropped`` (their reasons are
        logged), for the caller's ``provider_bad_payloads_total``.
    """
    as_of = ensure_utc(as_of)
    good, reasons = validate_quotes(quotes, symbol)
    dropped = sum(reasons.values())
    if dropped:
        log.warning("dropped %d unfit contracts of %s from %s: %s", dropped, symbol, provider, dict(reasons))

    closes: dict[date, float] = {}
    live: list[tuple[OptionQuote, float]] = []
    for q in good:
        t = closes.get(q.expiration)
        if t is None:
            t = closes[q.expiration] = year_fraction(as_of, expiry_close(q.expiration, calendar))
        if t > 0:
            live.append((q, t))
    live.sort(key=lambda qt: (qt[0].expiration, qt[0].strike, qt[0].right.value))

    n = len(live)
    mids: list[float | None] = []
    mid_reasons: list[IvReason | None] = []
    for q, _ in live:
        mid, why = _mid(q)
        mids.append(mid)
        mid_reasons.append(why)
    t_arr = np.fromiter((t for _, t in live), dtype=np.float64, count=n)
    strike = np.fromiter((q.strike for q, _ in live), dtype=np.float64, count=n)
    call = np.fromiter((q.right is OptionRight.CALL for q, _ in live), dtype=bool, count=n)
    price = np.array([np.nan if m is None else m for m in mids], dtype=np.float64)
    fwd = forward(spot, rate, t_arr, dividend_yield)
    iv_reasons: list[IvReason | None] = list(mid_reasons)
    # A mid whose time value is inside half the spread says nothing about volatility: its
    # IV would be any number the spread allows (2.8 for a 2-day deep-ITM call), so none.
    half_spread = (
        np.array(
            [
                np.nan if m is None else (q.ask or 0.0) - (q.bid or 0.0)
                for m, (q, _) in zip(mids, live, strict=True)
            ],
            dtype=np.float64,
        )
        / 2.0
    )
    intrinsic = discount(rate, t_arr) * np.where(
        call, np.maximum(fwd - strike, 0.0), np.maximum(strike - fwd, 0.0)
    )
    time_value = price - intrinsic
    vague = (time_value >= 0) & (time_value < half_spread) & (intrinsic > 0)
    for i in np.flatnonzero(vague).tolist():
        iv_reasons[i] = IvReason.SPREAD_EXCEEDS_TIME_VALUE
    solve = np.flatnonzero(~np.isnan(price) & ~vague)
    iv = np.full(n, np.nan)
    if solve.size:
        ivs, solved_reasons = implied_vols(
            price[solve], fwd[solve], strike[solve], t_arr[solve], discount(rate, t_arr[solve]), call[solve]
        )
        iv[solve] = ivs
        for i, reason in zip(solve.tolist(), solved_reasons, strict=True):
            iv_reasons[i] = reason
    has_iv = ~np.isnan(iv)
    delta = np.full(n, np.nan)
    if has_iv.any():
        delta[has_iv] = black_delta(
            fwd[has_iv],
            strike[has_iv],
            t_arr[has_iv],
            iv[has_iv],
            call[has_iv],
            np.exp(-dividend_yield * t_arr[has_iv]),
        )

    ivs_list, delta_list = iv.tolist(), delta.tolist()
    contracts = [
        PricedContract(
            quote=q,
            mid=mids[i],
            t=t,
            iv=None if math.isnan(ivs_list[i]) else ivs_list[i],
            delta=None if math.isnan(delta_list[i]) else delta_list[i],
            iv_reason=iv_reasons[i],
        )
        for i, (q, t) in enumerate(live)
    ]
    return Chain(
        symbol=symbol,
        as_of=as_of,
        spot=spot,
        rate=rate,
        rate_source=rate_source,
        provider=provider,
        contracts=contracts,
        dividend_yield=dividend_yield,
        dropped=dropped,
        expirations=sorted({q.expiration for q, _ in live}),
    )


def filter_chain(
    chain: Chain, *, expiration: date | None = None, max_days: int | None = None, today: date
) -> Chain:
    """The same chain with only one expiration and/or those within ``max_days`` of ``today``.

    ``expiration`` keeps that date only (nothing when it is not listed); ``max_days``
    keeps expirations on or before ``today + max_days``. None means no such limit.
    """
    last = None if max_days is None else today + timedelta(days=max_days)

    def keep(d: date) -> bool:
        return (expiration is None or d == expiration) and (last is None or d <= last)

    return dataclasses.replace(
        chain,
        contracts=[c for c in chain.contracts if keep(c.expiration)],
        expirations=[d for d in chain.expirations if keep(d)],
    )
