"""Router: policy order, failover, breaker and rate-limit interplay, hints, errors, metrics.

The providers here are small fakes of the Provider seam: each answers from a script of
outcomes (a value, or a typed ProviderError to raise).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from mds.config import Settings, load_settings
from mds.domain.clock import ManualClock
from mds.domain.models import Capability
from mds.errors import (
    AuthError,
    BadPayload,
    NoData,
    NoProviderAvailable,
    NotEntitled,
    RateLimited,
    Unavailable,
)
from mds.observability.metrics import Metrics
from mds.providers.base import Provider
from mds.routing.breaker import BreakerState
from mds.routing.router import Router

T0 = datetime(2024, 3, 8, 15, 0, tzinfo=UTC)
BARS = Capability.BARS_1M
EOD = Capability.EOD


class FakeProvider:
    """Answers ``ask()`` from a script; once the script runs out, answers its own name."""

    def __init__(
        self,
        name: str,
        script: Iterable[Any] = (),
        *,
        capabilities: Iterable[Capability] = (BARS, EOD),
        configured: bool = True,
        delay: float = 0.0,
    ) -> None:
        self.name = name
        self.capabilities = frozenset(capabilities)
        self.times_transport = False
        self._configured = configured
        self.script = list(script)
        self.delay = delay
        self.calls = 0
        self.gate: asyncio.Event | None = None

    @property
    def configured(self) -> bool:
        return self._configured

    async def ask(self) -> str:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        outcome = self.script.pop(0) if self.script else f"{self.name}-answer"
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def fetch_bars(self, *args: Any) -> list[Any]:
        return []

    async def fetch_quotes(self, symbols: Sequence[str]) -> list[Any]:
        return []

    async def aclose(self) -> None:
        return None


async def ask(p: Provider) -> str:
    assert isinstance(p, FakeProvider)
    return await p.ask()


def make(*providers: FakeProvider, env: dict[str, str] | None = None) -> tuple[Router, ManualClock, Metrics]:
    settings = load_settings(
        {"POLICY_BARS_1M": "sim,sim_backup,yahoo", "POLICY_EOD": "sim,sim_backup", **(env or {})}
    )
    clock = ManualClock(T0)
    metrics = Metrics()
    router = Router({p.name: p for p in providers}, settings, clock, metrics)
    return router, clock, metrics


def provider_errors(metrics: Metrics, provider: str, code: str) -> float:
    return metrics.value("provider_errors_total", provider=provider, endpoint="bars_1m", code=code)


def snap(router: Router, name: str) -> dict[str, Any]:
    return next(s for s in router.snapshot() if s["provider"] == name)


async def test_gauges_set_at_construction() -> None:
    router, _, metrics = make(FakeProvider("sim"), FakeProvider("sim_backup"))
    for name in ("sim", "sim_backup"):
        assert metrics.value("circuit_state", provider=name) == 1.0
        assert metrics.value("provider_health_score", provider=name) == pytest.approx(1.0)


async def test_failover_within_one_call_records_attempts_and_metrics() -> None:
    sim = FakeProvider("sim", [Unavailable("sim", "503 from upstream", code="503")])
    backup = FakeProvider("sim_backup")
    router, _, metrics = make(sim, backup)

    routed = await router.call(BARS, ask)

    assert routed.value == "sim_backup-answer"
    assert routed.provider == "sim_backup"
    assert routed.attempts == (("sim", "unavailable"),)
    assert provider_errors(metrics, "sim", "503") == 1
    assert metrics.value("provider_selected_total", capability="bars_1m", provider="sim_backup") == 1
    assert metrics.value("provider_selected_total", capability="bars_1m", provider="sim") == 0
    assert metrics.value("provider_latency_ms_count", provider="sim_backup", endpoint="bars_1m") == 1
    assert snap(router, "sim")["error_ewma"] == pytest.approx(0.2)
    assert snap(router, "sim")["consecutive_failures"] == 1
    assert len(snap(router, "sim")["h_history"]) == 1
    assert metrics.value("provider_health_score", provider="sim") == pytest.approx(router.health("sim"))


async def test_bad_payload_is_counted_twice() -> None:
    sim = FakeProvider("sim", [BadPayload("sim", "high < low")])
    router, _, metrics = make(sim, FakeProvider("sim_backup"))
    await router.call(BARS, ask)
    assert metrics.value("provider_bad_payloads_total", provider="sim") == 1
    assert provider_errors(metrics, "sim", "bad_payload") == 1


async def test_order_is_policy_order_and_deterministic() -> None:
    providers = [FakeProvider(n) for n in ("yahoo", "sim_backup", "sim")]
    router, _, _ = make(*providers)
    assert router.order(BARS) == ["sim", "sim_backup", "yahoo"]
    # Different latencies do not reorder: policy order is the tie-break and the order.
    await router.call(BARS, ask, hint="yahoo")
    await router.call(BARS, ask, hint="sim_backup")
    assert router.order(BARS) == ["sim", "sim_backup", "yahoo"]
    twin, _, _ = make(*(FakeProvider(n) for n in ("sim", "sim_backup", "yahoo")))
    assert twin.order(BARS) == router.order(BARS)


async def test_breaker_opens_after_failures_and_returns_after_probe() -> None:
    sim = FakeProvider("sim", [Unavailable("sim")] * 3)
    router, clock, metrics = make(sim, FakeProvider("sim_backup"))

    for _ in range(3):
        assert (await router.call(BARS, ask)).provider == "sim_backup"

    assert router.state("sim") is BreakerState.OPEN
    assert router.order(BARS) == ["sim_backup"]
    assert metrics.value("circuit_state", provider="sim") == 0.0
    assert (await router.call(BARS, ask)).attempts == ()  # sim skipped, not attempted
    assert sim.calls == 3

    clock.advance(30)
    assert router.order(BARS) == ["sim", "sim_backup"]  # back at its policy position
    assert router.state("sim") is BreakerState.HALF_OPEN
    routed = await router.call(BARS, ask)
    assert routed.provider == "sim"
    assert router.state("sim") is BreakerState.CLOSED
    assert metrics.value("circuit_state", provider="sim") == 1.0


async def test_half_open_admits_one_probe_at_a_time() -> None:
    sim = FakeProvider("sim", [Unavailable("sim")] * 3)
    router, clock, _ = make(sim, FakeProvider("sim_backup"))
    for _ in range(3):
        await router.call(BARS, ask)
    clock.advance(30)

    sim.gate = asyncio.Event()
    probe = asyncio.create_task(router.call(BARS, ask))
    await asyncio.sleep(0)  # let the probe start and block on the gate
    assert sim.calls == 4
    assert router.order(BARS) == ["sim_backup"]
    other = await router.call(BARS, ask)
    assert other.provider == "sim_backup"
    sim.gate.set()
    assert (await probe).provider == "sim"
    assert router.order(BARS) == ["sim", "sim_backup"]


async def test_calls_finding_the_only_provider_probing_wait_for_the_probe() -> None:
    """After an outage, a sweep's other symbols wait for the probe instead of failing."""
    sim = FakeProvider("sim", [Unavailable("sim")] * 3)
    router, clock, _ = make(sim, env={"POLICY_BARS_1M": "sim"})
    for _ in range(3):
        with pytest.raises(NoProviderAvailable):
            await router.call(BARS, ask)
    clock.advance(30)
    sim.gate = asyncio.Event()
    probe = asyncio.create_task(router.call(BARS, ask))
    await asyncio.sleep(0)
    others = [asyncio.create_task(router.call(BARS, ask)) for _ in range(5)]
    await asyncio.sleep(0.01)
    assert not any(t.done() for t in others), "calls failed while the probe was out"
    sim.gate.set()
    assert (await probe).provider == "sim"
    assert [(await t).provider for t in others] == ["sim"] * 5
    assert router.state("sim") is BreakerState.CLOSED


