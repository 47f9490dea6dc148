"""Options: ``GET /options/{symbol}/chain``, ``/metrics``, ``/metrics/history`` and
``/strategies``, thin over :class:`mds.services.options.OptionsService`. The stream is
``WS /ws/options/{symbol}`` (:mod:`mds.api.routes.stream`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from mds.api.deps import RuntimeDep
from mds.api.params import EndQuery, StartQuery, SymbolPath, parse_ts
from mds.api.problems import problem_responses
from mds.errors import InvalidRequest
from mds.options.strategies import DEFAULT_SORT, SortKey, StrategyType
from mds.serialize import iso
from mds.services.options import chain_json, metrics_json, strategy_json

router = APIRouter(prefix="/options", tags=["options"], responses=problem_responses(404, 422, 500, 503))

MaxDays = Annotated[
    int | None,
    Query(
        ge=0, le=1100, description="Expirations up to this many calendar days out (default OPTIONS_MAX_DAYS)"
    ),
]


class ContractOut(BaseModel):
    contract: str = Field(description="OCC symbol, e.g. AAPL250117C00150000")
    type: Literal["call", "put"] = Field(description="Call or put")
    strike: float = Field(description="Strike price")
    expiration: str = Field(description="Expiration date")
    bid: float | None = Field(description="Vendor bid")
    ask: float | None = Field(description="Vendor ask")
    mid: float | None = Field(description="(bid + ask) / 2 when both are quoted and bid > 0")
    last: float | None = Field(description="Last trade price")
    volume: float | None = Field(description="Contracts traded today")
    open_interest: float | None = Field(description="Open interest (None where the vendor has none)")
    vendor_iv: float | None = Field(description="The vendor's own implied volatility, if it gives one")
    iv: float | None = Field(
        description="MDS's implied volatility from the mid (Black-Scholes on the forward)"
    )
    iv_reason: str | None = Field(
        description="Why iv is null: no_bid, no_ask, below_intrinsic, above_maximum,"
        " spread_exceeds_time_value, expired, no_solution"
    )
    delta: float | None = Field(description="Black-Scholes delta with MDS's iv")
    quote_time: str | None = Field(description="The vendor's quote time (UTC)")


class ChainHeader(BaseModel):
    underlying: str = Field(description="The underlying")
    as_of: str = Field(description="When the chain was fetched and priced")
    spot: float = Field(description="The underlying's price the chain was priced with")
    rate: float = Field(description="Continuously compounded risk-free rate used")
    rate_source: str = Field(
        description="DGS3MO <date> when that macro series is stored, else RISK_FREE_RATE"
    )
    dividend_yield: float = Field(description="Dividend yield used (0 unless known)")
    provider: str = Field(description="The provider the chain came from")
    dropped: int = Field(
        description="Contracts the vendor sent that were unfit (crossed, negative, no strike)"
    )
    expirations: list[str] = Field(description="Every listed expiration of the chain")


class ChainOut(ChainHeader):
    symbol: str = Field(description="The underlying")
    count: int = Field(description="Contracts in this answer")
    contracts: list[ContractOut] = Field(description="By expiration, strike, then call before put")


class TermPointOut(BaseModel):
    expiration: str = Field(description="Expiration date")
    days: int = Field(description="Calendar days from as_of")
    t: float = Field(description="Years to the expiration's close (ACT/365)")
    atm_iv: float | None = Field(description="ATM IV of that expiration")


class MetricsOut(BaseModel):
    symbol: str = Field(description="The underlying")
    as_of: str = Field(description="When the chain behind these metrics was fetched")
    spot: float = Field(description="The underlying's price used")
    rate: float = Field(description="Risk-free rate used")
    rate_source: str = Field(description="Where the rate came from")
    provider: str = Field(description="The provider of the chain")
    contracts: int = Field(description="Contracts in the priced chain")
    iv30: float | None = Field(
        description="ATM IV at a constant 30-day maturity (total-variance interpolation)"
    )
    iv30_extrapolated: bool = Field(description="True when no two expirations bracket 30 days (flat)")
    rr25: float | None = Field(description="25-delta risk reversal at 30 days: IV(25Δ call) − IV(25Δ put)")
    bf25: float | None = Field(description="25-delta butterfly at 30 days: mean of the two 25Δ IVs − ATM IV")
    rr25_extrapolated: bool = Field(description="True when rr25/bf25 were extrapolated flat")
    rr25_sign: str = Field(
        description="call_minus_put: negative when puts are richer (the usual equity skew)"
    )
    implied_move: float | None = Field(description="ATM straddle mid ÷ spot, nearest expiration ≥ 1 day out")
    implied_move_abs: float | None = Field(description="The same straddle mid in currency")
    implied_move_expiration: str | None = Field(description="The expiration the implied move is for")
    atm_iv: dict[str, float | None] = Field(description="ATM IV by expiration (at the forward)")
    term_structure: list[TermPointOut] = Field(description="ATM IV by expiration, nearest first")
    put_call_volume_ratio: float | None = Field(description="Put volume ÷ call volume")
    put_call_oi_ratio: float | None = Field(description="Put open interest ÷ call open interest")


class MetricRowOut(BaseModel):
    as_of: str = Field(description="When it was computed")
    metric: str = Field(description="atm_iv, iv30, rr25, bf25, implied_move, implied_move_abs, put_call_*")
    tenor: str = Field(description="30d, an expiration date, or empty")
    value: float | None = Field(description="The value")
    source: str = Field(description="The provider of the chain")


class MetricsHistoryOut(BaseModel):
    symbol: str = Field(description="The underlying")
    count: int = Field(description="Rows returned")
    rows: list[MetricRowOut] = Field(description="Oldest first")


class LegOut(BaseModel):
    contract: str = Field(description="OCC symbol, or the underlying for a stock leg")
    type: Literal["call", "put", "stock"] = Field(description="What the leg holds")
    strike: float | None = Field(description="Strike (None for stock)")
    expiration: str | None = Field(description="Expiration (None for stock)")
    side: Literal["long", "short"] = Field(description="Bought or sold")
    quantity: int = Field(description="Units per position")
    price: float = Field(description="Per share: the ask when bought, the bid when sold, the spot for stock")
    iv: float | None = Field(description="MDS's IV of the contract")
    delta: float | None = Field(description="MDS's delta of the contract")


class StrategyOut(BaseModel):
    type: str = Field(description="The strategy type")
    expiration: str = Field(description="Expiration of its options")
    days: int = Field(description="Calendar days to expiration")
    legs: list[LegOut] = Field(description="The legs")
    net: float = Field(description="Per share: positive = credit received, negative = debit paid")
    net_kind: Literal["credit", "debit", "even"] = Field(description="The sign of net in words")
    max_profit: float | None = Field(description="Per share; None = unlimited")
    max_loss: float | None = Field(description="Per share, non-negative; None = unlimited")
    breakevens: list[float] = Field(description="Underlying prices at expiry where the profit is zero")
    pop: float = Field(description="Probability of profit at expiry, lognormal around the forward")
    pop_iv: float = Field(description="The volatility pop was computed with (mean IV of the sold legs)")
    return_on_risk: float | None = Field(description="max_profit ÷ max_loss when both are finite")
    multiplier: int = Field(description="Shares per contract (amounts are per share)")


class StrategiesOut(BaseModel):
    symbol: str = Field(description="The underlying")
    as_of: str = Field(description="When the chain was fetched")
    spot: float = Field(description="The underlying's price used")
    type: str = Field(description="The strategy type asked")
    sort: str = Field(description="The key the candidates are sorted by")
    count: int = Field(description="Candidates returned")
    strategies: list[StrategyOut] = Field(description="Best first")


@router.get("/{symbol}/chain", response_model=ChainOut, operation_id="getOptionsChain")
async def chain(
    symbol: SymbolPath,
    runtime: RuntimeDep,
    expiration: Annotated[
        date | None, Query(description="One listed expiration (YYYY-MM-DD); 422 when it is not listed")
    ] = None,
    max_days: MaxDays = None,
) -> Response:
    """The option chain priced by MDS: one expiration, or every one up to ``max_days``."""
    if expiration is not None and max_days is not None:
        raise InvalidRequest("max_days", "give expiration or max_days, not both")
    found = await runtime.options.chain(symbol.upper(), expiration=expiration, max_days=max_days)
    # Thousands of contracts: serialised once by orjson, not validated again by the model
    # (which still documents the shape; tests/e2e/test_api_contract.py holds the two together).
    return Response(orjson.dumps(chain_json(found)), media_type="application/json")


@router.get("/{symbol}/metrics", response_model=MetricsOut, operation_id="getOptionsMetrics")
async def metrics(symbol: SymbolPath, runtime: RuntimeDep) -> dict[str, Any]:
    """ATM IV by expiration, iv30, 25-delta risk reversal and butterfly, implied move, term
    structure and put/call ratios, from the current chain."""
    snap = await runtime.options.current(symbol.upper())
    return metrics_json(snap.metrics)


@router.get(
    "/{symbol}/metrics/history", response_model=MetricsHistoryOut, operation_id="getOptionsMetricsHistory"
)
async def metrics_history(
    symbol: SymbolPath,
    runtime: RuntimeDep,
    metric: Annotated[str | None, Query(pattern=r"^[a-z0-9_]{1,40}$", description="One metric")] = None,
    tenor: Annotated[str | None, Query(pattern=r"^[0-9a-z\-]{0,12}$", description="One tenor")] = None,
    start: StartQuery = None,
    end: EndQuery = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="At most this many rows (the newest)")] = 1000,
) -> dict[str, Any]:
    """The stored metrics, point in time: each value as computed at its ``as_of``."""
    lo, hi = parse_ts("start", start), parse_ts("end", end)
    if lo is not None and hi is not None and hi <= lo:
        raise InvalidRequest("end", "end must be after start")
    rows = await runtime.options.history(
        symbol.upper(), metric=metric, tenor=tenor, start=lo, end=hi, limit=limit
    )
    return {
        "symbol": symbol.upper(),
        "count": len(rows),
        "rows": [
            {
                "as_of": iso(r.as_of),
                "metric": r.metric,
                "tenor": r.tenor,
                "value": r.value,
                "source": r.source,
            }
            for r in rows
        ],
    }


@router.get("/{symbol}/strategies", response_model=StrategiesOut, operation_id="getOptionsStrategies")
async def strategies(
    symbol: SymbolPath,
    runtime: RuntimeDep,
    type: Annotated[StrategyType, Query(description="The kind of position")],
    max_days: MaxDays = None,
    limit: Annotated[int, Query(ge=1, le=200, description="At most this many candidates")] = 20,
    sort: Annotated[
        SortKey,
        Query(
            description="pop (highest first), return_on_risk (highest first, undefined last),"
            " max_profit (highest first), max_loss (smallest first)"
        ),
    ] = DEFAULT_SORT,
) -> dict[str, Any]:
    """Candidate positions from the current chain, priced at the conservative side."""
    snap, found = await runtime.options.strategies(
        symbol.upper(), type=type, max_days=max_days, limit=limit, sort=sort
    )
    return {
        "symbol": snap.chain.symbol,
        "as_of": iso(snap.chain.as_of),
        "spot": snap.chain.spot,
        "type": type.value,
        "sort": sort.value,
        "count": len(found),
        "strategies": [strategy_json(s) for s in found],
    }
