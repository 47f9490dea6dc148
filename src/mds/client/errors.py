"""What a failed MDS request raises, in one tree, built from the problem+json body.

    MDSError(status, title, detail, type, field, errors, body)
    ├── InvalidRequest          422: a parameter is wrong; ``field`` names it
    ├── NotFound                404: unknown symbol, factor, expiration ...
    ├── AuthError               401/403: no key, a wrong key, or too low a role
    ├── RateLimited             429: ``retry_after`` seconds to wait (None if not said)
    └── ServerError             5xx: a dependency is down (503) or a bug (500)

Any other status (405, 409 ...) raises the base class. Transport failures (connection
refused, timeouts) are httpx's own exceptions and pass through unchanged.

The API key never appears here: an error is built only from the status, the response
headers the server sends back (``Retry-After``) and the problem body.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import orjson

#: How much of a body that is not problem+json (a proxy's HTML page) an error keeps.
_RAW_DETAIL_CHARS = 300


class MDSError(Exception):
    """An MDS answer with a 4xx or 5xx status, carrying the RFC 9457 problem fields.

    Attributes:
        status: The HTTP status (for a stream refusal, the status the server named).
        title: Short summary of the problem type.
        detail: What went wrong in this request.
        type: The problem type URI (``about:blank`` at MDS).
        field: The parameter at fault, if the server named one.
        errors: Every invalid field as ``{"field": ..., "message": ...}`` (validation problems).
        body: The whole problem document, extension members (``kind``, ``key``) included.
    """

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        type: str = "about:blank",  # noqa: A002 - the RFC 9457 member's name
        field: str | None = None,
        errors: list[dict[str, Any]] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.type = type
        self.field = field
        self.errors = errors or []
        self.body = dict(body or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(status={self.status}, title={self.title!r}, detail={self.detail!r})"


class InvalidRequest(MDSError):
    """422: a parameter or body field is invalid; ``field`` names it."""


class NotFound(MDSError):
    """404: the named thing (symbol, factor, expiration) does not exist."""


class AuthError(MDSError):
    """401 or 403: the key is missing or wrong, or its role does not allow this."""


class RateLimited(MDSError):
    """429: too many requests (or failed authentications); wait ``retry_after`` seconds."""

    def __init__(self, *args: Any, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.retry_after = retry_after


class ServerError(MDSError):
    """5xx: a dependency cannot answer now (503), or a bug (500)."""


def error_class(status: int) -> type[MDSError]:
    if status == 404:
        return NotFound
    if status == 422:
        return InvalidRequest
    if status in (401, 403):
        return AuthError
    if status == 429:
        return RateLimited
    if status >= 500:
        return ServerError
    return MDSError


def problem_error(status: int, headers: Mapping[str, str], content: bytes) -> MDSError:
    """The exception for an error answer: its problem+json fields, else the status and a
    bounded excerpt of whatever body came (a proxy in front of MDS may answer HTML)."""
    body: dict[str, Any] = {}
    with contextlib.suppress(orjson.JSONDecodeError):  # not JSON: the raw excerpt below
        parsed = orjson.loads(content) if content else {}
        if isinstance(parsed, dict):
            body = parsed
    title = str(body.get("title") or _reason(status))
    detail = str(body.get("detail") or content[:_RAW_DETAIL_CHARS].decode("utf-8", "replace") or title)
    errors = body.get("errors")
    kwargs: dict[str, Any] = {
        "type": str(body.get("type") or "about:blank"),
        "field": body.get("field"),
        "errors": errors if isinstance(errors, list) else None,
        "body": body,
    }
    cls = error_class(status)
    if cls is RateLimited:
        return RateLimited(status, title, detail, retry_after=_seconds(headers.get("retry-after")), **kwargs)
    return cls(status, title, detail, **kwargs)


def _seconds(value: str | None) -> float | None:
    # MDS sends delta-seconds; an HTTP-date (also allowed by RFC 9110) is left to the caller.
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