async def test_a_failed_probe_fails_the_calls_that_waited_for_it() -> None:
    sim = FakeProvider("sim", [Unavailable("sim")] * 4)
    router, clock, _ = make(sim, env={"POLICY_BARS_1M": "sim"})
    for _ in range(3):
        with pytest.raises(NoProviderAvailable):
            await router.call(BARS, ask)
    clock.advance(30)
    sim.gate = asyncio.Event()
    probe = asyncio.create_task(router.call(BARS, ask))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(router.call(BARS, ask))
    await asyncio.sleep(0.01)
    sim.gate.set()
    with pytest.raises(NoProviderAvailable):
        await probe
    with pytest.raises(NoProviderAvailable, match="open"):
        await waiter
    assert sim.calls == 4  # the waiter did not call a provider whose probe just failed


async def test_rate_limit_pauses_without_hurting_health() -> None:
    sim = FakeProvider("sim", [RateLimited("sim", retry_after=20)] * 5)
    router, clock, metrics = make(sim, FakeProvider("sim_backup"))
    health_before = router.health("sim")

    routed = await router.call(BARS, ask)

    assert routed.provider == "sim_backup"
    assert routed.attempts == (("sim", "rate_limited"),)
    assert provider_errors(metrics, "sim", "429") == 1
    assert router.order(BARS) == ["sim_backup"]
    s = snap(router, "sim")
    assert s["paused_until"] == "2024-03-08T15:00:20+00:00"
    assert s["error_ewma"] == 0.0
    assert s["consecutive_failures"] == 0
    assert router.health("sim") == health_before

    clock.advance(20)
    assert router.order(BARS) == ["sim", "sim_backup"]
    # More rate limits than the failure threshold never open the breaker.
    for _ in range(4):
        await router.call(BARS, ask)
        clock.advance(20)
    assert router.state("sim") is BreakerState.CLOSED
    assert snap(router, "sim")["error_ewma"] == 0.0


