"""The problem+json (RFC 9457) answer and how routes declare it in OpenAPI.

Every error MDS answers is a :class:`Problem` with content type ``application/problem+json``.
Routes declare the statuses they can answer with :func:`problem_responses`, and
:func:`install_openapi` makes the generated document say so exactly: FastAPI's own
``responses=`` can only put a model under the route's media type (``application/json``), so
the entries carry a ``$ref`` to the ``Problem`` schema that the hook adds to the components.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

PROBLEM = "application/problem+json"
_REF = "#/components/schemas/Problem"

#: What each problem status means at MDS, for the response descriptions in OpenAPI.
MEANINGS: dict[int, str] = {
    401: "No valid API key was sent",
    403: "The key's role does not allow this",
    404: "The named thing (symbol, job, cursor, snapshot) does not exist",
    405: "The path does not support this method; `Allow` lists those it does",
    409: "Conflicts with work already queued",
    422: "A parameter or body field is invalid; `field` names it",
    429: "Too many failed authentications from this address; retry after `Retry-After`",
    500: "A bug; it has been logged",
    503: "A dependency (store, queue, providers) cannot answer now; try again",
}


class FieldError(BaseModel):
    field: str = Field(description="The offending field: a parameter name, or a body path like symbols[3]")
    message: str = Field(description="What is wrong with it")


class Problem(BaseModel):
    """An RFC 9457 problem document; extension members (``kind``, ``key``, ...) may follow."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(default="about:blank", description="A URI naming the problem type")
    title: str = Field(description="Short summary of the problem type")
    status: int = Field(ge=400, le=599, description="The HTTP status code")
    detail: str = Field(description="What went wrong in this request (names the field, if one is at fault)")
    field: str | None = Field(default=None, description="The parameter or body field at fault, if any")
    errors: list[FieldError] | None = Field(
        default=None, description="Every invalid field, for validation problems"
    )


def problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries declaring problem+json answers for ``statuses``."""
    return {
        status: {
            "description": MEANINGS.get(status) or HTTPStatus(status).phrase,
            "content": {PROBLEM: {"schema": {"$ref": _REF}}},
            **({"headers": _HEADERS[status]} if status in _HEADERS else {}),
        }
        for status in statuses
    }


#: Headers some problems carry, declared so generated clients can read them.
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": '`Bearer realm="mds"`', "schema": {"type": "string"}}},
    405: {"Allow": {"description": "The methods this path answers", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer", "minimum": 1}}},
}


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` declare problems as they are answered.

    Adds the ``Problem`` schema that problem_responses() entries refer to, and turns any validation
    response FastAPI added by itself (``HTTPValidationError``, ``application/json``) into the
    problem+json answer the handler in :mod:`mds.api.errors` really sends.
    """
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = generate()
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(problem_schema.pop("$defs", {}))
        schemas["Problem"] = problem_schema
        for path in doc.get("paths", {}).values():
            for operation in path.values():
                for status, response in operation.get("responses", {}).items():
                    if _is_fastapi_validation(response):
                        response.clear()
                        response.update(problem_responses(int(status))[int(status)])
        if not _refers_to(doc, "HTTPValidationError"):
            schemas.pop("HTTPValidationError", None)
            if not _refers_to(doc, "ValidationError"):
                schemas.pop("ValidationError", None)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def _is_fastapi_validation(response: dict[str, Any]) -> bool:
    content = response.get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    return bool(schema.get("$ref", "").endswith("/HTTPValidationError"))


def _refers_to(node: object, name: str) -> bool:
    if isinstance(node, dict):
        if node.get("$ref") == f"#/components/schemas/{name}":
            return True
        # A schema's own definition (components.schemas[name]) does not count as a use.
        return any(_refers_to(v, name) for k, v in node.items() if k != name)
    if isinstance(node, list):
        return any(_refers_to(v, name) for v in node)
    return False
