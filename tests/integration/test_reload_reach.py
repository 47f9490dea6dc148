"""Over ASGI: a provider's health history, the seeds' second name for reload, and a reload
that rebuilds a vendor adapter whose base URL changed (it then calls the new server)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from mds.config import load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Capability, Interval
from mds.providers.base import Provider
from mds.providers.sim.faults import FaultInjector, SimFaults
from mds.providers.sim.market import SimMarket
from mds.runtime import Runtime, open_runtime
from mds.simserver.app import create_sim_app
from mds.simserver.context import SimContext
from tests.integration.conftest import API_ENV, API_NOW, CAL, asgi_client, ok, problem, served_on_loopback

KEY_ONE = "POLYGON_API_KEY=secret-key-one\n"


class Counted:
    """An ASGI app that counts the HTTP requests it passes to ``app``."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.requests = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.requests += 1
        await self.app(scope, receive, send)


def polygon_server(clock: ManualClock) -> Counted:
    ctx = SimContext(
        SimMarket(seed=42, calendar=CAL), clock, FaultInjector("polygon", SimFaults()), "polygon"
    )
    return Counted(create_sim_app("polygon", ctx))


async def bars(rt: Runtime) -> int:
    async def fetch(p: Provider) -> int:
        got = await p.fetch_bars("AAPL", Interval.M1, API_NOW - timedelta(minutes=30), API_NOW)
        return len(got)

    routed = await rt.router.call(Capability.BARS_1M, fetch, only="polygon")
    return routed.value


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[tuple[Runtime, Path]]:
    """A runtime reading ``mds.env`` in tmp_path under API_ENV, with polygon first for 1m bars
    (its key in the env file: the process environment would override a changed one)."""
    env = {
        **API_ENV,
        "DATABASE_URL": f"sqlite:///{tmp_path}/reload.db",
        "POLICY_BARS_1M": "polygon,sim",
    }
    env_file = tmp_path / "mds.env"
    env_file.write_text(KEY_ONE)
    async with open_runtime(
        load_settings({**env, "POLYGON_API_KEY": "secret-key-one"}),
        clock=ManualClock(API_NOW),
        demo=True,
        collect=False,
        environ=env,
        env_file=env_file,
    ) as rt:
        yield rt, env_file


async def test_health_history_lists_samples_and_transitions(api: tuple[httpx.AsyncClient, Runtime]) -> None:
    client, rt = api
    rt.router.record_completeness("sim", 0.5)
    body = ok(await client.get("/providers/sim/health-history"))
    assert body["provider"] == "sim" and body["state"] == "closed"
    [sample] = body["samples"]
    assert sample["components"]["completeness"] == pytest.approx(0.9)
    assert sample["health_score"] == body["health_score"]
    assert body["transitions"] == []

    rt.router.record_quality("sim", 0.1)  # far below the demote threshold: the breaker opens
    body = ok(await client.get("/providers/sim/health-history"))
    assert [(t["from"], t["to"]) for t in body["transitions"]] == [("closed", "open")]
    assert "data-quality score of 0.10" in body["transitions"][0]["reason"]

    unknown = problem(await client.get("/providers/nosuch/health-history"), 404)
    assert "nosuch" in unknown["detail"]
    problem(await client.get("/providers/NoSuch!/health-history"), 422)


async def test_config_reload_is_reload_by_its_other_name(
    tmp_path: Path, runtime: tuple[Runtime, Path]
) -> None:
    rt, env_file = runtime
    async with asgi_client(rt) as client:
        env_file.write_text(KEY_ONE + "CADENCE_T1__bars_1m=-5\n")
        refused = problem(await client.post("/ops/config/reload"), 422)
        assert refused["field"] == "CADENCE_T1__bars_1m" and refused["policy_version"] == "initial"

        env_file.write_text(KEY_ONE + "CADENCE_T1__bars_1m=120\nTASK_WORKERS=7\n")
        body = ok(await client.post("/ops/config/reload"))
        assert body["changed"] == ["CADENCE_T1", "TASK_WORKERS"]
        assert body["restart_required"] == ["TASK_WORKERS"]
        assert body["rebuilt"] == [] and body["announced"] is True
        assert rt.policy_version == body["policy_version"]
        assert rt.settings.CADENCE_T1.bars_1m == 120

        health = ok(await client.get("/health"))
        assert health["policy_version"] == body["policy_version"]
        assert health["policy_versions"] == {"api": [body["policy_version"]]}  # collect=False: API only
        [me] = health["processes"]
        assert me["roles"] == ["api"] and me["policy_version"] == body["policy_version"]

        # A second reload within the same second still gets a newer tag.
        again = ok(await client.post("/ops/reload"))
        assert int(again["policy_version"]) > int(body["policy_version"]) and again["changed"] == []


async def test_a_new_exporter_endpoint_is_answered_as_waiting_for_a_restart(
    runtime: tuple[Runtime, Path],
) -> None:
    rt, env_file = runtime
    assert not rt.tracing.enabled  # no endpoint at start: no spans
    async with asgi_client(rt) as client:
        env_file.write_text(KEY_ONE + "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318\n")
        body = ok(await client.post("/ops/config/reload"))
        assert body["changed"] == ["OTEL_EXPORTER_OTLP_ENDPOINT"]
        assert body["restart_required"] == ["OTEL_EXPORTER_OTLP_ENDPOINT"]
        assert rt.policy_version == body["policy_version"]
    assert not rt.tracing.enabled  # the tracer built at start is kept until a restart


async def test_a_changed_base_url_rebuilds_the_adapter_which_calls_the_new_server(
    runtime: tuple[Runtime, Path],
) -> None:
    rt, env_file = runtime
    clock = rt.clock
    assert isinstance(clock, ManualClock)
    first, second = polygon_server(clock), polygon_server(clock)
    async with (
        served_on_loopback(first) as first_port,
        served_on_loopback(second) as second_port,
        asgi_client(rt) as client,
    ):
        env_file.write_text(KEY_ONE + f"POLYGON_BASE_URL=http://127.0.0.1:{first_port}\n")
        assert ok(await client.post("/ops/reload"))["rebuilt"] == ["polygon"]
        assert await bars(rt) == 30
        assert (first.requests, second.requests) == (1, 0)

        env_file.write_text(
            f"POLYGON_BASE_URL=http://127.0.0.1:{second_port}\nPOLYGON_API_KEY=secret-key-two\n"
        )
        r = await client.post("/ops/config/reload")
        body = ok(r)
        assert body["rebuilt"] == ["polygon"]
        assert body["changed"] == ["POLYGON_API_KEY", "POLYGON_BASE_URL"]
        assert "secret-key" not in r.text  # names of settings only, never their values
        assert await bars(rt) == 30
        assert (first.requests, second.requests) == (1, 1)

        # The vendor's figures survived both swaps: one sample per call.
        history = ok(await client.get("/providers/polygon/health-history"))
        assert len(history["samples"]) == 2
