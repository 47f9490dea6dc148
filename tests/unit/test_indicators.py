"""The indicator engine: TA-Lib fields equal TA-Lib; hand-written fields on worked examples."""

from __future__ import annotations

from datetime import UTC, date, datetime

import numpy as np
import pytest
import talib

from mds.analysis import indicators as ind
from mds.analysis.snapshot import to_day_number
from mds.calendar import get_calendar

CAL = get_calendar("XNYS")


def _random_ohlc(n: int, seed: int = 7) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    c = 100 * np.exp(np.cumsum(rng.normal(0, 0.015, n)))
    o = c * np.exp(rng.normal(0, 0.006, n))
    h = np.maximum(o, c) * (1 + rng.uniform(0, 0.01, n))
    lo = np.minimum(o, c) * (1 - rng.uniform(0, 0.01, n))
    return o, h, lo, c


def _weekdays(n: int, first: int = to_day_number(date(2024, 1, 1))) -> np.ndarray:
    d = np.arange(first, first + 2 * n)
    return d[((d + 3) % 7) < 5][:n]


def _sessions(start: date, end: date) -> list[date]:
    return [
        s.date
        for s in CAL.sessions(
            datetime(start.year, start.month, start.day, tzinfo=UTC),
            datetime(end.year, end.month, end.day, 23, tzinfo=UTC),
        )
    ]


def _series(days: list[date], closes: list[float]) -> dict:
    c = np.array(closes, dtype=float)
    return ind.compute_one(
        c, c, c, c, np.array([to_day_number(d) for d in days]), sessions=_session_numbers(days[0], days[-1])
    )


def _session_numbers(start: date, end: date) -> np.ndarray:
    return np.array([to_day_number(d) for d in _sessions(start, end)])


# ----------------------------------------------------------------------- TA-Lib
@pytest.mark.parametrize("n", [300, 270, 60, 20, 1])
def test_every_talib_field_equals_talib(n: int) -> None:
    o, h, lo, c = _random_ohlc(n)
    snap = ind.compute_one(o, h, lo, c, _weekdays(n))
    macd, sig, hist = talib.MACD(c, 12, 26, 9)
    want = {
        **{f"sma_{p}": talib.SMA(c, p)[-1] for p in ind.SMA_PERIODS},
        **{f"ema_{p}": talib.EMA(c, p)[-1] for p in ind.EMA_PERIODS},
        "rsi_14": talib.RSI(c, 14)[-1],
        "atr_14": talib.ATR(h, lo, c, 14)[-1],
        "adx_14": talib.ADX(h, lo, c, 14)[-1],
        "plus_di_14": talib.PLUS_DI(h, lo, c, 14)[-1],
        "minus_di_14": talib.MINUS_DI(h, lo, c, 14)[-1],
        "macd": macd[-1],
        "macd_signal": sig[-1],
        "macd_hist": hist[-1],
    }
    assert set(want) == set(ind.TALIB_FIELDS)
    for field, value in want.items():
        if np.isnan(value):
            assert snap[field] is None and snap["reasons"][field], field
        else:
            assert snap[field] == value, field  # exactly, not approximately


def test_batch_rows_of_different_lengths_equal_single_rows() -> None:
    rows, singles = [], []
    for k, n in enumerate((300, 120, 5, 0)):
        o, h, lo, c = _random_ohlc(n, seed=k)
        d = _weekdays(n)
        rows.append(np.column_stack([d, o, h, lo, c]) if n else np.zeros((0, 5)))
        singles.append(ind.compute_one(o, h, lo, c, d, symbol=f"S{k}") if n else None)
    snaps = ind.snapshots(ind.compute(ind.BarBatch.from_rows(["S0", "S1", "S2", "S3"], rows)))
    assert snaps[:3] == singles[:3]
    empty = snaps[3]
    assert empty["bars_used"] == 0 and empty["as_of"] is None and empty["ma_bucket"] == "NEUTRAL"
    assert empty["reasons"]["rsi_14"] == "no daily bars stored"


