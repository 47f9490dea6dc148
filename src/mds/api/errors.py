"""Domain errors → application/problem+json (RFC 9457), always naming the bad field.

Nothing a client sends may produce a 500: validation errors are 422, unknown things 404,
an unsupported method 405 with ``Allow``, and an unexpected bug answers a problem document
without leaking internals. :mod:`mds.api.problems` declares these answers in OpenAPI.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, Match, Route

from mds.api.params import PATTERN_HELP
from mds.api.problems import problem
from mds.errors import (
    ConfigError,
    Conflict,
    InvalidRequest,
    MdsError,
    NoProviderAvailable,
    NotFound,
    StorageError,
)

log = logging.getLogger(__name__)


def _field_name(loc: tuple[Any, ...]) -> str:
    # ("query", "start") -> "start"; ("body", "symbols", 3) -> "symbols[3]"
    parts = [p for p in loc if p not in ("query", "path", "body", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def _message(error: Any) -> str:
    pattern = (error.get("ctx") or {}).get("pattern")
    if error.get("type") == "string_pattern_mismatch" and pattern in PATTERN_HELP:
        return f"{error.get('input')!r} is not {PATTERN_HELP[pattern]}"
    return str(error.get("msg", "invalid"))


def _allowed_methods(request: Request, allow: str) -> list[str]:
    """Every method some route serves at this path (paths may be shared by several routes)."""
    methods = {m.strip().upper() for m in allow.split(",") if m.strip()}
    for route in _leaf_routes(request.app.router.routes):
        if route.methods and route.matches(request.scope)[0] is not Match.NONE:
            methods |= route.methods
    return sorted(methods)


def _leaf_routes(routes: Sequence[BaseRoute]) -> Iterator[Route]:
    """Every Route, also inside included routers (FastAPI keeps those as one wrapper each)."""
    for route in routes:
        if isinstance(route, Route):
            yield route
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _leaf_routes(inner.routes)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field_name(tuple(e.get("loc", ()))), "message": _message(e)} for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "body", "message": "invalid request"}
        return problem(
            422,
            "Invalid request",
            f"{first['field']}: {first['message']}",
            field=first["field"],
            errors=errors,
        )

    @app.exception_handler(InvalidRequest)
    async def _invalid(request: Request, exc: InvalidRequest) -> JSONResponse:
        return problem(
            422,
            "Invalid request",
            str(exc),
            field=exc.field,
            errors=[{"field": exc.field, "message": exc.message}],
        )

    @app.exception_handler(Conflict)
    async def _conflict(request: Request, exc: Conflict) -> JSONResponse:
        return problem(409, "Conflict", str(exc), kind=exc.kind, key=exc.key)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return problem(404, "Not found", str(exc), kind=exc.kind, key=exc.key)

    @app.exception_handler(ConfigError)
    async def _config(request: Request, exc: ConfigError) -> JSONResponse:
        return problem(422, "Invalid configuration", str(exc), field=exc.setting)

    @app.exception_handler(NoProviderAvailable)
    async def _no_provider(request: Request, exc: NoProviderAvailable) -> JSONResponse:
        return problem(503, "No provider available", str(exc), capability=exc.capability)

    @app.exception_handler(StorageError)
    async def _storage(request: Request, exc: StorageError) -> JSONResponse:
        log.error("storage error: %s", exc)
        return problem(503, "Storage unavailable", "the store could not answer; try again")

    @app.exception_handler(MdsError)
    async def _mds(request: Request, exc: MdsError) -> JSONResponse:
        log.error("unhandled MDS error: %s", exc)
        return problem(500, "Internal error", type(exc).__name__)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400:
            # FastAPI's answer to a body it cannot decode (bytes that are not UTF-8 JSON);
            # malformed JSON text is already a 422 (RequestValidationError), so is this.
            message = "could not be decoded as UTF-8 JSON"
            return problem(
                422,
                "Invalid request",
                f"body: {message}",
                field="body",
                errors=[{"field": "body", "message": message}],
            )
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # RFC 9110 requires Allow on a 405; Starlette names only the first route it matched.
            headers["Allow"] = ", ".join(_allowed_methods(request, headers.get("Allow", "")))
        response = problem(exc.status_code, str(exc.detail), str(exc.detail))
        response.headers.update(headers)
        return response

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("bug while serving %s", request.url.path)
        return problem(500, "Internal error", "an unexpected error occurred; it has been logged")
