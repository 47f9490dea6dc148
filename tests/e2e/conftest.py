"""Start `mds` as a real process and talk to it over a real socket."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.conftest import skip_or_fail
from tests.helpers import free_port
from tests.pgserver import PgProvider, create_database, drop_database
from tests.pgserver import Unavailable as PgUnavailable

MDS = str(Path(sys.executable).with_name("mds"))
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/e2e is marked e2e, whether its module says so or not, so
    ``-m "not e2e"`` (``make test-fast``) leaves out all of them."""
    # A conftest's collection hook sees the whole session's items: pick this directory's.
    for item in items:
        if HERE in item.path.resolve().parents:
            item.add_marker(pytest.mark.e2e)


@dataclass
class MdsProcess:
    proc: subprocess.Popen[bytes]
    url: str
    log_path: Path
    log_file: IO[bytes]
    #: An admin key in the process's store: get() and post() send it.
    key: str = ""

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key} if self.key else {}

    def get(self, path: str, **params: object) -> httpx.Response:
        return httpx.get(self.url + path, params=params, headers=self.headers, timeout=10)

    def post(self, path: str, **kwargs: object) -> httpx.Response:
        return httpx.post(self.url + path, headers=self.headers, timeout=10, **kwargs)  # type: ignore[arg-type]

    def wait_until(self, predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"mds exited with {self.proc.returncode}:\n{self.logs()[-4000:]}")
            try:
                last = predicate()
                if last:
                    return last
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what} (last: {last!r})\n{self.logs()[-4000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log_file.close()


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIM_", "POLICY_", "DATABASE_URL"))}
    # No index lists unless a test asks (the demo uses the sim's): nothing reaches a real host.
    env["INDEX_SOURCES"] = ""
    env.update(extra)
    return env


def create_key(env: dict[str, str], cwd: Path, *, role: str = "admin", name: str | None = None) -> str:
    """``mds keys create`` against the store ``env`` names; the printed key."""
    name = name or f"e2e-{role}-{secrets.token_hex(4)}"
    done = subprocess.run(
        [MDS, "keys", "create", "--role", role, "--name", name],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture
def start_mds(tmp_path: Path) -> Iterator:
    started: list[MdsProcess] = []

    def start(args: list[str], env: dict[str, str] | None = None) -> MdsProcess:
        port = free_port()
        log_path = tmp_path / f"mds-{port}.log"
        log_file = log_path.open("wb")
        full_env = clean_env({"DATABASE_URL": f"sqlite:///{tmp_path}/mds.db", **(env or {})})
        key = create_key(full_env, tmp_path)
        proc = subprocess.Popen(
            [MDS, *args, "--port", str(port)],
            cwd=tmp_path,
            env=full_env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        p = MdsProcess(proc, f"http://127.0.0.1:{port}", log_path, log_file, key)
        started.append(p)
        p.wait_until(lambda: p.get("/health").status_code == 200, 30, "/health")
        return p

    yield start
    for p in started:
        p.stop()


class Proc:
    """An mds process of any role, its output in ``log`` (its cwd is the log's folder)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._fh = log.open("wb")
        self.p = subprocess.Popen(
            [MDS, *args], env=env, stdout=self._fh, stderr=subprocess.STDOUT, cwd=log.parent
        )

    def stop(self, sig: int = signal.SIGINT) -> None:
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self._fh.close()


def wait_for(  # type: ignore[no-untyped-def]
    predicate, timeout: float, what: str, procs: list[Proc], *, allowed_exits: tuple[int, ...] = ()
):
    """Poll ``predicate`` until it is truthy; fail early when one of ``procs`` exits with a
    code not in ``allowed_exits`` (a test that kills a process on purpose allows -9)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        for pr in procs:
            if pr.p.poll() is not None and pr.p.returncode not in allowed_exits:
                raise AssertionError(f"{pr.log.name} exited {pr.p.returncode}:\n{pr.log.read_text()[-3000:]}")
        try:
            last = predicate()
            if last:
                return last
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.3)
    logs = "\n".join(f"--- {pr.log.name}\n{pr.log.read_text()[-1500:]}" for pr in procs)
    raise AssertionError(f"timed out waiting for {what} (last {last!r})\n{logs}")


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path: Path):  # type: ignore[no-untyped-def]
    """A store shared by several processes: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/shared.db"
        return
    with fresh_pg_database() as url:
        yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    with fresh_pg_database() as url:
        yield url


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    provider = PgProvider()
    try:
        admin = asyncio.run(provider.admin_url())
    except PgUnavailable as exc:
        skip_or_fail(str(exc))
    url = asyncio.run(create_database(admin))
    try:
        yield url
    finally:
        asyncio.run(drop_database(admin, url))
        provider.close()
