"""Config sync between processes, over the in-process bus and presence: an announced version
is applied by the others, a late process catches up, an invalid one is tried once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from mds.errors import ConfigError
from mds.ops.config_sync import ConfigSync, MemoryPresence
from mds.stream import InMemoryBus


@dataclass
class Proc:
    """What ConfigSync drives in a process: its version and how it applies one."""

    name: str
    version: str = "initial"
    applied: list[str] = field(default_factory=list)
    invalid: bool = False

    async def apply(self, version: str) -> None:
        self.applied.append(version)
        if self.invalid:
            raise ConfigError("CADENCE_T1__bars_1m", "must be positive")
        self.version = version


@pytest.fixture
async def shared() -> AsyncIterator[tuple[InMemoryBus, MemoryPresence]]:
    bus = InMemoryBus()
    yield bus, MemoryPresence()
    await bus.close()


def sync_for(proc: Proc, roles: set[str], bus: InMemoryBus, presence: MemoryPresence) -> ConfigSync:
    return ConfigSync(
        bus=bus,
        presence=presence,
        topic="config:test",
        process=proc.name,
        roles=frozenset(roles),
        current=lambda: proc.version,
        apply=proc.apply,
        heartbeat_seconds=3600,  # the test beats by hand
    )


async def until(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


async def test_an_announced_version_is_applied_by_the_other_process(
    shared: tuple[InMemoryBus, MemoryPresence],
) -> None:
    bus, presence = shared
    api, worker = Proc("api-1"), Proc("worker-1")
    a, w = sync_for(api, {"api"}, bus, presence), sync_for(worker, {"worker"}, bus, presence)
    await a.start()
    await w.start()
    try:
        api.version = "1760000000"  # the receiving process applied it itself
        await a.announce("1760000000")
        await until(lambda: worker.version == "1760000000", "the worker to apply it")
        assert api.applied == []  # its own announcement is not applied twice
        roll = await a.roll_call()
        assert roll["policy_versions"] == {"api": ["1760000000"], "worker": ["1760000000"]}
        assert [p["process"] for p in roll["processes"]] == ["api-1", "worker-1"]
    finally:
        await w.stop()
        await a.stop()
    assert await presence.live(0) == []  # a stopped process leaves


async def test_a_process_started_after_the_announcement_catches_up(
    shared: tuple[InMemoryBus, MemoryPresence],
) -> None:
    bus, presence = shared
    api = Proc("api-1", version="1760000000")
    a = sync_for(api, {"api"}, bus, presence)
    await a.start()
    await a.announce("1760000000")
    late = Proc("scheduler-1")
    s = sync_for(late, {"scheduler"}, bus, presence)
    await s.start()
    try:
        assert late.version == "1760000000" and late.applied == ["1760000000"]
    finally:
        await s.stop()
        await a.stop()


async def test_a_version_invalid_here_is_tried_once_and_the_old_one_kept(
    shared: tuple[InMemoryBus, MemoryPresence],
) -> None:
    bus, presence = shared
    api, worker = Proc("api-1"), Proc("worker-1", invalid=True)
    a, w = sync_for(api, {"api"}, bus, presence), sync_for(worker, {"worker"}, bus, presence)
    await a.start()
    await w.start()
    try:
        api.version = "1760000000"
        await a.announce("1760000000")
        await until(lambda: worker.applied == ["1760000000"], "the worker to try it")
        await w.catch_up()  # a heartbeat finds the stored version again
        assert worker.applied == ["1760000000"] and worker.version == "initial"
        roll = await a.roll_call()
        assert roll["policy_versions"] == {"api": ["1760000000"], "worker": ["initial"]}
    finally:
        await w.stop()
        await a.stop()
