"""The admin console's data pages (coverage, tracked, symbol) over the in-process app, logged
in through the real /admin login form with an admin key.

The store is SQLite on a ManualClock at NOW (Wednesday 2025-10-08, 15:00Z; the session
opened at 13:30Z, so Tuesday is the last closed session).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest

from mds.access.admin import issue_key
from mds.access.keys import Role
from mds.domain.actions import ActionType, CorporateAction
from mds.domain.models import Bar, Capability, Interval
from mds.domain.profile import format_market_cap
from mds.ops.catalog import CATALOG
from mds.runtime import Runtime
from mds.serialize import iso
from tests.integration.conftest import asgi_client

NOW = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)
OPEN = datetime(2025, 10, 8, 13, 30, tzinfo=UTC)
MONITOR = "monitor_coverage_health"


@pytest.fixture
async def admin(rt: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """A browser-like client logged in to /admin (no API key header: the session cookie)."""
    async with asgi_client(rt, role=None) as client:
        key, _ = await issue_key(rt.store, f"admin-{secrets.token_hex(3)}", Role.ADMIN, now=NOW)
        form = await client.get("/admin/login")
        token = _csrf(form.text)
        r = await client.post("/admin/login", data={"api_key": key, "csrf": token, "next": "/admin/coverage"})
        assert r.status_code == 303 and r.headers["location"] == "/admin/coverage", r.text
        yield client


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF token in the page"
    return found.group(1)


def _column(html: str, table: str) -> list[str]:
    """The first cell's text of each body row of table ``table``."""
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return [
        re.sub(r"<[^>]+>|\s+new\s*$", "", cell).strip()
        for cell in re.findall(r"<tr>\s*<td>(.*?)</td>", body, re.S)
    ]


def _page(r: httpx.Response) -> str:
    assert r.status_code == 200, (r.status_code, r.text[:2000])
    assert "Traceback" not in r.text
    return r.text


def _daily(symbol: str, sessions: list[datetime], close: float, provider: str = "sim") -> list[Bar]:
    return [
        Bar(symbol, Interval.D1, ts, close, close + 1, close - 1, close, 1e6, provider) for ts in sessions
    ]


def _minutes(start: datetime, n: int, provider: str, price: float = 100.0) -> list[Bar]:
    return [
        Bar(
            "AAPL",
            Interval.M1,
            start + timedelta(minutes=i),
            price,
            price + 1,
            price - 1,
            price,
            100.0,
            provider,
        )
        for i in range(n)
    ]


# -- access --------------------------------------------------------------------------------


async def test_without_a_session_pages_and_the_chart_data_redirect_to_the_login(rt: Runtime) -> None:
    async with asgi_client(rt, role=None) as client:
        for path in (
            "/admin/coverage",
            "/admin/tracked?tab=new",
            "/admin/symbol?symbol=AAPL",
            "/admin/symbol/bars.json?symbol=AAPL",
        ):
            r = await client.get(path)
            assert r.status_code == 303, path
            assert r.headers["location"].startswith("/admin/login?next=%2Fadmin%2F"), path
        r = await client.post("/admin/coverage/monitor", data={"csrf": "x"})
        assert r.status_code == 403


# -- empty store ---------------------------------------------------------------------------


