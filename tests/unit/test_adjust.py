"""Split and dividend adjustment against factors computed by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest

from mds.corporate.adjust import RAW, Adjust, adjust_rows, cutoff, plan, previous_closes_in
from mds.domain.actions import ActionType, CorporateAction
from mds.domain.models import Bar, Interval

SPLIT = CorporateAction("AAPL", ActionType.SPLIT, date(2025, 6, 9), ratio=4.0, source="sim")
DIV = CorporateAction("AAPL", ActionType.DIVIDEND, date(2025, 6, 11), amount=1.0, source="sim")


def day(d: int, close: float, volume: float = 1000.0) -> Bar:
    ts = datetime(2025, 6, d, 13, 30, tzinfo=UTC)
    return Bar("AAPL", Interval.D1, ts, close, close + 1, close - 1, close, volume, "sim")


# Raw closes: 400 before the 4:1 split (ex 6-09), ~100 after; ex-dividend 6-11 with a $1 dividend.
BARS = [day(5, 400.0), day(6, 404.0), day(9, 101.0), day(10, 100.0), day(11, 99.0), day(12, 99.5)]


def test_split_divides_prices_and_multiplies_volume_before_the_ex_date() -> None:
    out = plan(Adjust.SPLIT, [SPLIT, DIV]).apply(BARS)
    assert [b.close for b in out] == [100.0, 101.0, 101.0, 100.0, 99.0, 99.5]
    assert [b.volume for b in out] == [4000.0, 4000.0, 1000.0, 1000.0, 1000.0, 1000.0]
    assert [b.high for b in out[:2]] == [401 / 4, 405 / 4]
    assert [b.adjusted for b in out] == [True, True, False, False, False, False]
    # Bars on and after the ex-date are the stored objects themselves.
    assert out[2] is BARS[2]


def test_all_applies_the_crsp_dividend_factor_on_top_of_the_split() -> None:
    closes = {DIV.ex_date: 100.0}  # the raw close of 6-10, the session before the ex-date
    adjustment = plan(Adjust.ALL, [SPLIT, DIV], previous_closes=closes)
    out = adjustment.apply(BARS)
    f = 1 - 1.0 / 100.0  # 0.99
    expected = [400 / 4 * f, 404 / 4 * f, 101 * f, 100 * f, 99.0, 99.5]
    assert [b.close for b in out] == pytest.approx(expected, rel=1e-12)
    assert [b.volume for b in out] == [4000.0, 4000.0, 1000.0, 1000.0, 1000.0, 1000.0]
    described = adjustment.describe()
    assert described["mode"] == "all"
    assert [(a["type"], a["factor"]) for a in described["actions"]] == [("split", 0.25), ("dividend", f)]


def test_a_dividend_without_a_previous_close_is_skipped_and_named() -> None:
    adjustment = plan(Adjust.ALL, [DIV])
    assert adjustment.apply(BARS) == BARS
    assert adjustment.describe()["skipped"][0]["reason"] == "no stored close before the ex-date"
    # split mode ignores dividends altogether, raw ignores everything.
    assert plan(Adjust.SPLIT, [DIV]).describe() == {"mode": "split", "actions": [], "skipped": []}
    assert plan(Adjust.RAW, [SPLIT, DIV]) is RAW


def test_an_intraday_bar_belongs_to_its_new_york_session() -> None:
    # 2025-06-09 00:00 New York is 04:00Z: the last minute of 6-06 (19:59Z) is before the split.
    assert cutoff(date(2025, 6, 9)) == datetime(2025, 6, 9, 4, 0, tzinfo=UTC)
    last = Bar("AAPL", Interval.M1, datetime(2025, 6, 6, 19, 59, tzinfo=UTC), 404, 404, 404, 404, 10, "sim")
    first = Bar("AAPL", Interval.M1, datetime(2025, 6, 9, 13, 30, tzinfo=UTC), 101, 101, 101, 101, 10, "sim")
    out = plan(Adjust.SPLIT, [SPLIT]).apply([last, first])
    assert [b.close for b in out] == [101.0, 101.0] and [b.volume for b in out] == [40.0, 10.0]


def test_the_array_form_equals_the_bar_form() -> None:
    rows = np.array([(b.ts.timestamp(), b.open, b.high, b.low, b.close) for b in BARS])
    closes = previous_closes_in(rows, [DIV])
    assert closes == {DIV.ex_date: 100.0}
    adjustment = plan(Adjust.ALL, [SPLIT, DIV], previous_closes=closes)
    by_bars = [(b.open, b.high, b.low, b.close) for b in adjustment.apply(BARS)]
    np.testing.assert_allclose(adjust_rows(rows, adjustment)[:, 1:5], np.array(by_bars), rtol=1e-15)
    assert rows[0, 4] == 400.0  # the input is left as it was


def test_a_reverse_split_multiplies_earlier_prices() -> None:
    reverse = CorporateAction("AAPL", ActionType.SPLIT, date(2025, 6, 9), ratio=0.1, source="sim")
    out = plan(Adjust.SPLIT, [reverse]).apply(BARS[:3])
    assert [b.close for b in out] == pytest.approx([4000.0, 4040.0, 101.0])
    assert [b.volume for b in out] == pytest.approx([100.0, 100.0, 1000.0])