# ----------------------------------------------------------------- ATR fields
def test_atr_pct_and_distance_by_hand() -> None:
    pct, dist = ind.atr_fields(
        np.array([100.0, 50.0, 10.0]), np.array([2.0, 0.0, np.nan]), np.array([96.0, 40.0, 9.0])
    )
    assert pct[0] == 2.0 and dist[0] == 2.0  # 2/100 = 2 %; (100-96)/2 = 2 ATRs above
    assert pct[1] == 0.0 and np.isnan(dist[1])  # zero ATR: distance undefined, not inf
    assert np.isnan(pct[2]) and np.isnan(dist[2])


# --------------------------------------------------------- performance windows
def test_perf_windows_across_thanksgiving_with_a_missing_bar() -> None:
    days = _sessions(date(2024, 11, 1), date(2024, 11, 29))
    closes = [100.0 + i for i in range(len(days))]
    by_day = dict(zip(days, closes, strict=True))
    snap = _series(days, closes)
    last = by_day[date(2024, 11, 29)]
    # Thanksgiving (Nov 28) is no session: 1 session back from Fri 29th is Wed 27th.
    assert snap["perf_1d"] == pytest.approx(100 * (last / by_day[date(2024, 11, 27)] - 1))
    assert snap["perf_5d"] == pytest.approx(100 * (last / by_day[date(2024, 11, 21)] - 1))
    assert snap["perf_20d"] is None and "20 sessions" in snap["reasons"]["perf_20d"]

    # Drop Wed 27th's bar: 1 session back falls on the hole, the last close before it
    # (Tue 26th) stands in; 3 sessions back is Mon 25th by the calendar, not Fri 22nd.
    kept = [d for d in days if d != date(2024, 11, 27)]
    snap = _series(kept, [by_day[d] for d in kept])
    assert snap["perf_1d"] == pytest.approx(100 * (last / by_day[date(2024, 11, 26)] - 1))
    assert snap["perf_3d"] == pytest.approx(100 * (last / by_day[date(2024, 11, 25)] - 1))


def test_mtd_qtd_ytd_at_month_quarter_and_year_boundaries() -> None:
    days = _sessions(date(2023, 12, 1), date(2024, 4, 3))
    closes = [100.0 + i for i in range(len(days))]
    by_day = dict(zip(days, closes, strict=True))
    snap = _series(days, closes)
    last = by_day[date(2024, 4, 3)]
    # Good Friday (Mar 29 2024) closed the market: Q1's and March's last close is Mar 28.
    assert date(2024, 3, 29) not in by_day
    assert snap["perf_mtd"] == pytest.approx(100 * (last / by_day[date(2024, 3, 28)] - 1))
    assert snap["perf_qtd"] == pytest.approx(100 * (last / by_day[date(2024, 3, 28)] - 1))
    assert snap["perf_ytd"] == pytest.approx(100 * (last / by_day[date(2023, 12, 29)] - 1))

    # Mid-February: MTD from Jan 31, QTD and YTD from the last 2023 session (Fri Dec 29).
    feb = [d for d in days if d <= date(2024, 2, 14)]
    snap = _series(feb, [by_day[d] for d in feb])
    last = by_day[date(2024, 2, 14)]
    assert snap["perf_mtd"] == pytest.approx(100 * (last / by_day[date(2024, 1, 31)] - 1))
    assert (
        snap["perf_qtd"] == snap["perf_ytd"] == pytest.approx(100 * (last / by_day[date(2023, 12, 29)] - 1))
    )


def test_ytd_when_the_year_ended_on_a_weekend_and_history_too_short() -> None:
    days = _sessions(date(2022, 12, 20), date(2023, 1, 6))
    closes = [50.0 + i for i in range(len(days))]
    by_day = dict(zip(days, closes, strict=True))
    snap = _series(days, closes)
    # Dec 31 2022 was a Saturday (and Jan 2 2023 a holiday): the reference is Fri Dec 30.
    assert snap["perf_ytd"] == pytest.approx(
        100 * (by_day[date(2023, 1, 6)] / by_day[date(2022, 12, 30)] - 1)
    )
    short = [d for d in days if d >= date(2023, 1, 3)]
    snap = _series(short, [by_day[d] for d in short])
    assert snap["perf_ytd"] is None and snap["perf_mtd"] is None and snap["perf_qtd"] is None
    assert "previous year" in snap["reasons"]["perf_ytd"]