async def test_pages_on_an_empty_store_say_so(admin: httpx.AsyncClient) -> None:
    html = _page(await admin.get("/admin/coverage"))
    # Only SPY is tracked (no index lists, no holdings) and it holds no bar yet.
    assert "Snapshot from <strong>db</strong>" in html
    assert _column(html, "coverage-list") == ["SPY"] and "no bar" in html
    html = _page(await admin.get("/admin/coverage", params={"list": "m5", "q": "ZZZ"}))
    assert "No symbol matches “ZZZ” in this list." in html

    html = _page(await admin.get("/admin/tracked", params={"q": "QQQQ"}))
    assert "No symbol in tracked:all matches “QQQQ”." in html
    html = _page(await admin.get("/admin/tracked", params={"tab": "new", "cols": ["price", "atr"]}))
    assert _column(html, "tracked-table") == ["SPY"]
    assert "no data stored yet" in html and "no cached snapshot" in html  # why the cells are empty

    assert "Pick a symbol to chart its stored bars." in _page(await admin.get("/admin/symbol"))
    assert "Unknown symbol “NOPE”" in _page(await admin.get("/admin/symbol", params={"symbol": "nope"}))
    html = _page(await admin.get("/admin/symbol", params={"symbol": "aapl"}))
    assert 'data-symbol="AAPL"' in html and "/admin/static/symbol.js" in html
    assert "lightweight-charts.standalone.production.js" in html

    body = (await admin.get("/admin/symbol/bars.json", params={"symbol": "AAPL", "interval": "1m"})).json()
    assert body["bars"] == [] and body["count"] == 0
    assert body["gaps"] == [
        {"start": "2025-10-08T13:30:00Z", "end": "2025-10-08T15:00:00Z", "missing_bars": 90}
    ]
    r = await admin.get("/admin/symbol/bars.json", params={"symbol": "NOPE"})
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == "unknown symbol: NOPE"
    r = await admin.get("/admin/symbol/bars.json", params={"symbol": "AAPL", "adjust": "half"})
    assert r.status_code == 422 and r.json()["field"] == "adjust"
    assert "'half' is not one of raw, split, all" in r.json()["detail"]


# -- coverage ------------------------------------------------------------------------------


async def test_coverage_page_lists_stale_and_missing_5m_symbols_paged_and_filtered(
    rt: Runtime, admin: httpx.AsyncClient
) -> None:
    await rt.tracked.hold([f"T{i:03d}" for i in range(120)])
    sessions = [s.open for s in rt.calendar.closed_sessions(NOW, 5)]
    # T000-T059 fresh; T060-T089 one session behind; T090-T119 nothing; 5m for T000-T009 only.
    bars = [b for i in range(60) for b in _daily(f"T{i:03d}", sessions, 10.0)]
    bars += [b for i in range(60, 90) for b in _daily(f"T{i:03d}", sessions[:-1], 10.0)]
    bars += [
        Bar(f"T{i:03d}", Interval.M5, sessions[-1] + timedelta(minutes=5), 1, 1, 1, 1, 1, "sim")
        for i in range(10)
    ]
    await rt.store.write_bars(bars, as_of=NOW)
    r = await admin.post(
        "/admin/coverage/refresh", data={"csrf": _csrf(_page(await admin.get("/admin/coverage")))}
    )
    assert r.status_code == 303 and r.headers["location"] == "/admin/coverage?done=refreshed"

    html = _page(await admin.get(r.headers["location"]))
    assert "Coverage snapshot refreshed" in html and "Snapshot from <strong>cache</strong>" in html
    assert re.search(r"<td>24-48h</td><td class=\"num\">30</td>", html)
    assert re.search(r"<td>none</td><td class=\"num\">31</td>", html)  # T090-T119 and SPY
    runs = await rt.store.job_runs(task=MONITOR)
    assert runs and runs[0].created_by and runs[0].created_by.startswith("admin-")

    # Stale, worst first: none (SPY and T090-T119), then 24-48h (T060-T089); 25 a page.
    first = _column(_page(await admin.get("/admin/coverage", params={"per_page": 25})), "coverage-list")
    second = _column(
        _page(await admin.get("/admin/coverage", params={"per_page": 25, "page": 2})), "coverage-list"
    )
    assert (
        first[:2] == ["SPY", "T090"]
        and len(first) == 25
        and second[0] == "T114"
        and not set(first) & set(second)
    )
    html = _page(await admin.get("/admin/coverage", params={"bucket": "24-48h", "q": "t08"}))
    assert _column(html, "coverage-list") == [f"T08{i}" for i in range(10)]
    # Missing 5m: everyone but T000-T009.
    html = _page(await admin.get("/admin/coverage", params={"list": "m5", "per_page": 200}))
    listed = _column(html, "coverage-list")
    assert len(listed) == 111 and "T009" not in listed and "T010" in listed


