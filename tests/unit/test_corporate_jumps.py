"""Daily jumps no known action explains: flagged past the threshold, either way, unless an
action's ex-date falls between the two sessions."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from mds.corporate.jumps import unexplained_jumps
from mds.domain.actions import ActionType, CorporateAction
from mds.domain.models import Bar, Interval

DETECTED = datetime(2025, 6, 20, 10, 0, tzinfo=UTC)
THRESHOLD = 0.4


def day(d: int, open_: float, close: float) -> Bar:
    # 13:30Z is 09:30 in New York: the session of June ``d``.
    ts = datetime(2025, 6, d, 13, 30, tzinfo=UTC)
    return Bar("AAPL", Interval.D1, ts, open_, max(open_, close), min(open_, close), close, 1000.0, "sim")


def split(ex: date, ratio: float) -> CorporateAction:
    return CorporateAction("AAPL", ActionType.SPLIT, ex, ratio=ratio, source="sim")


def jumps(bars: list[Bar], actions: list[CorporateAction]) -> list[tuple[date, float]]:
    found = unexplained_jumps(bars, actions, threshold=THRESHOLD, detected_at=DETECTED)
    return [(s.session, round(s.ratio, 9)) for s in found]


# Friday 6-06 closes at 400; Monday 6-09 opens at 100: a 4:1 split's gap.
FOUR_FOR_ONE = [day(5, 398.0, 399.0), day(6, 399.0, 400.0), day(9, 100.0, 101.0), day(10, 101.0, 100.0)]


def test_a_four_to_one_gap_with_no_action_is_flagged_with_its_ratio_and_prices() -> None:
    found = unexplained_jumps(FOUR_FOR_ONE, [], threshold=THRESHOLD, detected_at=DETECTED)
    assert len(found) == 1
    s = found[0]
    assert (s.symbol, s.session, s.previous_close, s.open, s.detected_at) == (
        "AAPL",
        date(2025, 6, 9),
        400.0,
        100.0,
        DETECTED,
    )
    assert s.ratio == pytest.approx(4.0)


def test_the_same_gap_is_explained_by_a_split_on_that_ex_date() -> None:
    assert jumps(FOUR_FOR_ONE, [split(date(2025, 6, 9), 4.0)]) == []


def test_an_ex_date_on_a_non_session_between_the_two_bars_explains_it_too() -> None:
    # Saturday 6-07 lies after Friday's session and before Monday's.
    assert jumps(FOUR_FOR_ONE, [split(date(2025, 6, 7), 4.0)]) == []


def test_an_action_on_another_date_does_not_explain_the_gap() -> None:
    assert jumps(FOUR_FOR_ONE, [split(date(2025, 6, 10), 4.0), split(date(2025, 6, 6), 4.0)]) == [
        (date(2025, 6, 9), 4.0)
    ]


def test_a_ten_percent_move_is_not_flagged_either_way() -> None:
    down = [day(5, 100.0, 100.0), day(6, 90.0, 91.0)]
    up = [day(5, 100.0, 100.0), day(6, 110.0, 111.0)]
    assert jumps(down, []) == [] and jumps(up, []) == []


def test_the_threshold_bounds_both_ways() -> None:
    # threshold 0.4: flagged above a ratio of 1.4 or below 1/1.4.
    assert jumps([day(5, 100.0, 141.0), day(6, 100.0, 100.0)], []) == [(date(2025, 6, 6), 1.41)]
    assert jumps([day(5, 100.0, 139.0), day(6, 100.0, 100.0)], []) == []
    assert jumps([day(5, 100.0, 100.0), day(6, 141.0, 141.0)], []) != []
    assert jumps([day(5, 100.0, 100.0), day(6, 139.0, 139.0)], []) == []


def test_a_reverse_split_gap_is_flagged_and_explained_by_its_action() -> None:
    # 1-for-10: close 2.00, next open 20.00 (ratio 0.1).
    bars = [day(5, 2.1, 2.0), day(6, 20.0, 20.5), day(9, 20.5, 21.0)]
    assert jumps(bars, []) == [(date(2025, 6, 6), 0.1)]
    assert jumps(bars, [split(date(2025, 6, 6), 0.1)]) == []


def test_bars_with_no_price_are_skipped_not_flagged() -> None:
    assert jumps([day(5, 100.0, 0.0), day(6, 100.0, 100.0)], []) == []
