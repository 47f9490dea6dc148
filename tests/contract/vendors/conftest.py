from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.contract.vendors.harness import ReplayServer, SimServerProcess


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    server = ReplayServer().start()
    yield server
    server.stop()


@pytest.fixture
def sim_server():  # type: ignore[no-untyped-def]
    started: list[SimServerProcess] = []

    def start(fmt: str, env: dict[str, str] | None = None, prefix: str = "SIM_") -> SimServerProcess:
        s = SimServerProcess(fmt, env, prefix)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()
