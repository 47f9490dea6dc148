"""NASDAQ Trader symbol directory: ``nasdaqlisted.txt`` and ``otherlisted.txt``.

Both files (https://www.nasdaqtrader.com/trader.aspx?id=symboldirdefs) are pipe-delimited
with one header line and a last row ``File Creation Time: mmddyyyyhh:mm|||…`` that is no
symbol: its time is New York wall time and becomes ``SymbolDirectory.file_time`` (UTC).
A file without that trailer is refused as truncated. Columns are found by header name;
rows with ``Test Issue`` = ``Y`` are dropped; ``ETF`` = ``Y`` sets ``ListedSymbol.etf``.

Symbols. NASDAQ-listed symbols carry no separators (``GOOGL``, warrants ``ACHRW``) and
are kept as they are. The other-listed file spells each row three ways, e.g. for a
preferred: ACT ``ABR$D``, CQS ``ABRpD``, NASDAQ ``ABR-D``. MDS writes every suffix after
a dot, in upper case, so a symbol is URL-safe and :func:`mds_symbol` leaves it alone:

=============  ==========  ==========  =============
kind           CQS         NASDAQ      MDS
=============  ==========  ==========  =============
class share    ``BRK.B``   ``BRK.B``   ``BRK.B``
preferred      ``ABRp``    ``ABR-``    ``ABR.PR``
preferred D    ``ABRpD``   ``ABR-D``   ``ABR.PR.D``
warrant        ``AAC.WS``  ``AAC+``    ``AAC.WS``
unit           ``AAC.U``   ``AAC=``    ``AAC.U``
right          ``XYZr``    ``XYZ^``    ``XYZ.RT``
when issued    ``XYZw``    ``XYZ#``    ``XYZ.WI``
=============  ==========  ==========  =============

(and NASDAQ ``$`` when distributed ``.WD``, ``*`` called ``.CL``, ``%`` convertible
``.CV``, ``@`` partly paid ``.PP``, ``!`` ``.EC``, ``~`` test ``.TEST``). The symbol is
read from the ``NASDAQ Symbol`` column, else from ``CQS Symbol``, else ``ACT Symbol``;
``ListedSymbol.source_symbol`` keeps the CQS spelling (what consolidated feeds quote)
when it differs from the MDS one.

Exchanges are ISO 10383 MICs: NASDAQ-listed rows ``XNAS``; the other-listed ``Exchange``
letters ``N`` NYSE ``XNYS``, ``A`` NYSE American ``XASE``, ``P`` NYSE Arca ``ARCX``,
``Z`` Cboe BZX ``BATS``, ``V`` IEX ``IEXG``. A letter not in that list is kept as it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import httpx

from mds.domain.reference import ListedSymbol, SymbolDirectory
from mds.errors import BadPayload
from mds.providers.timeconv import NEW_YORK
from mds.reference._http import USER_AGENT, check_status, get

__all__ = [
    "CQS_SUFFIXES",
    "DEFAULT_BASE_URL",
    "EXCHANGES",
    "NASDAQ_LISTED_PATH",
    "NASDAQ_MIC",
    "NASDAQ_SUFFIXES",
    "OTHER_LISTED_PATH",
    "PROVIDER",
    "fetch_directory",
    "merge_directories",
    "parse_nasdaq_listed",
    "parse_other_listed",
    "read_directory_files",
    "translate_symbol",
]

PROVIDER = "nasdaqtrader"
DEFAULT_BASE_URL = "https://www.nasdaqtrader.com"
NASDAQ_LISTED_PATH = "/dynamic/SymDir/nasdaqlisted.txt"
OTHER_LISTED_PATH = "/dynamic/SymDir/otherlisted.txt"

NASDAQ_MIC = "XNAS"
#: otherlisted.txt ``Exchange`` letter -> MIC.
EXCHANGES: dict[str, str] = {"N": "XNYS", "A": "XASE", "P": "ARCX", "Z": "BATS", "V": "IEXG"}

#: Suffix markers of each spelling -> the MDS suffix part ("" = a class letter follows).
NASDAQ_SUFFIXES: dict[str, str] = {
    ".": "",
    "-": "PR",
    "+": "WS",
    "=": "U",
    "^": "RT",
    "#": "WI",
    "$": "WD",
    "*": "CL",
    "%": "CV",
    "@": "PP",
    "!": "EC",
    "~": "TEST",
}
CQS_SUFFIXES: dict[str, str] = {".": "", "p": "PR", "r": "RT", "w": "WI"}

_NASDAQ_COLUMNS = ("Symbol", "Security Name", "Test Issue", "ETF")
_OTHER_COLUMNS = ("ACT Symbol", "Security Name", "Exchange", "CQS Symbol", "ETF", "Test Issue")
_TRAILER = "File Creation Time:"


def translate_symbol(text: str, suffixes: Mapping[str, str]) -> str:
    """A directory spelling in MDS's convention (table in the module docstring).

    ``translate_symbol("ABR-D", NASDAQ_SUFFIXES)`` is ``ABR.PR.D``; so is
    ``translate_symbol("ABRpD", CQS_SUFFIXES)``.
    """
    text = text.strip()
    if text.isalnum() and (text.isupper() or text.isdigit()):
        return text  # the common case: a plain root
    parts: list[str] = []
    current: list[str] = []
    for char in text:
        token = suffixes.get(char)
        if token is None:
            current.append(char)
            continue
        if current:
            parts.append("".join(current))
            current = []
        if token:
            parts.append(token)
    if current:
        parts.append("".join(current))
    return ".".join(parts).upper()


def parse_nasdaq_listed(text: str, *, source: str = "nasdaqlisted.txt") -> SymbolDirectory:
    """``nasdaqlisted.txt`` -> its non-test rows, all listed on NASDAQ (``XNAS``)."""
    col, rows, file_time = _table(text, _NASDAQ_COLUMNS, source)
    out: list[ListedSymbol] = []
    seen: set[str] = set()
    for cells in rows:
        if cells[col["Test Issue"]] == "Y":
            continue
        raw = cells[col["Symbol"]].strip()
        symbol = translate_symbol(raw, NASDAQ_SUFFIXES)
        if symbol in seen:
            continue
        seen.add(symbol)
        out.append(
            ListedSymbol(
                symbol=symbol,
                name=cells[col["Security Name"]].strip(),
                exchange=NASDAQ_MIC,
                etf=cells[col["ETF"]] == "Y",
                source_symbol=raw if raw != symbol else "",
            )
        )
    return SymbolDirectory(out, file_time, source)


def parse_other_listed(text: str, *, source: str = "otherlisted.txt") -> SymbolDirectory:
    """``otherlisted.txt`` -> its non-test rows, with MIC exchanges and MDS symbols."""
    col, rows, file_time = _table(text, _OTHER_COLUMNS, source)
    nasdaq_col = col.get("NASDAQ Symbol")
    out: list[ListedSymbol] = []
    seen: set[str] = set()
    for cells in rows:
        if cells[col["Test Issue"]] == "Y":
            continue
        cqs = cells[col["CQS Symbol"]].strip()
        nasdaq = cells[nasdaq_col].strip() if nasdaq_col is not None else ""
        if nasdaq:
            symbol = translate_symbol(nasdaq, NASDAQ_SUFFIXES)
        elif cqs:
            symbol = translate_symbol(cqs, CQS_SUFFIXES)
        else:
            symbol = cells[col["ACT Symbol"]].strip().upper()
        if symbol in seen:
            continue
        seen.add(symbol)
        letter = cells[col["Exchange"]].strip()
        out.append(
            ListedSymbol(
                symbol=symbol,
                name=cells[col["Security Name"]].strip(),
                exchange=EXCHANGES.get(letter, letter),
                etf=cells[col["ETF"]] == "Y",
                source_symbol=cqs if cqs and cqs != symbol else "",
            )
        )
    return SymbolDirectory(out, file_time, source)


def _table(
    text: str, required: tuple[str, ...], source: str
) -> tuple[dict[str, int], list[list[str]], datetime]:
    """Column index by header name, the data rows split into cells, and the trailer's time."""
    lines = [line for line in text.lstrip("\ufeff").splitlines() if line.strip()]
    if not lines:
        raise BadPayload(PROVIDER, f"{source}: empty file")
    header = lines[0].split("|")
    col = {name.strip(): i for i, name in enumerate(header)}
    missing = [name for name in required if name not in col]
    if missing:
        raise BadPayload(PROVIDER, f"{source}: header lacks {', '.join(missing)}: {lines[0][:120]!r}")
    if not lines[-1].startswith(_TRAILER):
        raise BadPayload(PROVIDER, f"{source}: no '{_TRAILER}' trailer; the file is truncated")
    file_time = _file_time(lines[-1], source)
    width = len(header)
    rows = [line.split("|") for line in lines[1:-1]]
    for number, cells in enumerate(rows, start=2):
        if len(cells) != width:
            raise BadPayload(PROVIDER, f"{source}: line {number} has {len(cells)} fields, the header {width}")
        if not cells[0].strip():
            raise BadPayload(PROVIDER, f"{source}: line {number} has no symbol")
    return col, rows, file_time


