"""Company profiles: ``GET /stocks/{symbol}/profile`` (market cap point in time, with the
stored history) and ``POST /api/v1/market-data/admin/profiles/refresh`` (admin role: it
spends vendor budget), over :class:`mds.services.profiles.ProfileService`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict, Field

from mds.api.deps import CallerDep, RuntimeDep
from mds.api.params import SYMBOL_PATTERN, TIME_PATTERN, SymbolPath, parse_ts
from mds.api.problems import problem_responses
from mds.domain.profile import CompanyProfile
from mds.errors import NotFound
from mds.serialize import iso

router = APIRouter(tags=["profiles"], responses=problem_responses(422, 500, 503))
#: The route that spends vendor budget: guarded by the ``admin`` role in :mod:`mds.api.app`.
admin_router = APIRouter(
    prefix="/api/v1/market-data/admin", tags=["admin"], responses=problem_responses(422, 500, 503)
)


class ProfileRow(BaseModel):
    market_cap: float | None = Field(description="Market capitalisation in `currency` (whole units)")
    shares_outstanding: float | None = Field(description="Shares outstanding, where the vendor says")
    currency: str = Field(description="Currency of market_cap")
    name: str = Field(description="Company name as the vendor gives it")
    sector: str = Field(description="Sector, where the vendor says")
    industry: str = Field(description="Industry, where the vendor says")
    exchange: str = Field(description="Listing exchange as the vendor names it")
    provider: str = Field(description="The provider that answered (sim data: starts with 'sim')")
    as_of: str | None = Field(description="When MDS learned it (UTC)")


class ProfileOut(BaseModel):
    symbol: str = Field(description="Ticker")
    as_of: str | None = Field(description="The knowledge time asked (None: the newest)")
    profile: ProfileRow = Field(description="The newest profile MDS knew at as_of")
    history: list[ProfileRow] = Field(description="Stored profiles, newest first (history=N asked)")


class RefreshIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    symbols: list[Annotated[str, Field(pattern=SYMBOL_PATTERN)]] | None = Field(
        default=None, min_length=1, max_length=1000, description="Tickers; default (absent): the tracked set"
    )
    max_age_days: float | None = Field(
        default=None,
        ge=0,
        le=3650,
        strict=True,  # a number, not true/false or "7"
        description="Skip profiles younger than this; default PROFILE_MAX_AGE_DAYS",
    )


class RefreshOut(BaseModel):
    asked: int = Field(description="Symbols whose profile was fetched")
    stored: int = Field(description="Profiles stored")
    failed: int = Field(description="Symbols no provider answered for")
    skipped_fresh: int = Field(
        description="Symbols skipped: their stored profile is younger than max_age_days"
    )
    providers: dict[str, int] = Field(description="Profiles stored per provider")
    results: dict[str, dict[str, Any]] = Field(description="Per symbol: provider and market_cap, or error")


@router.get(
    "/stocks/{symbol}/profile",
    response_model=ProfileOut,
    responses=problem_responses(404),
    operation_id="getCompanyProfile",
)
async def profile(
    symbol: SymbolPath,
    runtime: RuntimeDep,
    as_of: Annotated[
        str | None, Query(pattern=TIME_PATTERN, description="Knowledge time: the profile MDS knew then")
    ] = None,
    history: Annotated[int, Query(ge=0, le=1000, description="Also list this many stored profiles")] = 0,
) -> dict[str, Any]:
    """A symbol's market cap and share count as MDS knew them at ``as_of`` (default: now);
    404 when none was stored by then (``refresh_company_profiles`` stores them)."""
    as_of_ts = parse_ts("as_of", as_of)
    name = symbol.upper()
    found = (await runtime.profiles.latest([name], as_of=as_of_ts)).get(name)
    if found is None:
        raise NotFound("profile", name)
    rows = await runtime.profiles.history(name, limit=history) if history else []
    return {
        "symbol": name,
        "as_of": iso(as_of_ts) if as_of_ts else None,
        "profile": _row(found),
        "history": [_row(p) for p in rows],
    }


@admin_router.post("/profiles/refresh", response_model=RefreshOut, operation_id="refreshCompanyProfiles")
async def refresh(
    runtime: RuntimeDep,
    caller: CallerDep,
    body: Annotated[RefreshIn | None, Body()] = None,
) -> dict[str, Any]:
    """Fetch and store the symbols' profiles now (job run ``refresh_company_profiles``)."""
    params: dict[str, Any] = {} if body is None else body.model_dump(exclude_none=True)
    if "symbols" in params:
        symbols = [s.upper() for s in params["symbols"]]
    else:
        symbols = sorted((await runtime.tracked.tracked_set(with_new=False)).all)
    async with runtime.runs.recorded("refresh_company_profiles", params, created_by=caller) as counters:
        report = await runtime.profiles.refresh(symbols, max_age_days=params.get("max_age_days"))
        counters.update(report.counters())
    totals = report.counters()
    return {
        **{k: totals[k] for k in ("asked", "stored", "failed", "skipped_fresh", "providers")},
        "results": report.symbols,
    }


def _row(p: CompanyProfile) -> dict[str, Any]:
    return {
        "market_cap": p.market_cap,
        "shares_outstanding": p.shares_outstanding,
        "currency": p.currency,
        "name": p.name,
        "sector": p.sector,
        "industry": p.industry,
        "exchange": p.exchange,
        "provider": p.provider,
        "as_of": iso(p.as_of) if p.as_of else None,
    }
