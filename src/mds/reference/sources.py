"""Where index constituents and the symbol directory come from, per deployment.

A :class:`ConstituentSource` answers one index's member list or raises a
``ProviderError``; the caller tries the sources in order and falls back on failure.
``constituent_sources`` gives the order: the demo's offline sim list alone, else FMP when
a key is set, then Wikipedia. Each HTTP source owns one client (descriptive User-Agent,
``PROVIDER_TIMEOUT_SEC``) unless one is handed in.
"""

from __future__ import annotations

from typing import Protocol

import httpx

from mds.config import Settings
from mds.domain.reference import Constituent, IndexName, SymbolDirectory
from mds.providers.sim.reference import sim_constituents
from mds.reference import fmp, nasdaqtrader, wikipedia
from mds.reference._http import USER_AGENT

__all__ = [
    "ConstituentSource",
    "FmpConstituents",
    "SimConstituents",
    "WikipediaConstituents",
    "constituent_sources",
    "fetch_symbol_directory",
]


class ConstituentSource(Protocol):
    """One place index member lists come from."""

    name: str

    async def fetch(self, index: IndexName) -> list[Constituent]:
        """``index``'s current members; raises ``ProviderError`` when the source cannot say."""
        ...

    async def aclose(self) -> None: ...


class _HttpSource:
    def __init__(self, timeout: float, client: httpx.AsyncClient | None) -> None:
        self._client = client or httpx.AsyncClient(timeout=timeout, headers={"User-Agent": USER_AGENT})
        self._owns_client = client is None

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


class FmpConstituents(_HttpSource):
    """FMP's ``/stable`` constituent lists (one call per index)."""

    name = "fmp"

    def __init__(
        self,
        api_key: str,
        base_url: str | None = None,
        timeout: float = 10.0,
        *,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__(timeout, client)
        self._api_key = api_key
        self.base_url = base_url or fmp.DEFAULT_BASE_URL

    def __repr__(self) -> str:  # never the key
        return f"FmpConstituents(base_url={self.base_url!r})"

    async def fetch(self, index: IndexName) -> list[Constituent]:
        return await fmp.fetch_constituents(self._client, self.base_url, self._api_key, index)


class WikipediaConstituents(_HttpSource):
    """The ``constituents`` tables of Wikipedia's list pages."""

    name = "wikipedia"

    def __init__(
        self, base_url: str | None = None, timeout: float = 10.0, *, client: httpx.AsyncClient | None = None
    ) -> None:
        super().__init__(timeout, client)
        self.base_url = base_url or wikipedia.DEFAULT_BASE_URL

    async def fetch(self, index: IndexName) -> list[Constituent]:
        return await wikipedia.fetch_constituents(self._client, self.base_url, index)


class SimConstituents:
    """The demo's offline lists (:mod:`mds.providers.sim.reference`)."""

    name = "sim"

    async def fetch(self, index: IndexName) -> list[Constituent]:
        return sim_constituents(index)

    async def aclose(self) -> None:
        return None


def constituent_sources(settings: Settings, *, demo: bool) -> list[ConstituentSource]:
    """The sources to try, in order: ``[sim]`` in the demo, else INDEX_SOURCES (FMP only
    with a key: without one it could only fail)."""
    if demo:
        return [SimConstituents()]
    timeout = settings.PROVIDER_TIMEOUT_SEC
    sources: list[ConstituentSource] = []
    for name in settings.INDEX_SOURCES:
        if name == "fmp" and settings.FMP_API_KEY is not None:
            key = settings.FMP_API_KEY.get_secret_value()
            sources.append(FmpConstituents(key, settings.FMP_BASE_URL, timeout))
        elif name == "wikipedia":
            sources.append(WikipediaConstituents(settings.INDEX_WIKIPEDIA_URL, timeout))
        elif name == "sim":
            sources.append(SimConstituents())
    return sources


async def fetch_symbol_directory(
    settings: Settings, *, client: httpx.AsyncClient | None = None
) -> SymbolDirectory:
    """Both NASDAQ Trader files from UNIVERSE_NASDAQ_TRADER_URL (or the public site), merged."""
    base = settings.UNIVERSE_NASDAQ_TRADER_URL or nasdaqtrader.DEFAULT_BASE_URL
    if client is not None:
        return await nasdaqtrader.fetch_directory(client, base)
    async with httpx.AsyncClient(timeout=settings.PROVIDER_TIMEOUT_SEC) as own:
        return await nasdaqtrader.fetch_directory(own, base)
