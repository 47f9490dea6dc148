"""The sim's reference data: index lists and a symbol directory for ``--demo`` and sim-server.

Every stock of the demo universe (:data:`mds.ingest.universe.DEMO_UNIVERSE`; a test keeps
the two in step) is listed with a real company name, its GICS sector and sub-industry and
its listing exchange; SPY, QQQ, IWM and DIA are ETFs and in no index. Index lists hold the universe's real members
(every stock is in the S&P 500; the NASDAQ-listed ones in the Nasdaq-100; the Dow's in
the Dow). The directory adds class shares, a preferred, a warrant and a unit (so the
symbol conventions show) and deterministic synthetic names, so it reads like a directory.
Nothing here is random or read from the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mds.domain.reference import Constituent, IndexName, ListedSymbol, SymbolDirectory

__all__ = [
    "SIM_INDEXES",
    "SIM_LISTINGS",
    "SimListing",
    "sim_constituents",
    "sim_directory",
]

_IT, _CS, _CD, _CP = (
    "Information Technology",
    "Communication Services",
    "Consumer Discretionary",
    "Consumer Staples",
)
_FIN, _HC, _EN, _IND = "Financials", "Health Care", "Energy", "Industrials"
_NASDAQ, _NYSE, _ARCA, _AMEX = "XNAS", "XNYS", "ARCX", "XASE"


@dataclass(frozen=True, slots=True)
class SimListing:
    """One listed security of the sim: the company, its classification and listing."""

    symbol: str
    name: str
    exchange: str
    sector: str = ""
    sub_industry: str = ""
    etf: bool = False

    @property
    def security_name(self) -> str:
        """How the directory names it: ``Apple Inc. - Common Stock`` on NASDAQ, as NASDAQ does."""
        if self.etf or not self.sector:
            return self.name
        return f"{self.name} - Common Stock" if self.exchange == _NASDAQ else f"{self.name} Common Stock"


_L = SimListing
_STOCKS: tuple[SimListing, ...] = (
    _L("AAPL", "Apple Inc.", _NASDAQ, _IT, "Technology Hardware, Storage & Peripherals"),
    _L("MSFT", "Microsoft", _NASDAQ, _IT, "Systems Software"),
    _L("NVDA", "Nvidia", _NASDAQ, _IT, "Semiconductors"),
    _L("AMZN", "Amazon", _NASDAQ, _CD, "Broadline Retail"),
    _L("GOOGL", "Alphabet Inc. (Class A)", _NASDAQ, _CS, "Interactive Media & Services"),
    _L("META", "Meta Platforms", _NASDAQ, _CS, "Interactive Media & Services"),
    _L("TSLA", "Tesla, Inc.", _NASDAQ, _CD, "Automobile Manufacturers"),
    _L("JPM", "JPMorgan Chase", _NYSE, _FIN, "Diversified Banks"),
    _L("V", "Visa Inc.", _NYSE, _FIN, "Transaction & Payment Processing Services"),
    _L("UNH", "UnitedHealth Group", _NYSE, _HC, "Managed Health Care"),
    _L("XOM", "ExxonMobil", _NYSE, _EN, "Integrated Oil & Gas"),
    _L("JNJ", "Johnson & Johnson", _NYSE, _HC, "Pharmaceuticals"),
    _L("WMT", "Walmart", _NYSE, _CP, "Consumer Staples Merchandise Retail"),
    _L("PG", "Procter & Gamble", _NYSE, _CP, "Personal Care Products"),
    _L("MA", "Mastercard", _NYSE, _FIN, "Transaction & Payment Processing Services"),
    _L("HD", "Home Depot (The)", _NYSE, _CD, "Home Improvement Retail"),
    _L("CVX", "Chevron Corporation", _NYSE, _EN, "Integrated Oil & Gas"),
    _L("KO", "Coca-Cola Company (The)", _NYSE, _CP, "Soft Drinks & Non-alcoholic Beverages"),
    _L("PEP", "PepsiCo", _NASDAQ, _CP, "Soft Drinks & Non-alcoholic Beverages"),
    _L("COST", "Costco", _NASDAQ, _CP, "Consumer Staples Merchandise Retail"),
    _L("AVGO", "Broadcom", _NASDAQ, _IT, "Semiconductors"),
    _L("ADBE", "Adobe Inc.", _NASDAQ, _IT, "Application Software"),
    _L("CRM", "Salesforce", _NYSE, _IT, "Application Software"),
    _L("NFLX", "Netflix", _NASDAQ, _CS, "Movies & Entertainment"),
    _L("AMD", "Advanced Micro Devices", _NASDAQ, _IT, "Semiconductors"),
    _L("INTC", "Intel", _NASDAQ, _IT, "Semiconductors"),
    _L("BA", "Boeing", _NYSE, _IND, "Aerospace & Defense"),
    _L("CAT", "Caterpillar Inc.", _NYSE, _IND, "Construction Machinery & Heavy Transportation Equipment"),
    _L("DE", "Deere & Company", _NYSE, _IND, "Agricultural & Farm Machinery"),
    _L("GE", "GE Aerospace", _NYSE, _IND, "Aerospace & Defense"),
    _L("HON", "Honeywell", _NASDAQ, _IND, "Industrial Conglomerates"),
    _L("IBM", "IBM", _NYSE, _IT, "IT Consulting & Other Services"),
    _L("MMM", "3M", _NYSE, _IND, "Industrial Conglomerates"),
    _L("NKE", "Nike, Inc.", _NYSE, _CD, "Apparel, Accessories & Luxury Goods"),
    _L("ORCL", "Oracle Corporation", _NYSE, _IT, "Application Software"),
    _L("PFE", "Pfizer", _NYSE, _HC, "Pharmaceuticals"),
    _L("SBUX", "Starbucks", _NASDAQ, _CD, "Restaurants"),
    _L("T", "AT&T", _NYSE, _CS, "Integrated Telecommunication Services"),
    _L("TGT", "Target Corporation", _NYSE, _CP, "Consumer Staples Merchandise Retail"),
    _L("UPS", "United Parcel Service", _NYSE, _IND, "Air Freight & Logistics"),
    _L("VZ", "Verizon", _NYSE, _CS, "Integrated Telecommunication Services"),
    _L("DIS", "Walt Disney Company (The)", _NYSE, _CS, "Movies & Entertainment"),
    _L("MCD", "McDonald's", _NYSE, _CD, "Restaurants"),
    _L("LOW", "Lowe's", _NYSE, _CD, "Home Improvement Retail"),
    _L("GS", "Goldman Sachs", _NYSE, _FIN, "Investment Banking & Brokerage"),
    _L("MS", "Morgan Stanley", _NYSE, _FIN, "Investment Banking & Brokerage"),
)
_ETFS: tuple[SimListing, ...] = (
    _L("SPY", "SPDR S&P 500 ETF Trust", _ARCA, etf=True),
    _L("QQQ", "Invesco QQQ Trust, Series 1", _NASDAQ, etf=True),
    _L("IWM", "iShares Russell 2000 ETF", _ARCA, etf=True),
    _L("DIA", "SPDR Dow Jones Industrial Average ETF Trust", _ARCA, etf=True),
)
#: Listed but outside the demo universe: one of each symbol shape the directory translates.
_SHAPES: tuple[SimListing, ...] = (
    _L("BRK.A", "Berkshire Hathaway Inc. Class A", _NYSE),
    _L("BRK.B", "Berkshire Hathaway Inc. Class B", _NYSE),
    _L("BF.B", "Brown-Forman Corporation Class B", _NYSE),
    _L("ABR.PR.D", "Arbor Realty Trust 6.375% Series D Cumulative Redeemable Preferred Stock", _NYSE),
    _L("AAC.WS", "Ares Acquisition Corporation Redeemable Warrants", _NYSE),
    _L("AAC.U", "Ares Acquisition Corporation Units", _NYSE),
    _L("IEFA", "iShares Core MSCI EAFE ETF", "BATS", etf=True),
    _L("IMO", "Imperial Oil Limited", _AMEX),
)

#: Every listing of the sim: the demo universe (stocks, ETFs) and the shapes above.
SIM_LISTINGS: tuple[SimListing, ...] = _STOCKS + _ETFS + _SHAPES

_DOW = frozenset(
    [
        "AAPL",
        "AMZN",
        "BA",
        "CAT",
        "CRM",
        "CVX",
        "DIS",
        "GS",
        "HD",
        "HON",
        "IBM",
        "JNJ",
        "JPM",
        "KO",
        "MCD",
        "MMM",
        "MSFT",
        "NKE",
        "NVDA",
        "PG",
        "UNH",
        "V",
        "VZ",
        "WMT",
    ]
)
SIM_INDEXES: dict[IndexName, tuple[str, ...]] = {
    "SP500": tuple(s.symbol for s in _STOCKS),
    "NASDAQ100": tuple(s.symbol for s in _STOCKS if s.exchange == _NASDAQ),
    "DOW30": tuple(s.symbol for s in _STOCKS if s.symbol in _DOW),
}

_BY_SYMBOL = {s.symbol: s for s in SIM_LISTINGS}
_SYNTHETIC_EXCHANGES = (_NASDAQ, _NASDAQ, _NYSE, _ARCA, _AMEX)


def sim_constituents(index: IndexName) -> list[Constituent]:
    """``index``'s members as the sim lists them (a new list each call)."""
    return [
        Constituent(
            symbol=s,
            name=_BY_SYMBOL[s].name,
            sector=_BY_SYMBOL[s].sector,
            sub_industry=_BY_SYMBOL[s].sub_industry,
        )
        for s in SIM_INDEXES[index]
    ]


