"""The HTTP side of access control: where a key is read from, route guards, refusals.

Guards are attached per router in :mod:`mds.api.app` (``/ops`` needs ``ops``, admin
routes ``admin``, reads ``read`` when ``AUTH_READ_REQUIRED``), so a route cannot be born
unguarded by forgetting a parameter. The key is read from ``Authorization: Bearer`` or
``X-API-Key``; the two security schemes document both in OpenAPI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import FastAPI, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers

from mds.access.authenticator import AccessDenied, Principal, TooManyFailures
from mds.access.keys import Role
from mds.api.problems import PROBLEM
from mds.config import Settings

_bearer = HTTPBearer(
    auto_error=False, scheme_name="BearerKey", description="An MDS API key: `Authorization: Bearer <key>`"
)
_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="ApiKeyHeader", description="An MDS API key"
)

Guard = Callable[..., Awaitable[Principal | None]]


def presented_key(headers: Headers) -> str | None:
    """The key a request carries: ``X-API-Key``, else an ``Authorization: Bearer`` token."""
    key = headers.get("x-api-key")
    if key:
        return key.strip()
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def require(role: Role, *, only_if: Callable[[Settings], bool] | None = None) -> Guard:
    """A dependency admitting keys of ``role`` or higher.

    ``only_if``: the guard applies only when this returns True for the running settings
    (read per request, so a reload turns it on or off).
    """

    async def guard(
        request: Request,
        bearer: HTTPAuthorizationCredentials | None = Security(_bearer),
        header: str | None = Security(_header),
    ) -> Principal | None:
        runtime = request.app.state.runtime
        if only_if is not None and not only_if(runtime.settings):
            return None
        key = header or (bearer.credentials if bearer else None)
        principal: Principal = await runtime.auth.authorize(key, role, client=client_address(request))
        return principal

    return guard


def reads_guarded(settings: Settings) -> bool:
    return settings.AUTH_READ_REQUIRED


def metrics_guarded(settings: Settings) -> bool:
    return settings.AUTH_METRICS_REQUIRED


READ = require(Role.READ, only_if=reads_guarded)
METRICS = require(Role.READ, only_if=metrics_guarded)
OPS = require(Role.OPS)
ADMIN = require(Role.ADMIN)


def install_auth(app: FastAPI, *, optional: Iterable[tuple[str, str]] = ()) -> None:
    """Refusals as problem+json; OpenAPI marks ``optional`` operations (method, path) as
    answering without a key too, since a setting may leave their guard off."""

    @app.exception_handler(AccessDenied)
    async def _denied(request: Request, exc: AccessDenied) -> JSONResponse:
        headers = {}
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Bearer realm="mds"'
        if isinstance(exc, TooManyFailures):
            headers["Retry-After"] = str(int(exc.retry_after + 0.999))
        body = {"type": "about:blank", "title": exc.title, "status": exc.status, "detail": str(exc)}
        return JSONResponse(body, status_code=exc.status, media_type=PROBLEM, headers=headers)

    generate = app.openapi
    marked = list(optional)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        # The empty requirement ({}) is OpenAPI's way of saying "no key is also accepted".
        for method, path in marked:
            op = schema.get("paths", {}).get(path, {}).get(method.lower())
            if op is not None and {} not in op.setdefault("security", []):
                op["security"].append({})
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
