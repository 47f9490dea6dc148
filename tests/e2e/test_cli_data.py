"""`mds fetch`, `mds providers`, `mds backfill` and `mds gaps` as users run them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mds.calendar import MarketCalendar
from mds.domain.models import Interval
from mds.providers.sim.market import ground_truth
from tests.e2e.test_cli import run

pytestmark = pytest.mark.e2e

START, END = "2025-10-08T13:30:00Z", "2025-10-08T16:00:00Z"


def test_fetch_prints_one_providers_bars_as_json() -> None:
    r = run(
        ["fetch", "SPY", "--provider", "sim", "--interval", "5m", "--start", START, "--end", END, "--json"]
    )
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    truth = ground_truth(
        "SPY", Interval.M5, datetime(2025, 10, 8, 13, 30, tzinfo=UTC), datetime(2025, 10, 8, 16, tzinfo=UTC)
    )
    assert [(x["ts"], x["close"]) for x in rows] == [
        (t.ts.isoformat().replace("+00:00", "Z"), t.close) for t in truth
    ]
    assert {x["provider"] for x in rows} == {"sim"} and {x["adjusted"] for x in rows} == {False}


@pytest.mark.parametrize(
    ("env", "args", "code", "fragment"),
    [
        ({"SIM_ERROR_RATE": "1"}, ["--provider", "sim"], 1, "unavailable"),
        ({"SIM_MALFORMED_RATE": "1"}, ["--provider", "sim"], 1, "bad_payload"),
        ({}, ["--provider", "polygon"], 2, "not configured"),
        ({}, ["--provider", "acme"], 2, "--provider"),
    ],
)
def test_fetch_reports_the_error_kind(env, args, code, fragment) -> None:
    r = run(["fetch", "SPY", *args, "--interval", "1m", "--start", START, "--end", END], env)
    assert r.returncode == code
    assert fragment in r.stderr


def test_fetch_against_a_vendor_wire_format(tmp_path: Path) -> None:
    from tests.contract.vendors.harness import SimServerProcess

    server = SimServerProcess("polygon")
    try:
        env = {"POLYGON_API_KEY": "k", "POLYGON_BASE_URL": server.url}
        r = run(
            [
                "fetch",
                "AAPL",
                "--provider",
                "polygon",
                "--interval",
                "1d",
                "--start",
                "2025-09-01T00:00:00Z",
                "--end",
                "2025-10-01T00:00:00Z",
                "--json",
            ],
            env,
        )
        assert r.returncode == 0, r.stderr
        rows = [json.loads(x) for x in r.stdout.splitlines()]
        truth = ground_truth(
            "AAPL", Interval.D1, datetime(2025, 9, 1, tzinfo=UTC), datetime(2025, 10, 1, tzinfo=UTC)
        )
        assert [x["close"] for x in rows] == [t.close for t in truth] and len(rows) == 21
        assert "k" not in r.stderr
    finally:
        server.stop()


def test_providers_lists_configured_and_unconfigured() -> None:
    r = run(
        ["providers", "--url", "http://127.0.0.1:9"],
        {"MARKET_PROVIDER_POLICY": "free", "FINNHUB_API_KEY": "x"},
    )
    assert r.returncode == 0, r.stderr
    lines = {line.split()[0]: line.split() for line in r.stdout.splitlines()[1:]}
    assert lines["finnhub"][1] == "yes" and lines["twelvedata"][1] == "no" and lines["yahoo"][1] == "yes"
    assert "configuration only" in r.stderr


def test_backfill_then_gaps(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/b.db",
        "SIM_MISSING_RATE": "0.05",
        "BACKFILL_RETRY_BASE_SECONDS": "0.05",
    }
    r = run(
        ["backfill", "AAPL", "MSFT", "--demo", "--interval", "1m", "--start", START, "--end", END],
        env,
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["failed"] == 0 and report["done"] == report["jobs"] == 2
    assert report["bars_written"] == 2 * 150

    g = run(
        ["gaps", "--interval", "1m", "--start", START, "--end", END, "--json", "--tier", "T0"],
        env,
        cwd=tmp_path,
    )
    assert g.returncode == 0, g.stderr
    gaps = {json.loads(x)["symbol"]: json.loads(x) for x in g.stdout.splitlines()}
    assert "AAPL" not in gaps and "MSFT" not in gaps  # filled
    assert gaps["SPY"]["missing_bars"] == 150 and gaps["SPY"]["start"] == START  # never filled
    assert (
        len(
            MarketCalendar().expected_bar_times(
                Interval.M1, datetime(2025, 10, 8, 13, 30, tzinfo=UTC), datetime(2025, 10, 8, 16, tzinfo=UTC)
            )
        )
        == 150
    )
    bad = run(
        ["gaps", "--interval", "1m", "--start", START, "--end", END, "--symbol", "NOPE"], env, cwd=tmp_path
    )
    assert bad.returncode == 2 and "NOPE" in bad.stderr


def test_text_output_prints_iso_8601_times(tmp_path: Path) -> None:
    fetched = run(["fetch", "SPY", "--provider", "sim", "--interval", "5m", "--start", START, "--end", END])
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.startswith("2025-10-08T13:30:00Z ")
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/g.db"}
    filled = run(["backfill", "AAPL", "--demo", "--start", START, "--end", END], env, cwd=tmp_path)
    assert filled.returncode == 0, filled.stderr  # also puts the demo universe in the store
    found = run(
        ["gaps", "--interval", "1m", "--start", START, "--end", END, "--symbol", "SPY"], env, cwd=tmp_path
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == ["SPY", "1m", START, "..", END, "150", "missing"]
    for r in (fetched, found):
        assert "datetime.datetime(" not in r.stdout + r.stderr


def test_a_failed_backfill_names_its_range_in_iso_8601(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": f"sqlite:///{tmp_path}/f.db",
        "SIM_MISSING_RATE": "1",
        "SIM_BACKUP_MISSING_RATE": "1",
        "BACKFILL_MAX_ATTEMPTS": "2",
        "BACKFILL_RETRY_BASE_SECONDS": "0.01",
    }
    args = ["--interval", "1d", "--start", "2004-03-04T00:00:00Z", "--end", "2004-04-01T00:00:00Z"]
    r = run(["backfill", "AAPL", "--demo", *args], env, cwd=tmp_path)
    assert r.returncode == 1, r.stderr
    assert json.loads(r.stdout)["failed"] == 1
    assert "AAPL 2004-03-04T00:00:00Z..2004-04-01T00:00:00Z failed for good" in r.stderr
    assert "datetime.datetime(" not in r.stdout + r.stderr
