"""Job schemas (seed: BarsFetchJob, QuotesFetchJob, BackfillJob) accept good jobs, refuse bad ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from mds.domain.jobs import BackfillJob, BarsFetchJob, QuotesFetchJob, parse_job
from mds.domain.models import Interval, Tier

WINDOW = {"start": "2025-10-08T13:30:00Z", "end": "2025-10-08T13:40:00Z"}


def test_rlc_bars_job_from_json() -> None:
    raw = json.dumps(
        {
            "job_id": "rlc-1",
            "type": "bars_fetch",
            "symbols": ["AAPL", "MSFT"],
            "interval": "1m",
            "time_window": WINDOW,
            "priority": "T0",
            "provider_hint": "sim",
        }
    )
    job = parse_job(raw)
    assert isinstance(job, BarsFetchJob)
    assert job.priority is Tier.T0 and job.interval is Interval.M1
    assert job.time_window.start == datetime(2025, 10, 8, 13, 30, tzinfo=UTC)
    assert job.provider_hint == "sim"


def test_each_type_is_dispatched_by_its_discriminator() -> None:
    assert isinstance(parse_job({"type": "quotes_fetch", "symbols": ["SPY"]}), QuotesFetchJob)
    b = parse_job({"type": "backfill", "symbol": "SPY", "interval": "1d", "time_window": WINDOW})
    assert isinstance(b, BackfillJob) and b.interval is Interval.D1 and b.priority is Tier.T1


def test_job_round_trips_through_json() -> None:
    job = BarsFetchJob(symbols=["AAPL"], time_window=WINDOW)  # type: ignore[arg-type]
    assert parse_job(job.model_dump_json()) == job


@pytest.mark.parametrize(
    ("payload", "fragment"),
    [
        ({"type": "bars_fetch", "symbols": [], "time_window": WINDOW}, "symbols"),
        ({"type": "bars_fetch", "symbols": [f"S{i}" for i in range(1001)], "time_window": WINDOW}, "symbols"),
        ({"type": "bars_fetch", "symbols": ["aapl"], "time_window": WINDOW}, "symbols"),
        ({"type": "bars_fetch", "symbols": ["AAPL"], "interval": "2m", "time_window": WINDOW}, "interval"),
        ({"type": "bars_fetch", "symbols": ["AAPL"], "time_window": WINDOW, "priority": "T9"}, "priority"),
        (
            {
                "type": "bars_fetch",
                "symbols": ["AAPL"],
                "time_window": {"start": "2025-10-08T13:40:00Z", "end": "2025-10-08T13:30:00Z"},
            },
            "before",
        ),
        (
            {
                "type": "bars_fetch",
                "symbols": ["AAPL"],
                "time_window": {"start": "2025-10-08T13:30:00", "end": "2025-10-08T13:40:00"},
            },
            "time zone",
        ),
        ({"type": "backfill", "time_window": WINDOW}, "symbol"),
        ({"type": "nuke", "symbols": ["AAPL"]}, "type"),
        ({"type": "quotes_fetch", "symbols": ["SPY"], "surprise": 1}, "surprise"),
    ],
)
def test_bad_jobs_are_refused_with_a_reason(payload: dict, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_job(payload)
    assert fragment in str(info.value)


def test_1000_symbols_is_the_limit_not_beyond() -> None:
    job = parse_job({"type": "quotes_fetch", "symbols": [f"S{i}" for i in range(1000)]})
    assert len(job.symbols) == 1000
