"""Splits and dividends of the sim market, and the raw prices they imply.

Settings (read from the environment beside ``SIM_NO_TRADE``):

* ``SIM_SPLITS=AAPL=2025-06-09:4,MSFT=2024-01-08:0.5``: symbol = ex-date : ratio, new
  shares per old share (4 for a 4-for-1 split, 0.5 for a 1-for-2 reverse split).
* ``SIM_DIVIDENDS=AAPL=2025-08-11:0.26``: symbol = ex-date : cash per share, in the share
  basis of that ex-date (as declared, as a vendor publishes it).

A symbol may appear several times. Each action is announced :data:`DECLARED_DAYS_BEFORE`
days before its ex-date (the sim vendor knows it from then on).

The model. SimMarket's own series is the continuous truth: split-adjusted and total
return (no drop on an ex-date). Raw, as-traded prices are that series times a multiplier
per session, built walking the actions from the latest back: the multiplier starts at 1
on and after the latest ex-date; across a split of ratio r the sessions before it get
``M * r`` (and their volume is divided by r); across a dividend D with ``c`` the
continuous close of the session before its ex-date, they get
``M * (c*M + D) / (c*M)``, so that session's raw close is ``c*M + D``. Then the CRSP
factor ``1 - D / raw previous close`` applied to raw prices gives back ``c*M`` exactly:
adjusting the raw bars by every later action returns the continuous series.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from mds.domain.actions import ActionType, CorporateAction
from mds.errors import ConfigError

__all__ = [
    "DECLARED_DAYS_BEFORE",
    "RawBasis",
    "SimActions",
    "parse_sim_actions",
    "raw_basis",
    "sim_actions_from_env",
]

#: Days between a sim action's announcement and its ex-date.
DECLARED_DAYS_BEFORE = 14
#: Symbol -> its actions in ex-date order.
SimActions = Mapping[str, tuple[CorporateAction, ...]]


def sim_actions_from_env(environ: Mapping[str, str]) -> dict[str, tuple[CorporateAction, ...]]:
    """``SIM_SPLITS`` and ``SIM_DIVIDENDS`` from ``environ`` (absent or empty: none).

    Raises:
        ConfigError: naming the setting whose value is malformed.
    """
    return parse_sim_actions(environ.get("SIM_SPLITS", ""), environ.get("SIM_DIVIDENDS", ""))


def parse_sim_actions(splits: str, dividends: str) -> dict[str, tuple[CorporateAction, ...]]:
    """Parse ``SIM_SPLITS`` and ``SIM_DIVIDENDS`` values into each symbol's actions, by ex-date.

    Raises:
        ConfigError: An entry is not ``SYMBOL=YYYY-MM-DD:value`` with a positive finite
            value; an action is given twice; or a symbol has a split and a dividend on
            the same ex-date (the dividend's share basis would be ambiguous), which is
            blamed on ``SIM_DIVIDENDS``.
    """
    by_symbol: dict[str, dict[date, CorporateAction]] = {}
    for setting, kind, text in (
        ("SIM_SPLITS", ActionType.SPLIT, splits),
        ("SIM_DIVIDENDS", ActionType.DIVIDEND, dividends),
    ):
        for action in _entries(setting, kind, text):
            known = by_symbol.setdefault(action.symbol, {})
            other = known.get(action.ex_date)
            if other is not None:
                what = "given twice" if other.type is kind else "also has a split that day"
                raise ConfigError(setting, f"{action.symbol} {action.ex_date}: {what}")
            known[action.ex_date] = action
    return {s: tuple(known[d] for d in sorted(known)) for s, known in by_symbol.items()}


def _entries(setting: str, kind: ActionType, text: str) -> Iterable[CorporateAction]:
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        symbol, sep, rest = entry.partition("=")
        day_text, colon, value_text = rest.partition(":")
        symbol = symbol.strip().upper()
        if not sep or not colon or not symbol:
            raise ConfigError(setting, f"expected SYMBOL=YYYY-MM-DD:value, got {entry!r}")
        try:
            ex_date = date.fromisoformat(day_text.strip())
        except ValueError:
            raise ConfigError(setting, f"{symbol}: {day_text.strip()!r} is not a YYYY-MM-DD date") from None
        try:
            value = float(value_text)
        except ValueError:
            raise ConfigError(setting, f"{symbol}: {value_text.strip()!r} is not a number") from None
        if not (value > 0 and math.isfinite(value)):  # also refuses nan
            raise ConfigError(setting, f"{symbol} {ex_date}: {value} is not a positive number")
        yield CorporateAction(
            symbol,
            kind,
            ex_date,
            ratio=value if kind is ActionType.SPLIT else None,
            amount=value if kind is ActionType.DIVIDEND else None,
            currency="USD" if kind is ActionType.DIVIDEND else None,
            declared_date=ex_date - timedelta(days=DECLARED_DAYS_BEFORE),
            source="sim",
        )


@dataclass(frozen=True, slots=True)
class RawBasis:
    """Continuous → raw multipliers of one symbol, constant between ex-dates.

    ``price[i]`` and ``volume[i]`` hold for sessions whose date ordinal ``d`` has
    ``bisect_right(ex_ordinals, d) == i``: before every ex-date (i = 0) the most actions
    apply, on and after the latest (i = n) none.
    """

    ex_ordinals: list[int]
    price: list[float]
    volume: list[float]  # divisor: the product of the ratios of later splits

    def at(self, day: date) -> tuple[float, float]:
        """(price multiplier, volume divisor) of the session on ``day``."""
        i = bisect_right(self.ex_ordinals, day.toordinal())
        return self.price[i], self.volume[i]


def raw_basis(actions: Iterable[CorporateAction], close_before: Callable[[date], float]) -> RawBasis:
    """The multipliers of ``actions`` (one symbol's; at most one per ex-date).

    ``close_before(ex_date)`` is the continuous close of the session before ``ex_date``.
    """
    ordered = sorted(actions, key=lambda a: a.ex_date, reverse=True)
    m, v = 1.0, 1.0
    prices, volumes = [m], [v]
    for a in ordered:
        if a.type is ActionType.SPLIT:
            r = a.value
            m, v = m * r, v * r
        else:
            prev = close_before(a.ex_date) * m  # raw close before ex, without this dividend
            m = m * (prev + a.value) / prev
        prices.append(m)
        volumes.append(v)
    prices.reverse()
    volumes.reverse()
    return RawBasis([a.ex_date.toordinal() for a in reversed(ordered)], prices, volumes)
