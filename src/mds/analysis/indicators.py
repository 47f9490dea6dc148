"""The indicator engine: pure functions over numpy arrays, no I/O.

Two kinds of field (seed 004, issue 6):

* **From TA-Lib**, called per symbol on that symbol's own bars and never re-implemented:
  ``rsi_14``; ``sma_5/8/20/21/50/100/200``; ``ema_8/10/21/200``; ``atr_14``;
  ``adx_14``, ``plus_di_14``, ``minus_di_14``; ``macd``, ``macd_signal``, ``macd_hist``
  (12, 26, 9). Each value is exactly TA-Lib's last output on the same arrays.
* **Written here** (no library computes them), vectorised over the whole universe at once
  so 8,000 symbols cost a few numpy passes: ATR%, ATR distance from SMA50, performance
  windows, MA alignment and bucket, Weinstein stage, TD setup, gaps. Each is defined
  exactly in its function's docstring.

Units: every ``perf_*`` and ``*_pct`` field is a percentage (``2.5`` means +2.5 %).

Input is a :class:`BarBatch`: one row per symbol, right-aligned (the newest bar in the
last column for every symbol) and NaN-padded on the left, so "the last value" is one
column for all symbols. A value that needs more history than the row has is NaN in the
columns and ``None`` (with a reason in ``reasons``) in the snapshot dicts; NaN never
leaves this module.

One module although long: every field shares the BarBatch layout and the padding and
session-index conventions above, and ``compute``/``snapshots`` must see them all at once;
split, each part would re-explain the same layout.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import talib

__all__ = [
    "BarBatch",
    "FIELDS",
    "compute",
    "compute_one",
    "snapshots",
    "talib_only",
    "volatility_regime",
]

SMA_PERIODS = (5, 8, 20, 21, 50, 100, 200)
EMA_PERIODS = (8, 10, 21, 200)
PERF_DAYS = (1, 3, 5, 20, 60, 120, 252)
PERIOD_PERF = ("mtd", "qtd", "ytd")
ADX_PERIOD = 14
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9

#: Weinstein stage parameters: the 30-week SMA of weekly closes; its slope is measured
#: over SLOPE_WEEKS; |slope| below FLAT_SLOPE_PCT counts as flat, and then the MA's
#: change over the PRIOR_WEEKS before tells a base (after a decline) from a top.
STAGE_MA_WEEKS = 30
STAGE_SLOPE_WEEKS = 4
STAGE_FLAT_SLOPE_PCT = 0.5
STAGE_PRIOR_WEEKS = 13
#: Bars over which gaps are counted and listed.
GAP_WINDOW = 20
#: A TD setup completes at 9; a run that goes on starts a new count at 1.
TD_LOOKBACK, TD_COMPLETE = 4, 9
#: Bucket values; ``ma_bucket`` is always one of them.
BUCKETS = ("LEADING", "NEUTRAL", "LAGGING")
STAGES = ("STAGE_1", "STAGE_2", "STAGE_3", "STAGE_4")

_PAD_DAY = np.int64(-(1 << 40))  # day number of padding cells: before any real day
_EPOCH_WEEKDAY_SHIFT = 3  # 1970-01-01 was a Thursday; (day + 3) // 7 is a Monday-based week


def _lookback(name: str, **params: int) -> int:
    """Bars TA-Lib needs before its first output (so ``lookback + 1`` bars for one value)."""
    from talib import abstract

    fn = abstract.Function(name)  # type: ignore[attr-defined]  # made at import time, unseen by mypy
    fn.set_parameters(params)
    return int(fn.lookback)


#: Bars needed for a non-null value of each TA-Lib field.
TALIB_MIN_BARS: dict[str, int] = {
    **{f"sma_{p}": _lookback("SMA", timeperiod=p) + 1 for p in SMA_PERIODS},
    **{f"ema_{p}": _lookback("EMA", timeperiod=p) + 1 for p in EMA_PERIODS},
    "rsi_14": _lookback("RSI", timeperiod=14) + 1,
    "atr_14": _lookback("ATR", timeperiod=14) + 1,
    "adx_14": _lookback("ADX", timeperiod=ADX_PERIOD) + 1,
    "plus_di_14": _lookback("PLUS_DI", timeperiod=ADX_PERIOD) + 1,
    "minus_di_14": _lookback("MINUS_DI", timeperiod=ADX_PERIOD) + 1,
    **dict.fromkeys(
        ("macd", "macd_signal", "macd_hist"),
        _lookback("MACD", fastperiod=MACD_FAST, slowperiod=MACD_SLOW, signalperiod=MACD_SIGNAL) + 1,
    ),
}
TALIB_FIELDS = tuple(TALIB_MIN_BARS)
HAND_FLOAT_FIELDS = (
    "atr_pct",
    "atr_dist_sma50",
    *(f"perf_{n}d" for n in PERF_DAYS),
    *(f"perf_{p}" for p in PERIOD_PERF),
    "stage_slope_pct",
    "stage_dist_pct",
)
#: Every snapshot field, in output order (``symbol`` and ``reasons`` come with them).
FIELDS = (
    "as_of",
    "bars_used",
    "close",
    *TALIB_FIELDS,
    *HAND_FLOAT_FIELDS,
    "ma_alignment",
    "ma_bucket",
    "stage_label",
    "td_setup",
    "gaps",
)


@dataclass(frozen=True, slots=True)
class BarBatch:
    """Daily bars of many symbols as right-aligned ``(symbols, T)`` float64 arrays.

    Attributes:
        symbols: Row labels.
        open, high, low, close: Prices; cells left of a row's first bar are NaN.
        day: Session date of each bar as days since 1970-01-01 (int64); padding cells
            hold a large negative number.
        n: Bars per row (the real ones are the last ``n[i]`` columns of row ``i``).
    """

    symbols: list[str]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    day: np.ndarray
    n: np.ndarray

    @classmethod
    def from_rows(
        cls, symbols: Sequence[str], rows: Sequence[np.ndarray], *, width: int | None = None
    ) -> BarBatch:
        """Build from one ``(k, 5)`` array per symbol: columns day, open, high, low, close.

        Rows must be in time order; a row longer than ``width`` keeps its newest bars.
        """
        ns = np.array([len(r) for r in rows], dtype=np.int64)
        # At least one (padding) column, so "the last column" always exists.
        t = max(1, int(width if width is not None else (ns.max() if len(ns) else 0)))
        ns = np.minimum(ns, t)
        shape = (len(rows), t)
        day = np.full(shape, _PAD_DAY, dtype=np.int64)
        prices = [np.full(shape, np.nan) for _ in range(4)]
        for i, (r, k) in enumerate(zip(rows, ns.tolist(), strict=True)):
            if k == 0:
                continue
            tail = r[len(r) - k :]
            day[i, t - k :] = tail[:, 0]
            for j in range(4):
                prices[j][i, t - k :] = tail[:, j + 1]
        o, h, low, c = prices
        return cls(list(symbols), o, h, low, c, day=day, n=ns)

    @classmethod
    def single(
        cls,
        symbol: str,
        open_: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        day: np.ndarray,
    ) -> BarBatch:
        """One symbol's bars (1-D arrays of equal length, time order)."""
        rows = np.column_stack([np.asarray(day, np.float64), open_, high, low, close])
        return cls.from_rows([symbol], [rows])


