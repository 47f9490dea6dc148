"""`mds universe ...` and `mds holdings ...` as users run them, against files and sim-servers on loopback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_cli import run

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).parents[1] / "fixtures" / "reference"


def _env(tmp_path: Path, **more: str) -> dict[str, str]:
    return {"DATABASE_URL": f"sqlite:///{tmp_path}/mds.db", **more}


def test_import_from_local_directory_files_then_a_second_version(tmp_path: Path) -> None:
    files = [str(FIXTURES / "nasdaqtrader" / n) for n in ("nasdaqlisted.txt", "otherlisted.txt")]
    r = run(["universe", "import", "--from", "nasdaq-trader", *files, "--json"], _env(tmp_path))
    assert r.returncode == 0, r.stderr
    first = json.loads(r.stdout)
    assert (
        first["source"]
        and first["file_time"]
        and first["symbols"] > 20
        and first["added"] == first["symbols"]
    )
    assert first["removed"] == 0 and first["etfs"] > 0

    # The same directory minus its other-listed half: those become inactive, never deleted.
    r = run(["universe", "import", "--from", "nasdaq-trader", files[0], "--json"], _env(tmp_path))
    assert r.returncode == 0, r.stderr
    second = json.loads(r.stdout)
    assert second["removed"] > 0 and second["added"] == 0
    assert second["unchanged"] == second["symbols"]
    # SPY (NYSE Arca, so in the other-listed half) is always tracked: it stays active.
    assert second["removed"] == first["symbols"] - second["symbols"] - 1

    r = run(["universe", "versions", "--json"], _env(tmp_path))
    versions = [json.loads(x) for x in r.stdout.splitlines()]
    assert [(v["added"], v["removed"]) for v in versions] == [(0, second["removed"]), (first["added"], 0)]


def test_import_refuses_a_truncated_file_naming_it(tmp_path: Path) -> None:
    cut = tmp_path / "nasdaqlisted.txt"
    cut.write_text(
        "\n".join((FIXTURES / "nasdaqtrader" / "nasdaqlisted.txt").read_text().splitlines()[:5]) + "\n"
    )
    r = run(["universe", "import", "--from", "nasdaq-trader", str(cut)], _env(tmp_path))
    assert r.returncode == 2 and "nasdaqlisted.txt" in r.stderr
    r = run(["universe", "versions", "--json"], _env(tmp_path))
    assert r.stdout.strip() == ""  # nothing recorded


def test_import_over_http_from_the_sim_directory_and_retier(tmp_path: Path) -> None:
    from tests.contract.vendors.harness import SimServerProcess

    server = SimServerProcess("nasdaqtrader")
    try:
        r = run(
            ["universe", "import", "--from", "nasdaq-trader", "--url", server.url, "--json"], _env(tmp_path)
        )
    finally:
        server.stop()
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["symbols"] >= 50 and report["ranked_by_measure"] == 0  # no bars stored yet: file order
    r = run(["universe", "retier", "--json"], _env(tmp_path, TIER_MAXS__T0="5"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["tier_changes"] > 0  # T0 shrank from 1200 to 5


def test_holdings_add_list_import_remove(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert run(["holdings", "add", "AAPL", "brk-b", "--note", "ira"], env).returncode == 0
    listing = tmp_path / "held.csv"
    listing.write_text("symbol,qty\nMSFT,10\nAAPL,3\n")
    r = run(["holdings", "import", str(listing)], env)
    assert r.returncode == 0 and "added 1: MSFT" in r.stdout
    r = run(["holdings", "remove", "AAPL"], env)
    assert r.returncode == 0 and "2 held" in r.stdout
    rows = [json.loads(x) for x in run(["holdings", "list", "--json"], env).stdout.splitlines()]
    assert [(x["symbol"], x["note"]) for x in rows] == [("BRK.B", "ira"), ("MSFT", "")]
    r = run(["holdings", "add", "not a ticker"], env)
    assert r.returncode == 2 and "symbols" in r.stderr


def test_index_refresh_falls_back_from_fmp_to_wikipedia(tmp_path: Path) -> None:
    from tests.contract.vendors.harness import SimServerProcess

    wiki = SimServerProcess("wikipedia")
    try:
        # FMP is configured but its host answers nothing: the refresh falls back to Wikipedia.
        env = _env(
            tmp_path,
            FMP_API_KEY="k-secret-123",
            FMP_BASE_URL="http://127.0.0.1:9",
            INDEX_WIKIPEDIA_URL=wiki.url,
        )
        r = run(["universe", "refresh-indexes", "--index", "DOW30", "--json"], env)
    finally:
        wiki.stop()
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    assert row["applied"] and row["provider_used"] == "wikipedia" and row["fallback_used"]
    assert row["fetched"] == row["inserted"] > 0
    assert "k-secret-123" not in r.stdout + r.stderr
