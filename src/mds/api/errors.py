"""Domain errors → application/problem+json (RFC 9457), always naming the bad field.

Nothing a client sends may produce a 500: validation errors are 422, unknown things 404,
and an unexpected bug answers a problem document without leaking internals.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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

PROBLEM = "application/problem+json"


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def _field_name(loc: tuple[Any, ...]) -> str:
    # ("query", "start") -> "start"; ("body", "symbols", 3) -> "symbols[3]"
    parts = [p for p in loc if p not in ("query", "path", "body", "header")]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": _field_name(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")}
            for e in exc.errors()
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
        return problem(exc.status_code, str(exc.detail), str(exc.detail))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("bug while serving %s", request.url.path)
        return problem(500, "Internal error", "an unexpected error occurred; it has been logged")
