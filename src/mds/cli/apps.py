"""The `mds` Typer app and its command groups; commands attach themselves to these."""

from __future__ import annotations

import typer

app = typer.Typer(
    help="MDS: provider-independent, gap-safe market data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="Inspect and validate settings.", no_args_is_help=True)
sim_app = typer.Typer(help="The offline sim market.", no_args_is_help=True)
bench_app = typer.Typer(
    help="Benchmarks; each prints one line of results (--json: one JSON line).", no_args_is_help=True
)
keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(keys_app, name="keys")
app.add_typer(sim_app, name="sim")
universe_app = typer.Typer(
    help="The symbol universe: import, re-rank into tiers, history.", no_args_is_help=True
)
holdings_app = typer.Typer(
    help="Held symbols (always tracked): add, remove, import, list.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")
app.add_typer(universe_app, name="universe")
app.add_typer(holdings_app, name="holdings")
schedules_app = typer.Typer(
    help="Schedules of catalog tasks: list, add, pause, resume, run, export, import, seed.",
    no_args_is_help=True,
)
app.add_typer(schedules_app, name="schedules")
