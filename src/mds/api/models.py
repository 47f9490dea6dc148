"""Response and request bodies; every field documents itself in the OpenAPI schema."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from mds.domain.jobs import Symbol
from mds.domain.models import Bar, Interval, Tier
from mds.serialize import iso


class BarOut(BaseModel):
    ts: str = Field(description="UTC ISO-8601 open time of the bar's interval")
    open: float = Field(description="Opening price")
    high: float = Field(description="Highest price")
    low: float = Field(description="Lowest price")
    close: float = Field(description="Closing price")
    volume: float = Field(description="Volume traded")
    provider: str = Field(description="Who delivered the bar ('+'-joined for rollups)")
    status: str = Field(description="provisional while open or revisable, final after")
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
            status=bar.status.value,
            as_of=iso(bar.as_of) if bar.as_of else None,
            adjusted=bar.adjusted,
        )


class BarsOut(BaseModel):
    symbol: str = Field(description="Ticker")
    interval: Interval = Field(description="Bar interval")
    start: str = Field(description="Inclusive start of the range (UTC)")
    end: str = Field(description="Exclusive end of the range (UTC)")
    as_of: str | None = Field(default=None, description="The point in time the bars were read as of")
    bars: list[BarOut] = Field(description="Bars in time order")


class PriceOut(BaseModel):
    symbol: str = Field(description="Ticker")
    price: float = Field(description="Latest known price")
    ts: str = Field(description="When that price was current (UTC)")
    source: str = Field(description="quote, bar_1m or bar_1d")
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
    symbol: Symbol
    interval: Interval = Field(default=Interval.M1, description="Bar interval to fill")
    start: str = Field(description="Inclusive start, ISO-8601 with a zone")
    end: str = Field(description="Exclusive end, ISO-8601 with a zone")
    priority: Tier | None = Field(default=None, description="Queue tier; defaults to the symbol's tier")
