"""The HTTP side of access control: where a key is read from, route guards, refusals.

Guards are attached per router in :mod:`mds.api.app` (``/ops`` needs ``ops``, admin
routes ``admin``, reads ``read`` when ``AUTH_READ_REQUIRED``), so a route cannot be born
unguarded by forgetting a parameter. The key is read from ``Authorization: Bearer`` or
``X-API-Key``; the two security schemes document both in OpenAPI.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, Security
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.datastructures import Headers

from mds.access.authenticator import AccessDenied, Principal, TooManyFailures
from mds.access.keys import Role
from mds.api.problems import PROBLEM

_bearer = HTTPBearer(
    auto_error=False, scheme_name="BearerKey", description="An MDS API key: `Authorization: Bearer <key>`"
)
_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="ApiKeyHeader", description="An MDS API key"
)


def raw_key(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The key a request carries, as sent: ``X-API-Key``, else an ``Authorization: Bearer``
    token. ``headers`` are ASGI's (names lowercased), read as they are for the fast path."""
    bearer = None
    for name, value in headers:
        if name == b"x-api-key":
            return bytes(value).strip() or None
        if name == b"authorization" and value[:7].lower() == b"bearer ":
            bearer = bytes(value[7:]).strip() or None
    return bearer


def presented_key(headers: Headers) -> str | None:
    """:func:`raw_key` as text (latin-1, as Starlette decodes headers)."""
    raw = raw_key(headers.raw)
    return raw.decode("latin-1") if raw is not None else None


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@dataclass(frozen=True)
class Guard:
    """A dependency admitting keys of ``role`` or higher.

    ``only_if``: the boolean setting that turns the guard on (read per request, so a
    reload turns it on or off); None means always on.
    """

    role: Role
    only_if: str | None = None

    async def __call__(
        self,
        request: Request,
        bearer: HTTPAuthorizationCredentials | None = Security(_bearer),
        header: str | None = Security(_header),
    ) -> Principal | None:
        runtime = request.app.state.runtime
        if self.only_if is not None and not getattr(runtime.settings, self.only_if):
            return None
        key = header or (bearer.credentials if bearer else None)
        principal: Principal = await runtime.auth.authorize(key, self.role, client=client_address(request))
        request.state.principal = principal  # for the audit fields of what the route writes
        return principal

    def describe(self) -> str:
        needs = f"Needs an API key with the `{self.role.value}` role or higher"
        return f"{needs} when `{self.only_if}=true`." if self.only_if else f"{needs}."


READ = Guard(Role.READ, only_if="AUTH_READ_REQUIRED")
METRICS = Guard(Role.READ, only_if="AUTH_METRICS_REQUIRED")
OPS = Guard(Role.OPS)
ADMIN = Guard(Role.ADMIN)


def install_auth(app: FastAPI, guarded: Iterable[tuple[str, str, Guard]] = ()) -> None:
    """Refusals as problem+json; each guarded operation (method, path, guard) says in
    OpenAPI which role it needs (``x-required-role`` and its description) and, when a
    setting may leave its guard off, that no key is also accepted."""

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
    marked = list(guarded)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        for method, path, guard in marked:
            op = schema.get("paths", {}).get(path, {}).get(method.lower())
            if op is None:
                continue
            op["x-required-role"] = guard.role.value
            op["description"] = (op.get("description", "") + "\n\n" + guard.describe()).strip()
            if guard.only_if is not None and {} not in op.setdefault("security", []):
                op["security"].append({})  # OpenAPI's "no key is also accepted"
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
