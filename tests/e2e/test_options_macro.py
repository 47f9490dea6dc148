"""Options and macro over real sockets: `mds serve --demo` on a simulated clock.

One demo process (a Wednesday mid-session, the clock at real rate) serves every test of
this module. The sim prices AAPL's chain from a known volatility surface and publishes
macro series with a release history, so the answers are checked against that ground
truth: the metrics recover the surface's ATM level and the signs of its skew and smile,
and a DTWEXBGS value read "as of" its first-print day is the first print, not the later
revision; the demo's sim TSLA split is learned at the first start and adjusted across.
Option refreshes come only when a test asks (a long chain cache), so the
stream's offsets are predictable: one refresh is one ``options_metrics`` and one
``options_chain`` message.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import subprocess
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from mds.cli.common import demo_actions
from mds.domain.models import Interval
from mds.providers.sim.actions import sim_actions_from_env
from mds.providers.sim.macro import REVISION_LAG, sim_macro_observations
from mds.providers.sim.market import ground_truth
from mds.providers.sim.options import SimSurface
from mds.serialize import iso
from tests.e2e.conftest import MDS, MdsProcess, clean_env, create_key
from tests.helpers import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CLOCK = "2025-10-08T15:00:00Z"  # a Wednesday, the session under way
TODAY = date(2025, 10, 8)
SYMBOL = "AAPL"
SIM_SEED = 42  # the sim's default SIM_SEED: its ground truth
#: A Monday in the macro refresh's history: DTWEXBGS first prints it on the next business
#: day and revises it REVISION_LAG business days after that.
REVISED_DATE = date(2025, 9, 15)
FIRST_PRINT = date(2025, 9, 16)
REVISED_ON = date(2025, 9, 19)
TASKS = "/api/v1/market-data/admin"
OCC = re.compile(r"^(?P<root>[A-Z]+)(?P<date>\d{6})(?P<flag>[CP])(?P<strike>\d{8})$")
RECV_S = 15.0
#: The demo's sim splits and dividends, dated from its clock as `mds serve --demo` dates them.
DEMO_ACTIONS = sim_actions_from_env(demo_actions(TODAY))


@pytest.fixture(scope="module")
def mds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MdsProcess]:
    """The demo with its catalog (the first start's macro refresh is under test), the chain
    cached for an hour of clock time so no refresh happens unasked."""
    tmp = tmp_path_factory.mktemp("options-macro")
    env = clean_env({"DATABASE_URL": f"sqlite:///{tmp}/mds.db", "CACHE_TTL_OPTIONS_CHAIN_SEC": "3600"})
    key = create_key(env, tmp)
    port = free_port()
    log_path = tmp / "mds.log"
    log_file = log_path.open("wb")
    proc = subprocess.Popen(
        [MDS, "serve", "--demo", "--clock", CLOCK, "--speed", "1", "--port", str(port)],
        cwd=tmp,
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    process = MdsProcess(proc, f"http://127.0.0.1:{port}", log_path, log_file, key)
    try:
        process.wait_until(lambda: process.get("/health").status_code == 200, 30, "/health")
        yield process
    finally:
        process.stop()


def _problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body: dict[str, Any] = r.json()
    assert body["status"] == status, body
    return body


# 1. Chain ------------------------------------------------------------------------------


def test_chain_is_priced_by_mds_and_filtered_by_horizon(mds: MdsProcess) -> None:
    full = mds.get(f"/options/{SYMBOL}/chain")
    assert full.status_code == 200, full.text
    r = mds.get(f"/options/{SYMBOL}/chain", max_days=40)
    assert r.status_code == 200, r.text
    chain = r.json()
    assert chain["symbol"] == SYMBOL and chain["provider"].startswith("sim"), chain["provider"]
    assert chain["spot"] > 0 and chain["dropped"] == 0
    contracts = chain["contracts"]
    assert chain["count"] == len(contracts) > 0
    # Within 40 days: a part of the whole chain (OPTIONS_MAX_DAYS), not all of it.
    assert all(date.fromisoformat(c["expiration"]) <= TODAY + timedelta(days=40) for c in contracts)
    assert len(contracts) < full.json()["count"]

    for c in contracts:
        m = OCC.match(c["contract"])
        assert m is not None, c["contract"]
        assert m["root"] == SYMBOL
        assert m["date"] == date.fromisoformat(c["expiration"]).strftime("%y%m%d"), c
        assert m["flag"] == ("C" if c["type"] == "call" else "P"), c
        assert int(m["strike"]) == round(c["strike"] * 1000), c
        if c["bid"] and c["ask"]:
            # Quoted: MDS's own IV from the mid, or none where the mid's time value is inside
            # half the spread (deep in the money, a day or two out: any vol would fit).
            assert c["mid"] == pytest.approx((c["bid"] + c["ask"]) / 2), c
            if c["iv_reason"] == "spread_exceeds_time_value":
                assert c["iv"] is None and c["delta"] is None, c
                continue
            assert c["iv"] is not None and c["iv_reason"] is None, c
            assert c["delta"] is not None and -1 <= c["delta"] <= 1, c
        else:
            assert c["iv"] is None and c["iv_reason"] in ("no_bid", "no_ask"), c
    quoted = [c for c in contracts if c["iv"] is not None]
    assert len(quoted) > len(contracts) / 2
    # Near the money the quotes' ticks matter little: MDS's IV is the surface's.
    spot = chain["spot"]
    near = [c for c in quoted if abs(math.log(c["strike"] / spot)) < 0.05 and c["expiration"] > "2025-10-20"]
    assert near and all(abs(c["iv"] - c["vendor_iv"]) < 0.02 for c in near), near[:3]


def test_chain_bad_input(mds: MdsProcess) -> None:
    listed = mds.get(f"/options/{SYMBOL}/chain").json()["expirations"]
    saturday = "2025-10-11"
    assert saturday not in listed
    body = _problem(mds.get(f"/options/{SYMBOL}/chain", expiration=saturday), 422)
    assert body["field"] == "expiration" and saturday in body["detail"], body

    one = mds.get(f"/options/{SYMBOL}/chain", expiration=listed[0])
    assert one.status_code == 200, one.text
    assert {c["expiration"] for c in one.json()["contracts"]} == {listed[0]}

    _problem(mds.get("/options/ZZZZ/chain"), 404)
    _problem(mds.get("/options/ZZZZ/metrics"), 404)


# 2. Metrics and strategies ----------------------------------------------------------------


def test_metrics_recover_the_sim_surface_and_are_stored(mds: MdsProcess) -> None:
    r = mds.get(f"/options/{SYMBOL}/metrics")
    assert r.status_code == 200, r.text
    m = r.json()
    assert m["symbol"] == SYMBOL and m["provider"].startswith("sim")
    surface = SimSurface.for_symbol(SIM_SEED, SYMBOL)
    # The sim prices with 4%, MDS with the stored DGS3MO: a small bias, well inside 0.01.
    assert m["iv30"] == pytest.approx(float(surface.atm(30 / 365)), abs=0.01), m["iv30"]
    assert m["rr25"] < 0, m["rr25"]  # puts richer: the surface's skew is negative
    assert m["bf25"] > 0, m["bf25"]  # both wings above the money
    assert m["implied_move"] > 0
    assert m["implied_move_abs"] == pytest.approx(m["implied_move"] * m["spot"], rel=1e-6)
    assert m["term_structure"] and all(p["atm_iv"] > 0 for p in m["term_structure"])

    history = mds.get(f"/options/{SYMBOL}/metrics/history")
    assert history.status_code == 200, history.text
    rows = history.json()["rows"]
    assert history.json()["count"] == len(rows) > 0
    stored = {(row["metric"], row["tenor"]): row for row in rows if row["as_of"] == m["as_of"]}
    assert stored[("iv30", "30d")]["value"] == pytest.approx(m["iv30"])
    assert stored[("rr25", "30d")]["value"] == pytest.approx(m["rr25"])


def test_iron_condors_sorted_by_probability_of_profit(mds: MdsProcess) -> None:
    r = mds.get(f"/options/{SYMBOL}/strategies", type="iron_condor", limit=3)
    assert r.status_code == 200, r.text
    body = r.json()
    found = body["strategies"]
    assert body["sort"] == "pop" and body["count"] == len(found)
    assert 0 < len(found) <= 3
    pops = [s["pop"] for s in found]
    assert pops == sorted(pops, reverse=True), pops
    for s in found:
        assert s["type"] == "iron_condor" and len(s["legs"]) == 4, s
        assert sorted(leg["type"] for leg in s["legs"]) == ["call", "call", "put", "put"], s
        assert sorted(leg["side"] for leg in s["legs"]) == ["long", "long", "short", "short"], s
        assert {leg["expiration"] for leg in s["legs"]} == {s["expiration"]}
        assert s["net_kind"] == "credit" and 0 < s["pop"] < 1, s


# 3. Macro -------------------------------------------------------------------------------


def _first_start_refresh(mds: MdsProcess) -> dict[str, Any] | None:
    r = mds.get(f"{TASKS}/jobs", task="refresh_macro_factors")
    assert r.status_code == 200, r.text
    runs = r.json()["jobs"]
    failed = [j for j in runs if j["status"] in ("failed", "timed_out")]
    assert not failed, failed
    done = [j for j in runs if j["status"] == "succeeded"]
    return done[-1] if done else None  # newest first: the last is the first start's


def test_macro_snapshot_history_and_refresh(mds: MdsProcess) -> None:
    run = mds.wait_until(lambda: _first_start_refresh(mds), 60, "the first start's macro refresh")
    assert run["counters"]["failed"] == 0 and run["counters"]["new_rows"] > 0, run

    snap = mds.get("/factors/macro")
    assert snap.status_code == 200, snap.text
    factors = snap.json()["factors"]
    for key in ("VIXCLS", "DGS10", "DGS2"):
        assert factors[key]["value"] is not None and factors[key]["source"].startswith("sim"), factors[key]
    assert 12 <= factors["VIXCLS"]["value"] <= 35  # the sim's VIX range
    spread = factors["term_spread_10y2y"]
    assert spread["date"] == factors["DGS10"]["date"] == factors["DGS2"]["date"]
    assert spread["value"] == pytest.approx(factors["DGS10"]["value"] - factors["DGS2"]["value"], abs=1e-6)

    # Point in time: on its first-print day the value was the first print; now it is revised.
    path = "/factors/macro/DTWEXBGS/history"
    window = {"start": REVISED_DATE.isoformat(), "end": REVISED_DATE.isoformat()}
    newest = mds.get(path, **window).json()["observations"]
    then = mds.get(path, **window, as_of=FIRST_PRINT.isoformat()).json()["observations"]
    assert [o["date"] for o in newest] == [o["date"] for o in then] == [REVISED_DATE.isoformat()]
    assert newest[0]["value"] != then[0]["value"], (newest, then)
    truth_then, truth_now = (
        sim_macro_observations("DTWEXBGS", start=REVISED_DATE, end=REVISED_DATE, today=d, seed=SIM_SEED)[0]
        for d in (FIRST_PRINT, TODAY)
    )
    assert (then[0]["value"], then[0]["realtime_start"]) == (truth_then.value, FIRST_PRINT.isoformat())
    assert (newest[0]["value"], newest[0]["realtime_start"]) == (truth_now.value, REVISED_ON.isoformat())
    assert REVISION_LAG == 3  # REVISED_ON is FIRST_PRINT + 3 business days

    _problem(mds.get("/factors/macro/NOPE/history"), 404)

    refresh = "/admin/macro/refresh"
    _problem(httpx.post(mds.url + refresh, timeout=10), 401)
    r = mds.post(refresh, json={"factors": ["VIXCLS", "DTWEXBGS"]})
    assert r.status_code == 200, r.text
    assert r.json()["failed"] == [] and set(r.json()["factors"]) == {"VIXCLS", "DTWEXBGS"}, r.json()


# 4. WebSocket --------------------------------------------------------------------------


def _ws(http_url: str, path: str) -> str:
    return "ws" + http_url.removeprefix("http") + path


async def _recv(ws: ClientConnection, timeout: float = RECV_S) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        text = await ws.recv()
    message = json.loads(text)
    assert isinstance(message, dict), text
    return message


async def _next(ws: ClientConnection, n: int, what: str) -> list[dict[str, Any]]:
    """The next ``n`` messages; on a timeout, fail saying which ones came."""
    got: list[dict[str, Any]] = []
    try:
        while len(got) < n:
            got.append(await _recv(ws))
    except TimeoutError:
        seen = [(m["type"], m.get("offset")) for m in got]
        raise AssertionError(f"{what}: {n} messages expected in {RECV_S} s, got {seen}") from None
    return got


def _refresh_now(mds: MdsProcess) -> dict[str, Any]:
    """Run the catalog task refresh_options_metrics for SYMBOL; the finished job run."""
    r = mds.post(
        f"{TASKS}/tasks/run", json={"task": "refresh_options_metrics", "kwargs": {"symbols": [SYMBOL]}}
    )
    assert r.status_code == 202, r.text
    run_id = r.json()["id"]

    def finished() -> dict[str, Any] | None:
        job: dict[str, Any] = mds.get(f"{TASKS}/jobs/{run_id}").json()
        assert job["status"] not in ("failed", "timed_out", "skipped"), job
        return job if job["status"] == "succeeded" else None

    job = mds.wait_until(finished, 30, f"job run {run_id}")
    assert job["counters"]["refreshed"] == 1, job
    return job


def _assert_refresh(pair: list[dict[str, Any]], after: int, epoch: str) -> None:
    """One refresh's two messages: metrics then the changed contracts, right after ``after``."""
    assert [m["type"] for m in pair] == ["options_metrics", "options_chain"], pair
    assert [m["offset"] for m in pair] == [after + 1, after + 2], [m["offset"] for m in pair]
    assert all(m["epoch"] == epoch and m["symbol"] == f"options:{SYMBOL}" for m in pair), pair
    metrics, chain = pair
    assert metrics["as_of"] == chain["as_of"], pair
    assert metrics["iv30"] > 0 and metrics["rr25"] < 0, metrics
    assert chain["underlying"] == SYMBOL and chain["provider"].startswith("sim"), chain
    assert chain["changed"] == len(chain["contracts"]), chain


def test_options_stream_snapshot_updates_and_resume(mds: MdsProcess) -> None:
    asyncio.run(_options_stream(mds))


async def _options_stream(mds: MdsProcess) -> None:
    async with connect(_ws(mds.url, f"/ws/options/{SYMBOL}")) as ws:
        snapshot = await _recv(ws)
        assert snapshot["type"] == "snapshot" and snapshot["symbol"] == f"options:{SYMBOL}", snapshot
        assert snapshot["metrics"]["symbol"] == SYMBOL and snapshot["metrics"]["iv30"] > 0, snapshot
        assert snapshot["chain"]["count"] == len(snapshot["chain"]["contracts"]) > 0, snapshot["chain"]
        epoch, offset = snapshot["epoch"], snapshot["offset"]

        await asyncio.to_thread(_refresh_now, mds)
        live = await _next(ws, 2, "after a refresh")
        _assert_refresh(live, offset, epoch)
    # The refresh is what REST serves now.
    current = await asyncio.to_thread(mds.get, f"/options/{SYMBOL}/metrics")
    assert current.json()["as_of"] == live[0]["as_of"]

    cursor = live[-1]["offset"]
    await asyncio.to_thread(_refresh_now, mds)  # missed: nobody is connected
    async with connect(_ws(mds.url, f"/ws/options/{SYMBOL}?since={cursor}&epoch={epoch}")) as ws:
        resumed = await _recv(ws)
        assert resumed["type"] == "resumed", resumed
        assert (resumed["since"], resumed["epoch"], resumed["offset"]) == (cursor, epoch, cursor + 2), resumed
        assert resumed["replayed"] == 2, resumed
        missed = await _next(ws, 2, "after resuming")
        _assert_refresh(missed, cursor, epoch)
        assert missed[0]["as_of"] > live[0]["as_of"]
        with pytest.raises(TimeoutError):  # exactly the missed ones: nothing else follows
            await _recv(ws, timeout=1.5)


# 5. Corporate actions (the demo's sim TSLA split, dated from the demo clock) ---------------


def _first_start_actions(mds: MdsProcess) -> dict[str, Any] | None:
    runs = mds.get(f"{TASKS}/jobs", task="refresh_corporate_actions").json()["jobs"]
    assert not [j for j in runs if j["status"] in ("failed", "timed_out")], runs
    done = [j for j in runs if j["status"] == "succeeded"]
    return done[-1] if done else None


def _tsla_year(mds: MdsProcess, adjust: str) -> list[dict[str, Any]]:
    r = mds.get("/stocks/TSLA/history", period="1y", adjust=adjust)
    assert r.status_code == 200, r.text
    bars: list[dict[str, Any]] = r.json()["bars"]
    return bars


def test_demo_learns_its_sim_split_and_reads_adjust_across_it(mds: MdsProcess) -> None:
    run = mds.wait_until(lambda: _first_start_actions(mds), 60, "the first start's corporate-action refresh")
    assert run["counters"]["learned"] == 2, run  # TSLA's split and XOM's dividend, nothing else
    actions = mds.get("/stocks/TSLA/actions").json()["actions"]
    (split,) = [a for a in actions if a["type"] == "split"]
    assert split["ratio"] == 3.0 and split["source"].startswith("sim"), split
    ex = split["ex_date"]
    # The start-up backfill brings the year of daily bars; wait for both sides of the split.
    mds.wait_until(
        lambda: (
            sum(b["ts"][:10] >= ex for b in _tsla_year(mds, "raw")) > 5
            and sum(b["ts"][:10] < ex for b in _tsla_year(mds, "raw")) > 5
        ),
        120,
        "TSLA's daily bars around its split",
    )
    raw, adjusted = _tsla_year(mds, "raw"), _tsla_year(mds, "split")
    assert [b["ts"] for b in raw] == [b["ts"] for b in adjusted]
    # Exactly the sim's series: as traded (the split's multiplier before its ex-date) and, split-
    # adjusted, the continuous one (TSLA has no dividend, so split-adjusted is continuous).
    first, last = (datetime.fromisoformat(raw[i]["ts"].replace("Z", "+00:00")) for i in (0, -1))
    span = (first, last + timedelta(days=1))
    as_traded = {iso(b.ts): b.close for b in ground_truth("TSLA", Interval.D1, *span, actions=DEMO_ACTIONS)}
    continuous = {iso(b.ts): b.close for b in ground_truth("TSLA", Interval.D1, *span)}
    # Today's bar is provisional (the session is under way): the ground truth is the final one.
    final = [i for i, b in enumerate(raw) if b["status"] == "final"]
    assert len(final) >= len(raw) - 1
    assert [raw[i]["close"] for i in final] == pytest.approx(
        [as_traded[raw[i]["ts"]] for i in final], rel=1e-12
    )
    assert [adjusted[i]["close"] for i in final] == pytest.approx(
        [continuous[raw[i]["ts"]] for i in final], rel=1e-9
    )
    for r, a in zip(raw, adjusted, strict=True):
        factor = 1 / 3 if r["ts"][:10] < ex else 1.0
        assert a["close"] == pytest.approx(r["close"] * factor, rel=1e-12), (r, a)


def test_log_has_no_errors(mds: MdsProcess) -> None:
    # Runs last (module order): nothing above made the service log a traceback.
    logs = Path(mds.log_path).read_text(errors="replace")
    assert "Traceback" not in logs, logs[-4000:]
