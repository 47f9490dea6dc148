"""Index constituents from Financial Modeling Prep's ``/stable`` API.

``GET /stable/sp500-constituent``, ``/stable/nasdaq-constituent`` and
``/stable/dowjones-constituent`` (query ``apikey``) answer a JSON array of
``{"symbol", "name", "sector", "subSector", "headQuarter", "dateFirstAdded", "cik",
"founded"}``; FMP writes class shares with a dash (``BRK-B``), translated by
:func:`mds_symbol`. Failures follow the bar adapter (:mod:`mds.providers.fmp`): 401
"Invalid API KEY" is ``AuthError``; 402 "Restricted Endpoint" and 403 "Legacy Endpoint"
(the ``/api/v3`` lists answer keys issued after 31 Aug 2025 that way) are ``NotEntitled``;
429 "Limit Reach" is ``RateLimited``. The key never appears in an error message.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from mds.domain.reference import Constituent, IndexName, mds_symbol
from mds.errors import AuthError, BadPayload, NoData, NotEntitled, ProviderError, RateLimited
from mds.providers.fmp import PLAN_LIMIT, error_message, error_text
from mds.providers.http import retry_after
from mds.reference._http import USER_AGENT, check_status, get, hide_secrets

__all__ = [
    "DEFAULT_BASE_URL",
    "PATHS",
    "PROVIDER",
    "check_response",
    "fetch_constituents",
    "parse_constituents",
]

PROVIDER = "fmp"
DEFAULT_BASE_URL = "https://financialmodelingprep.com"
PATHS: dict[IndexName, str] = {
    "SP500": "/stable/sp500-constituent",
    "NASDAQ100": "/stable/nasdaq-constituent",
    "DOW30": "/stable/dowjones-constituent",
}


def parse_constituents(body: bytes) -> list[Constituent]:
    """An FMP constituent array -> members, each symbol once, in the body's order.

    Raises:
        BadPayload: not JSON, not an array of objects, or a row without a symbol.
        NoData: an empty array (FMP lists are never empty for a served index).
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadPayload(PROVIDER, "constituent body is not JSON") from None
    if not isinstance(doc, list):
        detail = error_message(doc) if isinstance(doc, dict) else ""
        raise BadPayload(
            PROVIDER,
            f"expected a JSON array of constituents, got {type(doc).__name__}"
            + (f": {detail[:200]}" if detail else ""),
        )
    if not doc:
        raise NoData(PROVIDER, "empty constituent list", code="empty")
    out: list[Constituent] = []
    seen: set[str] = set()
    for number, row in enumerate(doc, start=1):
        symbol = row.get("symbol") if isinstance(row, dict) else None
        if not isinstance(symbol, str) or not symbol.strip():
            raise BadPayload(PROVIDER, f"row {number} has no symbol: {str(row)[:120]}")
        mds = mds_symbol(symbol)
        if mds in seen:
            continue
        seen.add(mds)
        out.append(
            Constituent(
                symbol=mds,
                name=_text(row, "name"),
                sector=_text(row, "sector"),
                sub_industry=_text(row, "subSector"),
            )
        )
    return out


def _text(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    return value.strip() if isinstance(value, str) else ""


def check_response(response: httpx.Response) -> None:
    """Raise what an FMP answer means when it is not a constituent array."""
    status, text = response.status_code, error_text(response)
    detail = f"HTTP {status}: {text[:200]}"
    if "invalid api key" in text.lower():
        raise AuthError(PROVIDER, detail, code=str(status))
    if status == 429 or "limit reach" in text.lower():
        raise RateLimited(PROVIDER, detail, retry_after=retry_after(response), code="429")
    if status in (402, 403) and PLAN_LIMIT.search(text):
        raise NotEntitled(PROVIDER, detail, code=str(status))
    check_status(PROVIDER, response)
    if text:  # a 200 {"Error Message": …} object where the array belongs
        raise NoData(PROVIDER, detail, code="error_message")


async def fetch_constituents(
    client: httpx.AsyncClient, base_url: str, api_key: str, index: IndexName
) -> list[Constituent]:
    """``index``'s members from FMP at ``base_url``.

    Raises:
        ProviderError: typed as in the module docstring, the key hidden in the message.
    """
    url = base_url.rstrip("/") + PATHS[index]
    try:
        response = await get(
            client, PROVIDER, url, params={"apikey": api_key}, headers={"User-Agent": USER_AGENT}
        )
        check_response(response)
        return parse_constituents(response.content)
    except ProviderError as exc:
        hide_secrets(exc, [api_key])
        raise
