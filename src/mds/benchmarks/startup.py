"""How fast `mds serve --demo` is serving, how long its start-up backfill takes, its memory."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def rss_mb(pid: int) -> tuple[float, float]:
    """(current, peak) resident set size in MiB, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()

    def to_mb(v: str) -> float:
        return int(v.split()[0]) / 1024  # kB → MiB

    return to_mb(fields["VmRSS"]), to_mb(fields["VmHWM"])


def _queue_depth(client: httpx.Client, url: str) -> float | None:
    """The backlog over every tier (``backfill_queue_depth{tier}``), None before it is exported."""
    depths = [
        float(line.rsplit(" ", 1)[1])
        for line in client.get(url + "/metrics").text.splitlines()
        if line.startswith("backfill_queue_depth{")
    ]
    return sum(depths) if depths else None


def run(timeout: float = 120.0, clock: str | None = "2025-10-08T14:00:00Z") -> dict[str, object]:
    mds = str(Path(sys.executable).with_name("mds"))
    workdir = Path(tempfile.mkdtemp(prefix="mds-bench-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = [mds, "serve", "--demo", "--port", str(port)]
    if clock:
        args += ["--clock", clock]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIM_", "POLICY_", "DATABASE_URL"))}
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with httpx.Client(timeout=5) as client:
            serving = drained = None
            deadline = t0 + timeout
            while time.perf_counter() < deadline and proc.poll() is None:
                with contextlib.suppress(httpx.HTTPError):  # not up yet: poll again
                    if serving is None and client.get(url + "/health").status_code == 200:
                        serving = time.perf_counter() - t0
                    if serving is not None:
                        health = client.get(url + "/health").json()
                        if health["startup_backfill_queued"] and _queue_depth(client, url) == 0:
                            drained = time.perf_counter() - t0
                            break
                time.sleep(0.05)
            rss, peak = rss_mb(proc.pid)
            bars = None
            if drained is not None:
                r = client.get(url + "/stocks/AAPL/history", params={"period": "1y"})
                bars = len(r.json()["bars"])
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "benchmark": "startup",
        "seconds_to_serving": round(serving, 3) if serving else None,
        "seconds_to_backfill_drained": round(drained, 3) if drained else None,
        "rss_mb": round(rss, 1),
        "peak_rss_mb": round(peak, 1),
        "aapl_daily_bars_after_start": bars,
        "targets": {"seconds_to_serving": 5.0, "peak_rss_mb": 300.0},
    }
