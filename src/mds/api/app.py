"""create_app(): the FastAPI application over a Runtime."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.routing import APIRoute, APIRouter

from mds import __version__
from mds.admin import install_admin
from mds.api.auth import ADMIN, METRICS, OPS, READ, Guard, install_auth
from mds.api.cors import ConfiguredCors
from mds.api.docs import install_docs
from mds.api.errors import install_error_handlers
from mds.api.fast_path import KeptBarsFastPath
from mds.api.problems import install_openapi, problem_responses
from mds.api.routes import (
    actions,
    analysis,
    coverage,
    dlq,
    macro,
    market_data,
    ops,
    options,
    profiles,
    reference,
    root,
    schedules,
    stats,
    stocks,
    stream,
)
from mds.api.tracing import RequestSpans
from mds.api.viztrace import SlowRequestCapture
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
        docs_url=None,  # install_docs serves /docs and /redoc from vendored assets, not a CDN
        redoc_url=None,
    )
    install_error_handlers(app)
    install_docs(app)
    install_openapi(app)
    app.include_router(root.router)  # `/` and `/health`: always open (probes)
    guarded = _SERVICE if service_only else (*_SERVICE, *_GUARDED)
    for router, guard in guarded:
        _include_guarded(app, router, guard)
    if not service_only:
        app.include_router(stream.ws_router)  # WebSockets: each route authenticates itself
        install_admin(app)  # /admin: HTML pages behind an admin login session (mds.admin.session)
    install_auth(app, _operations(guarded))
    if not service_only:
        app.add_middleware(KeptBarsFastPath)
    # Outside the fast path, so the requests it answers are captured and traced too.
    app.add_middleware(SlowRequestCapture)
    app.add_middleware(RequestSpans)
    # Outermost: a preflight is answered before anything else looks at the request.
    app.add_middleware(ConfiguredCors)
    return app


#: What worker and scheduler processes serve besides ``/`` and ``/health``.
_SERVICE: tuple[tuple[APIRouter, Guard], ...] = ((root.metrics_router, METRICS),)
#: Every other router and the guard its routes need: a new router must be listed here, so
#: none is born unguarded.
_GUARDED: tuple[tuple[APIRouter, Guard], ...] = (
    (stats.router, READ),
    (stats.providers_router, READ),
    (stocks.router, READ),
    (analysis.router, READ),
    (stream.router, READ),
    (reference.router, READ),
    (coverage.router, READ),
    (market_data.router, READ),
    (options.router, READ),
    (macro.router, READ),
    (actions.router, READ),
    (profiles.router, READ),
    (ops.router, OPS),
    (dlq.router, OPS),
    (analysis.admin_router, ADMIN),
    (reference.admin_router, ADMIN),
    (coverage.admin_router, ADMIN),
    (market_data.admin_router, ADMIN),
    (macro.admin_router, ADMIN),
    (actions.admin_router, ADMIN),
    (profiles.admin_router, ADMIN),
    (schedules.schedules_router, ADMIN),
    (schedules.tasks_router, ADMIN),
)


def _operations(guarded: tuple[tuple[APIRouter, Guard], ...]) -> list[tuple[str, str, Guard]]:
    """(method, path, guard) of every guarded route, for the OpenAPI document."""
    return [
        (method, route.path_format, guard)  # as OpenAPI spells it: {name}, not {name:convertor}
        for router, guard in guarded
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    ]


def _include_guarded(app: FastAPI, router: APIRouter, guard: Guard) -> None:
    app.include_router(router, dependencies=[Depends(guard)], responses=problem_responses(401, 403, 429))