async def test_not_entitled_excludes_only_that_capability_until_reload() -> None:
    sim = FakeProvider("sim", [NotEntitled("sim", "plan lacks intraday", code="403")])
    router, _, _ = make(sim, FakeProvider("sim_backup"))

    assert (await router.call(BARS, ask)).provider == "sim_backup"
    assert router.order(BARS) == ["sim_backup"]
    assert router.order(EOD) == ["sim", "sim_backup"]
    assert snap(router, "sim")["not_entitled"] == ["bars_1m"]
    assert snap(router, "sim")["error_ewma"] == 0.0
    assert router.state("sim") is BreakerState.CLOSED

    router.update_settings(router.settings)
    assert router.order(BARS) == ["sim", "sim_backup"]
    assert snap(router, "sim")["not_entitled"] == []


async def test_unconfigured_and_incapable_providers_are_skipped_silently() -> None:
    sim = FakeProvider("sim", configured=False)
    backup = FakeProvider("sim_backup", capabilities=[EOD])
    yahoo = FakeProvider("yahoo")
    router, _, metrics = make(sim, backup, yahoo)

    assert router.order(BARS) == ["yahoo"]
    routed = await router.call(BARS, ask)
    assert routed.provider == "yahoo"
    assert routed.attempts == ()
    assert sim.calls == 0 and backup.calls == 0
    assert provider_errors(metrics, "sim", "unavailable") == 0


async def test_hint_honoured_when_override_allowed() -> None:
    router, _, _ = make(FakeProvider("sim"), FakeProvider("sim_backup"), FakeProvider("yahoo"))
    assert router.order(BARS, hint="yahoo") == ["yahoo", "sim", "sim_backup"]
    assert router.order(BARS, hint="yfinance") == ["yahoo", "sim", "sim_backup"]  # alias
    assert (await router.call(BARS, ask, hint="sim_backup")).provider == "sim_backup"


async def test_hint_ignored_when_override_disallowed() -> None:
    router, _, _ = make(
        FakeProvider("sim"), FakeProvider("sim_backup"), env={"ALLOW_SOURCE_OVERRIDE": "false"}
    )
    assert router.order(BARS, hint="sim_backup") == ["sim", "sim_backup"]
    assert (await router.call(BARS, ask, hint="sim_backup")).provider == "sim"


async def test_hint_ignored_when_hinted_provider_not_routable() -> None:
    backup = FakeProvider("sim_backup", [Unavailable("sim_backup")] * 3)
    router, _, _ = make(FakeProvider("sim"), backup, FakeProvider("yahoo"))
    for _ in range(3):
        await router.call(BARS, ask, hint="sim_backup")
    assert router.state("sim_backup") is BreakerState.OPEN
    assert router.order(BARS, hint="sim_backup") == ["sim", "yahoo"]
    assert router.order(BARS, hint="polygon") == ["sim", "yahoo"]  # not in policy
    assert (await router.call(BARS, ask, hint="sim_backup")).provider == "sim"


async def test_timeout_becomes_unavailable_timeout() -> None:
    slow = FakeProvider("sim", delay=5.0)
    router, _, metrics = make(slow, FakeProvider("sim_backup"), env={"PROVIDER_TIMEOUT_SEC": "0.02"})

    routed = await router.call(BARS, ask)

    assert routed.provider == "sim_backup"
    assert routed.attempts == (("sim", "unavailable"),)
    assert provider_errors(metrics, "sim", "timeout") == 1
    assert snap(router, "sim")["consecutive_failures"] == 1


