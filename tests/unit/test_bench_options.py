"""`mds bench options` on small sizes: every figure is there and sane (no timing thresholds)."""

from __future__ import annotations

import json

from mds.benchmarks.options import run_iv_bench


def test_the_options_bench_reports_sane_figures() -> None:
    result = run_iv_bench(
        contracts=400, repeats=2, vollib_contracts=50, metrics_contracts=300, metrics_runs=5
    )
    json.dumps(result)  # one JSON line
    assert result["benchmark"] == "options"
    assert result["contracts"] == 400 and result["vollib_contracts"] == 50
    assert result["contracts_per_s"] > 0 and result["vollib_contracts_per_s"] > 0
    assert result["speedup"] == round(result["contracts_per_s"] / result["vollib_contracts_per_s"], 1)
    # Sim mids all have a volatility, and MDS agrees with vollib on every contract both solved.
    assert result["no_iv"] == 0
    assert result["max_abs_diff_vs_vollib"] is not None and result["max_abs_diff_vs_vollib"] < 1e-6
    assert 0 < result["metrics_contracts"] <= 300
    assert 0 < result["metrics_p50_ms"] <= result["metrics_p99_ms"]
