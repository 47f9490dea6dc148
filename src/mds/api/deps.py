"""Typed dependencies: routers ask for what they use, never for the whole app."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mds.runtime import Runtime
from mds.services.market import MarketService


async def get_runtime(request: Request) -> Runtime:
    # async: a plain def dependency is run in the thread pool, a hop per request.
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_market(request: Request) -> MarketService:
    market: MarketService = request.app.state.runtime.market
    return market


async def get_caller(request: Request) -> str | None:
    """The name of the API key the route's guard admitted (None where no guard asked)."""
    principal = getattr(request.state, "principal", None)
    return None if principal is None else str(principal.name)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
CallerDep = Annotated[str | None, Depends(get_caller)]
MarketDep = Annotated[MarketService, Depends(get_market)]