# ------------------------------------------------------------- MA alignment/bucket
def test_ma_bucket_and_alignment_rule() -> None:
    a = np.array
    close, s21, s50, s200 = (
        a([110, 90, 105, 100, 100]),
        a([105, 95, 100, 99, 90]),
        a([100, 100, 101, 98, 95]),
        a([95, 105, 90, 97, np.nan]),
    )
    assert ind.ma_bucket(close, s21, s50, s200).tolist() == [
        "LEADING",
        "LAGGING",
        "NEUTRAL",
        "LEADING",
        "NEUTRAL",
    ]
    flags = ind.ma_alignment(close, s21, s50, s200)
    assert flags["bullish_stack"][0].tolist()[:4] == [True, False, False, True]
    assert flags["bearish_stack"][0].tolist()[:2] == [False, True]
    # close 105 > SMA21 100, but SMA21 100 < SMA50 101: one link broken, so NEUTRAL.
    assert flags["close_gt_sma21"][0][2] and not flags["sma21_gt_sma50"][0][2]
    assert not flags["sma50_gt_sma200"][1][4]  # unknown without SMA200


# ------------------------------------------------------------------ stage
def _weekly_series(weekly: list[float]) -> dict:
    """Five bars a week, every close in week w equal to weekly[w]."""
    c = np.repeat(np.array(weekly, dtype=float), 5)
    return ind.compute_one(c, c, c, c, _weekdays(len(c)))


def test_stage_2_rising_ma_by_hand() -> None:
    snap = _weekly_series([100.0 + w for w in range(50)])
    ma0, ma4 = np.mean(np.arange(120, 150)), np.mean(np.arange(116, 146))  # 134.5, 130.5
    assert snap["stage_slope_pct"] == pytest.approx(100 * (ma0 / ma4 - 1))  # 3.065 %
    assert snap["stage_dist_pct"] == pytest.approx(100 * (149 / ma0 - 1))  # 10.78 %
    assert snap["stage_label"] == "STAGE_2"


def test_stage_3_and_1_on_a_flat_ma_after_an_advance_or_a_decline() -> None:
    top = _weekly_series([100.0 + w for w in range(20)] + [120.0] * 40)
    # ma[0] = ma[4] = 120 (flat); ma[17] = (113+...+119 + 23*120)/30 = 119.07 < 120.
    assert top["stage_slope_pct"] == 0.0 and top["stage_label"] == "STAGE_3"
    base = _weekly_series([140.0 - w for w in range(20)] + [120.0] * 40)
    assert base["stage_slope_pct"] == 0.0 and base["stage_label"] == "STAGE_1"


def test_stage_4_and_a_close_below_a_rising_ma() -> None:
    down = _weekly_series([200.0 - w for w in range(50)])
    assert down["stage_label"] == "STAGE_4" and down["stage_slope_pct"] < 0
    broke = _weekly_series([100.0 + w for w in range(49)] + [120.0])
    assert (
        broke["stage_slope_pct"] > 0.5 and broke["stage_dist_pct"] < 0 and broke["stage_label"] == "STAGE_3"
    )


def test_stage_needs_enough_weeks() -> None:
    snap = _weekly_series([100.0 + w for w in range(32)])  # 30 weeks for dist, not 34 for slope
    assert snap["stage_dist_pct"] is not None and snap["stage_slope_pct"] is None
    assert snap["stage_label"] is None and "weekly" in snap["reasons"]["stage_label"]


def test_weekly_close_is_the_last_bar_of_each_week_including_a_short_holiday_week() -> None:
    # Thanksgiving week 2024 has 4 sessions; the current week is unfinished.
    days = _sessions(date(2024, 11, 18), date(2024, 12, 3))
    c = np.arange(len(days), dtype=float) + 1
    batch = ind.BarBatch.single("X", c, c, c, c, np.array([to_day_number(d) for d in days]))
    weeks = ind.weekly_closes(batch, 4)
    # Fri Nov 22 is bar 5, Fri Nov 29 bar 9, Tue Dec 3 (current week) bar 11.
    assert weeks.tolist()[0] == [pytest.approx(np.nan, nan_ok=True), 5.0, 9.0, 11.0]