async def test_all_fail_lists_each_reason() -> None:
    sim = FakeProvider("sim", [Unavailable("sim")] * 3 + [AuthError("sim", "bad key")])
    backup = FakeProvider("sim_backup", [BadPayload("sim_backup", "garbage")] * 4)
    yahoo = FakeProvider("yahoo", [Unavailable("yahoo", "502")] * 4)
    router, _, _ = make(sim, backup, yahoo, env={"BREAKER_FAILURE_THRESHOLD": "4"})
    for _ in range(3):
        with pytest.raises(NoProviderAvailable):
            await router.call(BARS, ask)
    with pytest.raises(NoProviderAvailable) as info:
        await router.call(BARS, ask)
    err = info.value
    assert err.capability == "bars_1m"
    assert err.errors == {
        "sim": "auth: bad key",
        "sim_backup": "bad_payload: garbage",
        "yahoo": "unavailable: 502",
    }
    assert err.retry_after is None

    # Now every breaker is open: the next call is refused without trying anyone.
    with pytest.raises(NoProviderAvailable) as info:
        await router.call(BARS, ask)
    assert info.value.errors == {p: "skipped: open" for p in ("sim", "sim_backup", "yahoo")}
    assert info.value.retry_after is None
    assert sim.calls == 4


async def test_no_provider_configured() -> None:
    router, _, _ = make(FakeProvider("sim", configured=False))
    with pytest.raises(NoProviderAvailable) as info:
        await router.call(BARS, ask)
    assert info.value.errors == {}


async def test_no_data_fails_over_then_raises_no_data_when_all_say_so() -> None:
    sim = FakeProvider("sim", [NoData("sim", "no bars"), NoData("sim")])
    backup = FakeProvider("sim_backup", [NoData("sim_backup")])
    router, _, _ = make(sim, backup)

    with pytest.raises(NoData):
        await router.call(BARS, ask)
    assert sim.calls == 1 and backup.calls == 1
    # NoData from one provider is not the last word when another has the data.
    routed = await router.call(BARS, ask)
    assert routed.provider == "sim_backup"
    assert routed.attempts == (("sim", "no_data"),)
    assert snap(router, "sim")["error_ewma"] == 0.0


async def test_retry_after_when_only_rate_limits_stand_in_the_way() -> None:
    sim = FakeProvider("sim", [RateLimited("sim", retry_after=20)])
    backup = FakeProvider("sim_backup", [RateLimited("sim_backup", retry_after=10)])
    router, clock, _ = make(sim, backup)

    with pytest.raises(NoProviderAvailable) as info:
        await router.call(BARS, ask)
    assert info.value.retry_after == 10

    clock.advance(4)
    with pytest.raises(NoProviderAvailable) as info:
        await router.call(BARS, ask)
    assert info.value.retry_after == pytest.approx(6)
    assert info.value.errors["sim"] == "skipped: rate limited until 2024-03-08T15:00:20+00:00"
    assert sim.calls == 1 and backup.calls == 1

    clock.advance(6)
    assert (await router.call(BARS, ask)).provider == "sim_backup"


async def test_retry_after_none_when_another_provider_failed() -> None:
    sim = FakeProvider("sim", [RateLimited("sim", retry_after=20)])
    backup = FakeProvider("sim_backup", [Unavailable("sim_backup")])
    router, _, _ = make(sim, backup)
    with pytest.raises(NoProviderAvailable) as info:
        await router.call(BARS, ask)
    assert info.value.retry_after is None


async def test_an_adapter_bug_is_a_bad_payload_and_fails_over(caplog: pytest.LogCaptureFixture) -> None:
    sim = FakeProvider("sim", [ZeroDivisionError("division by zero")])
    router, _, metrics = make(sim, FakeProvider("sim_backup"))

    with caplog.at_level(logging.ERROR, logger="mds.routing.router"):
        routed = await router.call(BARS, ask)

    assert (routed.provider, routed.value) == ("sim_backup", "sim_backup-answer")
    assert routed.attempts == (("sim", "bad_payload"),)
    assert metrics.value("provider_bad_payloads_total", provider="sim") == 1
    assert provider_errors(metrics, "sim", "bad_payload") == 1
    assert snap(router, "sim")["consecutive_failures"] == 1  # a failure like any bad payload
    (record,) = [r for r in caplog.records if r.exc_info]
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError
    assert "sim" in record.getMessage()
    assert "Traceback" in caplog.text and "ZeroDivisionError: division by zero" in caplog.text


async def test_an_adapter_bug_on_every_provider_is_no_provider_available() -> None:
    router, _, metrics = make(FakeProvider("sim", [KeyError("t")]), FakeProvider("sim_backup", [TypeError()]))
    with pytest.raises(NoProviderAvailable) as info:
        await router.call(BARS, ask)
    assert info.value.errors == {
        "sim": "bad_payload: unexpected KeyError in the adapter",
        "sim_backup": "bad_payload: unexpected TypeError in the adapter",
    }
    assert metrics.value("provider_bad_payloads_total", provider="sim_backup") == 1


