"""Response and request bodies; every field documents itself in the OpenAPI schema."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from mds.analysis.indicators import FIELDS
from mds.api.params import TIME_PATTERN
from mds.domain.jobs import Symbol
from mds.domain.models import Bar, BarStatus, Interval, Tier
from mds.domain.records import BackfillStatus
from mds.serialize import iso


class Ohlcv(BaseModel):
    ts: str = Field(description="UTC ISO-8601 open time of the bar's interval")
    open: float = Field(description="Opening price")
    high: float = Field(description="Highest price")
    low: float = Field(description="Lowest price")
    close: float = Field(description="Closing price")
    volume: float = Field(description="Volume traded")


class BarOut(Ohlcv):
    provider: str = Field(description="Who delivered the bar ('+'-joined for rollups)")
    status: BarStatus = Field(description="provisional while open or revisable, final after")
    as_of: str | None = Field(description="When MDS learned this revision (UTC ISO-8601)")
    adjusted: bool = Field(description="True if the vendor's prices are split/dividend adjusted")

    @classmethod
    def of(cls, bar: Bar) -> BarOut:
        return cls(
            ts=iso(bar.ts),
            open=bar.open,
            high=bar.high,
            low=bar.low,
            close=bar.close,
            volume=bar.volume,
            provider=bar.provider,
            status=bar.status,
            as_of=iso(bar.as_of) if bar.as_of else None,
            adjusted=bar.adjusted,
        )


class ActionOut(BaseModel):
    type: Literal["split", "dividend"] = Field(description="split or cash dividend")
    ex_date: str = Field(description="Ex-date (YYYY-MM-DD): bars of earlier sessions are adjusted")
    ratio: float | None = Field(description="Split: new shares per old (4.0 for 4-for-1)")
    amount: float | None = Field(description="Dividend: cash per share, in the basis of its ex-date")
    currency: str | None = Field(description="Dividend currency")
    source: str = Field(description="Provider that published it")
    as_of: str | None = Field(description="When MDS learned it")
    factor: float | None = Field(default=None, description="Price factor applied to earlier bars")
    reason: str | None = Field(default=None, description="Why a skipped action was not applied")


class AdjustmentOut(BaseModel):
    mode: Literal["raw", "split", "all"] = Field(description="The adjustment applied")
    actions: list[ActionOut] = Field(description="Actions applied, by ex-date")
    skipped: list[ActionOut] = Field(description="Actions that could not be applied, with the reason")


class BarsOut(BaseModel):
    symbol: str = Field(description="Ticker")
    interval: Interval = Field(description="Bar interval")
    start: str = Field(description="Inclusive start of the range (UTC)")
    end: str = Field(description="Exclusive end of the range (UTC)")
    as_of: str | None = Field(default=None, description="The point in time the bars were read as of")
    adjustment: AdjustmentOut = Field(description="The adjustment applied to the bars and with which actions")
    bars: list[BarOut] = Field(description="Bars in time order")


class PriceOut(BaseModel):
    symbol: str = Field(description="Ticker")
    price: float = Field(description="Latest known price")
    ts: str = Field(description="When that price was current (UTC)")
    source: Literal["quote", "bar_1m", "bar_1d"] = Field(description="Where the price comes from")
    provider: str = Field(description="Who delivered it")
    as_of: str | None = Field(description="When MDS learned it")


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbols: list[Symbol] = Field(min_length=1, max_length=1000, description="Tickers, 1 to 1000")


class BatchOut(BaseModel):
    prices: dict[str, PriceOut] = Field(description="Latest price per known symbol")
    errors: dict[str, str] = Field(description="Why a symbol has no price")


class BackfillIn(BaseModel):
    """The seed's manual backfill body."""

    model_config = ConfigDict(extra="forbid")
    symbol: Symbol = Field(description="Ticker in the universe, upper case")
    interval: Interval = Field(default=Interval.M1, description="Bar interval to fill")
    start: str = Field(pattern=TIME_PATTERN, description="Inclusive start, ISO-8601 with a zone")
    end: str = Field(
        pattern=TIME_PATTERN,
        description="Exclusive end, ISO-8601 with a zone; at most BACKFILL_MAX_RANGE_DAYS after start",
    )
    priority: Tier | None = Field(default=None, description="Queue tier; defaults to the symbol's tier")


class BackfillJobOut(BaseModel):
    id: int = Field(description="Backfill job id")
    start: str = Field(description="Inclusive start of the job's window (UTC)")
    end: str = Field(description="Exclusive end of the job's window (UTC)")
    status: BackfillStatus = Field(description="Job status (queued when just created)")


class BackfillOut(BaseModel):
    ok: bool = Field(description="Always true (a refusal is a problem answer)")
    symbol: str = Field(description="Ticker")
    interval: Interval = Field(description="Bar interval")
    priority: Tier = Field(description="Queue tier the jobs went to")
    jobs: list[BackfillJobOut] = Field(description="Jobs created (the window minus what active jobs cover)")
    merged_into: list[int] = Field(description="Active jobs the request was merged into")
    refused: list[Literal["duplicate", "cap"]] = Field(
        description="One reason per part of the window not queued: already covered, or the tier's queue is full"
    )


