"""WebSocket fan-out of one `mds api` process: N clients, S symbols, a bar per clock minute each.

Three processes besides this one share the machine (and Redis, which runs on it too):

* the server: one ``mds api`` (QUEUE_BACKEND=redis, on Redis database :data:`REDIS_DB`,
  flushed before and after; SQLite in a temporary directory; a universe of S synthetic
  symbols so the hub knows them);
* the clients: one process of asyncio ``websockets`` connections, client ``j`` on
  ``/ws/<symbol j mod S>?channels=bars`` (1,000 clients on 500 symbols: two per symbol);
* the publisher: a :class:`StreamPublisher` over the runtime's Redis log and Bus (default
  key prefixes, so the server's hub sees its entries), writing for every symbol one
  ``bar_message`` per clock minute at ``speed``× (60×: S bars per wall second), evenly
  spread, for ``seconds`` wall seconds.

What is measured, between the publisher's first bar and the moment every client has its
symbol's last offset (or :data:`DRAIN_TIMEOUT_S` passes):

* ``server_latency_ms``: p50/p99 of ``ws_publish_latency_ms`` (publisher's ``written_at``
  to the frame handed to the socket), from the difference of two ``/metrics`` scrapes,
  **interpolated linearly inside histogram buckets** (bounds 1, 2.5, 5, 10, 25, 50 … ms);
  ``server_share_within_50ms`` needs no interpolation (50 ms is a bucket bound);
* ``client_latency_ms``: p50/p99/max of receive wall time (in the client process, so
  including its own event-loop delay) minus the wall time the publisher took just before
  ``publish`` (the same instant as ``written_at`` within microseconds), joined on
  (symbol, offset);
* drops and gaps: the rise of ``ws_dropped_messages_total`` (all reasons), ``dropped``
  messages the clients saw, and per client whether it got exactly the offsets after its
  snapshot's up to the symbol's last (``clients_with_gaps``, ``missing``, ``duplicates``);
* ``rss_mb``: the server's VmRSS before any client, with every client connected, at the
  end; ``rss_growth_per_client_kb`` = (connected − before) / clients;
* CPU over the window, from ``/proc/<pid>/stat``: ``cpu_seconds`` per process (Redis's from
  its own INFO, the whole server), ``api_cpu_share`` = API CPU / wall (1.0 = one full core),
  ``client_cpu_share`` = client CPU / (wall × cores), the share of the machine the
  measuring side took from the server.

Redis pub/sub channels are not per database: other MDS processes on the same Redis see
the publisher's Bus events (they ignore symbols no client of theirs watches).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import multiprocessing
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import Any

import httpx

from mds.benchmarks.live import histogram_quantile, parse_metrics, percentile, pick
from mds.benchmarks.startup import free_port, rss_mb
from mds.config import load_settings

#: A Redis database of its own: the runtime's keys have fixed prefixes, so the database is
#: what keeps this run apart from anything else on the machine's Redis. Flushed twice.
REDIS_DB = 14
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
TARGET_P99_MS = 50.0
#: Connections opened at once (each costs the server a snapshot read).
CONNECT_CONCURRENCY = 50
CONNECT_TIMEOUT_S = 300.0
#: How long, after the last bar is published, clients may take to receive it.
DRAIN_TIMEOUT_S = 15.0
DRAIN_POLL_S = 0.02
#: The clock minutes the bars carry (any past minute: the server does not check them).
CLOCK_START = datetime(2025, 10, 8, 14, 0, tzinfo=UTC)

Samples = dict[str, list[tuple[dict[str, str], float]]]


# -- pure helpers -------------------------------------------------------------------------


def symbol_names(count: int) -> list[str]:
    return [f"WSB{i:04d}" for i in range(count)]


def write_universe(path: Path, symbols: Sequence[str]) -> None:
    """A ``symbol,tier`` CSV (T2: the API-only role collects nothing anyway)."""
    path.write_text("symbol,tier\n" + "".join(f"{s},T2\n" for s in symbols))


def bucket_diff(before: Samples, after: Samples, name: str) -> list[tuple[float, float]]:
    """Cumulative ``(le, count)`` buckets of histogram ``name`` observed between two scrapes."""
    old = {lab["le"]: v for lab, v in before.get(name + "_bucket", ())}
    return [(float(lab["le"]), v - old.get(lab["le"], 0.0)) for lab, v in after.get(name + "_bucket", ())]


def share_within(buckets: Sequence[tuple[float, float]], bound: float) -> float | None:
    """Fraction of observations at or below ``bound``, which must be a bucket bound."""
    counts = dict(buckets)
    total = counts.get(math.inf, 0.0)
    return None if total <= 0 or bound not in counts else counts[bound] / total


def offset_faults(received: Sequence[int], after: int, last: int) -> tuple[int, int]:
    """(missing, duplicates) of ``received`` against exactly the offsets ``after+1 … last``."""
    got = set(received)
    missing = sum(1 for o in range(after + 1, last + 1) if o not in got)
    return missing, len(received) - len(got)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far, from /proc/<pid>/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rounded(x: float | None, nd: int = 2) -> float | None:
    return None if x is None else round(x, nd)


# -- the client process ---------------------------------------------------------------------


@dataclass
class _Client:
    symbol: str
    snapshot_offset: int | None = None
    newest: int = 0
    offsets: list[int] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)
    dropped_messages: int = 0
    other_messages: int = 0
    closed_early: str | None = None


async def _receive(ws: Any, client: _Client, snapshot: asyncio.Event) -> None:
    import orjson
    from websockets.exceptions import ConnectionClosed

    try:
        async for raw in ws:
            now = time.time()
            message = orjson.loads(raw)
            kind = message["type"]
            if kind == "bar":
                client.offsets.append(message["offset"])
                client.newest = max(client.newest, message["offset"])
                client.received_at.append(now)
            elif kind == "snapshot":
                client.snapshot_offset = message["offset"]
                snapshot.set()
            elif kind == "dropped":
                client.dropped_messages += 1
            else:
                client.other_messages += 1
    except ConnectionClosed as exc:
        client.closed_early = f"closed: {exc}"
        return
    client.closed_early = f"closed: {ws.close_code} {ws.close_reason}"


async def _open(url: str, client: _Client, gate: asyncio.Semaphore, compression: bool) -> tuple[Any, Any]:
    from websockets.asyncio.client import connect

    async with gate:
        ws = await connect(url, compression="deflate" if compression else None, open_timeout=60)
        snapshot = asyncio.Event()
        reader = asyncio.create_task(_receive(ws, client, snapshot))
        await asyncio.wait_for(snapshot.wait(), 60)
        return ws, reader


async def _clients(pipe: Pipe, base: str, symbols: Sequence[str], count: int, compression: bool) -> None:
    clients = [_Client(symbols[j % len(symbols)]) for j in range(count)]
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    started = time.perf_counter()
    opened = await asyncio.gather(
        *(_open(f"{base}/ws/{c.symbol}?channels=bars", c, gate, compression) for c in clients),
        return_exceptions=True,
    )
    failures = [repr(o) for o in opened if isinstance(o, BaseException)]
    sockets = [o for o in opened if not isinstance(o, BaseException)]
    extensions = {str(e.name) for ws, _ in sockets[:1] for e in (ws.protocol.extensions or [])}
    pipe.send(
        (
            "ready",
            {
                "connected": len(sockets),
                "failed": len(failures),
                "first_failure": failures[0] if failures else None,
                "connect_s": time.perf_counter() - started,
                "extensions": sorted(extensions),
            },
        )
    )
    _, finals = await asyncio.to_thread(pipe.recv)  # ("finals", {symbol: last offset})
    drain_started = time.perf_counter()

    def behind(c: _Client) -> bool:
        return c.closed_early is None and c.newest < finals.get(c.symbol, 0)

    for _ in range(int(DRAIN_TIMEOUT_S / DRAIN_POLL_S)):
        if not any(behind(c) for c in clients):
            break
        await asyncio.sleep(DRAIN_POLL_S)
    pipe.send(("drained", time.perf_counter() - drain_started))
    await asyncio.to_thread(pipe.recv)  # ("close",)
    results = [
        {
            "symbol": c.symbol,
            "snapshot_offset": c.snapshot_offset,
            "offsets": c.offsets,
            "received_at": c.received_at,
            "dropped_messages": c.dropped_messages,
            "other_messages": c.other_messages,
            "closed_early": c.closed_early,
        }
        for c in clients
    ]
    await asyncio.gather(*(ws.close() for ws, _ in sockets), return_exceptions=True)
    for _, reader in sockets:
        reader.cancel()
    pipe.send(("result", results))


def _client_main(pipe: Pipe, base: str, symbols: list[str], count: int, compression: bool) -> None:
    try:
        asyncio.run(_clients(pipe, base, symbols, count, compression))
    except BaseException as exc:
        pipe.send(("error", f"clients: {exc!r}"))
        raise


# -- the publisher process ------------------------------------------------------------------


async def _publish(pipe: Pipe, redis_url: str, symbols: Sequence[str], minutes: int, speed: float) -> None:
    from redis.asyncio import Redis

    from mds.config import Settings
    from mds.domain.clock import SystemClock
    from mds.domain.models import Bar, Interval
    from mds.observability.metrics import Metrics
    from mds.stream.log_redis import RedisStreamLog
    from mds.stream.messages import bar_message
    from mds.stream.publisher import StreamPublisher
    from mds.stream.redis import RedisBus

    defaults = Settings.model_fields
    redis = Redis.from_url(redis_url)
    log = RedisStreamLog(
        redis,
        SystemClock(),
        max_messages=defaults["WS_REPLAY_MAX_MESSAGES"].default,
        ttl_sec=defaults["WS_REPLAY_TTL_SEC"].default,
    )
    publisher = StreamPublisher(log, RedisBus(redis), Metrics())
    step = 60.0 / speed / len(symbols)
    sent: list[tuple[str, int, float]] = []
    finals: dict[str, int] = {}
    failed = 0
    behind_max = 0.0
    await redis.ping()
    start = time.time() + 0.1
    pipe.send(("start", start))
    cpu_start = time.process_time()
    for minute in range(minutes):
        ts = CLOCK_START + timedelta(minutes=minute)
        for i, symbol in enumerate(symbols):
            delay = start + (minute * len(symbols) + i) * step - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                behind_max = max(behind_max, -delay)
            price = 100.0 + minute * 0.01
            bar = Bar(symbol, Interval.M1, ts, price, price + 0.5, price - 0.5, price + 0.1, 1000.0, "bench")
            at = time.time()
            entry = await publisher.publish(bar_message(bar._replace(as_of=ts + timedelta(minutes=1))))
            if entry is None:
                failed += 1
                continue
            sent.append((symbol, entry.offset, at))
            finals[symbol] = entry.offset
    await redis.aclose()
    pipe.send(
        (
            "done",
            {
                "sent": sent,
                "finals": finals,
                "failed": failed,
                "behind_max_ms": behind_max * 1000,
                "seconds": time.time() - start,
                "cpu_s": time.process_time() - cpu_start,
            },
        )
    )


def _publisher_main(pipe: Pipe, redis_url: str, symbols: list[str], minutes: int, speed: float) -> None:
    try:
        asyncio.run(_publish(pipe, redis_url, symbols, minutes, speed))
    except BaseException as exc:
        pipe.send(("error", f"publisher: {exc!r}"))
        raise


# -- the run --------------------------------------------------------------------------------


def _raise_open_files() -> None:
    """Children inherit the limit: 1,000 sockets need more than the usual 1,024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _flush() -> None:
    from redis import Redis

    with Redis.from_url(REDIS_URL) as r:
        r.flushdb()


