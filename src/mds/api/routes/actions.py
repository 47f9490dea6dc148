"""Corporate actions: ``GET /stocks/{symbol}/actions`` (point in time), the suspected
unannounced actions for an operator (``GET /coverage/suspected-actions``), and ``POST
/api/v1/market-data/admin/corporate-actions/refresh`` (admin role), over
:class:`mds.services.corporate_actions.CorporateActionsService`."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field

from mds.api.deps import CallerDep, RuntimeDep
from mds.api.params import SYMBOL_PATTERN, TIME_PATTERN, SymbolPath, parse_ts
from mds.api.problems import problem_responses
from mds.domain.actions import CorporateAction, SuspectedAction
from mds.errors import InvalidRequest, NotFound
from mds.ops.catalog import after_corporate_actions
from mds.serialize import iso

router = APIRouter(tags=["corporate-actions"], responses=problem_responses(422, 500, 503))
#: The route that spends vendor budget: guarded by the ``admin`` role in :mod:`mds.api.app`.
admin_router = APIRouter(
    prefix="/api/v1/market-data/admin", tags=["admin"], responses=problem_responses(422, 500, 503)
)


class ActionRow(BaseModel):
    type: Literal["split", "dividend"] = Field(description="split or cash dividend")
    ex_date: str = Field(description="Ex-date (YYYY-MM-DD): the first session traded without it")
    ratio: float | None = Field(description="Split: new shares per old (4.0 for 4-for-1, 0.1 for 1-for-10)")
    amount: float | None = Field(description="Dividend: cash per share, in the share basis of its ex-date")
    currency: str | None = Field(description="Dividend currency")
    declared_date: str | None = Field(description="When it was declared, where the vendor says")
    record_date: str | None = Field(description="Record date, where the vendor says")
    pay_date: str | None = Field(description="Payment date, where the vendor says")
    source: str = Field(description="The provider that published it")
    as_of: str | None = Field(description="When MDS learned this version of it (UTC)")


class ActionsOut(BaseModel):
    symbol: str = Field(description="Ticker")
    as_of: str | None = Field(description="The knowledge time asked (None: everything known now)")
    start: str | None = Field(description="First ex-date asked")
    end: str | None = Field(description="Last ex-date asked")
    count: int = Field(description="Number of actions")
    actions: list[ActionRow] = Field(description="By ex-date, the newest version of each known at as_of")


class SuspectedRow(BaseModel):
    symbol: str = Field(description="Ticker")
    session: str = Field(description="The session whose open jumped (YYYY-MM-DD)")
    previous_close: float = Field(description="Raw close of the session before")
    open: float = Field(description="Raw open of this session")
    ratio: float = Field(description="previous_close ÷ open: about 4 where a 4:1 split went unannounced")
    detected_at: str = Field(description="When MDS first flagged it (UTC)")


class SuspectedOut(BaseModel):
    count: int = Field(description="Number of suspicions listed")
    suspected: list[SuspectedRow] = Field(
        description="Daily jumps no known action explains, newest session first; cleared once an"
        " action is learned that explains them"
    )


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbols: list[Annotated[str, Field(pattern=SYMBOL_PATTERN)]] | None = Field(
        default=None, max_length=10_000, description="Symbols to refresh; default the active universe"
    )


class SymbolRefreshOut(BaseModel):
    provider: str | None = Field(default=None, description="The provider that answered (None: none had any)")
    fetched: int = Field(default=0, description="Actions the provider returned")
    learned: int = Field(default=0, description="Of those, new or restated ones stored")
    suspected: int = Field(default=0, description="New suspected unannounced actions")
    cleared: int = Field(default=0, description="Suspicions the fresh check no longer raises")
    error: str | None = Field(default=None, description="Why the refresh of this symbol failed")


class RefreshOut(BaseModel):
    symbols: int = Field(description="Symbols refreshed")
    failed: int = Field(description="Symbols whose fetch failed")
    learned: int = Field(description="Actions stored new or restated")
    suspected: int = Field(description="New suspected unannounced actions")
    cleared: int = Field(description="Suspicions cleared")
    changed: list[str] = Field(
        description="Symbols with a new or restated action (their adjusted reads changed)"
    )
    snapshots_recomputed: int = Field(description="Cached analysis snapshots recomputed for those symbols")
    results: dict[str, SymbolRefreshOut] = Field(description="Per symbol, what its refresh did")


@router.get(
    "/stocks/{symbol}/actions",
    response_model=ActionsOut,
    responses=problem_responses(404),
    operation_id="getCorporateActions",
)
async def actions(
    symbol: SymbolPath,
    runtime: RuntimeDep,
    as_of: Annotated[
        str | None,
        Query(pattern=TIME_PATTERN, description="Knowledge time: only actions MDS knew at this time"),
    ] = None,
    start: Annotated[date | None, Query(description="First ex-date (inclusive)")] = None,
    end: Annotated[date | None, Query(description="Last ex-date (inclusive)")] = None,
) -> dict[str, Any]:
    """A symbol's splits and cash dividends as MDS knew them at ``as_of`` (default: now)."""
    if start is not None and end is not None and end < start:
        raise InvalidRequest("end", f"end {end} is before start {start}")
    as_of_ts = parse_ts("as_of", as_of)
    name = symbol.upper()
    rows = await runtime.corporate_actions.actions(name, as_of=as_of_ts, start=start, end=end)
    # Unknown: neither in the universe nor with any action ever learned.
    if (
        not rows
        and await runtime.store.get_symbol(name) is None
        and not await runtime.corporate_actions.actions(name)
    ):
        raise NotFound("symbol", name)
    return {
        "symbol": name,
        "as_of": iso(as_of_ts) if as_of_ts else None,
        "start": start.isoformat() if start else None,
        "end": end.isoformat() if end else None,
        "count": len(rows),
        "actions": [_action(a) for a in rows],
    }


