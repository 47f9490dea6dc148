"""Typed dependencies: routers ask for what they use, never for the whole app."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from mds.runtime import Runtime
from mds.services.market import MarketService


async def get_runtime(request: Request) -> Runtime:
    # async: a plain def dependency is run in the thread pool, a hop per request.
    return request.app.state.runtime


async def get_market(request: Request) -> MarketService:
    return request.app.state.runtime.market


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
MarketDep = Annotated[MarketService, Depends(get_market)]