async def test_one_click_schedules_the_hourly_coverage_monitor(rt: Runtime, admin: httpx.AsyncClient) -> None:
    if await rt.store.get_schedule(MONITOR) is not None:
        await rt.schedules.delete(MONITOR)
    html = _page(await admin.get("/admin/coverage"))
    assert "is missing." in html and "Schedule hourly coverage monitor" in html

    r = await admin.post("/admin/coverage/monitor", data={"csrf": "wrong"})
    assert r.status_code == 403 and "CSRF" in r.text and await rt.store.get_schedule(MONITOR) is None

    r = await admin.post("/admin/coverage/monitor", data={"csrf": _csrf(html)})
    assert r.status_code == 303 and r.headers["location"] == "/admin/coverage?done=monitor_created"
    s = await rt.store.get_schedule(MONITOR)
    assert s is not None and s.enabled and s.task == MONITOR and s.cron == "5 * * * *"
    assert s.metadata.created_by and s.metadata.created_by.startswith("admin-")
    html = _page(await admin.get(r.headers["location"]))
    assert "created: the monitor now runs hourly" in html and "next run 2025-10-08T15:05:00Z" in html

    await rt.schedules.pause(MONITOR, by="test")
    r = await admin.post("/admin/coverage/monitor", data={"csrf": _csrf(html)})
    assert r.headers["location"] == "/admin/coverage?done=monitor_resumed"
    s = await rt.store.get_schedule(MONITOR)
    assert s is not None and s.enabled


# -- tracked -------------------------------------------------------------------------------


async def test_tracked_pages_page_and_filter_8000_symbols(rt: Runtime, admin: httpx.AsyncClient) -> None:
    await rt.store.add_holdings([f"S{i:05d}" for i in range(8000)], note="bulk", now=NOW)
    first = _page(await admin.get("/admin/tracked"))
    assert "8001 symbols in tracked:all" in first and "page 1 of 161" in first
    rows1 = _column(first, "tracked-table")
    rows2 = _column(_page(await admin.get("/admin/tracked", params={"page": 2})), "tracked-table")
    assert rows1[:2] == ["S00000", "S00001"] and len(rows1) == len(rows2) == 50
    assert rows2[0] == "S00050" and not set(rows1) & set(rows2)
    html = _page(await admin.get("/admin/tracked", params={"q": "s0799"}))
    assert _column(html, "tracked-table") == [f"S0799{i}" for i in range(10)] and "10 symbols" in html
    # Nothing of them is stored: tracked:new holds them all, SPY too.
    html = _page(await admin.get("/admin/tracked", params={"tab": "new", "page": 161}))
    assert _column(html, "tracked-table") == ["SPY"] and "8001 symbols in tracked:new" in html


async def test_tracked_columns_and_quick_actions(rt: Runtime, admin: httpx.AsyncClient) -> None:
    sessions = [s.open for s in rt.calendar.closed_sessions(NOW, 60)]
    await rt.store.write_bars(_daily("AAPL", sessions, 200.0), as_of=NOW)
    await rt.tracked.hold(["AAPL", "MSFT"])
    params = {"q": "AAPL", "cols": ["price", "atr", "stage", "market_cap", "sector"]}
    html = _page(await admin.get("/admin/tracked", params=params))
    assert ">200.00<" in html and "bar_1d from sim" in html  # the price and where it is from
    assert "no cached snapshot" in html and "no company profile stored" in html

    r = await admin.post(
        "/admin/tracked/recompute",
        data={"csrf": _csrf(html), "symbol": "aapl", "back": "/admin/tracked?q=AAPL&cols=atr&cols=stage"},
    )
    assert r.status_code == 303
    assert r.headers["location"] == "/admin/tracked?q=AAPL&cols=atr&cols=stage&done=recomputed&symbol=AAPL"
    html = _page(await admin.get(r.headers["location"]))
    assert "Recomputed the technical snapshot of AAPL." in html
    # The bars' range is 2 every day, so ATR(14) is 2.00 (1% of the close).
    assert ">2.00 (1.0%)<" in html and "snapshot of 2025-10-07" in html

    r = await admin.post(
        "/admin/tracked/update", data={"csrf": _csrf(html), "back": "https://elsewhere.example/x"}
    )
    assert r.headers["location"] == "/admin/tracked?done=updated&n=3"  # AAPL, MSFT, SPY; never off-site
    runs = await rt.store.job_runs(task="update_tracked_symbol_cache")
    assert runs and runs[0].counters["symbols"] == 3

    # MSFT holds no daily bar: its last BACKFILL_TRACKED_SESSIONS sessions are queued (per tier).
    r = await admin.post("/admin/tracked/backfill", data={"csrf": _csrf(html), "symbol": "msft"})
    assert r.status_code == 303 and "done=backfill" in r.headers["location"]
    html = _page(await admin.get(r.headers["location"]))
    assert re.search(r"Daily backfill of MSFT: [1-9]\d* job\(s\) queued", html)
    assert await rt.store.active_backfills_many(["MSFT"], Interval.D1)


