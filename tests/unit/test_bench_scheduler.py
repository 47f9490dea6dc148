"""`mds bench scheduler` on a small size: the tick walk fires every due time once, and the
fire-latency rounds measure every fire from its due time."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from croniter import croniter  # type: ignore[import-untyped]

from mds.benchmarks.scheduler import T0, _tick, mix, mix_counts, run
from mds.ops.timing import timing_for


def _due_times(cron: str, zone: str, start: datetime, end: datetime) -> int:
    """croniter's own count of fires in (start, end) (no DST change falls in the window)."""
    from zoneinfo import ZoneInfo

    it = croniter(cron, start.astimezone(ZoneInfo(zone)))
    n = 0
    while it.get_next(datetime) < end:
        n += 1
    return n


def test_the_mix_is_what_it_says_and_every_schedule_plans() -> None:
    schedules = mix(200)
    counts = mix_counts(schedules)
    assert sum(v for k, v in counts.items() if k != "distinct_timings") == 200
    assert counts["calendar:after_close"] == 30 and counts["cron:*/5"] == 10 and counts["cron:hourly"] == 50
    assert len({s.name for s in schedules}) == 200
    assert counts["distinct_timings"] > 100  # random minutes and zones: few timings are shared
    for s in schedules:
        assert timing_for(s).next_after(T0) > T0


async def test_the_tick_walk_fires_each_due_time_of_each_schedule_once() -> None:
    schedules = mix(200)
    end = T0 + timedelta(days=1)
    want = 0
    for s in schedules:
        if s.cron is not None:
            want += _due_times(s.cron, s.timezone, T0, end)
        else:  # market-relative: the timing's own answers (a Monday: one session)
            t, timing = T0, timing_for(s)
            while (t := timing.next_after(t)) < end:
                want += 1
    figures = await _tick(200, 1.0)
    assert figures["planned"] == 200
    assert figures["fires"] == want
    assert figures["ticks"] <= want  # schedules due together share a tick
    assert 0 <= figures["due_p50_ms"] <= figures["tick_p50_ms"]  # type: ignore[operator]
    assert figures["tick_p50_ms"] <= figures["tick_p99_ms"] <= figures["tick_max_ms"]  # type: ignore[operator]


def test_a_small_run_measures_every_fire_and_prints_one_json_line() -> None:
    result = run("sqlite", "memory", schedules=40, days=0.25, fires=10)
    assert json.loads(json.dumps(result)) == result
    assert result["tick_p99_ms_target"] == 5.0 and result["fire_latency_target_s"] == 1.0
    rounds = result["fire_latency"]
    assert isinstance(rounds, dict)
    for name, speed in (("burst", 1.0), ("paced", 60.0)):
        r = rounds[name]
        assert r["measured"] == 10 and r["clock_speed"] == speed
        # A run never starts before its due time, and queueing comes before starting.
        assert r["queued_p99_s"] >= 0 and 0 <= r["latency_p50_s"] <= r["latency_max_s"]
    assert result["fire_latency_pass"] == all(rounds[n]["latency_max_s"] <= 1.0 for n in ("burst", "paced"))
    assert result["tick_pass"] == (result["tick"]["tick_p99_ms"] < 5.0)  # type: ignore[index]
