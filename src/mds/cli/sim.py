"""`mds sim bars` (the sim ground truth) and `mds sim-server` (the sim in a vendor's format)."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer

from mds.cli.apps import app, sim_app
from mds.cli.common import EndOpt, StartOpt, fail, fail_config, parse_interval, parse_time, parse_window
from mds.errors import ConfigError


@sim_app.command("bars")
def sim_bars(
    symbol: str,
    interval: Annotated[str, typer.Option(help="1m, 5m, 15m, 1h or 1d")] = "1m",
    *,
    start: StartOpt,
    end: EndOpt,
    seed: Annotated[int | None, typer.Option(help="Ground-truth seed (default SIM_SEED or 42)")] = None,
) -> None:
    """Print the sim ground truth (raw across SIM_SPLITS/SIM_DIVIDENDS), one JSON object per line."""
    from mds.providers.sim.actions import sim_actions_from_env
    from mds.providers.sim.faults import SimFaults
    from mds.providers.sim.market import ground_truth
    from mds.serialize import ohlcv_json

    iv = parse_interval(interval)
    a, b = parse_window(start, end)
    try:
        if seed is None:
            seed = SimFaults.from_env(os.environ, prefix="SIM_").seed
        actions = sim_actions_from_env(os.environ)
    except ConfigError as exc:
        fail_config(exc)
    for bar in ground_truth(symbol.upper(), iv, a, b, seed=seed, actions=actions):
        typer.echo(json.dumps(ohlcv_json(bar)))


@app.command("sim-server")
def sim_server(
    format_: Annotated[
        str, typer.Option("--format", help="Vendor wire format: polygon, finnhub, yahoo, ...")
    ],
    port: Annotated[int, typer.Option(help="Port to listen on (127.0.0.1)")] = 8101,
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    prefix: Annotated[str, typer.Option(help="Fault settings prefix (SIM_, SIM_BACKUP_, ...)")] = "SIM_",
    clock: Annotated[str | None, typer.Option(help="Start a simulated clock at this UTC time")] = None,
    speed: Annotated[float, typer.Option(help="Simulated clock speed factor")] = 1.0,
) -> None:
    """Serve the sim ground truth in a vendor's wire format, with the sim's fault settings."""
    import uvicorn

    from mds.domain.clock import Clock, SimulatedClock, SystemClock
    from mds.providers.sim.actions import sim_actions_from_env
    from mds.providers.sim.faults import FaultInjector, SimFaults
    from mds.providers.sim.market import SimMarket, parse_no_trade
    from mds.simserver.app import FORMATS, create_sim_app
    from mds.simserver.context import SimContext

    if format_ not in FORMATS:
        fail(f"--format: unknown format {format_!r}; one of {', '.join(FORMATS)}")
    try:
        faults = SimFaults.from_env(os.environ, prefix=prefix)
        seed = SimFaults.from_env(os.environ, prefix="SIM_").seed
    except ConfigError as exc:
        fail_config(exc)
    the_clock: Clock = SimulatedClock(parse_time("--clock", clock), speed) if clock else SystemClock()
    try:
        no_trade = parse_no_trade(os.environ.get("SIM_NO_TRADE", ""))
        actions = sim_actions_from_env(os.environ)  # SIM_SPLITS, SIM_DIVIDENDS
    except ConfigError as exc:
        fail_config(exc)
    market = SimMarket(seed=seed, no_trade=no_trade or None, actions=actions or None)
    ctx = SimContext(market=market, clock=the_clock, injector=FaultInjector(format_, faults))
    uvicorn.run(create_sim_app(format_, ctx), host=host, port=port, log_level="warning", access_log=False)