async def test_tracked_market_cap_comes_from_the_refresh_task_it_queues(
    rt: Runtime, admin: httpx.AsyncClient
) -> None:
    await rt.tracked.hold(["AAPL", "SPY"])
    params = {"q": "", "cols": ["market_cap"]}
    html = _page(await admin.get("/admin/tracked", params=params))
    assert _column(html, "tracked-table") == ["AAPL", "SPY"]
    assert html.count("no company profile stored") == 2  # one cell each

    r = await admin.post(
        "/admin/tracked/refresh-profiles", data={"csrf": _csrf(html), "back": "/admin/tracked"}
    )
    assert r.status_code == 303 and "done=profiles" in r.headers["location"]
    [queued] = await rt.store.job_runs(task="refresh_company_profiles")
    assert f"n={queued.id}" in r.headers["location"]
    assert queued.status.value == "queued" and queued.params == {"args": [], "kwargs": {}}
    # What a worker does with it (the runner's clock-time timeout cannot race a ManualClock).
    counters: dict[str, object] = {}
    await CATALOG["refresh_company_profiles"].fn(rt.runs.ctx, counters)
    assert counters["asked"] == counters["stored"] == 2 and counters["providers"] == {"sim": 2}

    r = await admin.post("/admin/tracked/backfill-new", data={"csrf": _csrf(html), "back": "/admin/tracked"})
    [backfill] = await rt.store.job_runs(task="backfill_new_tracked")
    assert (
        r.status_code == 303 and r.headers["location"] == f"/admin/tracked?done=backfill_new&n={backfill.id}"
    )
    bogus = await admin.post("/admin/tracked/bogus", data={"csrf": _csrf(html)})
    assert bogus.status_code in (404, 422) and "Traceback" not in bogus.text

    stored = await rt.store.profiles(["AAPL", "SPY"])
    aapl = stored["AAPL"]
    assert aapl.provider == "sim" and aapl.market_cap is not None and aapl.shares_outstanding is not None
    price = await _sim_last(rt, "AAPL")
    # The sim prices the cap at its last trade: shares x price, within the rounding of both.
    assert aapl.market_cap == pytest.approx(aapl.shares_outstanding * price, rel=1e-3)
    html = _page(await admin.get("/admin/tracked", params=params))
    assert format_market_cap(aapl.market_cap, "USD") in html and "no company profile stored" not in html
    assert "sim gives no market cap" in html  # SPY: an ETF has none, and the cell says why


# -- symbol chart --------------------------------------------------------------------------


