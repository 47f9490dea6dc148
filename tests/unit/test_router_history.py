"""Provider health history: H samples with their components, breaker transitions with their
reasons, and an adapter swapped by a reload keeping all of it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mds.errors import Unavailable
from mds.routing.breaker import BreakerState
from mds.routing.health import BREAKER_WEIGHT, COMPLETENESS_WEIGHT, ERROR_WEIGHT, LATENCY_WEIGHT
from mds.routing.history import HISTORY_SAMPLES
from tests.unit.test_router import BARS, T0, FakeProvider, ask, make


def _recombined(sample: dict[str, object]) -> float:
    c = sample["components"]
    assert isinstance(c, dict)
    return float(
        c["quality"]
        * (
            BREAKER_WEIGHT * c["breaker"]
            + LATENCY_WEIGHT * c["latency"]
            + ERROR_WEIGHT * c["error"]
            + COMPLETENESS_WEIGHT * c["completeness"]
        )
    )


async def test_each_outcome_leaves_a_sample_whose_components_make_its_h() -> None:
    router, clock, _ = make(
        FakeProvider("sim", [Unavailable("sim", "down"), "ok"]), FakeProvider("sim_backup")
    )
    await router.call(BARS, ask)  # sim fails, sim_backup answers
    clock.advance(5)
    await router.call(BARS, ask)  # sim answers
    router.record_completeness("sim", 0.5)
    router.record_quality("sim", 0.8)

    history = router.health_history("sim")
    samples = history["samples"]
    assert [s["at"] for s in samples] == [
        T0.isoformat(),
        (T0 + timedelta(seconds=5)).isoformat(),
        (T0 + timedelta(seconds=5)).isoformat(),
        (T0 + timedelta(seconds=5)).isoformat(),
    ]
    first, *_, last = samples
    assert first["components"]["error"] == pytest.approx(0.8)  # one failure: EWMA 0.2
    assert first["consecutive_failures"] == 1
    assert last["components"]["completeness"] == pytest.approx(0.9)  # 0.8·1 + 0.2·0.5
    assert last["components"]["quality"] == 0.8
    for s in samples:
        assert s["health_score"] == pytest.approx(_recombined(s), abs=1e-4)
    assert history["health_score"] == last["health_score"]
    # /stats/providers keeps its (time, H) pairs from the same samples.
    stats = next(p for p in router.snapshot() if p["provider"] == "sim")
    assert stats["h_history"] == [(s["at"], s["health_score"]) for s in samples]


async def test_history_keeps_the_last_60_samples() -> None:
    router, clock, _ = make(FakeProvider("sim"))
    for _ in range(HISTORY_SAMPLES + 5):
        clock.advance(1)
        await router.call(BARS, ask)
    samples = router.health_history("sim")["samples"]
    assert len(samples) == HISTORY_SAMPLES
    assert samples[-1]["at"] == (T0 + timedelta(seconds=HISTORY_SAMPLES + 5)).isoformat()


async def test_breaker_transitions_are_recorded_with_time_and_reason() -> None:
    down = [Unavailable("sim", "down", code="503")] * 3
    router, clock, _ = make(FakeProvider("sim", down), FakeProvider("sim_backup"))
    for _ in range(3):
        clock.advance(1)
        await router.call(BARS, ask)
    opened_at = T0 + timedelta(seconds=3)
    assert router.state("sim") is BreakerState.OPEN

    # The cooldown (BREAKER_OPEN_SECONDS, 30 by default) ends at opened_at + 30 s; the
    # transition is dated then, although nobody looks until a minute later.
    clock.advance(90)
    await router.call(BARS, ask)  # the probe succeeds and closes the breaker

    transitions = router.health_history("sim")["transitions"]
    assert [(t["from"], t["to"]) for t in transitions] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]
    assert transitions[0]["at"] == opened_at.isoformat()
    assert "unavailable (503)" in transitions[0]["reason"]
    assert "consecutive failures 3" in transitions[0]["reason"]
    assert transitions[1]["at"] == (opened_at + timedelta(seconds=30)).isoformat()
    assert "BREAKER_OPEN_SECONDS=30" in transitions[1]["reason"]
    assert transitions[2]["at"] == (opened_at + timedelta(seconds=90)).isoformat()
    assert transitions[2]["reason"].startswith("after success")


async def test_unknown_provider_has_no_history() -> None:
    router, _, _ = make(FakeProvider("sim"))
    with pytest.raises(KeyError):
        router.health_history("polygon")


async def test_a_replaced_adapter_keeps_figures_breaker_and_history() -> None:
    old = FakeProvider("sim", [Unavailable("sim", "down")] * 3)
    router, clock, _ = make(old, FakeProvider("sim_backup"))
    for _ in range(3):
        await router.call(BARS, ask)
    before = router.health_history("sim")

    new = FakeProvider("sim")
    assert router.replace_provider("sim", new) is old
    after = router.health_history("sim")
    assert after == before  # same samples, transitions, state and H
    assert router.state("sim") is BreakerState.OPEN

    clock.advance(30)
    routed = await router.call(BARS, ask)  # the probe goes to the new adapter
    assert routed.provider == "sim" and new.calls == 1 and old.calls == 3


async def test_a_new_name_gets_a_fresh_entry() -> None:
    router, _, _ = make(FakeProvider("sim"))
    assert router.replace_provider("sim_backup", FakeProvider("sim_backup")) is None
    assert router.order(BARS) == ["sim", "sim_backup"]
    assert router.health_history("sim_backup")["samples"] == []
