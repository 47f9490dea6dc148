"""`mds sim-server --format nasdaqtrader`: the sim's listings as NASDAQ Trader's symbol directory.

Serves ``/dynamic/SymDir/nasdaqlisted.txt`` (the sim's NASDAQ listings) and
``/dynamic/SymDir/otherlisted.txt`` (the rest) byte for byte in the public files' shape:
pipe-delimited, CRLF lines, the real header, rows sorted by symbol, one ``Test Issue``
= ``Y`` row each, and the ``File Creation Time: mmddyyyyhh:mm|||…`` trailer in New York
time of the sim clock. Other-listed rows spell each symbol three ways (ACT, CQS, NASDAQ),
the inverse of :mod:`mds.reference.nasdaqtrader`.
"""

from __future__ import annotations

from datetime import datetime

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from mds.providers.sim.reference import SimListing, sim_listings
from mds.providers.timeconv import NEW_YORK
from mds.reference.nasdaqtrader import (
    CQS_SUFFIXES,
    EXCHANGES,
    NASDAQ_LISTED_PATH,
    NASDAQ_MIC,
    NASDAQ_SUFFIXES,
    OTHER_LISTED_PATH,
)
from mds.simserver.context import SimContext

NASDAQ_HEADER = (
    "Symbol|Security Name|Market Category|Test Issue|Financial Status|Round Lot Size|ETF|NextShares"
)
OTHER_HEADER = "ACT Symbol|Security Name|Exchange|CQS Symbol|ETF|Round Lot Size|Test Issue|NASDAQ Symbol"
#: The test issues NASDAQ and the other exchanges really list (sorted in with the rest).
NASDAQ_TEST_ROW = "ZVZZT|NASDAQ TEST STOCK|G|Y|N|100|N|N"
OTHER_TEST_ROW = "ZTEST|CBOE BZX TEST ISSUE|Z|ZTEST|N|100|Y|ZTEST"

_LETTERS = {mic: letter for letter, mic in EXCHANGES.items()}
_TO_NASDAQ = {token: char for char, token in NASDAQ_SUFFIXES.items() if token}
_TO_CQS = {token: char for char, token in CQS_SUFFIXES.items() if token}
#: ACT writes a preferred with ``$`` (``ABR$D``); the other suffixes as CQS does.
_TO_ACT = {**_TO_CQS, "PR": "$"}


def spell(symbol: str, markers: dict[str, str]) -> str:
    """An MDS symbol in a directory's spelling: ``spell("ABR.PR.D", NASDAQ)`` is ``ABR-D``."""
    root, *parts = symbol.split(".")
    out = [root]
    after_marker = False
    for part in parts:
        if part in markers:
            out.append(markers[part])
            after_marker = True
        else:
            out.append(part if after_marker else f".{part}")
            after_marker = False
    return "".join(out)


def _trailer(now: datetime, columns: int) -> str:
    return f"File Creation Time: {now.astimezone(NEW_YORK):%m%d%Y%H:%M}" + "|" * (columns - 1)


def nasdaq_listed(listings: list[SimListing], now: datetime) -> str:
    rows = [
        f"{s.symbol}|{s.security_name}|{'G' if s.etf else 'Q'}|N|N|100|{'Y' if s.etf else 'N'}|N"
        for s in listings
        if s.exchange == NASDAQ_MIC
    ]
    lines = [NASDAQ_HEADER, *sorted([*rows, NASDAQ_TEST_ROW]), _trailer(now, 8)]
    return "\r\n".join(lines) + "\r\n"


def other_listed(listings: list[SimListing], now: datetime) -> str:
    rows = []
    for s in listings:
        if s.exchange == NASDAQ_MIC:
            continue
        etf = "Y" if s.etf else "N"
        act, cqs, nasdaq = spell(s.symbol, _TO_ACT), spell(s.symbol, _TO_CQS), spell(s.symbol, _TO_NASDAQ)
        rows.append(f"{act}|{s.security_name}|{_LETTERS[s.exchange]}|{cqs}|{etf}|100|N|{nasdaq}")
    lines = [OTHER_HEADER, *sorted([*rows, OTHER_TEST_ROW]), _trailer(now, 8)]
    return "\r\n".join(lines) + "\r\n"


def routes(ctx: SimContext) -> list[Route]:
    listings = sim_listings()

    async def nasdaq(request: Request) -> Response:
        return PlainTextResponse(nasdaq_listed(listings, await ctx.admit()))

    async def other(request: Request) -> Response:
        return PlainTextResponse(other_listed(listings, await ctx.admit()))

    return [
        Route(NASDAQ_LISTED_PATH, nasdaq, methods=["GET"]),
        Route(OTHER_LISTED_PATH, other, methods=["GET"]),
    ]