async def test_chart_data_gives_bars_with_provider_gaps_and_empty_minutes_point_in_time(
    rt: Runtime, admin: httpx.AsyncClient
) -> None:
    # 13:30-13:59 from sim, learned 14:00:30; 14:00-14:09 missing; 14:10-14:14 confirmed empty;
    # 14:15-14:59 from sim_backup, learned at 15:00.
    await rt.store.write_bars(_minutes(OPEN, 30, "sim"), as_of=OPEN + timedelta(minutes=30, seconds=30))
    await rt.store.write_bars(_minutes(OPEN + timedelta(minutes=45), 45, "sim_backup"), as_of=NOW)
    empty = [int((OPEN + timedelta(minutes=40 + i)).timestamp()) for i in range(5)]
    confirmed = await rt.store.record_empty_evidence(
        "AAPL", Interval.M1, empty, "sim", now=NOW, needed_answers=1, needed_providers=1
    )
    assert confirmed == empty

    body = (await admin.get("/admin/symbol/bars.json", params={"symbol": "AAPL", "interval": "1m"})).json()
    assert body["count"] == 75 and body["source_interval"] == "1m"
    assert [b["provider"] for b in body["bars"][29:31]] == ["sim", "sim_backup"]
    assert (
        body["bars"][0]["time"] == int(OPEN.timestamp())
        and body["bars"][0]["as_of"] == "2025-10-08T14:00:30Z"
    )
    assert body["gaps"] == [
        {"start": "2025-10-08T14:00:00Z", "end": "2025-10-08T14:10:00Z", "missing_bars": 10}
    ]
    assert body["empty"] == [f"2025-10-08T14:1{i}:00Z" for i in range(5)] and body["empty_count"] == 5
    assert [m["time"] for m in body["marks"] if m["kind"] == "empty"] == empty

    # As known at 14:30: the later bars are not there yet, so 14:15-14:29 is a gap too.
    params = {"symbol": "AAPL", "interval": "1m", "as_of": "2025-10-08T14:30:00Z"}
    body = (await admin.get("/admin/symbol/bars.json", params=params)).json()
    assert body["count"] == 30 and {b["provider"] for b in body["bars"]} == {"sim"}
    assert [(g["start"], g["missing_bars"]) for g in body["gaps"]] == [
        ("2025-10-08T14:00:00Z", 10),
        ("2025-10-08T14:15:00Z", 15),
    ]
    # 5m is rolled up from 1m: the holes are the 1m holes, marked at their 5m buckets.
    params = {"symbol": "AAPL", "interval": "5m", "period": "1d"}
    body = (await admin.get("/admin/symbol/bars.json", params=params)).json()
    assert body["source_interval"] == "1m" and body["count"] == 15 and body["missing_bars"] == 10
    gap_marks = [m["time"] for m in body["marks"] if m["kind"] == "gap"]
    assert gap_marks == [int((OPEN + timedelta(minutes=m)).timestamp()) for m in (30, 35)]


async def test_chart_adjust_changes_prices_across_a_split(rt: Runtime, admin: httpx.AsyncClient) -> None:
    sessions = [s.open for s in rt.calendar.closed_sessions(NOW, 20)]
    ex = date(2025, 9, 29)
    before = [ts for ts in sessions if ts.date() < ex]
    after = [ts for ts in sessions if ts.date() >= ex]
    await rt.store.write_bars(_daily("AAPL", before, 400.0) + _daily("AAPL", after, 100.0), as_of=NOW)
    split = CorporateAction("AAPL", ActionType.SPLIT, ex, ratio=4.0, source="sim")
    await rt.store.write_corporate_actions([split], as_of=NOW - timedelta(days=30))

    raw = (await admin.get("/admin/symbol/bars.json", params={"symbol": "AAPL"})).json()
    assert {b["close"] for b in raw["bars"]} == {400.0, 100.0} and raw["adjustment"]["mode"] == "raw"
    adjusted = (
        await admin.get("/admin/symbol/bars.json", params={"symbol": "AAPL", "adjust": "split"})
    ).json()
    assert {b["close"] for b in adjusted["bars"]} == {100.0}
    assert [a["ex_date"] for a in adjusted["adjustment"]["actions"]] == ["2025-09-29"]
    assert [b["time"] for b in adjusted["bars"]] == [b["time"] for b in raw["bars"]]
    # The year before the first stored session is one gap (no first trade is known).
    first = datetime.fromtimestamp(raw["bars"][0]["time"], UTC)
    assert len(raw["bars"]) == 20 and raw["gaps"][-1]["end"] == "2025-09-10T13:30:00Z" == iso(first)


async def _sim_last(rt: Runtime, symbol: str) -> float:
    """The sim's last trade now, asked the way a caller would: a routed level-1 quote."""
    routed = await rt.router.call(Capability.QUOTES_L1, lambda p: p.fetch_quotes([symbol]))
    last = routed.value[0].last
    assert last is not None
    return last