# ------------------------------------------------------------------ TD setup
@pytest.mark.parametrize(
    ("closes", "want"),
    [
        ([10, 10, 10, 10, 11, 12, 13, 14, 15], 5),  # five closes above the close 4 earlier
        ([20, 20, 20, 20, 19, 18], -2),
        ([10, 10, 10, 10] + list(range(11, 22)), 2),  # a run of 11: complete at 9, new count 2
        ([10, 11, 12, 13, 13], 1),  # only one comparison exists: 13 > 10
        ([10, 11, 12, 13, 10], 0),  # equal to the close 4 bars earlier breaks both
        ([10, 11, 12], 0),
    ],
)
def test_td_setup_by_hand(closes: list[float], want: int) -> None:
    c = np.array([closes], dtype=float)
    assert ind.td_setup(c)[0] == want


def test_td_setup_null_when_fewer_than_five_bars() -> None:
    c = np.array([1.0, 2.0, 3.0, 4.0])
    snap = ind.compute_one(c, c, c, c, _weekdays(4))
    assert snap["td_setup"] is None and "5 bars" in snap["reasons"]["td_setup"]


# --------------------------------------------------------------------- gaps
def test_gaps_on_a_gapped_series() -> None:
    o = np.array([10.0, 11.5, 12.0, 10.5, 12.6, 12.1])
    h = np.array([10.5, 12.0, 12.5, 11.8, 13.0, 12.4])
    lo = np.array([9.8, 11.2, 11.9, 10.0, 12.55, 11.9])
    c = np.array([10.2, 11.8, 12.1, 11.5, 12.8, 12.0])
    d = _weekdays(6)
    g = ind.compute_one(o, h, lo, c, d)["gaps"]
    # Worked by hand, bar by bar:
    # 1: open 11.5 > high[0] 10.5, gap up; bar 3's low 10.0 came back to 10.5: filled.
    # 3: open 10.5 < low[2] 11.9, gap down; bar 4's high 13.0 reached 11.9: filled.
    # 4: open 12.6 > high[3] 11.8, gap up; lows since (12.55, 11.9) stay above: open.
    # 5: open 12.1 < low[4] 12.55, gap down; its high 12.4 stays below: open.
    assert (g["up"], g["down"]) == (2, 2)
    assert [(x["direction"], x["level"]) for x in g["unfilled"]] == [("down", 12.55), ("up", 11.8)]
    assert g["unfilled"][0]["gap_pct"] == pytest.approx(100 * (12.1 / 12.55 - 1))
    assert g["unfilled"][1]["gap_pct"] == pytest.approx(100 * (12.6 / 11.8 - 1))
    assert g["unfilled"][0]["date"] == str(np.datetime64(int(d[5]), "D"))


def test_split_free_series_without_gaps() -> None:
    c = np.linspace(100, 110, 40)
    o = c.copy()
    o[1:] = c[:-1]  # each bar opens at the previous close: no gaps
    snap = ind.compute_one(o, np.maximum(o, c) + 0.1, np.minimum(o, c) - 0.1, c, _weekdays(40))
    assert snap["gaps"] == {"window": 20, "up": 0, "down": 0, "unfilled": []}
    assert snap["td_setup"] == 9  # 36 rising comparisons: (36 - 1) % 9 + 1
    assert snap["ma_bucket"] == "NEUTRAL" and "SMA200" in snap["reasons"]["ma_bucket"]


def test_volatility_regime() -> None:
    o, h, lo, c = _random_ohlc(300)
    rank, regime = ind.volatility_regime(h, lo, c)
    assert 0 < rank <= 100 and regime in ("LOW", "NORMAL", "HIGH", "EXTREME")
    assert ind.volatility_regime(h[:20], lo[:20], c[:20]) == (None, None)