# ----------------------------------------------------------------------- TA-Lib part
def _talib_rows(batch: BarBatch, out: dict[str, np.ndarray] | None) -> None:
    """The TA-Lib calls, per symbol on its own (unpadded, contiguous) bars.

    With ``out`` None the results are dropped: that is :func:`talib_only`, the benchmark's
    baseline, running exactly the same calls on the same arrays. Results are gathered as
    row tuples and stored column-wise once at the end (one numpy store per field, not
    one per symbol and field).
    """
    t = batch.close.shape[1]
    sma_p, ema_p = SMA_PERIODS, EMA_PERIODS
    rows: list[int] = []
    found: list[tuple[Any, ...]] = []
    for i, k in enumerate(batch.n.tolist()):
        if k == 0:
            continue
        c = batch.close[i, t - k :]
        h = batch.high[i, t - k :]
        lo = batch.low[i, t - k :]
        macd, sig, hist = talib.MACD(c, MACD_FAST, MACD_SLOW, MACD_SIGNAL)
        values = (
            *[talib.SMA(c, p)[-1] for p in sma_p],
            *[talib.EMA(c, p)[-1] for p in ema_p],
            talib.RSI(c, 14)[-1],
            talib.ATR(h, lo, c, 14)[-1],
            talib.ADX(h, lo, c, ADX_PERIOD)[-1],
            talib.PLUS_DI(h, lo, c, ADX_PERIOD)[-1],
            talib.MINUS_DI(h, lo, c, ADX_PERIOD)[-1],
            macd[-1],
            sig[-1],
            hist[-1],
        )
        if out is not None:
            rows.append(i)
            found.append(values)
    if out is None or not rows:
        return
    table = np.array(found, dtype=np.float64)
    for j, name in enumerate(TALIB_FIELDS):
        out[name][rows] = table[:, j]