def synthetic_listings(count: int) -> list[SimListing]:
    """``count`` made-up listings, ``SIMAA``, ``SIMAB`` …: filler that looks like a directory."""
    out = []
    for i in range(count):
        suffix = chr(ord("A") + i // 26 % 26) + chr(ord("A") + i % 26)
        exchange = _SYNTHETIC_EXCHANGES[i % len(_SYNTHETIC_EXCHANGES)]
        etf = i % 7 == 3
        name = f"Sim Synthetic {suffix} {'ETF' if etf else 'Holdings Inc.'}"
        out.append(SimListing(f"SIM{suffix}", name, exchange, "" if etf else _IND, "", etf))
    return out


def sim_listings(synthetic: int = 120) -> list[SimListing]:
    """All sim listings plus ``synthetic`` filler rows (at most 676)."""
    return [*SIM_LISTINGS, *synthetic_listings(min(synthetic, 26 * 26))]


def sim_directory(file_time: datetime | None = None, *, synthetic: int = 120) -> SymbolDirectory:
    """The sim's directory as parsed records: what a parse of the sim-server's files yields."""
    rows = [
        ListedSymbol(symbol=s.symbol, name=s.security_name, exchange=s.exchange, etf=s.etf)
        for s in sim_listings(synthetic)
    ]
    return SymbolDirectory(rows, file_time, "sim")
