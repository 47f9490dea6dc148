"""`mds bench adjust` on few rounds: every figure is there and the adjusted reads were adjusted."""

from __future__ import annotations

import json

from mds.benchmarks.adjust import run


def test_the_adjust_bench_reports_both_reads_side_by_side() -> None:
    result = run(rounds=3)
    json.dumps(result)  # one JSON line
    assert result["benchmark"] == "adjust" and result["limit_ratio"] == 1.2
    assert result["daily_year"]["bars"] == 250 and result["minute_day"]["bars"] == 390  # type: ignore[index]
    for part in ("daily_year", "minute_day"):
        figures = result[part]
        assert figures["raw_ms"] > 0 and figures["split_ms"] > 0 and figures["all_ms"] > 0  # type: ignore[index]
        assert figures["split_ratio"] > 0 and figures["all_ratio"] > 0  # type: ignore[index]
