"""`mds sim-server --format wikipedia`: the sim's index lists as Wikipedia's list pages.

Serves the three pages :mod:`mds.reference.wikipedia` reads, each with a
``<table class="wikitable sortable" id="constituents">`` under the real headers
(S&P 500: Symbol, Security, GICS Sector, GICS Sub-Industry, Headquarters Location, Date
added, CIK, Founded; Nasdaq-100: Ticker, Company, GICS Sector, GICS Sub-Industry; Dow:
Company as a row header, Exchange, Symbol, Industry, Date added, Notes, Index weighting),
header links and footnote markers as the pages have them, and, on the S&P page, the
"changes" table that also has a Ticker column.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from mds.domain.reference import Constituent, IndexName
from mds.providers.sim.reference import SIM_LISTINGS, sim_constituents
from mds.simserver.context import SimContext

#: Starlette matches the decoded path: ``%26`` arrives as ``&``.
PATHS: dict[str, IndexName] = {
    "/wiki/List_of_S&P_500_companies": "SP500",
    "/wiki/Nasdaq-100": "NASDAQ100",
    "/wiki/Dow_Jones_Industrial_Average": "DOW30",
}
_TITLES = {
    "SP500": "List of S&amp;P 500 companies",
    "NASDAQ100": "Nasdaq-100",
    "DOW30": "Dow Jones Industrial Average",
}
_NASDAQ = frozenset(s.symbol for s in SIM_LISTINGS if s.exchange == "XNAS")
_GICS = '<a href="/wiki/Global_Industry_Classification_Standard" title="Global Industry Classification Standard">GICS</a>'
_NOTE = '<sup id="cite_ref-1" class="reference"><a href="#cite_note-1">[1]</a></sup>'


def _quote_link(symbol: str) -> str:
    if symbol in _NASDAQ:
        href = f"https://www.nasdaq.com/market-activity/stocks/{symbol.lower()}"
    else:
        href = f"https://www.nyse.com/quote/XNYS:{symbol}"
    return f'<a rel="nofollow" class="external text" href="{escape(href)}">{escape(symbol)}</a>'


def _company(c: Constituent) -> str:
    return f'<a href="/wiki/{escape(c.name.replace(" ", "_"))}" title="{escape(c.name)}">{escape(c.name)}</a>'


def _row(cells: list[str], *, row_header: bool = False) -> str:
    first, *rest = cells
    lead = f'<th scope="row">{first}\n</th>' if row_header else f"<td>{first}\n</td>"
    return "<tr>\n" + lead + "".join(f"\n<td>{c}\n</td>" for c in rest) + "</tr>"


def _sp500(members: list[Constituent]) -> str:
    header = (
        '<tr>\n<th><a href="/wiki/Ticker_symbol" title="Ticker symbol">Symbol</a>\n</th>\n<th>Security\n</th>'
        f"\n<th>{_GICS} Sector\n</th>\n<th>{_GICS} Sub-Industry\n</th>\n<th>Headquarters Location\n</th>"
        f'\n<th>Date added{_NOTE}\n</th>\n<th><a href="/wiki/Central_Index_Key" title="Central Index Key">'
        "CIK</a>\n</th>\n<th>Founded\n</th></tr>"
    )
    rows = [
        _row([_quote_link(c.symbol), _company(c), escape(c.sector), escape(c.sub_industry), "", "", "", ""])
        for c in members
    ]
    changes = (
        '<table class="wikitable sortable" id="changes">\n<tbody><tr>\n<th rowspan="2">Effective Date\n</th>'
        '\n<th colspan="2">Added\n</th>\n<th colspan="2">Removed\n</th>\n<th rowspan="2">Reason\n</th></tr>'
        "\n<tr>\n<th>Ticker\n</th>\n<th>Security\n</th>\n<th>Ticker\n</th>\n<th>Security\n</th></tr>"
        "\n<tr>\n<td>January 2, 2025\n</td>\n<td>ZZZZ\n</td>\n<td>Sim Added Co.\n</td>\n<td>YYYY\n</td>"
        "\n<td>Sim Removed Co.\n</td>\n<td>Market capitalization change.\n</td></tr>\n</tbody></table>"
    )
    return _table(header, rows) + "\n<h2>Selected changes</h2>\n" + changes


def _nasdaq100(members: list[Constituent]) -> str:
    header = (
        "<tr>\n<th>Ticker\n</th>\n<th>Company\n</th>"
        f"\n<th>{_GICS} Sector{_NOTE}\n</th>\n<th>{_GICS} Sub-Industry{_NOTE}\n</th></tr>"
    )
    rows = [_row([escape(c.symbol), _company(c), escape(c.sector), escape(c.sub_industry)]) for c in members]
    return _table(header, rows)


def _dow30(members: list[Constituent]) -> str:
    header = (
        "<tr>\n<th>Company\n</th>\n<th>Exchange\n</th>\n<th>Symbol\n</th>\n<th>Industry\n</th>"
        f"\n<th>Date added\n</th>\n<th>Notes\n</th>\n<th>Index weighting{_NOTE}\n</th></tr>"
    )
    rows = [
        _row(
            [
                _company(c),
                '<a href="/wiki/Nasdaq" title="Nasdaq">Nasdaq</a>'
                if c.symbol in _NASDAQ
                else '<a href="/wiki/New_York_Stock_Exchange" title="New York Stock Exchange">NYSE</a>',
                _quote_link(c.symbol),
                escape(c.sector),
                "",
                "",
                f"{100 / len(members):.2f}%",
            ],
            row_header=True,
        )
        for c in members
    ]
    return _table(header, rows)


def _table(header: str, rows: list[str]) -> str:
    return (
        '<table class="wikitable sortable" id="constituents">\n<tbody>'
        + header
        + "\n"
        + "\n".join(rows)
        + "\n</tbody></table>"
    )


_RENDER = {"SP500": _sp500, "NASDAQ100": _nasdaq100, "DOW30": _dow30}


def page(index: IndexName) -> str:
    """The whole HTML page for ``index``."""
    body = _RENDER[index](sim_constituents(index))
    title = _TITLES[index]
    return (
        f'<!DOCTYPE html>\n<html lang="en" dir="ltr">\n<head>\n<meta charset="UTF-8">\n'
        f"<title>{title} - Wikipedia</title>\n</head>\n<body>\n"
        f'<h1 id="firstHeading">{title}</h1>\n<div id="mw-content-text">\n'
        f"<p>The sim's list of {title}.</p>\n{body}\n</div>\n</body>\n</html>\n"
    )


def routes(ctx: SimContext) -> list[Route]:
    def serve(index: IndexName) -> Callable[[Request], Awaitable[Response]]:
        async def wiki(request: Request) -> Response:
            await ctx.admit()
            return HTMLResponse(page(index))

        return wiki

    return [Route(path, serve(index), methods=["GET"]) for path, index in PATHS.items()]
