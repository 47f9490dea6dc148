"""What MDS tracks: index constituents, holdings, the tracked set (issue 14).

Reads need ``read``; holdings and the index backfill change state or spend vendor budget,
so they need ``admin``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, StringConstraints

from mds.api.deps import CallerDep, RuntimeDep
from mds.api.problems import problem_responses
from mds.domain.reference import TICKER_PATTERN, IndexName, IndexRefresh
from mds.errors import InvalidRequest
from mds.serialize import iso
from mds.services.tracked import queue_daily_backfill

router = APIRouter(prefix="/api/v1/market-data", tags=["tracking"], responses=problem_responses(422, 500))
admin_router = APIRouter(
    prefix="/api/v1/market-data/admin", tags=["tracking"], responses=problem_responses(422, 500, 503)
)

IndexQuery = Annotated[IndexName, Query(description="SP500, NASDAQ100 or DOW30")]


class TrackedOut(BaseModel):
    tracked_count: int = Field(description="Symbols in the tracked set")
    new_count: int = Field(description="Tracked symbols still short of BACKFILL_TRACKED_SESSIONS daily bars")
    indices: dict[str, int] = Field(description="Active members per index")
    all: list[str] = Field(description="tracked:all — index members (leavers for a while), holdings and SPY")
    new: list[str] = Field(description="tracked:new — the tracked symbols a daily backfill still has to fill")


class MemberOut(BaseModel):
    symbol: str = Field(description="Ticker (share classes with a dot: BRK.B)")
    name: str = Field(description="Company name as the source gives it")
    sector: str = Field(description="GICS sector where the source gives one")
    sub_industry: str = Field(description="GICS sub-industry where the source gives one")
    is_active: bool = Field(description="Still a member; leavers stay listed, inactive")
    first_seen_at: str = Field(description="When MDS first saw it in the index (UTC)")
    became_inactive_at: str | None = Field(description="When it left the index (UTC), if it did")
    source: str = Field(description="The source of the last refresh that listed it")


class RefreshOut(BaseModel):
    index: str = Field(description="The index")
    applied: bool = Field(description="False when the refresh failed or its list was implausibly short")
    fetched: int = Field(description="Members the source returned")
    inserted: int = Field(description="New members")
    reactivated: int = Field(description="Former members back in the index")
    inactivated: int = Field(description="Members that left (kept, marked inactive)")
    provider_used: str = Field(description="The source that answered (fmp, wikipedia; sim in the demo)")
    fallback_used: bool = Field(description="The first source failed and a later one answered")
    reason: str = Field(description="Why nothing changed, or which sources failed first")


class ConstituentsOut(BaseModel):
    index: str = Field(description="The index")
    active: int = Field(description="Active members")
    members: list[MemberOut] = Field(description="Members by symbol")
    last_refresh: RefreshOut | None = Field(description="The newest refresh of this index, if any")


Ticker = Annotated[str, StringConstraints(pattern=TICKER_PATTERN)]


class HoldingsIn(BaseModel):
    symbols: list[Ticker] = Field(
        min_length=1, max_length=5000, description="Tickers to hold (BRK.B, brk-b and BRK/B are one symbol)"
    )
    note: str = Field(default="", max_length=200, description="Free text kept with each new holding")


class HoldingsOut(BaseModel):
    changed: list[str] = Field(description="Symbols added (POST) or removed (DELETE) by this call")
    held: list[str] = Field(description="Every held symbol after the call")


class IndexBackfillOut(BaseModel):
    refresh: RefreshOut = Field(description="The constituent refresh this call ran first")
    symbols: int = Field(description="Symbols whose last BACKFILL_TRACKED_SESSIONS daily bars were checked")
    jobs_created: int = Field(description="Backfill jobs queued for the missing sessions")
    merged_into: list[int] = Field(description="Active jobs the request was merged into")
    refused: list[str] = Field(description="Pieces refused (duplicate, or the tier's queue was full)")


def _refresh_out(r: IndexRefresh) -> dict[str, object]:
    return {"index": r.index, **r.counters(), "reason": r.reason}


@router.get("/tracked", response_model=TrackedOut, operation_id="getTracked")
async def tracked(runtime: RuntimeDep) -> dict[str, object]:
    """The tracked set, computed from the store (the same lists as Redis `tracked:all`/`tracked:new`)."""
    t = await runtime.tracked.tracked_set()
    return {
        "tracked_count": len(t.all),
        "new_count": len(t.new),
        "indices": t.index_counts,
        "all": sorted(t.all),
        "new": sorted(t.new),
    }


@router.get("/indexes/constituents", response_model=ConstituentsOut, operation_id="getConstituents")
async def constituents(
    runtime: RuntimeDep,
    index: IndexQuery,
    include_inactive: Annotated[bool, Query(description="List leavers too")] = False,
) -> dict[str, object]:
    """An index's members as MDS stores them, and how the last refresh went."""
    members = await runtime.store.index_members(index, active_only=not include_inactive)
    refreshes = await runtime.store.index_refreshes(index=index, limit=1)
    return {
        "index": index,
        "active": sum(1 for m in members if m.is_active),
        "members": [
            {
                "symbol": m.symbol,
                "name": m.name,
                "sector": m.sector,
                "sub_industry": m.sub_industry,
                "is_active": m.is_active,
                "first_seen_at": iso(m.first_seen_at),
                "became_inactive_at": None if m.became_inactive_at is None else iso(m.became_inactive_at),
                "source": m.source,
            }
            for m in members
        ],
        "last_refresh": _refresh_out(refreshes[0]) if refreshes else None,
    }


