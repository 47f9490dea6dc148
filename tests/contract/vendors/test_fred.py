"""FRED: observations with ``"."`` as missing, paging by offset, error bodies mapped to
typed errors, and ALFRED vintages asked in realtime windows below FRED's 2,000-vintage
limit; then the adapter against `mds sim-server --format fred`.

The store side (an ``as_of`` read returning the earlier vintage) is in
``tests/contract/test_store_factors.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import pytest

from mds.config import load_settings
from mds.domain.macro import MacroObservation
from mds.domain.models import Capability
from mds.errors import AuthError, NoData, ProviderError, RateLimited, Unavailable
from mds.providers.fred import MAX_VINTAGES, RETRY_AFTER_S, FredProvider, stitch, vintage_windows
from mds.providers.ratelimit import RateLimiter
from mds.providers.sim.faults import SimFaults
from mds.providers.sim.macro import sim_macro_observations
from tests.contract.vendors.harness import CALENDAR, ReplayServer, SimServerProcess, fixture, get

OBS = "/fred/series/observations"
VINTAGES = "/fred/series/vintagedates"
#: A key of FRED's shape (32 lower-case alphanumerics), distinct enough to search for.
KEY = "abcdef0123456789abcdef0123456789"


def fred(base_url: str, key: str | None = KEY) -> FredProvider:
    env = {"FRED_BASE_URL": base_url, **({"FRED_API_KEY": key} if key else {})}
    return FredProvider(settings=load_settings(env), calendar=CALENDAR, limiter=RateLimiter())


async def fetch(
    base_url: str,
    series: str = "DGS10",
    start: date | None = None,
    end: date | None = None,
    *,
    vintages: bool = False,
) -> list[MacroObservation]:
    p = fred(base_url)
    try:
        return await p.fetch_macro_series(series, start=start, end=end, vintages=vintages)
    finally:
        await p.aclose()


def rows(obs: Sequence[MacroObservation]) -> list[tuple[object, ...]]:
    return [(o.date, o.value, o.realtime_start, o.realtime_end) for o in obs]


def test_declared_vendor() -> None:
    assert FredProvider.capabilities == frozenset({Capability.MACRO})
    assert FredProvider.default_limits == ("2/second",)  # FRED: 120 requests a minute
    assert FredProvider.key_settings == ("FRED_API_KEY",)
    assert fred("http://vendor.test").configured
    assert not fred("http://vendor.test", key=None).configured


async def test_request_shape_and_missing_values(replay: ReplayServer) -> None:
    replay.expect(OBS, fixture("fred", "observations_DGS10.json"))
    obs = await fetch(replay.url, start=date(2024, 11, 7), end=date(2024, 11, 13))
    assert replay.requests[0].params == {
        "series_id": "DGS10",
        "api_key": KEY,
        "file_type": "json",
        "observation_start": "2024-11-07",
        "observation_end": "2024-11-13",
        "realtime_end": "9999-12-31",  # the values current today, open-ended
        "limit": "100000",
        "offset": "0",
    }
    known = date(2025, 3, 12)
    assert rows(obs) == [
        (date(2024, 11, 7), 4.34, known, None),
        (date(2024, 11, 8), 4.31, known, None),
        (date(2024, 11, 11), None, known, None),  # "." is missing, not 0
        (date(2024, 11, 12), 4.43, known, None),
        (date(2024, 11, 13), 4.45, known, None),
    ]
    assert {(o.series, o.provider) for o in obs} == {("DGS10", "fred")}


async def test_pages_by_offset_until_count(replay: ReplayServer) -> None:
    replay.expect(OBS, fixture("fred", "observations_DGS10_page1.json"))
    replay.expect(OBS, fixture("fred", "observations_DGS10_page2.json"))
    obs = await fetch(replay.url, start=date(2024, 11, 7), end=date(2024, 11, 13))
    assert [r.params["offset"] for r in replay.requests] == ["0", "3"]
    assert [o.date.day for o in obs] == [7, 8, 11, 12, 13]


@pytest.mark.parametrize(
    "name",
    ["error_api_key_not_registered.json", "error_api_key_not_set.json", "error_api_key_malformed.json"],
)
async def test_key_errors_are_auth(replay: ReplayServer, name: str) -> None:
    replay.expect(OBS, fixture("fred", name), status=400)
    with pytest.raises(AuthError) as info:
        await fetch(replay.url)
    assert info.value.code == "invalid_key"
    assert "api_key" in info.value.message
    assert KEY not in str(info.value)


async def test_unknown_series_is_no_data(replay: ReplayServer) -> None:
    replay.expect(OBS, fixture("fred", "error_series_not_exist.json"), status=400)
    with pytest.raises(NoData) as info:
        await fetch(replay.url, "NOPE")
    assert (info.value.code, info.value.message) == (
        "unknown_series",
        "Bad Request. The series does not exist.",
    )


@pytest.mark.parametrize(("headers", "wait"), [({"Retry-After": "7"}, 7.0), ({}, RETRY_AFTER_S)])
async def test_429_is_rate_limited_with_back_off(
    replay: ReplayServer, headers: dict[str, str], wait: float
) -> None:
    replay.expect(OBS, fixture("fred", "error_rate_limit.json"), status=429, headers=headers)
    with pytest.raises(RateLimited) as info:
        await fetch(replay.url)
    assert info.value.retry_after == wait
    assert not info.value.counts_as_failure


async def test_server_errors_are_unavailable(replay: ReplayServer) -> None:
    replay.expect(OBS, fixture("fred", "error_internal.json"), status=500)
    with pytest.raises(Unavailable) as info:
        await fetch(replay.url)
    assert info.value.code == "500"


async def test_vintage_refusal_is_no_data(replay: ReplayServer) -> None:
    # The adapter chunks below the limit; should FRED still refuse, the answer is typed.
    replay.expect(OBS, fixture("fred", "error_vintage_limit.json"), status=400)
    with pytest.raises(NoData) as info:
        await fetch(replay.url)
    assert info.value.code == "vintage_limit"


async def test_key_echoed_in_an_error_page_is_hidden(replay: ReplayServer) -> None:
    # A proxy's error page quoting the request: neither the parameter nor the bare key survives.
    replay.expect(
        OBS,
        f"Bad gateway for /fred/series/observations?api_key={KEY}&file_type=json (key {KEY})",
        status=502,
        content_type="text/plain",
    )
    with pytest.raises(ProviderError) as info:
        await fetch(replay.url)
    assert isinstance(info.value, Unavailable)
    assert KEY not in str(info.value) and KEY not in info.value.message
    assert KEY[:8] not in str(info.value)


async def test_vintages_are_asked_in_windows_below_the_limit_and_stitched(replay: ReplayServer) -> None:
    replay.expect(VINTAGES, fixture("fred", "vintagedates_T10Y2Y.json"))
    replay.expect(OBS, fixture("fred", "observations_T10Y2Y_vintages_1.json"))
    replay.expect(OBS, fixture("fred", "observations_T10Y2Y_vintages_2.json"))
    obs = await fetch(replay.url, "T10Y2Y", vintages=True)

    listing, first, second = replay.requests
    assert listing.path == VINTAGES
    assert (listing.params["realtime_start"], listing.params["realtime_end"]) == ("1776-07-04", "9999-12-31")
    assert listing.params["limit"] == "10000"
    # 2,500 vintage dates: 1,999 in the first window, the other 501 in the second.
    windows = [(r.params["realtime_start"], r.params["realtime_end"]) for r in (first, second)]
    assert windows == [("1776-07-04", "2022-08-31"), ("2022-09-01", "9999-12-31")]
    assert rows(obs) == [
        # cut at the window boundary by FRED, one period again here
        (date(2015, 1, 2), 1.10, date(2015, 1, 5), None),
        (date(2015, 1, 5), 1.20, date(2015, 1, 6), date(2015, 1, 8)),
        (date(2015, 1, 5), 1.25, date(2015, 1, 9), None),
        (date(2024, 7, 4), None, date(2024, 7, 5), None),
    ]


async def test_vintage_window_starts_at_the_range_start(replay: ReplayServer) -> None:
    replay.expect(VINTAGES, fixture("fred", "vintagedates_T10Y2Y.json"))
    replay.expect(OBS, fixture("fred", "observations_T10Y2Y_vintages_2.json"))
    await fetch(replay.url, "T10Y2Y", start=date(2024, 1, 1), end=date(2024, 12, 31), vintages=True)
    listing = replay.requests[0]
    assert listing.params["realtime_start"] == "2024-01-01"
    observations = replay.requests[1:]
    # The fixture lists all 2,500 dates; the ones before the window start do not count.
    assert [(r.params["realtime_start"], r.params["realtime_end"]) for r in observations] == [
        ("2024-01-01", "9999-12-31")
    ]
    assert (observations[0].params["observation_start"], observations[0].params["observation_end"]) == (
        "2024-01-01",
        "2024-12-31",
    )


def test_vintage_windows_hold_at_most_the_limit() -> None:
    days = [date(2000, 1, 1) + timedelta(days=i) for i in range(2 * MAX_VINTAGES + 1)]
    windows = vintage_windows(date(1776, 7, 4), days, MAX_VINTAGES)
    assert len(windows) == 3
    for (_, hi), (next_lo, _) in zip(windows, windows[1:], strict=False):
        assert next_lo == hi + timedelta(days=1)  # contiguous, no day asked twice
    assert windows[-1][1] == date(9999, 12, 31)
    assert [sum(lo <= d <= hi for d in days) for lo, hi in windows] == [MAX_VINTAGES, MAX_VINTAGES, 1]
    assert vintage_windows(date(2020, 1, 1), [], MAX_VINTAGES) == []


def test_stitch_joins_only_contiguous_equal_periods() -> None:
    def o(value: float | None, start: date, end: date | None) -> MacroObservation:
        return MacroObservation("X", date(2020, 1, 1), value, start, end, "fred")

    cut = [o(1.0, date(2020, 1, 2), date(2020, 3, 31)), o(1.0, date(2020, 4, 1), None)]
    assert stitch(cut) == [o(1.0, date(2020, 1, 2), None)]
    revised = [o(1.0, date(2020, 1, 2), date(2020, 3, 31)), o(1.5, date(2020, 4, 1), None)]
    assert stitch(revised) == revised
    gap = [o(1.0, date(2020, 1, 2), date(2020, 3, 30)), o(1.0, date(2020, 4, 1), None)]
    assert stitch(gap) == gap
    assert stitch([cut[1], cut[0], cut[1]]) == [o(1.0, date(2020, 1, 2), None)]


# -- against the sim-server ---------------------------------------------------------------


def _today() -> date:
    return datetime.now(UTC).date()


def _as_fred(obs: list[MacroObservation]) -> list[MacroObservation]:
    return [dataclasses.replace(o, provider="fred") for o in obs]


async def test_sim_current_values(sim_server) -> None:  # type: ignore[no-untyped-def]
    server: SimServerProcess = sim_server("fred")
    today = _today()
    start, end = today - timedelta(days=60), today
    obs = await fetch(server.url, "DGS10", start, end)
    truth = sim_macro_observations(
        "DGS10", start=start, end=end, today=today, seed=SimFaults().seed, vintages=False
    )
    assert obs and [(o.date, o.value) for o in obs] == [(o.date, o.value) for o in truth]
    # FRED clips the realtime period to the one asked: known from today, still current.
    assert {(o.realtime_start, o.realtime_end) for o in obs} == {(today, None)}


async def test_sim_vintages_over_more_than_the_limit(sim_server) -> None:  # type: ignore[no-untyped-def]
    server: SimServerProcess = sim_server("fred")
    today = _today()
    start = date(2014, 1, 1)  # > 2,000 vintage dates since: several windows
    listed = get(f"{server.url}{VINTAGES}", series_id="DFF", api_key=KEY, realtime_start=start.isoformat())
    assert listed.json()["count"] > MAX_VINTAGES
    obs = await fetch(server.url, "DFF", start, today, vintages=True)
    truth = sim_macro_observations(
        "DFF", start=start, end=today, today=today, seed=SimFaults().seed, vintages=True
    )
    assert obs == _as_fred(truth)
    assert any(o.realtime_end is not None for o in obs)  # revisions came through


async def test_sim_refuses_like_fred(sim_server) -> None:  # type: ignore[no-untyped-def]
    server: SimServerProcess = sim_server("fred")
    everything = {"realtime_start": "1776-07-04", "realtime_end": "9999-12-31"}
    refused = get(f"{server.url}{OBS}", series_id="DFF", api_key=KEY, file_type="json", **everything)
    assert refused.status_code == 400
    assert "exceeds the maximum number of vintage dates allowed (2000)" in refused.json()["error_message"]
    no_key = get(f"{server.url}{OBS}", series_id="DFF", file_type="json")
    assert (no_key.status_code, no_key.json()) == (
        400,
        {"error_code": 400, "error_message": "Bad Request.  Variable api_key has not been set."},
    )
    with pytest.raises(NoData) as info:
        await fetch(server.url, "NOPE")
    assert info.value.code == "unknown_series"


async def test_sim_throttling_is_rate_limited(sim_server) -> None:  # type: ignore[no-untyped-def]
    server: SimServerProcess = sim_server("fred", {"SIM_RATE_LIMIT_PER_MIN": "1"})
    today = _today()
    await fetch(server.url, "VIXCLS", today - timedelta(days=10), today)
    with pytest.raises(RateLimited) as info:
        await fetch(server.url, "VIXCLS", today - timedelta(days=10), today)
    assert info.value.retry_after == RETRY_AFTER_S  # FRED sends no Retry-After