def talib_only(batch: BarBatch) -> None:
    """Run only the TA-Lib calls of :func:`compute` (the benchmark's baseline)."""
    _talib_rows(batch, None)


# ------------------------------------------------------------------ hand-written part
def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a / b`` with NaN (not inf, not a warning) where ``b`` is 0 or NaN."""
    out = np.full(np.broadcast(a, b).shape, np.nan)
    np.divide(a, b, out=out, where=(b != 0) & ~np.isnan(b))
    return out


def atr_fields(close: np.ndarray, atr: np.ndarray, sma50: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ATR% and the ATR distance of the close from SMA50.

    ``atr_pct = 100 * atr_14 / close`` (the average true range as a percentage of the
    price); ``atr_dist_sma50 = (close - sma_50) / atr_14``: how many ATRs the close stands
    above (positive) or below (negative) its 50-day SMA. NaN where an input is NaN or the
    divisor is zero.
    """
    return 100.0 * _div(atr, close), _div(close - sma50, atr)


def _last_index_at_or_before(key: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per row, the column of the last cell with ``key <= target`` (-1 when none).

    ``key`` rows are ascending (padding sorts first), so a count is a position.
    """
    at: np.ndarray = (key <= target[:, None]).sum(axis=1) - 1
    return at


def _ref_close(batch: BarBatch, key: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Close of the last real bar with ``key <= target``; NaN when no real bar qualifies.

    ``key`` may cover only the last columns of the batch (a tail).
    """
    s, t = batch.close.shape
    idx = _last_index_at_or_before(key, target) + (t - key.shape[1])
    real = idx >= t - batch.n
    out = np.full(s, np.nan)
    rows = np.flatnonzero(real)
    out[rows] = batch.close[rows, idx[rows]]
    return out


def session_index(batch: BarBatch, sessions: np.ndarray | None, tail: int | None = None) -> np.ndarray:
    """Each bar's position in the session calendar, for the last ``tail`` columns.

    With ``sessions`` (ascending session dates as day numbers) a bar maps to the last
    session on or before its date, so a missing bar leaves a hole in the index. Without
    it every stored bar counts as the next session (a gap-free series). Padding cells
    get a very negative index.
    """
    day = batch.day if tail is None else batch.day[:, -tail:]
    pad = day == _PAD_DAY
    if sessions is None:
        idx = np.broadcast_to(np.arange(day.shape[1], dtype=np.int64), day.shape).copy()
    elif sessions.size and day.size and not pad.all():
        # A lookup table over the batch's day span: one gather instead of a binary search
        # per cell (2M cells for the whole universe).
        lo = int(np.where(pad, np.iinfo(np.int64).max, day).min())
        hi = int(day.max())
        lut = np.searchsorted(sessions, np.arange(lo, hi + 1), side="right").astype(np.int64) - 1
        idx = lut.take(day - lo, mode="clip")  # padding clips to 0 and is overwritten below
    else:
        idx = np.zeros(day.shape, dtype=np.int64)
    idx[pad] = _PAD_DAY
    return idx


def perf_sessions(batch: BarBatch, sidx: np.ndarray, days: int) -> np.ndarray:
    """Performance over ``days`` trading days, in percent.

    ``perf_Nd = 100 * (close / ref - 1)`` where ``close`` is the last bar's close and
    ``ref`` the close at the end of the session N sessions before the last bar's session,
    counted on the exchange calendar (holidays and weekends are not sessions). When that
    session's bar is missing the last close before it stands in (the price the market
    last showed); NaN when the history does not reach back that far.
    """
    # The bar N sessions back is at most N bars back, so only that tail is searched.
    key = sidx[:, -(days + 1) :]
    target = sidx[:, -1] - days
    return 100.0 * (_div(batch.close[:, -1], _ref_close(batch, key, target)) - 1.0)


def _period_start(day: np.ndarray, period: str) -> np.ndarray:
    """Day number of the first calendar day of the month/quarter/year containing ``day``."""
    d = day.astype("datetime64[D]")
    if period == "ytd":
        return d.astype("datetime64[Y]").astype("datetime64[D]").astype(np.int64)
    months = d.astype("datetime64[M]").astype(np.int64)
    if period == "qtd":
        months = months - months % 3
    return months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)