async def test_cancellation_propagates_and_frees_the_probe() -> None:
    sim = FakeProvider("sim", [Unavailable("sim")] * 3)
    router, clock, metrics = make(sim, FakeProvider("sim_backup"))
    for _ in range(3):
        await router.call(BARS, ask)
    clock.advance(30)
    sim.gate = asyncio.Event()  # the probe hangs until cancelled
    probe = asyncio.create_task(router.call(BARS, ask))
    await asyncio.sleep(0)  # let the probe start and block on the gate
    assert sim.calls == 4 and router.order(BARS) == ["sim_backup"]
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert router.state("sim") is BreakerState.HALF_OPEN
    assert router.order(BARS) == ["sim", "sim_backup"]  # the probe slot is free again
    assert provider_errors(metrics, "sim", "unavailable") == 3
    assert metrics.value("provider_bad_payloads_total", provider="sim") == 0


async def test_record_completeness_lowers_health_and_can_demote() -> None:
    router, _, metrics = make(FakeProvider("sim"), FakeProvider("sim_backup"))
    router.record_completeness("sim", 0.5)
    assert snap(router, "sim")["completeness"] == pytest.approx(0.9)
    assert router.health("sim") == pytest.approx(0.99)
    assert metrics.value("provider_health_score", provider="sim") == pytest.approx(0.99)
    with pytest.raises(KeyError):
        router.record_completeness("polygon", 1.0)


async def test_demotion_by_health_and_promotion_hysteresis() -> None:
    # A latency cap no call can meet zeroes the latency component once there is a
    # sample, and poor completeness removes most of that one: then a few failures push
    # H below 0.55 while the failure count stays far under its threshold.
    env = {"RECENT_LATENCY_CAP_MS": "0.001", "BREAKER_FAILURE_THRESHOLD": "100"}
    sim = FakeProvider("sim", ["slow-ok"] + [Unavailable("sim")] * 4)
    router, clock, _ = make(sim, FakeProvider("sim_backup"), env=env)
    for _ in range(10):
        router.record_completeness("sim", 0.0)  # 0.8**10 ~ 0.107
    assert (await router.call(BARS, ask)).provider == "sim"
    for _ in range(4):
        assert router.state("sim") is BreakerState.CLOSED
        await router.call(BARS, ask)
    # H as closed = 0.45 + 0 + 0.2*(1 - 0.5904) + 0.0107 ~ 0.543 < 0.55
    assert router.state("sim") is BreakerState.OPEN
    assert snap(router, "sim")["consecutive_failures"] == 4
    assert router.order(BARS) == ["sim_backup"]

    clock.advance(30)
    # Probe succeeds, but H as closed ~ 0.566 is under 0.70: stays half-open (hysteresis).
    assert (await router.call(BARS, ask)).provider == "sim"
    assert router.state("sim") is BreakerState.HALF_OPEN
    for _ in range(20):
        router.record_completeness("sim", 1.0)
    probes = 0
    while router.state("sim") is BreakerState.HALF_OPEN and probes < 10:
        assert (await router.call(BARS, ask)).provider == "sim"
        probes += 1
    assert router.state("sim") is BreakerState.CLOSED
    assert probes > 1
    assert router.health("sim") >= 0.70


async def test_snapshot_shape_and_history_cap() -> None:
    sim = FakeProvider("sim", capabilities=[EOD, BARS])
    router, clock, _ = make(sim)
    for _ in range(65):
        await router.call(BARS, ask)
        clock.advance(1)
    [s] = router.snapshot()
    assert set(s) == {
        "provider",
        "configured",
        "capabilities",
        "state",
        "health_score",
        "latency_p95_ms",
        "error_ewma",
        "completeness",
        "quality",
        "consecutive_failures",
        "paused_until",
        "not_entitled",
        "h_history",
    }
    assert s["capabilities"] == ["bars_1m", "eod"]
    assert s["state"] == "closed"
    assert s["paused_until"] is None
    assert len(s["h_history"]) == 60
    assert s["h_history"][-1][0] == "2024-03-08T15:01:04+00:00"
    assert s["latency_p95_ms"] is not None


async def test_update_settings_keeps_stats_and_applies_policy() -> None:
    sim = FakeProvider("sim", [Unavailable("sim")])
    router, _, _ = make(sim, FakeProvider("sim_backup"))
    await router.call(BARS, ask)
    new: Settings = load_settings({"POLICY_BARS_1M": "sim_backup,sim"})
    router.update_settings(new)
    assert router.order(BARS) == ["sim_backup", "sim"]
    assert snap(router, "sim")["error_ewma"] == pytest.approx(0.2)
