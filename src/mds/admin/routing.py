"""Admin page routes that answer in HTML, whatever goes wrong.

The API's handlers (``mds.api.errors``) answer problem+json; a browser on an admin page
needs a page instead: the login form when there is no session, a page naming the problem
otherwise, and never a stack trace. Every admin page router is built by :func:`page_router`
so its routes carry :class:`AdminRoute`, which turns exceptions into those pages (FastAPI
keeps a route's class when a router is included, so it must be set where routes are made).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from mds.access.authenticator import AccessDenied
from mds.errors import Conflict, InvalidRequest, MdsError, NotFound, StorageError

log = logging.getLogger(__name__)


class LoginRequired(Exception):
    """No valid session on a page that needs one: the browser goes to the login form."""


class CsrfRefused(Exception):
    """A state-changing request without its session's CSRF token (or without a session)."""


def error_status(exc: Exception) -> int:
    """The HTTP status an admin page answers ``exc`` with."""
    if isinstance(exc, CsrfRefused):
        return 403
    if isinstance(exc, AccessDenied):
        return exc.status
    if isinstance(exc, (InvalidRequest, RequestValidationError)):
        return 422
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, StorageError):
        return 503
    if isinstance(exc, HTTPException):
        return exc.status_code
    return 500


def error_message(exc: Exception) -> str:
    """What the operator reads: the error's own words for known errors, never internals."""
    if isinstance(exc, RequestValidationError):
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "body", "path"))
            parts.append(f"{where}: {err.get('msg', 'invalid')}")
        return "; ".join(parts) or "invalid request"
    if isinstance(exc, (MdsError, CsrfRefused, HTTPException)):
        return str(getattr(exc, "detail", None) or exc)
    return "an unexpected error; the server log has the details"


class AdminRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                return login_redirect(request)
            except Exception as exc:
                status = error_status(exc)
                if status >= 500:
                    log.exception("admin page %s failed", request.url.path)
                # Imported here: templating imports this module's exceptions.
                from mds.admin.templating import render_error

                return render_error(request, status, error_message(exc))

        return answer


def login_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = f"/admin/login?next={quote(target, safe='')}"
    if request.headers.get("hx-request"):
        # htmx swaps a 303's target into the page; HX-Redirect makes it load the login page.
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def page_router() -> APIRouter:
    """An admin page router: its routes answer errors with pages (see :class:`AdminRoute`)."""
    return APIRouter(route_class=AdminRoute)