@router.get("/coverage/suspected-actions", response_model=SuspectedOut, operation_id="getSuspectedActions")
async def suspected(
    runtime: RuntimeDep,
    symbol: Annotated[
        str | None, Query(pattern=SYMBOL_PATTERN, description="One ticker (any case); all when absent")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many, newest session first")] = 100,
) -> dict[str, Any]:
    """Daily jumps beyond CORPORATE_ACTIONS_JUMP_THRESHOLD that no known split or dividend
    explains: possible unannounced actions, listed for an operator and never used to adjust."""
    rows = await runtime.corporate_actions.suspected(symbol=symbol, limit=limit)
    return {"count": len(rows), "suspected": [_suspected(s) for s in rows]}


@admin_router.post(
    "/corporate-actions/refresh", response_model=RefreshOut, operation_id="refreshCorporateActions"
)
async def refresh(
    runtime: RuntimeDep,
    caller: CallerDep,
    body: Annotated[RefreshIn | None, Body()] = None,
) -> dict[str, Any]:
    """Fetch the symbols' splits and dividends now, cross-check their daily bars, and recompute
    the snapshots of the symbols whose actions changed (job run ``refresh_corporate_actions``)."""
    symbols = [s.upper() for s in body.symbols] if body is not None and body.symbols else None
    params = {"symbols": symbols} if symbols else {}
    async with runtime.runs.recorded("refresh_corporate_actions", params, created_by=caller) as counters:
        report = await runtime.corporate_actions.refresh(symbols)
        await after_corporate_actions(runtime.runs.ctx, counters, report)
    totals = report.counters()
    return {
        **{k: totals[k] for k in ("symbols", "failed", "learned", "suspected", "cleared")},
        "changed": report.changed,
        "snapshots_recomputed": counters["snapshots_recomputed"],
        "results": report.symbols,
    }


def _action(a: CorporateAction) -> dict[str, Any]:
    return {
        "type": a.type.value,
        "ex_date": a.ex_date.isoformat(),
        "ratio": a.ratio,
        "amount": a.amount,
        "currency": a.currency,
        "declared_date": _day(a.declared_date),
        "record_date": _day(a.record_date),
        "pay_date": _day(a.pay_date),
        "source": a.source,
        "as_of": iso(a.as_of) if a.as_of else None,
    }


def _suspected(s: SuspectedAction) -> dict[str, Any]:
    return {
        "symbol": s.symbol,
        "session": s.session.isoformat(),
        "previous_close": s.previous_close,
        "open": s.open,
        "ratio": s.ratio,
        "detected_at": iso(s.detected_at),
    }


def _day(d: date | None) -> str | None:
    return d.isoformat() if d else None
