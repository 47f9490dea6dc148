"""Corporate actions (splits and cash dividends), point in time.

A vendor publishes an action; MDS stores it with the time it learned it (``as_of``), so a
read "as of T" adjusts only by the actions MDS knew at T. Amounts are in the share basis of
their own date (a dividend declared before a later split is not divided by that split):
that is what the raw, as-traded prices next to it are in.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

__all__ = [
    "ActionKey",
    "ActionType",
    "CorporateAction",
    "SuspectedAction",
    "action_key",
    "last_per_key",
    "restated",
]


class ActionType(str, Enum):
    SPLIT = "split"
    DIVIDEND = "dividend"


@dataclass(frozen=True, slots=True)
class CorporateAction:
    """One split or cash dividend of one symbol, effective at the open of ``ex_date``.

    ``ratio`` (splits only) is new shares per old share: 4.0 for a 4-for-1 split, 0.1 for a
    1-for-10 reverse split. ``amount`` (dividends only) is cash per share in ``currency``.
    ``source`` is the provider that published it; ``as_of`` is when MDS learned it (set by the
    store from the clock on write, None on what an adapter returns).
    """

    symbol: str
    type: ActionType
    ex_date: dt.date
    ratio: float | None = None
    amount: float | None = None
    currency: str | None = None
    declared_date: dt.date | None = None
    record_date: dt.date | None = None
    pay_date: dt.date | None = None
    source: str = ""
    as_of: dt.datetime | None = None

    def __post_init__(self) -> None:
        # Checked here so no adapter can hand the store an action adjustment would divide by.
        if self.type is ActionType.SPLIT:
            if self.ratio is None or not self.ratio > 0 or self.ratio == float("inf"):
                raise ValueError(
                    f"split of {self.symbol} on {self.ex_date} has no positive ratio ({self.ratio})"
                )
        elif self.amount is None or not self.amount > 0 or self.amount == float("inf"):
            raise ValueError(
                f"dividend of {self.symbol} on {self.ex_date} has no positive amount ({self.amount})"
            )

    @property
    def value(self) -> float:
        """The ratio of a split, the amount of a dividend."""
        return float(self.ratio if self.type is ActionType.SPLIT else self.amount)  # type: ignore[arg-type]

    def same_terms(self, other: CorporateAction) -> bool:
        """Whether ``other`` announces the same action with the same value (to 1e-9 relative)."""
        return (
            self.symbol == other.symbol
            and self.type is other.type
            and self.ex_date == other.ex_date
            and abs(self.value - other.value) <= 1e-9 * max(abs(self.value), abs(other.value))
        )


#: What identifies an action across its versions: (symbol, type, ex_date).
ActionKey = tuple[str, ActionType, dt.date]


def action_key(action: CorporateAction) -> ActionKey:
    return (action.symbol, action.type, action.ex_date)


def last_per_key(actions: Iterable[CorporateAction]) -> list[CorporateAction]:
    """``actions`` with only the last of each key (a batch that names one action twice means
    its later version), in the order of those last ones."""
    return list({action_key(a): a for a in actions}.values())


def restated(
    current: dict[ActionKey, CorporateAction], action: CorporateAction, learned: dt.datetime
) -> CorporateAction | None:
    """``action`` stamped ``learned`` when it is new or changes the terms of ``current``'s
    version (which it then replaces in ``current``); None when it repeats them.

    Both stores write through this, so a repeated announcement never moves an action's
    knowledge time.
    """
    key = action_key(action)
    known = current.get(key)
    if known is not None and known.same_terms(action):
        return None
    new = dataclasses.replace(action, as_of=learned)
    current[key] = new
    return new


@dataclass(frozen=True, slots=True)
class SuspectedAction:
    """A daily close-to-open jump that no known action explains (a possible unannounced split).

    ``ratio`` is previous close ÷ this session's open: about 4.0 where a 4:1 split went unannounced.
    """

    symbol: str
    session: dt.date
    previous_close: float
    open: float
    ratio: float
    detected_at: dt.datetime