def perf_to_date(batch: BarBatch, period: str) -> np.ndarray:
    """MTD, QTD or YTD performance in percent (``period`` is ``"mtd"``, ``"qtd"``, ``"ytd"``).

    ``100 * (close / ref - 1)``, where ``ref`` is the last close of the previous month,
    quarter or year: the close of the last bar dated before the first calendar day of
    the last bar's month/quarter/year. That is the previous period's last session
    whatever date it fell on (Dec 31 a Sunday, Good Friday closing March, ...). NaN when
    the history starts inside the current period.
    """
    last_day = batch.day[:, -1]
    start = np.where(batch.n > 0, _period_start(np.maximum(last_day, 0), period), _PAD_DAY)
    ref = _ref_close(batch, batch.day, start - 1)
    return 100.0 * (_div(batch.close[:, -1], ref) - 1.0)


def ma_alignment(
    close: np.ndarray, sma21: np.ndarray, sma50: np.ndarray, sma200: np.ndarray
) -> dict[str, Any]:
    """MA alignment flags as boolean arrays plus a validity mask per flag.

    Flags: ``close_gt_sma21``, ``sma21_gt_sma50``, ``sma50_gt_sma200`` (the three links of
    the bullish chain close > SMA21 > SMA50 > SMA200), ``close_gt_sma50``,
    ``close_gt_sma200``, ``bullish_stack`` (all three links hold) and ``bearish_stack``
    (close < SMA21 < SMA50 < SMA200). A flag is unknown (None in a snapshot) when one
    of its MAs is. Comparisons are strict: equal values are neither above nor below.
    """
    pairs = {
        "close_gt_sma21": (close, sma21),
        "sma21_gt_sma50": (sma21, sma50),
        "sma50_gt_sma200": (sma50, sma200),
        "close_gt_sma50": (close, sma50),
        "close_gt_sma200": (close, sma200),
    }
    flags = {k: (a > b, ~(np.isnan(a) | np.isnan(b))) for k, (a, b) in pairs.items()}
    chain_known = ~(np.isnan(close) | np.isnan(sma21) | np.isnan(sma50) | np.isnan(sma200))
    bull = (close > sma21) & (sma21 > sma50) & (sma50 > sma200)
    bear = (close < sma21) & (sma21 < sma50) & (sma50 < sma200)
    flags["bullish_stack"] = (bull, chain_known)
    flags["bearish_stack"] = (bear, chain_known)
    return flags


def ma_bucket(close: np.ndarray, sma21: np.ndarray, sma50: np.ndarray, sma200: np.ndarray) -> np.ndarray:
    """The MA bucket: ``LEADING``, ``LAGGING`` or ``NEUTRAL`` (always one of the three).

    Rule: LEADING when the moving averages are stacked bullishly, close > SMA21 > SMA50 >
    SMA200 (price above a rising structure on every horizon); LAGGING when stacked
    bearishly, close < SMA21 < SMA50 < SMA200; NEUTRAL otherwise, including when an MA
    cannot be computed yet (the snapshot then gives the reason).
    """
    bull = (close > sma21) & (sma21 > sma50) & (sma50 > sma200)
    bear = (close < sma21) & (sma21 < sma50) & (sma50 < sma200)
    return np.where(bull, "LEADING", np.where(bear, "LAGGING", "NEUTRAL"))


