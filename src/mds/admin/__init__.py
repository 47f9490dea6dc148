"""The admin console at ``/admin``: server-rendered pages (Jinja2 + htmx) behind the
``admin`` role, served by MDS itself (no separate front-end build).

``admin_router`` holds every page; ``install_admin(app)`` includes it and serves the
vendored assets under ``/admin/static``. A page is a module under ``pages/`` with a
``router`` built by :func:`mds.admin.routing.page_router`, listed in ``_PAGES`` below.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from mds.admin import session
from mds.admin.pages import coverage, dashboard, dlq, jobs, schedules, symbol, tracked
from mds.admin.routing import AdminRoute

STATIC = Path(__file__).parent / "static"

#: Page routers, each included under /admin.
_PAGES: tuple[APIRouter, ...] = (
    session.router,
    dashboard.router,
    jobs.router,
    schedules.router,
    dlq.router,
    coverage.router,
    tracked.router,
    symbol.router,
)

admin_router = APIRouter(prefix="/admin", include_in_schema=False, route_class=AdminRoute)
# `/admin` itself: an included router's route may not have an empty path, this one's may.
admin_router.add_api_route("", dashboard.dashboard, methods=["GET"])
for _page in _PAGES:
    admin_router.include_router(_page)


def install_admin(app: FastAPI) -> None:
    """Serve the console's pages and its static files (``/admin/static``)."""
    app.include_router(admin_router)
    app.mount("/admin/static", StaticFiles(directory=STATIC), name="admin-static")