# ---------------------------------------------------------------- analysis snapshots
def _float_description(name: str) -> str:
    """What a snapshot float field means, from its name (the engine's naming scheme)."""
    kind, _, n = name.rpartition("_")
    if kind == "sma":
        return f"{n}-session simple moving average of closes (TA-Lib)"
    if kind == "ema":
        return f"{n}-session exponential moving average of closes (TA-Lib)"
    if kind == "perf" and n.endswith("d"):
        return f"Performance over {n[:-1]} sessions, percent"
    if kind == "perf":
        return {"mtd": "Month", "qtd": "Quarter", "ytd": "Year"}[n] + "-to-date performance, percent"
    return _FLOAT_DESCRIPTIONS[name]


_FLOAT_DESCRIPTIONS = {
    "close": "Last close",
    "rsi_14": "Relative strength index, 14 sessions (TA-Lib)",
    "atr_14": "Average true range, 14 sessions (TA-Lib)",
    "adx_14": "Average directional index, 14 sessions (TA-Lib)",
    "plus_di_14": "+DI, 14 sessions (TA-Lib)",
    "minus_di_14": "-DI, 14 sessions (TA-Lib)",
    "macd": "MACD line, 12/26/9 (TA-Lib)",
    "macd_signal": "MACD signal line (TA-Lib)",
    "macd_hist": "MACD histogram (TA-Lib)",
    "atr_pct": "100 * ATR14 / close",
    "atr_dist_sma50": "(close - SMA50) / ATR14, in ATRs",
    "stage_slope_pct": "Change of the 30-week MA over 4 weeks, percent",
    "stage_dist_pct": "Distance of the close from the 30-week MA, percent",
}


class MaAlignment(BaseModel):
    close_gt_sma21: bool | None = Field(description="close > SMA21 (null if unknown)")
    sma21_gt_sma50: bool | None = Field(description="SMA21 > SMA50")
    sma50_gt_sma200: bool | None = Field(description="SMA50 > SMA200")
    close_gt_sma50: bool | None = Field(description="close > SMA50")
    close_gt_sma200: bool | None = Field(description="close > SMA200")
    bullish_stack: bool | None = Field(description="close > SMA21 > SMA50 > SMA200")
    bearish_stack: bool | None = Field(description="close < SMA21 < SMA50 < SMA200")


class Gap(BaseModel):
    date: str = Field(description="Session date of the gap (YYYY-MM-DD)")
    direction: Literal["up", "down"] = Field(description="Gap direction")
    gap_pct: float = Field(description="Size of the gap, percent")
    level: float = Field(description="Price that fills it: the prior high (up) or low (down)")


class Gaps(BaseModel):
    window: int = Field(description="Sessions looked back")
    up: int = Field(description="Up gaps in the window")
    down: int = Field(description="Down gaps in the window")
    unfilled: list[Gap] = Field(description="Gaps not yet filled, newest first")


#: The snapshot fields that are not plain floats, as (type, Field) for create_model.
_SNAPSHOT_FIXED: dict[str, Any] = {
    "as_of": (str | None, Field(description="Session date of the last bar used (null without bars)")),
    "bars_used": (int, Field(description="Daily bars used")),
    "ma_alignment": (MaAlignment, Field(description="Moving-average alignment flags")),
    "ma_bucket": (
        Literal["LEADING", "NEUTRAL", "LAGGING"],
        Field(description="Trend bucket from the MA alignment"),
    ),
    "stage_label": (
        Literal["STAGE_1", "STAGE_2", "STAGE_3", "STAGE_4"] | None,
        Field(description="Weinstein stage from the 30-week MA"),
    ),
    "td_setup": (int | None, Field(description="TD sequential setup count (negative: sell setup)")),
    "gaps": (Gaps | None, Field(description="Price gaps over the last sessions")),
}
_SNAPSHOT_FIELDS: dict[str, Any] = {
    "symbol": (str, Field(description="Ticker")),
    **{
        name: _SNAPSHOT_FIXED.get(name) or (float | None, Field(description=_float_description(name)))
        for name in FIELDS
    },
    "reasons": (dict[str, str], Field(description="Why a null field is null")),
    "source": (
        Literal["cache", "computed"],
        Field(description="Served from the snapshot cache, or computed now"),
    ),
    "computed_at": (
        str | None,
        Field(
            default=None, description="When the snapshot was computed (UTC); absent for a point-in-time read"
        ),
    ),
    "computed_as_of": (
        str | None,
        Field(
            default=None, description="The point in time the snapshot was computed as of (UTC), with as_of"
        ),
    ),
    "date": (
        str | None,
        Field(default=None, description="The event date asked for: only sessions on or before it were used"),
    ),
    "adjustment": (
        AdjustmentOut | None,
        Field(default=None, description="The adjustment the indicators were computed on, with its actions"),
    ),
}
#: The technical snapshot, built from mds.analysis.indicators.FIELDS in the engine's
#: order, so a new indicator cannot be left out of the schema (or reorder the output).
SnapshotOut: type[BaseModel] = create_model(
    "SnapshotOut",
    __doc__="The technical snapshot of one symbol; a field needing more history is null, with a reason.",
    **_SNAPSHOT_FIELDS,
)
