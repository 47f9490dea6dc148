"""Reference-data fetchers over real loopback HTTP: `mds sim-server` in the fmp, wikipedia and
nasdaqtrader formats for what the vendors serve, a replay server for how they fail (FMP's
403 "Legacy Endpoint", a bad key echoed back, throttling, outages). No vendor host is
contacted. The servers come from the vendor contract harness."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from mds.config import load_settings
from mds.domain.reference import INDEXES, IndexName
from mds.errors import AuthError, BadPayload, NotEntitled, RateLimited, Unavailable
from mds.providers.sim.reference import sim_constituents, sim_directory
from mds.reference import fmp, nasdaqtrader, wikipedia
from mds.reference._http import USER_AGENT
from mds.reference.sources import (
    FmpConstituents,
    SimConstituents,
    WikipediaConstituents,
    constituent_sources,
    fetch_symbol_directory,
)
from tests.contract.vendors.harness import ReplayServer, SimServerProcess
from tests.helpers import free_port

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reference"
KEY = "ref-test-key-5f2c9a"


def fixture(vendor: str, name: str) -> bytes:
    return (FIXTURES / vendor / name).read_bytes()


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, SimServerProcess]]:
    """One default sim-server per format for the module (each starts in about a second)."""
    servers: dict[str, SimServerProcess] = {}
    try:
        for fmt in ("fmp", "wikipedia", "nasdaqtrader"):
            servers[fmt] = SimServerProcess(fmt)
        yield servers
    finally:
        for s in servers.values():
            s.stop()


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    server = ReplayServer().start()
    yield server
    server.stop()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


# -- what the vendors serve (the sim in their formats) ---------------------------------------


@pytest.mark.parametrize("index", INDEXES)
async def test_fmp_lists_from_the_sim_server(
    sims: dict[str, SimServerProcess], client: httpx.AsyncClient, index: IndexName
) -> None:
    members = await fmp.fetch_constituents(client, sims["fmp"].url, KEY, index)
    assert members == sim_constituents(index)


@pytest.mark.parametrize("index", INDEXES)
async def test_wikipedia_lists_from_the_sim_server(
    sims: dict[str, SimServerProcess], client: httpx.AsyncClient, index: IndexName
) -> None:
    members = await wikipedia.fetch_constituents(client, sims["wikipedia"].url, index)
    expected = sim_constituents(index)
    if index == "DOW30":  # one Industry column on the Dow page, no sub-industry
        expected = [replace(c, sub_industry="") for c in expected]
    assert members == expected


async def test_directory_from_the_sim_server(sims: dict[str, SimServerProcess]) -> None:
    settings = load_settings({"UNIVERSE_NASDAQ_TRADER_URL": sims["nasdaqtrader"].url})
    directory = await fetch_symbol_directory(settings)
    key = lambda s: (s.symbol, s.name, s.exchange, s.etf)  # noqa: E731
    assert sorted(map(key, directory.symbols)) == sorted(map(key, sim_directory().symbols))
    assert "ZVZZT" not in {s.symbol for s in directory.symbols}  # the served test issue
    assert directory.file_time is not None and directory.file_time.second == 0
    base = sims["nasdaqtrader"].url
    assert (
        directory.source == f"{base}{nasdaqtrader.NASDAQ_LISTED_PATH}, {base}{nasdaqtrader.OTHER_LISTED_PATH}"
    )


async def test_sim_server_serves_the_exact_wire_format(sims: dict[str, SimServerProcess]) -> None:
    async with httpx.AsyncClient() as c:
        other = (await c.get(sims["nasdaqtrader"].url + nasdaqtrader.OTHER_LISTED_PATH)).content
    lines = other.split(b"\r\n")
    assert (
        lines[0]
        == b"ACT Symbol|Security Name|Exchange|CQS Symbol|ETF|Round Lot Size|Test Issue|NASDAQ Symbol"
    )
    assert lines[-1] == b"" and lines[-2].startswith(b"File Creation Time: ")
    assert lines[-2].endswith(b"|" * 7) and lines[-2].count(b"|") == 7
    assert b"ABR$D|Arbor Realty Trust" in other and b"|N|ABRpD|N|100|N|ABR-D" in other
    assert b"ZTEST|CBOE BZX TEST ISSUE|Z|ZTEST|N|100|Y|ZTEST" in other


async def test_sources_against_the_sim_servers(sims: dict[str, SimServerProcess]) -> None:
    settings = load_settings(
        {
            "FMP_API_KEY": KEY,
            "FMP_BASE_URL": sims["fmp"].url,
            "INDEX_WIKIPEDIA_URL": sims["wikipedia"].url,
            "PROVIDER_TIMEOUT_SEC": "5",
        }
    )
    sources = constituent_sources(settings, demo=False)
    try:
        assert [s.name for s in sources] == ["fmp", "wikipedia"]
        for source in sources:
            assert [c.symbol for c in await source.fetch("SP500")] == [
                c.symbol for c in sim_constituents("SP500")
            ]
        assert KEY not in repr(sources[0])
    finally:
        for source in sources:
            await source.aclose()


async def test_source_order() -> None:
    keyed = load_settings({"FMP_API_KEY": KEY})
    demo = constituent_sources(keyed, demo=True)
    assert [type(s) for s in demo] == [SimConstituents]
    assert await demo[0].fetch("DOW30") == sim_constituents("DOW30")
    keyed_sources = constituent_sources(keyed, demo=False)
    assert [type(s) for s in keyed_sources] == [FmpConstituents, WikipediaConstituents]
    plain = constituent_sources(load_settings({}), demo=False)
    assert [type(s) for s in plain] == [WikipediaConstituents]
    for s in [*demo, *keyed_sources, *plain]:
        await s.aclose()


async def test_sim_server_outage_is_unavailable() -> None:
    server = SimServerProcess("wikipedia", {"SIM_ERROR_RATE": "1"})
    try:
        source = WikipediaConstituents(server.url, timeout=5)
        with pytest.raises(Unavailable) as caught:
            await source.fetch("SP500")
        assert caught.value.code == "500"
        await source.aclose()
    finally:
        server.stop()


# -- how they fail (replayed answers) --------------------------------------------------------


async def test_fmp_403_legacy_endpoint_is_not_entitled(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    replay.expect(fmp.PATHS["SP500"], fixture("fmp", "legacy_endpoint.json"), status=403)
    with pytest.raises(NotEntitled) as caught:
        await fmp.fetch_constituents(client, replay.url, KEY, "SP500")
    assert caught.value.code == "403" and "Legacy Endpoint" in str(caught.value)
    assert KEY not in str(caught.value) and KEY not in caught.value.message
    (seen,) = replay.requests
    assert seen.path == "/stable/sp500-constituent" and seen.params == {"apikey": KEY}
    assert seen.headers["user-agent"] == USER_AGENT


async def test_a_key_echoed_back_never_reaches_the_error(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    echo = b'{"Error Message": "Invalid API KEY ' + KEY.encode() + b'. Feel free to create a Free API Key"}'
    replay.expect(fmp.PATHS["DOW30"], echo, status=401)
    with pytest.raises(AuthError) as caught:
        await FmpConstituents(KEY, replay.url, client=client).fetch("DOW30")
    assert KEY not in str(caught.value) and KEY not in caught.value.message
    assert "***" in caught.value.message


async def test_fmp_throttle_and_bad_payload(replay: ReplayServer, client: httpx.AsyncClient) -> None:
    limit = b'{"Error Message": "Limit Reach . Please upgrade your plan"}'
    replay.expect(fmp.PATHS["NASDAQ100"], limit, status=429, headers={"Retry-After": "30"})
    with pytest.raises(RateLimited) as throttled:
        await fmp.fetch_constituents(client, replay.url, KEY, "NASDAQ100")
    assert throttled.value.retry_after == 30
    replay.expect(fmp.PATHS["SP500"], fixture("fmp", "malformed.json"))
    with pytest.raises(BadPayload, match="not JSON"):
        await fmp.fetch_constituents(client, replay.url, KEY, "SP500")


async def test_connection_refused_is_unavailable_without_the_key(client: httpx.AsyncClient) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(Unavailable) as caught:
        await fmp.fetch_constituents(client, closed, KEY, "SP500")
    assert caught.value.code == "connect" and KEY not in str(caught.value)


async def test_wikipedia_request_and_maintenance_page(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    page = b"<html><body><h1>Wikimedia Error</h1><p>Our servers are currently under maintenance</p></body></html>"
    replay.expect("/wiki/Nasdaq-100", page, content_type="text/html")
    with pytest.raises(BadPayload, match="NASDAQ100: no table"):
        await wikipedia.fetch_constituents(client, replay.url, "NASDAQ100")
    (seen,) = replay.requests
    assert seen.headers["user-agent"] == USER_AGENT
    replay.expect(
        "/wiki/Dow_Jones_Industrial_Average", fixture("wikipedia", "dow30.html"), content_type="text/html"
    )
    assert len(await wikipedia.fetch_constituents(client, replay.url, "DOW30")) == 30
    # The server sees the decoded path of /wiki/List_of_S%26P_500_companies.
    replay.expect(
        "/wiki/List_of_S&P_500_companies", b"Too many requests", status=429, content_type="text/plain"
    )
    with pytest.raises(RateLimited):
        await wikipedia.fetch_constituents(client, replay.url, "SP500")


async def test_directory_truncated_download_is_refused(
    replay: ReplayServer, client: httpx.AsyncClient
) -> None:
    full = fixture("nasdaqtrader", "nasdaqlisted.txt")
    replay.expect(nasdaqtrader.NASDAQ_LISTED_PATH, full[: len(full) // 2], content_type="text/plain")
    replay.expect(nasdaqtrader.OTHER_LISTED_PATH, fixture("nasdaqtrader", "otherlisted.txt"))
    with pytest.raises(BadPayload, match="nasdaqlisted.txt: no 'File Creation Time:' trailer"):
        await nasdaqtrader.fetch_directory(client, replay.url)


async def test_directory_outage_is_unavailable(replay: ReplayServer, client: httpx.AsyncClient) -> None:
    replay.expect(nasdaqtrader.NASDAQ_LISTED_PATH, b"<html>502 Bad Gateway</html>", status=502)
    with pytest.raises(Unavailable) as caught:
        await nasdaqtrader.fetch_directory(client, replay.url)
    assert caught.value.code == "502"


async def test_directory_fixtures_over_http(replay: ReplayServer, client: httpx.AsyncClient) -> None:
    replay.expect(nasdaqtrader.NASDAQ_LISTED_PATH, fixture("nasdaqtrader", "nasdaqlisted.txt"))
    replay.expect(nasdaqtrader.OTHER_LISTED_PATH, fixture("nasdaqtrader", "otherlisted.txt"))
    directory = await nasdaqtrader.fetch_directory(client, replay.url + "/")
    assert len(directory.symbols) == 28 + 26
    assert [r.path for r in replay.requests] == [
        nasdaqtrader.NASDAQ_LISTED_PATH,
        nasdaqtrader.OTHER_LISTED_PATH,
    ]
    assert all(r.headers["user-agent"] == USER_AGENT for r in replay.requests)
