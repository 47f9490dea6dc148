"""`mds bench options-api` (and `mds bench options`) on small sizes: the figures are there
and sane, and the chain is the size asked for (no timing thresholds)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from typing import Any

from typer.testing import CliRunner

from mds.benchmarks.options_api import MIN_MAX_DAYS, NOW, horizon_days
from mds.cli import app
from mds.providers.sim.market import SimMarket
from mds.providers.sim.options import sim_option_chain


def _bench(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(app, ["bench", *args, "--json"])
    assert result.exit_code == 0, result.output
    out: dict[str, Any] = json.loads(result.output.strip().splitlines()[-1])  # one JSON line
    return out


def _listed(symbol: str) -> Counter[date]:
    return Counter(q.expiration for q in sim_option_chain(SimMarket(42), symbol, NOW))


def test_the_horizon_takes_whole_expirations_until_the_count_is_reached() -> None:
    listed = _listed("MSFT")
    days = horizon_days("MSFT", 2_000)
    within = sum(n for d, n in listed.items() if (d - NOW.date()).days <= days)
    shorter = sum(n for d, n in listed.items() if (d - NOW.date()).days < days)
    assert within >= 2_000 > shorter  # the smallest horizon that holds 2,000
    # More than the sim lists: the whole listing; a few: the setting's floor.
    assert horizon_days("MSFT", 10**6) == max((d - NOW.date()).days for d in listed)
    assert horizon_days("MSFT", 1) == MIN_MAX_DAYS


def test_the_api_bench_reports_sane_figures() -> None:
    result = _bench("options-api", "--requests", "20", "--chain-requests", "3", "--contracts", "300")
    assert result["benchmark"] == "options_api"
    assert result["symbol"] == "MSFT" and result["provider"] == "sim"
    assert result["options_max_days"] == horizon_days("MSFT", 300) == MIN_MAX_DAYS
    # The chain served is the sim's listing within the horizon, and the metrics are over it.
    listed = _listed("MSFT")
    want = sum(n for d, n in listed.items() if (d - NOW.date()).days <= result["options_max_days"])
    assert result["contracts"] == result["metrics_contracts"] == want >= 300
    assert result["expirations"] == sum(1 for d in listed if (d - NOW.date()).days <= MIN_MAX_DAYS)
    assert result["requests"] == 20 and result["chain_requests"] == 3
    p = [result[f"metrics_{k}_ms"] for k in ("p50", "p95", "p99", "max")]
    assert 0 < p[0] <= p[1] <= p[2] <= p[3], p
    assert 0 < result["chain_p50_ms"] <= result["chain_p99_ms"]
    assert result["first_request_ms"] > 0
    assert result["chain_bytes"] > 100 * result["contracts"] > result["metrics_bytes"] > 0


def test_the_iv_bench_is_wired() -> None:
    result = _bench(
        "options",
        "--contracts",
        "200",
        "--repeats",
        "1",
        "--vollib-contracts",
        "20",
        "--metrics-contracts",
        "200",
        "--metrics-runs",
        "3",
    )
    assert result["benchmark"] == "options"
    assert result["contracts"] == 200 and result["vollib_contracts"] == 20
    assert result["contracts_per_s"] > 0 and 0 < result["metrics_contracts"] <= 200
