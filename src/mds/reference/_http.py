"""The one GET every reference fetcher makes, with failures turned into typed errors.

Mirrors what :class:`mds.providers.http.HttpProvider` does for bar adapters, without the
rate limiter: reference lists are fetched a few times a week, not per request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import httpx

from mds import __version__
from mds.errors import AuthError, NoData, NotEntitled, ProviderError, RateLimited, Unavailable
from mds.providers.http import retry_after
from mds.redact import hide, redact

#: Wikimedia's policy asks clients to say who they are; other hosts get the same name.
USER_AGENT = f"mds/{__version__} (market data service; reference-data refresh)"


async def get(
    client: httpx.AsyncClient,
    provider: str,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """One GET of ``url``; a timeout or a refused connection is ``Unavailable``.

    The message names the URL without its query (which may hold a key).
    """
    try:
        return await client.get(url, params=dict(params or {}), headers=dict(headers or {}))
    except httpx.TimeoutException:
        raise Unavailable(provider, f"timeout on {redact(url)}", code="timeout") from None
    except httpx.HTTPError as exc:
        raise Unavailable(provider, f"{type(exc).__name__} on {redact(url)}", code="connect") from None


def check_status(provider: str, response: httpx.Response) -> None:
    """Raise the typed error an HTTP error status means; 2xx and 3xx pass."""
    status = response.status_code
    if status < 400:
        return
    text = response.text[:200].replace("\n", " ")
    detail = redact(f"HTTP {status} from {response.request.url.path}: {text}")
    if status == 429:
        raise RateLimited(provider, detail, retry_after=retry_after(response), code="429")
    if status in (401, 403):
        raise AuthError(provider, detail, code=str(status))
    if status == 402:
        raise NotEntitled(provider, detail, code="402")
    if status in (400, 404, 422):
        raise NoData(provider, detail, code=str(status))
    raise Unavailable(provider, detail, code=str(status))


def hide_secrets(exc: ProviderError, secrets: Iterable[str]) -> None:
    """Replace ``secrets`` in ``exc``'s message and arguments, in place."""
    known = [s for s in secrets if s]
    exc.message = hide(exc.message, known)
    exc.args = tuple(hide(a, known) if isinstance(a, str) else a for a in exc.args)
