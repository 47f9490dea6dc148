"""The admin pages' Jinja2 environment and the one way pages render."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

TEMPLATES = Path(__file__).parent / "templates"

#: (label, path, page id) of the navigation, in order.
NAV: tuple[tuple[str, str, str], ...] = (
    ("Dashboard", "/admin", "dashboard"),
    ("Jobs", "/admin/jobs", "jobs"),
    ("Schedules", "/admin/schedules", "schedules"),
    ("Coverage", "/admin/coverage", "coverage"),
    ("Tracked", "/admin/tracked", "tracked"),
    ("Symbol", "/admin/symbol", "symbol"),
    ("DLQ", "/admin/dlq", "dlq"),
)

templates = Jinja2Templates(directory=str(TEMPLATES))
templates.env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, sort_keys=True, default=str)


def render(
    request: Request, name: str, *, status_code: int = 200, active: str = "", **ctx: Any
) -> HTMLResponse:
    """``name`` rendered with ``ctx`` plus ``csrf`` (the session's token, "" before login),
    ``nav`` and ``active`` (the page id the nav highlights)."""
    session = getattr(request.state, "admin_session", None)
    context = {
        "csrf": session.csrf if session else "",
        "nav": NAV,
        "active": active,
        "session": session,
        **ctx,
    }
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def render_error(request: Request, status: int, message: str) -> HTMLResponse:
    """A page (or, for htmx, a fragment) naming what went wrong."""
    name = "_error.html" if request.headers.get("hx-request") else "error.html"
    return render(request, name, status_code=status, status=status, message=message)
