"""No configured secret reaches a log line, an HTTP answer or a CLI's output (issue 12).

One `mds serve` runs the production shape (PostgreSQL, Redis, real vendor adapters) with
every secret MDS can be given set to a distinct random value: each vendor key, the
PostgreSQL and Redis passwords (URL userinfo; PostgreSQL's trust auth and a
``--requirepass`` Redis of the test's own), and an API key when `mds keys` exists. The
vendors are `mds sim-server`s and small servers of the test's own that fail on purpose:
answering 401/403/500 while quoting back everything they were sent (the worst case for a
key ending up in an error message), answering 500s, sending bad payloads. With
LOG_LEVEL=DEBUG the service is exercised over HTTP, a config reload is refused and then
accepted, backfills fail into the DLQ, and the CLI's config, provider, migrate, keys and
fetch commands run against the same settings. Every byte captured (the service's log,
every HTTP answer with its headers, every command's output) is then searched for every
secret.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
import redis
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import skip_or_fail
from tests.contract.vendors.harness import SimServerProcess
from tests.e2e.conftest import MDS
from tests.helpers import free_port
from tests.pgserver import PgProvider, drop_database
from tests.pgserver import Unavailable as PgUnavailable
from tests.redis_support import redis_server_binary

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: Every vendor key setting, each given its own random value below.
VENDOR_KEYS = (
    "FINNHUB_API_KEY",
    "ALPHA_VANTAGE_API_KEY",
    "FMP_API_KEY",
    "TWELVE_DATA_API_KEY",
    "POLYGON_API_KEY",
    "ALPACA_API_KEY_ID",
    "ALPACA_API_SECRET_KEY",
    "TIINGO_API_KEY",
)
#: Policies that send every capability through every keyed vendor, failing ones first
#: (the router fails over to the next). 1m bars have no way out: every live sweep and
#: backfill fails, so each vendor's error message (quoting what it was sent) is logged and
#: stored as the failed job's reason. Daily bars and quotes end at polygon, served right.
POLICIES = {
    "POLICY_BARS_1M": "finnhub,alpaca,tiingo,fmp,twelvedata,alphavantage",
    "POLICY_EOD": "finnhub,alpaca,tiingo,fmp,twelvedata,alphavantage,polygon",
    "POLICY_QUOTES_L1": "finnhub,alpaca,fmp,alphavantage,polygon",
    "POLICY_OPTIONS_CHAIN": "polygon",
    "POLICY_BARS_5M": "fmp,twelvedata,polygon",
    "INDEX_SOURCES": "",  # no index lists: nothing reaches Wikipedia
}
#: The service's clock: a Wednesday in session, so sweeps, start-up backfills and the
#: ranges below have bars to ask for whatever day the test runs (the sim-servers serve
#: any past range).
CLOCK = datetime(2025, 10, 8, 15, 0, tzinfo=UTC)
#: A backfill of the week before: five sessions of 1m bars.
BACKFILL = {
    "symbol": "AAPL",
    "interval": "1m",
    "start": "2025-09-29T13:30:00Z",
    "end": "2025-10-03T20:00:00Z",
}
#: Request headers every client sends; the echoing vendor quotes only the others.
_PLAIN_HEADERS = {"host", "accept", "accept-encoding", "connection", "user-agent"}


def _secret(label: str) -> str:
    # Distinct, random, and long enough that a match cannot be a coincidence.
    return f"{label}{secrets.token_hex(12)}"


#: What is searched for of a secret made by ``_secret``: all but its last 14 characters
#: (still 10 random ones), so a secret cut short by a length limit is found too.
_CUT = 14


class EchoingVendor:
    """A vendor that refuses every call with ``status`` and quotes back what it was sent:
    non-standard headers and query values first (where keys travel), then the full URL."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.received: list[str] = []
        app = Starlette(routes=[Route("/{path:path}", self._answer, methods=["GET"])])
        self._server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    async def _answer(self, request: Request) -> Response:
        sent = [
            *(v for k, v in request.headers.items() if k.lower() not in _PLAIN_HEADERS),
            *request.query_params.values(),
        ]
        self.received.extend(sent)
        return JSONResponse(
            {"error": f"invalid credentials: {' '.join(sent)}", "url": str(request.url)},
            status_code=self.status,
        )

    def start(self) -> EchoingVendor:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "echoing vendor did not start"
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)


