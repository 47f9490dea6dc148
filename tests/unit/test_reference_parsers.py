"""Reference-data parsers on real-format fixtures (tests/fixtures/reference/*/SOURCE.md):
the NASDAQ Trader directory, Wikipedia's list tables and FMP's ``/stable`` lists."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mds.domain.reference import INDEXES, IndexName, mds_symbol
from mds.errors import BadPayload, NoData
from mds.ingest.universe import DEMO_UNIVERSE
from mds.providers.sim.reference import (
    SIM_INDEXES,
    SIM_LISTINGS,
    sim_constituents,
    sim_directory,
    sim_listings,
)
from mds.reference import fmp, wikipedia
from mds.reference.nasdaqtrader import (
    CQS_SUFFIXES,
    NASDAQ_SUFFIXES,
    merge_directories,
    parse_nasdaq_listed,
    parse_other_listed,
    read_directory_files,
    translate_symbol,
)
from mds.simserver.formats import nasdaqtrader as nasdaqtrader_wire
from mds.simserver.formats import wikipedia as wikipedia_wire
from tests.helpers import utc

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "reference"
NASDAQ_LISTED = FIXTURES / "nasdaqtrader" / "nasdaqlisted.txt"
OTHER_LISTED = FIXTURES / "nasdaqtrader" / "otherlisted.txt"


def text(path: Path) -> str:
    return path.read_bytes().decode()


def html(name: str) -> str:
    return (FIXTURES / "wikipedia" / name).read_text()


def body(name: str) -> bytes:
    return (FIXTURES / "fmp" / name).read_bytes()


# -- NASDAQ Trader ---------------------------------------------------------------------------


def test_nasdaq_listed_rows_trailer_and_test_issues() -> None:
    d = parse_nasdaq_listed(text(NASDAQ_LISTED))
    symbols = [s.symbol for s in d.symbols]
    # 31 lines between header and trailer, three of them test issues.
    assert len(symbols) == 28
    assert {"ZVZZT", "ZWZZT", "ZXYZ.A"}.isdisjoint(symbols)
    assert not any(s.startswith("File Creation") for s in symbols)
    # 14 Mar 2025 17:02 New York is EDT (DST began 9 Mar): 21:02 UTC.
    assert d.file_time == utc(2025, 3, 14, 21, 2)
    assert {s.exchange for s in d.symbols} == {"XNAS"}
    assert d.source == "nasdaqlisted.txt"


def test_nasdaq_listed_fields() -> None:
    by_symbol = {s.symbol: s for s in parse_nasdaq_listed(text(NASDAQ_LISTED)).symbols}
    assert by_symbol["AAPL"].name == "Apple Inc. - Common Stock"
    assert {s for s, row in by_symbol.items() if row.etf} == {"AAPB", "AAXJ", "QQQ", "TLT"}
    # NASDAQ's own suffix letters are part of the symbol, not separators.
    assert by_symbol["AACBU"].source_symbol == "" and "AGNCN" in by_symbol
    assert by_symbol["GOOG"] != by_symbol["GOOGL"]


def test_other_listed_symbol_convention_and_exchanges() -> None:
    d = parse_other_listed(text(OTHER_LISTED))
    by_symbol = {s.symbol: s for s in d.symbols}
    assert {"NTEST", "ZTEST"}.isdisjoint(by_symbol)
    assert len(d.symbols) == 26
    # Class shares keep their dot and need no source spelling.
    for cls in ("BRK.A", "BRK.B", "BF.A", "BF.B"):
        assert by_symbol[cls].source_symbol == ""
    # Preferreds, units and warrants: one MDS spelling, the CQS one kept.
    assert by_symbol["ABR.PR.D"].source_symbol == "ABRpD"
    assert by_symbol["GS.PR.A"].source_symbol == "GSpA"
    assert "ABR.PR.E" in by_symbol and "ABR.D" not in by_symbol
    assert by_symbol["AAM.U"].source_symbol == "" and by_symbol["AAM.WS"].source_symbol == ""
    assert {s: by_symbol[s].exchange for s in ("A", "AAA", "AAAU", "IMO")} == {
        "A": "XNYS",
        "AAA": "ARCX",
        "AAAU": "BATS",
        "IMO": "XASE",
    }
    assert {s for s, row in by_symbol.items() if row.etf} == {"AAA", "AAAU", "DIA", "IEFA", "IWM", "SPY"}
    assert by_symbol["AA"].name == "Alcoa Corporation Common Stock"  # the file's trailing blank
    assert d.file_time == utc(2025, 3, 14, 21, 2)
    # MDS symbols are stable under the vendor-spelling translation.
    assert all(mds_symbol(s) == s for s in by_symbol)


@pytest.mark.parametrize(
    ("nasdaq", "cqs", "mds"),
    [
        ("BRK.B", "BRK.B", "BRK.B"),
        ("ABR-D", "ABRpD", "ABR.PR.D"),
        ("ABR-", "ABRp", "ABR.PR"),
        ("AAC+", "AAC.WS", "AAC.WS"),
        ("AAC=", "AAC.U", "AAC.U"),
        ("XYZ^", "XYZr", "XYZ.RT"),
        ("XYZ#", "XYZw", "XYZ.WI"),
        ("XYZ-A#", "XYZpAw", "XYZ.PR.A.WI"),
        ("AAPL", "AAPL", "AAPL"),
    ],
)
def test_symbol_spellings_meet(nasdaq: str, cqs: str, mds: str) -> None:
    assert translate_symbol(nasdaq, NASDAQ_SUFFIXES) == mds
    assert translate_symbol(cqs, CQS_SUFFIXES) == mds
    # The sim-server writes them back the way the file does.
    assert nasdaqtrader_wire.spell(mds, {t: c for c, t in NASDAQ_SUFFIXES.items() if t}) == nasdaq
    assert nasdaqtrader_wire.spell(mds, {t: c for c, t in CQS_SUFFIXES.items() if t}) == cqs


def test_columns_are_found_by_name_not_position() -> None:
    lines = text(OTHER_LISTED).splitlines()
    header, rows, trailer = lines[0].split("|"), lines[1:-1], lines[-1]
    order = [7, 6, 5, 4, 3, 2, 1, 0]  # every column moved
    shuffled = ["|".join(header[i] for i in order)]
    shuffled += ["|".join(r.split("|")[i] for i in order) for r in rows]
    reordered = parse_other_listed("\n".join([*shuffled, trailer]))
    assert reordered.symbols == parse_other_listed(text(OTHER_LISTED)).symbols


def test_directory_without_nasdaq_symbol_column_reads_cqs() -> None:
    lines = text(OTHER_LISTED).splitlines()
    cut = ["|".join(line.split("|")[:7]) for line in lines]
    by_symbol = {s.symbol: s for s in parse_other_listed("\n".join(cut)).symbols}
    assert "ABR.PR.D" in by_symbol and "AAM.WS" in by_symbol and "BRK.B" in by_symbol


def test_merge_and_read_files(tmp_path: Path) -> None:
    both = read_directory_files([OTHER_LISTED, NASDAQ_LISTED])
    assert len(both.symbols) == 28 + 26
    assert both.source == f"{OTHER_LISTED}, {NASDAQ_LISTED}"
    assert both.file_time == utc(2025, 3, 14, 21, 2)
    # First wins on a symbol both name; the newest file time stays.
    later = text(NASDAQ_LISTED).replace("0314202517:02", "0315202509:30").replace("Apple Inc.", "Apple")
    newer = parse_nasdaq_listed(later, source="later")
    merged = merge_directories(parse_nasdaq_listed(text(NASDAQ_LISTED)), newer)
    assert next(s for s in merged.symbols if s.symbol == "AAPL").name == "Apple Inc. - Common Stock"
    assert merged.file_time == utc(2025, 3, 15, 13, 30)
    assert merged.source == "nasdaqlisted.txt, later"
    assert len(merged.symbols) == 28


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "empty file"),
        ("Nasdaq Traded|Symbol|Security Name\nY|AAPL|Apple\n", "not nasdaqlisted.txt or otherlisted.txt"),
        ("<html><body>Service unavailable</body></html>", "not nasdaqlisted.txt or otherlisted.txt"),
    ],
)
def test_unrecognised_file_names_the_file(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "symbols.txt"
    path.write_text(content)
    with pytest.raises(BadPayload) as caught:
        read_directory_files([path])
    assert str(path) in str(caught.value) and problem in str(caught.value)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(BadPayload, match=r"nope\.txt: cannot read"):
        read_directory_files([tmp_path / "nope.txt"])


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nasdaqlisted.txt"
    path.write_text("\n".join(text(NASDAQ_LISTED).splitlines()[:10]))
    with pytest.raises(BadPayload, match="trailer; the file is truncated") as caught:
        read_directory_files([path])
    assert str(path) in str(caught.value)


def test_malformed_rows_name_the_line_and_problem() -> None:
    lines = text(NASDAQ_LISTED).splitlines()
    short = [*lines[:3], "AAPL|Apple Inc.|Q|N", *lines[3:]]
    with pytest.raises(BadPayload, match="line 4 has 4 fields, the header 8"):
        parse_nasdaq_listed("\n".join(short))
    no_column = ["|".join(c for c in line.split("|") if c != "ETF") for line in lines[:1]] + lines[1:]
    with pytest.raises(BadPayload, match="header lacks ETF"):
        parse_nasdaq_listed("\n".join(no_column))
    bad_time = [*lines[:-1], "File Creation Time: 13142025xx:02|||||||"]
    with pytest.raises(BadPayload, match="bad File Creation Time '13142025xx:02'"):
        parse_nasdaq_listed("\n".join(bad_time))


def test_a_directory_of_12000_rows_parses() -> None:
    header = "ACT Symbol|Security Name|Exchange|CQS Symbol|ETF|Round Lot Size|Test Issue|NASDAQ Symbol"
    rows = []
    for i in range(12_000):
        root = "".join(chr(65 + (i // 26**k) % 26) for k in range(3)) + str(i % 10)
        if i % 50 == 0:  # a preferred now and then
            rows.append(f"{root}$A|Preferred {i}|N|{root}pA|N|100|N|{root}-A")
        else:
            rows.append(f"{root}|Company {i} Common Stock|{'NAPZV'[i % 5]}|{root}|{'YN'[i % 2]}|100|N|{root}")
    rows.append("ZTEST|BATS BZX Test Issue|Z|ZTEST|N|100|Y|ZTEST")
    d = parse_other_listed("\r\n".join([header, *rows, "File Creation Time: 0102202608:15|||||||"]) + "\r\n")
    assert len(d.symbols) == 12_000
    assert d.symbols[0].symbol == "AAA0.PR.A" and d.symbols[0].source_symbol == "AAA0pA"
    assert d.file_time == utc(2026, 1, 2, 13, 15)  # EST


# -- Wikipedia -------------------------------------------------------------------------------


def test_sp500_table() -> None:
    members = wikipedia.parse_constituents(html("sp500.html"), "SP500")
    by_symbol = {c.symbol: c for c in members}
    assert len(members) == 27
    assert by_symbol["MMM"].name == "3M" and by_symbol["MMM"].sector == "Industrials"
    assert by_symbol["AAPL"].sub_industry == "Technology Hardware, Storage & Peripherals"
    assert by_symbol["BRK.B"].name == "Berkshire Hathaway" and "BF.B" in by_symbol
    # The "changes" table's tickers (APP, ENPH) are no members.
    assert {"APP", "ENPH"}.isdisjoint(by_symbol)


def test_reordered_columns_footnotes_and_prefixes() -> None:
    plain = wikipedia.parse_constituents(html("sp500.html"), "SP500")
    messy = wikipedia.parse_constituents(html("sp500_reordered.html").encode(), "SP500")
    assert messy == plain


def test_nasdaq100_table_ticker_first_after_another_table() -> None:
    members = wikipedia.parse_constituents(html("nasdaq100.html"), "NASDAQ100")
    assert len(members) == 23
    assert members[0].symbol == "ADBE" and members[0].name == "Adobe Inc."
    assert members[0].sector == "Information Technology"
    assert {"GOOG", "GOOGL"} <= {c.symbol for c in members}


def test_dow_table_with_row_headers() -> None:
    members = wikipedia.parse_constituents(html("dow30.html"), "DOW30")
    assert len(members) == 30
    jnj = next(c for c in members if c.symbol == "JNJ")
    assert jnj.name == "Johnson & Johnson" and jnj.sector == "Pharmaceutical industry"
    assert jnj.sub_industry == ""


def test_dotted_and_dashed_class_shares() -> None:
    page = (
        '<table id="constituents"><tr><th>Company</th><th>Ticker</th></tr>'
        "<tr><td>Berkshire</td><td>BRK-B</td></tr><tr><td>Brown</td><td>bf.b</td></tr>"
        "<tr><td>Lennar</td><td>LEN/B</td></tr></table>"
    )
    assert [c.symbol for c in wikipedia.parse_constituents(page, "SP500")] == ["BRK.B", "BF.B", "LEN.B"]


def test_alternative_header_names() -> None:
    page = (
        '<table class="wikitable" id="constituents"><tr><th>Company</th><th>Ticker</th>'
        "<th>ICB Industry[14]</th><th>ICB Subsector[14]</th></tr>"
        "<tr><td>Adobe</td><td>ADBE</td><td>Technology</td><td>Software</td></tr></table>"
    )
    (adobe,) = wikipedia.parse_constituents(page, "NASDAQ100")
    assert (adobe.sector, adobe.sub_industry) == ("Technology", "Software")


def test_table_found_by_headers_without_its_id() -> None:
    page = html("dow30.html").replace('id="constituents"', 'id="components"')
    assert len(wikipedia.parse_constituents(page, "DOW30")) == 30


@pytest.mark.parametrize(
    ("page", "problem"),
    [
        ("<html><body><p>Wikipedia is down</p></body></html>", "no table with a Symbol/Ticker"),
        ('<table id="constituents"><tr><th>Symbol</th><th>Security</th></tr></table>', "has no rows"),
        (
            '<table id="constituents"><tr><th>Symbol</th><th>Security</th></tr>'
            "<tr><td>see note</td><td>x</td></tr></table>",
            "row 1: 'see note' is not a ticker",
        ),
    ],
)
def test_bad_pages_raise_bad_payload(page: str, problem: str) -> None:
    with pytest.raises(BadPayload, match=problem):
        wikipedia.parse_constituents(page, "SP500")


# -- FMP -------------------------------------------------------------------------------------


def test_fmp_sp500_body() -> None:
    members = fmp.parse_constituents(body("sp500_constituent.json"))
    by_symbol = {c.symbol: c for c in members}
    assert len(members) == 14 and members[0].symbol == "APO"
    assert by_symbol["BRK.B"].name == "Berkshire Hathaway Inc."  # FMP writes BRK-B
    assert by_symbol["BF.B"].sub_industry == "Beverages - Wineries & Distilleries"
    assert by_symbol["AAPL"].sector == "Technology"


@pytest.mark.parametrize(
    ("name", "count"), [("nasdaq_constituent.json", 10), ("dowjones_constituent.json", 7)]
)
def test_fmp_other_lists(name: str, count: int) -> None:
    assert len(fmp.parse_constituents(body(name))) == count


@pytest.mark.parametrize(
    ("content", "error", "problem"),
    [
        (body("malformed.json"), BadPayload, "not JSON"),
        (body("empty.json"), NoData, "empty constituent list"),
        (body("legacy_endpoint.json"), BadPayload, "got dict: Legacy Endpoint"),
        (b'[{"name": "no symbol"}]', BadPayload, "row 1 has no symbol"),
        (b'["AAPL"]', BadPayload, "row 1 has no symbol"),
    ],
)
def test_fmp_bad_bodies(content: bytes, error: type[Exception], problem: str) -> None:
    with pytest.raises(error, match=problem):
        fmp.parse_constituents(content)


# -- the sim's reference data ----------------------------------------------------------------


def test_sim_lists_come_from_the_demo_universe() -> None:
    universe = {s for symbols in DEMO_UNIVERSE.values() for s in symbols}
    etfs = {s.symbol for s in SIM_LISTINGS if s.etf}
    assert {"SPY", "QQQ", "IWM", "DIA"} <= etfs
    stocks = universe - etfs
    assert set(SIM_INDEXES["SP500"]) == stocks
    for index in INDEXES:
        members = sim_constituents(index)
        assert {c.symbol for c in members} <= stocks
        assert all(c.name and c.sector and c.sub_industry for c in members)
    assert {"AAPL", "MSFT", "NVDA"} <= set(SIM_INDEXES["NASDAQ100"]) and "JPM" not in SIM_INDEXES["NASDAQ100"]
    assert len(SIM_INDEXES["DOW30"]) == 24 and "TSLA" not in SIM_INDEXES["DOW30"]


def test_sim_directory_survives_its_wire_format() -> None:
    when = utc(2025, 11, 3, 15, 0)
    listings = sim_listings()
    parsed = merge_directories(
        parse_nasdaq_listed(nasdaqtrader_wire.nasdaq_listed(listings, when)),
        parse_other_listed(nasdaqtrader_wire.other_listed(listings, when)),
    )
    expected = sim_directory(when)
    key = lambda s: (s.symbol, s.name, s.exchange, s.etf)  # noqa: E731
    assert sorted(map(key, parsed.symbols)) == sorted(map(key, expected.symbols))
    assert parsed.file_time == when
    assert next(s for s in parsed.symbols if s.symbol == "ABR.PR.D").source_symbol == "ABRpD"


@pytest.mark.parametrize("index", INDEXES)
def test_sim_wikipedia_pages_parse_to_the_sim_lists(index: IndexName) -> None:
    parsed = wikipedia.parse_constituents(wikipedia_wire.page(index), index)
    expected = sim_constituents(index)
    if index == "DOW30":  # the Dow page has one Industry column and no sub-industry
        expected = [replace(c, sub_industry="") for c in expected]
    assert parsed == expected
