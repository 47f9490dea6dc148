"""Build the sim-server's ASGI app for one vendor format."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Protocol

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mds.errors import ProviderError, RateLimited
from mds.simserver.context import SimContext

#: format name → module under mds.simserver.formats (each defines routes() and may define error_response()).
FORMATS = (
    "polygon",
    "finnhub",
    "yahoo",
    "alphavantage",
    "fmp",
    "twelvedata",
    "alpaca",
    "tiingo",
    "stooq",
    # macro series with their release history (ALFRED vintages)
    "fred",
    # reference data (index lists, the symbol directory); FMP's lists are in "fmp"
    "nasdaqtrader",
    "wikipedia",
)


class FormatModule(Protocol):
    def routes(self, ctx: SimContext) -> list[Route]: ...


def default_error_response(err: ProviderError) -> Response:
    """How most vendors fail: an HTTP status, JSON body, Retry-After on 429."""
    status = int(err.code) if err.code.isdigit() else 500
    headers = {"Retry-After": str(int(err.retry_after))} if isinstance(err, RateLimited) else None
    return JSONResponse({"error": err.message or err.kind}, status_code=status, headers=headers)


def load_format(fmt: str) -> FormatModule:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    return importlib.import_module(f"mds.simserver.formats.{fmt}")


def create_sim_app(fmt: str, ctx: SimContext) -> Starlette:
    module = load_format(fmt)
    render_error: Callable[[ProviderError], Response] = getattr(
        module, "error_response", default_error_response
    )

    async def _fault(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ProviderError)
        return render_error(exc)

    return Starlette(routes=module.routes(ctx), exception_handlers={ProviderError: _fault})