def weekly_closes(batch: BarBatch, width: int) -> np.ndarray:
    """Weekly closes, right-aligned in a ``(symbols, width)`` array (NaN-padded).

    A week runs Monday to Sunday; its close is the close of its last bar. The current
    week counts even if unfinished, so its "weekly close" is the latest close.
    """
    s, t = batch.close.shape
    valid = batch.day != _PAD_DAY
    # Float division is several times faster than int64 floor division on 2M cells.
    week = np.floor((batch.day + float(_EPOCH_WEEKDAY_SHIFT)) / 7.0)
    last = np.zeros((s, t), dtype=bool)
    last[:, -1] = valid[:, -1]
    last[:, :-1] = valid[:, :-1] & (week[:, :-1] != week[:, 1:])
    rows, cols = np.nonzero(last)
    per_row = last.sum(axis=1)
    first = np.cumsum(per_row) - per_row
    pos = np.arange(rows.size) - first[rows]  # 0-based position within its row
    from_end = per_row[rows] - pos  # 1 for the newest week
    keep = from_end <= width
    out = np.full((s, width), np.nan)
    out[rows[keep], width - from_end[keep]] = batch.close[rows[keep], cols[keep]]
    return out


def stage(batch: BarBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weinstein stage from the 30-week SMA of weekly closes.

    Definitions (``ma[k]`` is the 30-week SMA ending k weeks before the latest week):

    * ``stage_slope_pct = 100 * (ma[0] / ma[4] - 1)``: the MA's change over 4 weeks;
      needs 34 weekly closes.
    * ``stage_dist_pct = 100 * (close / ma[0] - 1)``: the latest close's distance from the
      MA; needs 30 weekly closes.
    * ``stage_label``, with "flat" meaning ``|stage_slope_pct| < 0.5``:

      - MA rising: ``STAGE_2`` (advancing) if close >= MA, else ``STAGE_3`` (a close
        below a still-rising MA is the first sign of a top);
      - MA falling: ``STAGE_4`` (declining) if close <= MA, else ``STAGE_1`` (a close
        above a still-falling MA is the first sign of a base);
      - MA flat: look at the MA's change over the 13 weeks before the slope window
        (``ma[4]`` vs ``ma[17]``): up means the flat follows an advance, ``STAGE_3``
        (topping); down or unchanged, ``STAGE_1`` (basing). Needs 47 weekly closes.

    Returns:
        ``(label, slope_pct, dist_pct)``; label is ``""`` and the others NaN where the
        history is too short.
    """
    slope_k, prior_k = STAGE_SLOPE_WEEKS, STAGE_SLOPE_WEEKS + STAGE_PRIOR_WEEKS
    w = weekly_closes(batch, STAGE_MA_WEEKS + prior_k)
    width = w.shape[1]

    def ma(k: int) -> np.ndarray:
        mean: np.ndarray = w[:, width - STAGE_MA_WEEKS - k : width - k].mean(axis=1)
        return mean

    ma0, ma_slope, ma_prior = ma(0), ma(slope_k), ma(prior_k)
    close = batch.close[:, -1]
    slope = 100.0 * (_div(ma0, ma_slope) - 1.0)
    dist = 100.0 * (_div(close, ma0) - 1.0)
    rising = slope >= STAGE_FLAT_SLOPE_PCT
    falling = slope <= -STAGE_FLAT_SLOPE_PCT
    flat = ~rising & ~falling & ~np.isnan(slope)
    after_advance = ma_slope > ma_prior
    label = np.full(close.shape, "", dtype="<U7")
    label[rising] = np.where(close[rising] >= ma0[rising], "STAGE_2", "STAGE_3")
    label[falling] = np.where(close[falling] <= ma0[falling], "STAGE_4", "STAGE_1")
    known_flat = flat & ~np.isnan(ma_prior)
    label[known_flat] = np.where(after_advance[known_flat], "STAGE_3", "STAGE_1")
    return label, slope, dist


def td_setup(close: np.ndarray) -> np.ndarray:
    """TD Sequential setup count at the last bar, signed (int; 0 when there is none).

    A bar is "up" when its close is above the close 4 bars earlier and "down" when below.
    The count is the length of the run of consecutive up (or down) bars ending at the
    last bar; a run starts after any bar that does not meet the condition (equal closes
    break both). A setup completes at 9; a run that goes on starts a new count, so the
    count is ``(run - 1) % 9 + 1``. Positive for an up run (a *sell* setup in DeMark's
    terms), negative for a down run (a *buy* setup). Runs are counted within the bars
    available, so history shorter than the run understates it.
    """
    if close.shape[1] <= TD_LOOKBACK:
        return np.zeros(close.shape[0], dtype=np.int64)
    prev, cur = close[:, :-TD_LOOKBACK], close[:, TD_LOOKBACK:]
    up, down = cur > prev, cur < prev

    def trailing(b: np.ndarray) -> np.ndarray:
        rev = b[:, ::-1]
        run = np.argmin(rev, axis=1)  # first False from the end
        runs: np.ndarray = np.where(rev.all(axis=1), b.shape[1], run)
        return runs

    def folded(run: np.ndarray) -> np.ndarray:
        counts: np.ndarray = np.where(run > 0, (run - 1) % TD_COMPLETE + 1, 0)
        return counts

    setup: np.ndarray = folded(trailing(up)) - folded(trailing(down))
    return setup


def gaps(
    batch: BarBatch, window: int = GAP_WINDOW
) -> tuple[np.ndarray, np.ndarray, list[list[dict[str, Any]]]]:
    """Price gaps over the last ``window`` bars.

    A gap up at bar t: ``open[t] > high[t-1]``; a gap down: ``open[t] < low[t-1]``
    (t-1 is the previous stored bar). Its size is ``100 * (open[t] / high[t-1] - 1)``
    (positive) or ``100 * (open[t] / low[t-1] - 1)`` (negative). A gap up is filled once
    any low from bar t on reaches ``high[t-1]`` (the level it left), a gap down once any
    high reaches ``low[t-1]``; so a gap filled on its own day counts as filled.

    Returns:
        ``(up_count, down_count, unfilled)``: counts per symbol over the window, and per
        symbol the unfilled gaps, newest first, as ``{"date": ISO date, "direction":
        "up"|"down", "gap_pct": float, "level": float}``.
    """
    s, t = batch.close.shape
    w = max(0, min(window, t - 1))
    if w == 0:
        return np.zeros(s, np.int64), np.zeros(s, np.int64), [[] for _ in range(s)]
    o = batch.open[:, -w:]
    prev_h, prev_l = batch.high[:, -w - 1 : -1], batch.low[:, -w - 1 : -1]
    low, high = batch.low[:, -w:], batch.high[:, -w:]
    up, down = o > prev_h, o < prev_l
    # Lowest low / highest high from each bar to the end of the series.
    min_low_after = np.fmin.accumulate(low[:, ::-1], axis=1)[:, ::-1]
    max_high_after = np.fmax.accumulate(high[:, ::-1], axis=1)[:, ::-1]
    open_up = up & ~(min_low_after <= prev_h)
    open_down = down & ~(max_high_after >= prev_l)
    found: list[list[tuple[int, dict[str, Any]]]] = [[] for _ in range(s)]
    days = batch.day[:, -w:]
    for direction, mask, level in (("up", open_up, prev_h), ("down", open_down, prev_l)):
        rows, cols = np.nonzero(mask)
        if rows.size == 0:
            continue
        lv = level[rows, cols]
        pct = 100.0 * (o[rows, cols] / lv - 1.0)
        iso = _iso_days(days[rows, cols])
        for r, c, d, p, lvl in zip(rows.tolist(), cols.tolist(), iso, pct.tolist(), lv.tolist(), strict=True):
            found[r].append((c, {"date": d, "direction": direction, "gap_pct": p, "level": lvl}))
    unfilled = [[g for _, g in sorted(row, key=lambda x: -x[0])] for row in found]
    return up.sum(axis=1), down.sum(axis=1), unfilled


# ------------------------------------------------------------------------ the engine
@dataclass(frozen=True, slots=True)
class Columns:
    """The engine's output: one array (or list) per field, one entry per symbol."""

    batch: BarBatch
    values: dict[str, np.ndarray]
    bucket: np.ndarray
    stage_label: np.ndarray
    td: np.ndarray
    alignment: dict[str, tuple[np.ndarray, np.ndarray]]
    gap_up: np.ndarray
    gap_down: np.ndarray
    gap_open: list[list[dict[str, Any]]]


def compute(batch: BarBatch, sessions: np.ndarray | None = None) -> Columns:
    """Every field for every symbol of ``batch``.

    Args:
        batch: The bars.
        sessions: Ascending session dates (day numbers) covering the bars, from the
            exchange calendar, for the trading-day performance windows; None treats every
            stored bar as the next session.
    """
    s = len(batch.symbols)
    values = {f: np.full(s, np.nan) for f in TALIB_FIELDS}
    _talib_rows(batch, values)
    close = batch.close[:, -1] if batch.close.shape[1] else np.full(s, np.nan)
    values["close"] = close
    values["atr_pct"], values["atr_dist_sma50"] = atr_fields(close, values["atr_14"], values["sma_50"])
    sidx = session_index(batch, sessions, tail=max(PERF_DAYS) + 1)
    for n in PERF_DAYS:
        values[f"perf_{n}d"] = perf_sessions(batch, sidx, n)
    for p in PERIOD_PERF:
        values[f"perf_{p}"] = perf_to_date(batch, p)
    label, values["stage_slope_pct"], values["stage_dist_pct"] = stage(batch)
    sma21, sma50, sma200 = values["sma_21"], values["sma_50"], values["sma_200"]
    td = td_setup(batch.close)
    up, down, open_gaps = gaps(batch)
    return Columns(
        batch=batch,
        values=values,
        bucket=ma_bucket(close, sma21, sma50, sma200),
        stage_label=label,
        td=td,
        alignment=ma_alignment(close, sma21, sma50, sma200),
        gap_up=up,
        gap_down=down,
        gap_open=open_gaps,
    )


# ------------------------------------------------------------------- to snapshots
#: Bars a hand-written float field needs (perf windows count sessions: N + 1 bars).
HAND_MIN_BARS: dict[str, int] = {
    "atr_pct": TALIB_MIN_BARS["atr_14"],
    "atr_dist_sma50": max(TALIB_MIN_BARS["atr_14"], TALIB_MIN_BARS["sma_50"]),
    **{f"perf_{n}d": n + 1 for n in PERF_DAYS},
    "stage_slope_pct": 0,
    "stage_dist_pct": 0,
}
_WEEKS_NEEDED = {
    "stage_dist_pct": STAGE_MA_WEEKS,
    "stage_slope_pct": STAGE_MA_WEEKS + STAGE_SLOPE_WEEKS,
}


def _reason(field: str, n: int) -> str:
    """Why ``field`` is null for a symbol with ``n`` bars."""
    if n == 0:
        return "no daily bars stored"
    if field in _WEEKS_NEEDED:
        return f"needs {_WEEKS_NEEDED[field]} weekly closes of history; {n} daily bars available"
    if field.startswith("perf_") and field[5:] in PERIOD_PERF:
        period = {"mtd": "month", "qtd": "quarter", "ytd": "year"}[field[5:]]
        return f"history starts after the previous {period}'s last close"
    if field.startswith("perf_"):
        days = int(field[5:-1])
        return f"needs a close {days} sessions before the last; history is too short ({n} bars)"
    need = TALIB_MIN_BARS.get(field) or HAND_MIN_BARS.get(field, 0)
    if n < need:
        return f"needs {need} bars, {n} available"
    return "undefined for this series (a zero divisor, e.g. no price range)"


def _iso_days(days: np.ndarray) -> list[str]:
    iso: list[str] = np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype(str).tolist()
    return iso


def snapshots(cols: Columns) -> list[dict[str, Any]]:
    """JSON-ready snapshot dicts, one per symbol, with ``None`` and a reason for every gap.

    Keys: ``symbol``, every name in :data:`FIELDS`, and ``reasons`` (field -> why it is
    null; ``ma_bucket`` also appears there when it is NEUTRAL only for lack of history).
    """
    batch = cols.batch
    s = len(batch.symbols)
    n = batch.n.tolist()
    float_fields = ("close", *TALIB_FIELDS, *HAND_FLOAT_FIELDS)
    nan_masks = {f: np.isnan(cols.values[f]) for f in float_fields}
    lists = {f: cols.values[f].tolist() for f in float_fields}
    any_nan = np.zeros(s, dtype=bool)
    for m in nan_masks.values():
        any_nan |= m
    last_day = batch.day[:, -1] if batch.day.shape[1] else np.full(s, _PAD_DAY)
    as_of = _iso_days(np.maximum(last_day, 0))
    bucket = cols.bucket.tolist()
    label = cols.stage_label.tolist()
    td = cols.td.tolist()
    align_names = tuple(cols.alignment)
    # Row tuples are built by zip in C; only rows with a NaN are patched field by field.
    align_rows = list(
        zip(
            *(np.where(known, v, None).tolist() for v, known in cols.alignment.values()),  # type: ignore[call-overload]
            strict=True,
        )
    )
    float_rows = list(zip(*(lists[f] for f in float_fields), strict=True))
    up, down = cols.gap_up.tolist(), cols.gap_down.tolist()
    sma200_missing = nan_masks["sma_200"] | nan_masks["sma_21"] | nan_masks["sma_50"]
    out: list[dict[str, Any]] = []
    # Tens of thousands of new dicts would trigger the cyclic GC many times over; none of
    # them can form a cycle, so it is paused for the loop.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for i in range(s):
            k = n[i]
            row: dict[str, Any] = {
                "symbol": batch.symbols[i],
                "as_of": as_of[i] if k else None,
                "bars_used": k,
            }
            row.update(zip(float_fields, float_rows[i], strict=True))
            reasons: dict[str, str] = {}
            if any_nan[i]:
                for f in float_fields:
                    if row[f] != row[f]:  # NaN
                        row[f] = None
                        reasons[f] = _reason(f, k)
            row["ma_alignment"] = dict(zip(align_names, align_rows[i], strict=True))
            row["ma_bucket"] = bucket[i]
            if sma200_missing[i]:
                reasons["ma_bucket"] = "NEUTRAL by default: SMA21, SMA50 and SMA200 are not all available"
            row["stage_label"] = label[i] or None
            if not label[i]:
                reasons["stage_label"] = (
                    "no daily bars stored"
                    if k == 0
                    else "needs 34 weekly closes (47 when the 30-week MA is flat)"
                )
            if k >= TD_LOOKBACK + 1:
                row["td_setup"] = td[i]
            else:
                row["td_setup"] = None
                reasons["td_setup"] = f"needs {TD_LOOKBACK + 1} bars, {k} available"
            if k >= 2:
                row["gaps"] = {
                    "window": GAP_WINDOW,
                    "up": up[i],
                    "down": down[i],
                    "unfilled": cols.gap_open[i],
                }
            else:
                row["gaps"] = None
                reasons["gaps"] = f"needs 2 bars, {k} available"
            row["reasons"] = reasons
            out.append(row)
    finally:
        if gc_was_enabled:
            gc.enable()
    return out


def compute_one(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    day: np.ndarray,
    *,
    symbol: str = "",
    sessions: np.ndarray | None = None,
) -> dict[str, Any]:
    """The snapshot dict of one symbol's bars (1-D arrays in time order)."""
    batch = BarBatch.single(symbol, open_, high, low, close, day)
    return snapshots(compute(batch, sessions))[0]


def volatility_regime(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, lookback: int = 252
) -> tuple[float | None, str | None]:
    """Where today's ATR% sits in its own recent history.

    ``atr_pct_rank`` is the percentage of the last ``lookback`` daily ATR% values
    (``100 * ATR14 / close``, today's included) that are at or below today's. Regime:
    ``LOW`` below 20, ``NORMAL`` from 20 to below 80, ``HIGH`` from 80, ``EXTREME`` at
    100 (the highest in the window). Needs 20 ATR values; ``(None, None)`` otherwise.
    """
    if len(close) == 0:
        return None, None
    atr_pct = 100.0 * _div(talib.ATR(high, low, close, 14), close)
    window = atr_pct[~np.isnan(atr_pct)][-lookback:]
    if window.size < 20:
        return None, None
    rank = float(100.0 * (window <= window[-1]).mean())
    if rank >= 100.0:
        return rank, "EXTREME"
    return rank, "HIGH" if rank >= 80 else "NORMAL" if rank >= 20 else "LOW"