class PasswordRedis:
    """A throwaway redis-server that wants a password (never the machine's own on 6379)."""

    def __init__(self, workdir: Path, password: str) -> None:
        binary = redis_server_binary()
        if binary is None:
            skip_or_fail("redis-server is not installed")
        assert binary is not None
        self.port = free_port()
        self.url = f"redis://:{password}@127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--requirepass", password]
            + ["--save", "", "--appendonly", "no", "--dir", str(workdir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self._wait()
        except BaseException:
            self.stop()
            raise

    def _wait(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            client = redis.Redis.from_url(self.url, socket_connect_timeout=0.2, socket_timeout=0.2)
            try:
                if client.ping():
                    break
            except redis.RedisError:
                assert time.monotonic() < deadline, "redis-server did not answer"
                assert self.proc.poll() is None, f"redis-server exited with {self.proc.returncode}"
                time.sleep(0.05)
            finally:
                client.close()
        # The password is really asked for: without it the server refuses.
        anonymous = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        with pytest.raises(redis.AuthenticationError):
            anonymous.ping()
        anonymous.close()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@dataclass
class Captured:
    """Everything the run showed anyone: named pieces of text, searched for secrets."""

    texts: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, text: str) -> None:
        self.texts[name] = self.texts.get(name, "") + text

    def answer(self, name: str, response: httpx.Response) -> httpx.Response:
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        self.add(f"HTTP {name}", f"{response.status_code}\n{headers}\n{response.text}\n")
        return response

    def leaks(self, needles: dict[str, str]) -> list[str]:
        """Each needle found, where, and the text around its first occurrence."""
        found = []
        for secret_name, needle in needles.items():
            for where, text in self.texts.items():
                at = text.find(needle)
                if at >= 0:
                    found.append(f"{secret_name} in {where}: ...{text[max(0, at - 150) : at + 60]!r}")
        return found


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh migrated database; its URL as the admin connection gives it (no password)."""
    provider = PgProvider()
    try:
        admin = asyncio.run(provider.admin_url())
        url = asyncio.run(provider.migrated_database())
    except PgUnavailable as exc:
        skip_or_fail(str(exc))
        raise
    yield url
    asyncio.run(drop_database(admin, url))
    provider.close()


def _with_password(url: str, password: str) -> str:
    # Trust auth (the machine's server, or a throwaway one) ignores it; MDS still holds it.
    parts = urlsplit(url)
    user = parts.username or "postgres"
    netloc = f"{user}:{password}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc))


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MDS, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _keys_command_exists(env: dict[str, str], cwd: Path) -> bool:
    return _run(["keys", "--help"], env, cwd).returncode == 0


def _wait(predicate, timeout: float, what: str, proc: subprocess.Popen[bytes], log: Path):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"mds exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            last = predicate()
            if last:
                return last
        except (httpx.HTTPError, KeyError) as exc:
            last = exc
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})\n{log.read_text()[-4000:]}")


def test_no_secret_reaches_logs_answers_or_cli_output(tmp_path: Path, postgres_url: str) -> None:
    values = {name: _secret(name.split("_")[0].lower()) for name in VENDOR_KEYS}
    values["postgres password"] = _secret("pg")
    values["redis password"] = _secret("redis")
    values["RLC_URL password"] = _secret("rlc")
    # A key a client presents that is no key: it must not be logged either.
    values["presented API key"] = _secret("presented")

    captured = Captured()
    with ExitStack() as running:  # everything started is stopped, whatever fails

        def echoing(status: int) -> EchoingVendor:
            server = EchoingVendor(status).start()
            running.callback(server.stop)
            return server

        def sim(fmt: str, faults: dict[str, str] | None = None) -> SimServerProcess:
            server = SimServerProcess(fmt, faults)
            running.callback(server.stop)
            return server

        rds = PasswordRedis(tmp_path, values["redis password"])
        running.callback(rds.stop)
        finnhub, tiingo, alpaca = echoing(401), echoing(401), echoing(403)
        # Alpha Vantage takes its key as a query parameter, so its URLs carry it.
        alphavantage = echoing(500)
        fmp = sim("fmp", {"SIM_ERROR_RATE": "1"})
        twelvedata = sim("twelvedata", {"SIM_MALFORMED_RATE": "1"})
        polygon = sim("polygon")

        database_url = _with_password(postgres_url, values["postgres password"])
        assert urlsplit(database_url).password == values["postgres password"]
        # DATABASE_URL lives in the env file, so a reload reads it again (the environment
        # would win over the file): below it is broken once, to see the refusal's message.
        env_file = tmp_path / "mds.env"
        good_env_file = f"DATABASE_URL={database_url}\n"
        env_file.write_text(good_env_file)
        (tmp_path / "universe.csv").write_text("symbol,tier\nAAPL,T0\nMSFT,T1\n")
        port = free_port()
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("SIM_", "POLICY_", "DATABASE_URL", "RLC_", "MDS_ENV_FILE"))
        }
        env = {
            **base,
            **POLICIES,
            **{name: values[name] for name in VENDOR_KEYS},
            "FINNHUB_BASE_URL": finnhub.url,
            "TIINGO_BASE_URL": tiingo.url,
            "ALPACA_BASE_URL": alpaca.url,
            "FMP_BASE_URL": fmp.url,
            "TWELVEDATA_BASE_URL": twelvedata.url,
            "POLYGON_BASE_URL": polygon.url,
            "ALPHAVANTAGE_BASE_URL": alphavantage.url,
            **{f"{v}_RATE_PER_MIN": "6000" for v in ("FINNHUB", "ALPHAVANTAGE", "FMP", "TWELVEDATA")},
            **{f"{v}_RATE_PER_MIN": "6000" for v in ("POLYGON", "ALPACA", "TIINGO")},
            "QUEUE_BACKEND": "redis",
            "RLC_REDIS_URL": rds.url,
            "RATE_LIMIT_STORAGE_URI": rds.url,
            "RLC_URL": f"http://rlc:{values['RLC_URL password']}@127.0.0.1:{free_port()}/",
            "LOG_LEVEL": "DEBUG",
            "UNIVERSE_FILE": str(tmp_path / "universe.csv"),
            "BACKFILL_LOOKBACK_DAYS_1M": "1",
            "BACKFILL_LOOKBACK_DAYS_1D": "5",
            "BACKFILL_DISPATCH_RATE_PER_SEC": "50",
            "BACKFILL_RETRY_BASE_SECONDS": "0.5",
            "BACKFILL_MAX_ATTEMPTS": "2",
            # Breakers that reopen fast keep the failing vendors being called (and logged).
            "BREAKER_OPEN_SECONDS": "1",
            "CADENCE_T0__quotes_l1": "1",
            "CADENCE_T0__bars_1m": "2",
            "PROVIDER_TIMEOUT_SEC": "3",
        }
        log_path = tmp_path / "mds.log"
        with log_path.open("wb") as log:
            mds = subprocess.Popen(
                [
                    MDS,
                    "serve",
                    "--port",
                    str(port),
                    "--env-file",
                    str(env_file),
                    "--clock",
                    CLOCK.isoformat(),
                ],
                env=env,
                cwd=tmp_path,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        running.callback(_kill, mds)
        url = f"http://127.0.0.1:{port}"
        _wait(lambda: httpx.get(f"{url}/health", timeout=2).status_code == 200, 30, "/health", mds, log_path)

        headers = {}
        if _keys_command_exists(env, tmp_path):
            keys_env = {**env, "DATABASE_URL": database_url}
            made = _run(["keys", "create", "--role", "admin", "--name", "log-secrets"], keys_env, tmp_path)
            captured.add("mds keys create (stderr)", made.stderr)
            assert made.returncode == 0, made.stderr
            values["API key"] = made.stdout.strip()
            assert values["API key"] and "\n" not in values["API key"]
            headers = {"Authorization": f"Bearer {values['API key']}"}

        def get(path: str, **params: str) -> httpx.Response:
            return captured.answer(
                f"GET {path}", httpx.get(url + path, params=params, headers=headers, timeout=10)
            )

        def post(path: str, body: object = None) -> httpx.Response:
            response = httpx.post(url + path, json=body, headers=headers, timeout=10)
            return captured.answer(f"POST {path}", response)

        def answered(response: httpx.Response, status: int) -> bool:
            # Without `mds keys` (access control not built yet) a guarded route may say 401.
            return response.status_code == status or (not headers and response.status_code == 401)

        # Every failing vendor has been called and failed, and polygon has served.
        def vendors_tried() -> bool:
            rows = {r["provider"]: r for r in get("/stats/providers").json()["providers"]}
            failing = ("finnhub", "alpaca", "tiingo", "fmp", "twelvedata", "alphavantage")
            return (
                all(rows[p]["error_ewma"] > 0 for p in failing)
                and rows["polygon"]["latency_p95_ms"] is not None
            )

        _wait(vendors_tried, 40, "every vendor to be tried", mds, log_path)
        # The echoing vendors really were sent the keys, so their absence below means
        # something: the keys were in flight and in the vendors' error bodies.
        assert values["FINNHUB_API_KEY"] in finnhub.received
        assert f"Token {values['TIINGO_API_KEY']}" in tiingo.received
        assert {values["ALPACA_API_KEY_ID"], values["ALPACA_API_SECRET_KEY"]} <= set(alpaca.received)
        assert values["ALPHA_VANTAGE_API_KEY"] in alphavantage.received

        assert get("/health").status_code == 200
        assert get("/stocks/AAPL/price").status_code in (200, 404)
        day = CLOCK - timedelta(days=1)
        get("/stocks/AAPL/intraday", start=day.isoformat(), end=CLOCK.isoformat())
        assert get("/stocks/NOSUCH/price").status_code == 404
        bad = httpx.get(f"{url}/ops/coverage", headers={"X-API-Key": values["presented API key"]}, timeout=10)
        captured.answer("GET /ops/coverage with a wrong key", bad)

        # A refused reload: the scheme of DATABASE_URL mistyped, the password still in it.
        env_file.write_text(good_env_file.replace("postgresql://", "postgresq://"))
        refused = post("/ops/validate")
        assert answered(refused, 422), refused.text
        assert refused.status_code == 401 or "DATABASE_URL" in refused.text
        refused = captured.answer(
            "POST /ops/reload (refused)", httpx.post(f"{url}/ops/reload", headers=headers, timeout=10)
        )
        assert answered(refused, 422), refused.text
        env_file.write_text(good_env_file)
        assert answered(post("/ops/validate"), 200)
        assert answered(post("/ops/reload"), 200)

        backfill = post("/ops/backfill", BACKFILL)
        assert answered(backfill, 202), backfill.text

        # 1m backfills (start-up's and the one above) fail at every vendor, twice, and
        # land in the DLQ with the vendors' messages as their reason.
        def failed_jobs() -> bool:
            r = get("/ops/dlq/backfills")
            return r.status_code == 401 or bool(r.json()["jobs"])

        _wait(failed_jobs, 30, "a failed backfill in the DLQ", mds, log_path)
        get("/stats/providers")
        get("/health")

        live = _run(["providers", "--url", url], env, tmp_path)
        captured.add("mds providers (live)", live.stdout + live.stderr)
        assert "polygon" in live.stdout

        mds.send_signal(signal.SIGINT)
        mds.wait(timeout=20)
        log_text = log_path.read_text(errors="replace")
        captured.add("mds serve log", log_text)

        cli_env = {**env, "DATABASE_URL": database_url}
        fetch = ["fetch", "AAPL", "--start", day.isoformat(), "--end", CLOCK.isoformat(), "--provider"]
        shown: dict[str, str] = {}
        for args in (
            ["config", "show"],
            ["config", "validate"],
            ["providers", "--url", f"http://127.0.0.1:{free_port()}"],
            ["migrate"],
            ["keys", "list"],
            [*fetch, "finnhub"],
            [*fetch, "fmp"],
        ):
            r = _run(args, cli_env, tmp_path)
            shown[" ".join(args)] = r.stdout + r.stderr
            captured.add(f"mds {' '.join(args)}", r.stdout + r.stderr)
        # The vendor's refusal, quoting the key, is what `mds fetch` prints (key hidden).
        assert "finnhub: auth: HTTP 401: invalid credentials: ***" in shown[" ".join([*fetch, "finnhub"])]
        broken = _run(
            ["config", "validate"],
            {**cli_env, "DATABASE_URL": "postgresq://" + database_url.split("://", 1)[1]},
            tmp_path,
        )
        assert broken.returncode == 2 and "DATABASE_URL" in broken.stderr
        captured.add("mds config validate (broken DATABASE_URL)", broken.stdout + broken.stderr)

    # Kept beside the test's other files, to read when this fails.
    (tmp_path / "captured.txt").write_text("".join(f"=== {k}\n{v}\n" for k, v in captured.texts.items()))
    needles = {name: value[:-_CUT] for name, value in values.items()}
    if "API key" in values:
        # Made by `mds keys`, whose list shows the first characters of each key on purpose.
        needles["API key"] = values["API key"]
    leaks = captured.leaks(needles)
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks)
    # The log is the DEBUG one and saw the vendor traffic and its failures: request lines
    # of the vendors with a key in the query (shown hidden, not left out) and the echoing
    # vendors' messages, key hidden.
    assert " DEBUG " in log_text
    assert "breaker finnhub" in log_text and "breaker fmp" in log_text
    assert "apikey=***" in log_text
    assert "invalid credentials: ***" in log_text
