"""Index constituents from Wikipedia's public list pages.

=========  ==================================  =====================================================
index      page                                table ``id="constituents"``, the columns read
=========  ==================================  =====================================================
SP500      /wiki/List_of_S%26P_500_companies   Symbol, Security, GICS Sector, GICS Sub-Industry
NASDAQ100  /wiki/Nasdaq-100                    Ticker, Company, GICS Sector, GICS Sub-Industry
DOW30      /wiki/Dow_Jones_Industrial_Average  Company, Symbol, Industry (no sub-industry)
=========  ==================================  =====================================================

Editors reorder columns, rename them (``ICB Industry``/``ICB Subsector`` on the Nasdaq-100
page at times, ``Sector`` for ``Industry``), add footnote markers (``[1]``) and wrap
symbols in exchange links, so the table is found by its id (else by its headers) and
every column by its header text, footnotes and hidden sort keys removed. Symbols go
through :func:`mds_symbol`: ``BRK.B``, ``BF.B`` as written; ``NYSE: MMM`` loses its prefix.
"""

from __future__ import annotations

import re

import httpx
from selectolax.lexbor import LexborHTMLParser, LexborNode

from mds.domain.reference import Constituent, IndexName, mds_symbol
from mds.errors import BadPayload, NoData
from mds.reference._http import USER_AGENT, check_status, get

__all__ = ["DEFAULT_BASE_URL", "PAGES", "PROVIDER", "fetch_constituents", "parse_constituents"]

PROVIDER = "wikipedia"
DEFAULT_BASE_URL = "https://en.wikipedia.org"
PAGES: dict[IndexName, str] = {
    "SP500": "/wiki/List_of_S%26P_500_companies",
    "NASDAQ100": "/wiki/Nasdaq-100",
    "DOW30": "/wiki/Dow_Jones_Industrial_Average",
}
TABLE_ID = "constituents"

#: Accepted header texts per field (lower case), most specific first.
_SYMBOL = ("symbol", "ticker", "ticker symbol")
_NAME = ("security", "company", "company name", "name")
_SECTOR = ("gics sector", "icb industry", "sector", "industry")
_SUB = ("gics sub-industry", "gics sub industry", "icb subsector", "sub-industry", "subsector")

_FOOTNOTE = re.compile(r"\[[^\]]{1,12}\]")
_SPACE = re.compile(r"\s+")
_TICKER = re.compile(r"[A-Z][A-Z0-9]*(\.[A-Z0-9]+)*")


def parse_constituents(html: str | bytes, index: IndexName) -> list[Constituent]:
    """The members ``index``'s page lists, in page order, each symbol once.

    Raises:
        BadPayload: no table with a symbol and a name column, no rows, or a symbol cell
            that holds no ticker; the message names the problem.
    """
    tree = LexborHTMLParser(html.decode("utf-8", errors="replace") if isinstance(html, bytes) else html)
    found = _find_table(tree)
    if found is None:
        raise BadPayload(
            PROVIDER, f"{index}: no table with a Symbol/Ticker and a Security/Company column on the page"
        )
    columns, rows = found
    out: list[Constituent] = []
    seen: set[str] = set()
    for number, cells in enumerate(rows, start=1):
        raw = _cell(cells, columns["symbol"])
        if not raw:
            continue  # a spacer or footer row
        symbol = mds_symbol(raw.rsplit(":", 1)[-1])
        if not _TICKER.fullmatch(symbol):
            raise BadPayload(PROVIDER, f"{index}: row {number}: {raw[:40]!r} is not a ticker")
        if symbol in seen:
            continue
        seen.add(symbol)
        out.append(
            Constituent(
                symbol=symbol,
                name=_cell(cells, columns["name"]),
                sector=_cell(cells, columns.get("sector")),
                sub_industry=_cell(cells, columns.get("sub")),
            )
        )
    if not out:
        raise BadPayload(PROVIDER, f"{index}: the constituents table has no rows")
    return out


def _find_table(tree: LexborHTMLParser) -> tuple[dict[str, int], list[list[str]]] | None:
    """The constituents table's columns (field -> position) and its data rows as text."""
    tables = list(tree.css(f"table#{TABLE_ID}"))
    tables += [t for t in tree.css("table.wikitable") if t.attributes.get("id") != TABLE_ID]
    for table in tables:
        for junk in table.css("sup, style, .sortkey, [style*='display:none']"):
            junk.decompose()
        for br in table.css("br"):
            br.replace_with(" ")
        header: list[str] | None = None
        rows: list[list[str]] = []
        for tr in table.css("tr"):
            cells = [c for c in tr.iter() if c.tag in ("td", "th")]
            if header is None:
                if cells and all(c.tag == "th" for c in cells):
                    header = [_text(c).lower() for c in cells]
                continue
            if any(c.tag == "td" for c in cells):  # a row header <th> may lead a data row
                rows.append([_text(c) for c in cells])
        columns = _columns(header or [])
        if columns is not None:
            return columns, rows
    return None


def _columns(header: list[str]) -> dict[str, int] | None:
    found: dict[str, int] = {}
    for field, names in (("symbol", _SYMBOL), ("name", _NAME), ("sector", _SECTOR), ("sub", _SUB)):
        for name in names:
            if name in header and header.index(name) not in found.values():
                found[field] = header.index(name)
                break
    return found if "symbol" in found and "name" in found else None


def _text(node: LexborNode) -> str:
    return _SPACE.sub(" ", _FOOTNOTE.sub("", node.text())).strip()


def _cell(cells: list[str], position: int | None) -> str:
    return cells[position] if position is not None and position < len(cells) else ""


async def fetch_constituents(client: httpx.AsyncClient, base_url: str, index: IndexName) -> list[Constituent]:
    """GET ``index``'s page from ``base_url`` and parse it.

    Raises:
        ProviderError: transport and status failures typed as usual; ``BadPayload`` for
            a page without the table.
    """
    url = base_url.rstrip("/") + PAGES[index]
    headers = {"User-Agent": USER_AGENT, "Accept": "text/html"}
    response = await get(client, PROVIDER, url, headers=headers)
    check_status(PROVIDER, response)
    if not response.content:
        raise NoData(PROVIDER, f"{index}: empty page", code="empty")
    return parse_constituents(response.text, index)
