"""create_app(): the FastAPI application over a Runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI

from mds import __version__
from mds.api.errors import install_error_handlers
from mds.api.fast_path import KeptBarsFastPath
from mds.api.routes import analysis, dlq, ops, root, stats, stocks
from mds.runtime import Runtime

RuntimeFactory = Callable[[], AbstractAsyncContextManager[Runtime]]


def create_app(runtime_factory: RuntimeFactory, *, service_only: bool = False) -> FastAPI:
    """Build the app; ``runtime_factory`` opens the Runtime for the app's lifetime.

    ``service_only``: just ``/``, ``/health`` and ``/metrics`` (worker and scheduler processes).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime_factory() as runtime:
            app.state.runtime = runtime
            yield

    app = FastAPI(
        title="MDS market data service",
        version=__version__,
        lifespan=lifespan,
        description="Provider-independent, gap-safe, point-in-time-correct market data.",
    )
    install_error_handlers(app)
    routers = (
        (root.router,)
        if service_only
        else (root.router, stats.router, ops.router, dlq.router, stocks.router, analysis.router)
    )
    for r in routers:
        app.include_router(r)
    if not service_only:
        app.add_middleware(KeptBarsFastPath)
    return app