@admin_router.post("/holdings", response_model=HoldingsOut, operation_id="addHoldings")
async def add_holdings(body: HoldingsIn, runtime: RuntimeDep) -> dict[str, object]:
    """Hold symbols: they join the tracked set (and the universe, at T2 if new)."""
    added = await runtime.tracked.hold(body.symbols, note=body.note)
    await runtime.tracked.refresh()
    return {"changed": added, "held": [h.symbol for h in await runtime.store.holdings()]}


@admin_router.delete("/holdings", response_model=HoldingsOut, operation_id="removeHoldings")
async def remove_holdings(
    runtime: RuntimeDep,
    symbols: Annotated[
        list[Ticker],
        Query(min_length=1, max_length=5000, description="Tickers to stop holding (repeat the parameter)"),
    ],
) -> dict[str, object]:
    """Stop holding symbols; they stay in the universe and stay tracked if an index lists them."""
    removed = await runtime.tracked.release(symbols)
    await runtime.tracked.refresh()
    return {"changed": removed, "held": [h.symbol for h in await runtime.store.holdings()]}


@admin_router.post(
    "/backfill/index",
    status_code=202,
    response_model=IndexBackfillOut,
    operation_id="backfillIndex",
)
async def backfill_index(runtime: RuntimeDep, index: IndexQuery, caller: CallerDep) -> dict[str, object]:
    """Refresh the index's constituents, then queue the missing part of the last
    BACKFILL_TRACKED_SESSIONS daily bars of its members (leavers included) through the
    tiered backfill. A refused or failed refresh still backfills the members already stored."""
    if runtime.collector is None:
        raise InvalidRequest("index", "this process runs no collector; send backfills to a worker")
    async with runtime.runs.recorded("backfill_index", {"index": index}, created_by=caller) as counters:
        refresh = await runtime.indexes.refresh(index)
        members = await runtime.store.index_members(index, active_only=False)
        symbols = sorted({m.symbol for m in members})
        result = await queue_daily_backfill(
            symbols,
            store=runtime.store,
            calendar=runtime.calendar,
            clock=runtime.clock,
            backfiller=runtime.collector.backfiller,
            sessions=runtime.settings.BACKFILL_TRACKED_SESSIONS,
        )
        await runtime.tracked.refresh()
        counters.update(refresh.counters(), symbols=len(symbols), jobs_created=len(result.created))
    return {
        "refresh": _refresh_out(refresh),
        "symbols": len(symbols),
        "jobs_created": len(result.created),
        "merged_into": result.merged_into,
        "refused": sorted(set(result.refused)),
    }