def _redis_cpu() -> float | None:
    from redis import Redis

    with contextlib.suppress(Exception), Redis.from_url(REDIS_URL) as r:
        info = r.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return None


def _api_env(workdir: Path, universe: Path) -> dict[str, str]:
    ours = ("MDS_", "WS_", "AUTH_", "RLC_", "QUEUE_BACKEND", "DATABASE_URL", "UNIVERSE_FILE", "LOG_LEVEL")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ours)}
    env.update(
        {
            "QUEUE_BACKEND": "redis",
            "RLC_REDIS_URL": REDIS_URL,
            "DATABASE_URL": f"sqlite:///{workdir}/ws.db",
            "UNIVERSE_FILE": str(universe),
            "AUTH_READ_REQUIRED": "false",
            "LOG_LEVEL": "WARNING",
        }
    )
    load_settings(env)  # refuse a misnamed setting here rather than in the child
    return env


def _wait_health(client: httpx.Client, url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mds api exited with {proc.returncode}: {_tail(log)}")
        with contextlib.suppress(httpx.HTTPError):
            if client.get(url + "/health", timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"/health never answered: {_tail(log)}")


def _api_rss(proc: subprocess.Popen[bytes], log: Path) -> float:
    """The API's RSS (MiB), or RuntimeError if it is gone."""
    if proc.poll() is not None:
        raise RuntimeError(f"mds api exited with {proc.returncode}: {_tail(log)}")
    return rss_mb(proc.pid)[0]


def _expect(pipe: Pipe, kind: str, timeout: float) -> Any:
    """The payload of the next message from a child, which must be ``kind``."""
    if not pipe.poll(timeout):
        raise RuntimeError(f"no {kind!r} from a child process within {timeout:.0f} s")
    message = pipe.recv()
    if message[0] == "error":
        raise RuntimeError(message[1])
    if message[0] != kind:
        raise RuntimeError(f"expected {kind!r} from a child process, got {message[0]!r}")
    return message[1]


def _tail(path: Path, lines: int = 15) -> str:
    with contextlib.suppress(OSError):
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    return ""


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _end(child: multiprocessing.process.BaseProcess | None) -> None:
    if child is not None and child.is_alive():
        child.join(timeout=10)
        if child.is_alive():
            child.kill()
            child.join(timeout=5)


@dataclass
class _Window:
    """CPU seconds of the processes at one instant, and the wall time then."""

    wall: float
    cpu: dict[str, float | None]

    @staticmethod
    def now(pids: Mapping[str, int]) -> _Window:
        cpu: dict[str, float | None] = {name: cpu_seconds(pid) for name, pid in pids.items()}
        cpu["redis"] = _redis_cpu()
        return _Window(time.perf_counter(), cpu)

    def since(self, start: _Window) -> dict[str, float | None]:
        return {
            k: None if v is None or start.cpu.get(k) is None else v - (start.cpu[k] or 0.0)
            for k, v in self.cpu.items()
        }


def _latencies(sent: Iterable[tuple[str, int, float]], results: Iterable[Mapping[str, Any]]) -> list[float]:
    """Receive time minus publish time of every bar a client got, in ms."""
    published = {(s, o): at for s, o, at in sent}
    out = []
    for r in results:
        for offset, at in zip(r["offsets"], r["received_at"], strict=True):
            t = published.get((r["symbol"], offset))
            if t is not None:
                out.append((at - t) * 1000)
    return out


def _faults(results: Iterable[Mapping[str, Any]], finals: Mapping[str, int]) -> dict[str, int]:
    clients_with_gaps = missing = duplicates = 0
    for r in results:
        gap, dup = offset_faults(r["offsets"], r["snapshot_offset"] or 0, finals.get(r["symbol"], 0))
        clients_with_gaps += gap > 0
        missing += gap
        duplicates += dup
    return {"clients_with_gaps": clients_with_gaps, "missing": missing, "duplicates": duplicates}


def run(
    clients: int = 1000,
    symbols: int = 500,
    seconds: float = 30.0,
    speed: float = 60.0,
    compression: bool = True,
) -> dict[str, object]:
    if clients < 1 or symbols < 1 or seconds <= 0 or speed <= 0:
        raise ValueError("clients, symbols, seconds and speed must be positive")
    minutes = max(1, round(seconds * speed / 60))
    names = symbol_names(symbols)
    cores = os.cpu_count() or 1
    _raise_open_files()
    workdir = Path(tempfile.mkdtemp(prefix="mds-bench-ws-"))
    write_universe(workdir / "universe.csv", names)
    env = _api_env(workdir, workdir / "universe.csv")
    log_path = workdir / "api.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    mds = str(Path(sys.executable).with_name("mds"))
    spawn = multiprocessing.get_context("spawn")
    api: subprocess.Popen[bytes] | None = None
    client_proc = publisher_proc = None
    _flush()
    try:
        with log_path.open("wb") as log:
            api = subprocess.Popen(
                [mds, "api", "--port", str(port)], cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=log
            )
        with httpx.Client(timeout=10) as http:
            _wait_health(http, url, api, log_path)
            rss_before = _api_rss(api, log_path)

            client_pipe, child_end = spawn.Pipe()
            client_args = (child_end, f"ws://127.0.0.1:{port}", names, clients, compression)
            client_proc = spawn.Process(target=_client_main, args=client_args, daemon=True)
            client_proc.start()
            child_end.close()
            ready = _expect(client_pipe, "ready", CONNECT_TIMEOUT_S)
            rss_connected = _api_rss(api, log_path)
            before = parse_metrics(http.get(url + "/metrics").text)

            publisher_pipe, child_end = spawn.Pipe()
            publisher_args = (child_end, REDIS_URL, names, minutes, speed)
            publisher_proc = spawn.Process(target=_publisher_main, args=publisher_args, daemon=True)
            publisher_proc.start()
            child_end.close()
            _expect(publisher_pipe, "start", 60)
            start = _Window.now({"api": api.pid, "clients": client_proc.pid or 0})
            published = _expect(publisher_pipe, "done", 2 * seconds + 60)
            client_pipe.send(("finals", published["finals"]))
            drain_s = _expect(client_pipe, "drained", DRAIN_TIMEOUT_S + 30)
            end = _Window.now({"api": api.pid, "clients": client_proc.pid or 0})
            rss_end = _api_rss(api, log_path)
            after = parse_metrics(http.get(url + "/metrics").text)
            hub = http.get(url + "/health").json().get("stream") or {}
            client_pipe.send(("close",))
            results = _expect(client_pipe, "result", 120)
    except httpx.HTTPError as exc:
        raise RuntimeError(f"mds api stopped answering: {exc!r}: {_tail(log_path)}") from exc
    finally:
        for child in (publisher_proc, client_proc):
            _end(child)
        if api is not None:
            _stop(api)
        with contextlib.suppress(Exception):
            _flush()
        shutil.rmtree(workdir, ignore_errors=True)

    wall = end.wall - start.wall
    cpu = {**end.since(start), "publisher": published["cpu_s"]}
    latency = _latencies(published["sent"], results)
    server = bucket_diff(before, after, "ws_publish_latency_ms")
    server_p99 = histogram_quantile(server, 0.99)
    drops = sum(pick(after, "ws_dropped_messages_total")) - sum(pick(before, "ws_dropped_messages_total"))
    faults = _faults(results, published["finals"])
    closed_early = sum(1 for r in results if r["closed_early"] is not None)
    return {
        "benchmark": "ws",
        "clients": clients,
        "symbols": symbols,
        "speed": speed,
        "seconds": seconds,
        "cores": cores,
        "compression": ready["extensions"],
        "clients_connected": ready["connected"],
        "connect_failures": ready["failed"],
        "first_connect_failure": ready["first_failure"],
        "seconds_to_connect": rounded(ready["connect_s"]),
        "bars_published": len(published["sent"]),
        "publish_failures": published["failed"],
        "publisher_behind_max_ms": rounded(published["behind_max_ms"], 1),
        "publish_seconds": rounded(published["seconds"]),
        "drain_seconds": rounded(drain_s),
        "messages_received": len(latency),
        "server_latency_ms": {
            "p50": rounded(histogram_quantile(server, 0.5)),
            "p99": rounded(server_p99),
            "method": "bucket-interpolated",
            "observations": int(max((c for _, c in server), default=0)),
        },
        "server_share_within_50ms": rounded(share_within(server, TARGET_P99_MS), 5),
        "client_latency_ms": {
            "p50": rounded(percentile(latency, 0.5)),
            "p99": rounded(percentile(latency, 0.99)),
            "max": rounded(max(latency, default=None)),
        },
        "drops_total": int(drops),
        "dropped_messages_seen": sum(int(r["dropped_messages"]) for r in results),
        "bus_dropped": hub.get("bus_dropped"),
        "slow_clients_closed": hub.get("slow_clients_closed"),
        "clients_closed_early": closed_early,
        **faults,
        "rss_mb": {
            "before": rounded(rss_before, 1),
            "connected": rounded(rss_connected, 1),
            "end": rounded(rss_end, 1),
        },
        "rss_growth_per_client_kb": rounded(
            (rss_connected - rss_before) * 1024 / max(1, ready["connected"]), 1
        ),
        "window_seconds": rounded(wall),
        "cpu_seconds": {k: rounded(v) for k, v in cpu.items()},
        "api_cpu_share": rounded(_share(cpu["api"], wall), 3),
        "client_cpu_share": rounded(_share(cpu["clients"], wall * cores), 3),
        "target": {"p99_ms": TARGET_P99_MS},
        "ok": (
            server_p99 is not None
            and server_p99 < TARGET_P99_MS
            and ready["failed"] == 0
            and drops == 0
            and closed_early == 0
            and faults["clients_with_gaps"] == 0
            and faults["duplicates"] == 0
        ),
    }


def _share(cpu: float | None, over: float) -> float | None:
    return None if cpu is None or over <= 0 else cpu / over