def _file_time(trailer: str, source: str) -> datetime:
    stamp = trailer[len(_TRAILER) :].split("|", 1)[0].strip()
    try:
        local = datetime.strptime(stamp, "%m%d%Y%H:%M")
    except ValueError:
        raise BadPayload(PROVIDER, f"{source}: bad File Creation Time {stamp!r}") from None
    return local.replace(tzinfo=NEW_YORK).astimezone(UTC)


def merge_directories(*dirs: SymbolDirectory) -> SymbolDirectory:
    """One directory: the first row of each symbol wins, the newest ``file_time`` stays."""
    out: list[ListedSymbol] = []
    seen: set[str] = set()
    for directory in dirs:
        for row in directory.symbols:
            if row.symbol not in seen:
                seen.add(row.symbol)
                out.append(row)
    times = [d.file_time for d in dirs if d.file_time is not None]
    sources = list(dict.fromkeys(d.source for d in dirs if d.source))
    return SymbolDirectory(out, max(times) if times else None, ", ".join(sources))


def read_directory_files(paths: Iterable[str | Path]) -> SymbolDirectory:
    """Directory files from disk, each recognised by its header, merged in the given order.

    Raises:
        BadPayload: a file cannot be read, is neither file, or is malformed; the message
            starts with its path.
    """
    parsed: list[SymbolDirectory] = []
    for path in map(Path, paths):
        try:
            text = path.read_bytes().decode("utf-8", errors="replace")
        except OSError as exc:
            raise BadPayload(PROVIDER, f"{path}: cannot read: {exc.strerror or exc}") from None
        if not text.strip():
            raise BadPayload(PROVIDER, f"{path}: empty file")
        first = text.lstrip("\ufeff").split("\n", 1)[0].split("|", 1)[0].strip()
        if first == "Symbol":
            parsed.append(parse_nasdaq_listed(text, source=str(path)))
        elif first == "ACT Symbol":
            parsed.append(parse_other_listed(text, source=str(path)))
        else:
            raise BadPayload(
                PROVIDER,
                f"{path}: not nasdaqlisted.txt or otherlisted.txt (first column {first[:40]!r})",
            )
    return merge_directories(*parsed)


async def fetch_directory(client: httpx.AsyncClient, base_url: str = DEFAULT_BASE_URL) -> SymbolDirectory:
    """Both files from ``base_url`` (NASDAQ-listed first), merged.

    Raises:
        ProviderError: ``Unavailable``/``RateLimited``/… for transport and status
            failures, ``BadPayload`` for a body that is not the directory.
    """
    base = base_url.rstrip("/")
    found: list[SymbolDirectory] = []
    for path, parse in ((NASDAQ_LISTED_PATH, parse_nasdaq_listed), (OTHER_LISTED_PATH, parse_other_listed)):
        url = base + path
        response = await get(client, PROVIDER, url, headers={"User-Agent": USER_AGENT})
        check_status(PROVIDER, response)
        found.append(parse(response.text, source=url))
    return merge_directories(*found)
