"""`mds bench export` and `mds bench reconcile` on small sizes: the figures are there and
consistent (no timing thresholds)."""

from __future__ import annotations

import json

from mds.benchmarks import export, reconcile


def test_the_export_bench_writes_a_partition_per_symbol_and_resumes_them_all() -> None:
    result = export.run(4)
    json.dumps(result)
    assert result["benchmark"] == "export" and result["symbols"] == 4
    assert result["partitions"] == 4 and result["resume_skipped"] == 4
    assert result["rows"] > 4 * 200 and result["bytes"] > 0  # type: ignore[operator]


def test_the_reconcile_bench_compares_every_stored_bar() -> None:
    clean = reconcile.run(3, 2, 0.0)
    json.dumps(clean)
    assert clean["symbol_days"] == 6 and clean["bars_stored"] == clean["bars_compared"] == 6 * 390
    assert clean["bars_differing"] == 0
    noisy = reconcile.run(3, 2, 0.01)
    assert 0 < noisy["bars_differing"] <= noisy["bars_compared"]  # type: ignore[operator]
    # Two providers and no referee: nobody is blamed, both keep a score of 1.
    assert noisy["scores"] == {"sim": 1.0, "sim_backup": 1.0}
