"""Logging in to /admin with an API key, the session cookie, and CSRF tokens.

The cookie ``mds_admin`` holds a random token; the session itself (the key's name and
hash, the CSRF token) lives in the runtime's Cache under the token's SHA-256 (Redis when
scaled out, so every API process sees it; never the token itself), for
``ADMIN_SESSION_MINUTES``. Logging out deletes it, so a copied cookie stops working at once.
Each request re-checks the key behind the session through the authenticator's cache, so
revoking the key ends its sessions within ``AUTH_CACHE_SEC``. The cookie is HttpOnly,
SameSite=Strict and Secure when the request came over https.

CSRF: every state-changing request carries the session's token, as the form field
``csrf`` or the header ``X-CSRF-Token`` (which htmx sends from ``hx-headers`` on <body>).
The login form, before any session exists, uses a double-submit token in its own cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from mds.access.authenticator import AccessDenied
from mds.access.keys import Role, hash_key
from mds.admin.routing import CsrfRefused, LoginRequired, error_message, page_router
from mds.api.auth import client_address
from mds.constants import admin_session_key

COOKIE = "mds_admin"
LOGIN_COOKIE = "mds_admin_login"
CSRF_HEADER = "x-csrf-token"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})

router = page_router()


@dataclass(frozen=True)
class Session:
    """A logged-in operator: the admin key's name and the session's CSRF token."""

    name: str
    csrf: str


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def current_session(request: Request) -> Session | None:
    """The request's session, or None (no cookie, expired, logged out, key revoked)."""
    token = request.cookies.get(COOKIE)
    if not token:
        return None
    runtime = request.app.state.runtime
    stored = admin_session_key(_digest(token))
    data: Any = await runtime.cache.get(stored)
    if not isinstance(data, dict):
        return None
    # A session from before keys were recorded in it has nothing to re-check: it ends too.
    key = data.get("key")
    if not isinstance(key, str) or not await runtime.auth.allows_digest(key, Role.ADMIN):
        await runtime.cache.delete(stored)
        return None
    return Session(name=str(data["name"]), csrf=str(data["csrf"]))


async def _sent_token(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    if request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get("csrf")  # Starlette keeps the parsed form for the route
        return value if isinstance(value, str) else ""
    return ""


async def require_session(request: Request) -> Session:
    """The page's session. GET without one goes to the login form (LoginRequired); any
    other method needs the session's CSRF token as well, else 403 (CsrfRefused)."""
    session = await current_session(request)
    if request.method in _SAFE:
        if session is None:
            raise LoginRequired()
    else:
        if session is None:
            raise CsrfRefused("no valid admin session (expired or logged out): log in again")
        if not hmac.compare_digest(await _sent_token(request), session.csrf):
            raise CsrfRefused("the form's CSRF token is missing or wrong: reload the page and retry")
    request.state.admin_session = session
    return session


AdminSession = Annotated[Session, Depends(require_session)]


def _cookie_flags(request: Request) -> dict[str, Any]:
    return {"httponly": True, "samesite": "strict", "secure": request.url.scheme == "https", "path": "/admin"}


def _safe_next(target: str | None) -> str:
    """Only a path inside /admin: ``next`` must not send a browser to another site."""
    if target and target.startswith("/admin") and not target.startswith("/admin/login"):
        return target
    return "/admin"


@router.get("/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    from mds.admin.templating import render

    if await current_session(request) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_page(request, render, next=_safe_next(next))


def _login_page(request: Request, render: Any, *, next: str, error: str = "", status: int = 200) -> Response:
    token = secrets.token_urlsafe(24)
    response: Response = render(
        request, "login.html", status_code=status, login_csrf=token, next=next, error=error
    )
    response.set_cookie(LOGIN_COOKIE, token, max_age=900, **_cookie_flags(request))
    return response


@router.post("/login")
async def login(
    request: Request,
    api_key: Annotated[str, Form(max_length=512)] = "",
    csrf: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/admin",
) -> Response:
    """Check the key for the ``admin`` role; on success start a session."""
    from mds.admin.templating import render

    runtime = request.app.state.runtime
    expected = request.cookies.get(LOGIN_COOKIE, "")
    if not expected or not hmac.compare_digest(csrf, expected):
        return _login_page(
            request, render, next=_safe_next(next), error="The login form expired: try again.", status=403
        )
    try:
        principal = await runtime.auth.authorize(api_key.strip(), Role.ADMIN, client=client_address(request))
    except AccessDenied as exc:
        return _login_page(
            request, render, next=_safe_next(next), error=error_message(exc), status=exc.status
        )
    token = secrets.token_urlsafe(32)
    lifetime = runtime.settings.ADMIN_SESSION_MINUTES * 60
    await runtime.cache.set(
        admin_session_key(_digest(token)),
        # The key's hash (what the key store looks keys up by), never the key itself.
        {"name": principal.name, "key": hash_key(api_key.strip()), "csrf": secrets.token_urlsafe(32)},
        ttl=lifetime,
    )
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(COOKIE, token, max_age=lifetime, **_cookie_flags(request))
    response.delete_cookie(LOGIN_COOKIE, **_cookie_flags(request))
    return response


@router.post("/logout")
async def logout(request: Request, session: AdminSession) -> Response:
    token = request.cookies.get(COOKIE, "")
    await request.app.state.runtime.cache.delete(admin_session_key(_digest(token)))
    response = RedirectResponse("/admin/login", status_code=303)
    response.delete_cookie(COOKIE, **_cookie_flags(request))
    return response
