from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.contract.vendors.harness import ReplayServer, SimServerProcess


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    server = ReplayServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def plain_sim_servers() -> Iterator[dict[str, SimServerProcess]]:
    """One default sim-server per format for the whole run: with no faults configured it
    keeps no state between requests, and starting a process costs about a second."""
    servers: dict[str, SimServerProcess] = {}
    yield servers
    for s in servers.values():
        s.stop()


@pytest.fixture
def sim_server(plain_sim_servers: dict[str, SimServerProcess]):  # type: ignore[no-untyped-def]
    started: list[SimServerProcess] = []

    def start(fmt: str, env: dict[str, str] | None = None, prefix: str = "SIM_") -> SimServerProcess:
        if env is None and prefix == "SIM_":
            shared = plain_sim_servers.get(fmt)
            if shared is None or shared.proc.poll() is not None:
                shared = plain_sim_servers[fmt] = SimServerProcess(fmt)
            return shared
        s = SimServerProcess(fmt, env, prefix)  # faults or limits: a server of its own
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()
