"""`mds ta` with `--date` (event time) and `--as-of` (knowledge time) on a store whose bars
were learned long after their sessions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Interval
from mds.providers.sim.market import ground_truth
from mds.runtime import open_runtime
from tests.e2e.test_cli import run
from tests.helpers import SIM_ENV

pytestmark = pytest.mark.e2e

LEARNED = datetime(2025, 10, 9, 22, 0, tzinfo=UTC)


async def test_ta_reads_by_event_date_or_knowledge_date(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/ta.db"
    env = {**SIM_ENV, "DATABASE_URL": url}
    async with open_runtime(
        load_settings(env), clock=ManualClock(LEARNED), demo=True, collect=False, environ=env
    ) as rt:
        bars = ground_truth("AAPL", Interval.D1, LEARNED - timedelta(days=500), LEARNED)
        await rt.store.write_bars(bars, as_of=LEARNED)
    cli_env = {"DATABASE_URL": url}

    def ta(*args: str) -> dict:  # type: ignore[type-arg]
        result = run(["ta", "AAPL", "--demo", *args], env=cli_env)
        assert result.returncode == 0, result.stderr
        out: dict = json.loads(result.stdout)  # type: ignore[type-arg]
        return out

    on = ta("--date", "2025-07-01")
    assert (on["date"], on["as_of"]) == ("2025-07-01", "2025-07-01") and on["bars_used"] > 250
    known = ta("--as-of", "2025-07-01")
    assert known["bars_used"] == 0 and "learned later" in known["reasons"]["rsi_14"]
    bad = run(["ta", "AAPL", "--demo", "--date", "July"], env=cli_env)
    assert bad.returncode == 2 and "--date" in bad.stderr
