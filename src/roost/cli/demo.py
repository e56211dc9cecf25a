"""`roost demo`: build the whole system on the simulated platform within a time budget, then serve
it all (and the web UI) from one server. Thin: the work is in roost.demo."""

from __future__ import annotations

import typer

from roost.cli.common import JsonOption, console, emit, err_console, fail, workspace


def demo_command(
    ctx: typer.Context,
    time_budget: str = typer.Option(
        "15m", "--time-budget", help="How long building may take: seconds, or e.g. 90s, 15m, 1h."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to serve on."),
    port: int | None = typer.Option(
        None, "--port", help="Port to serve on (default: serve.port in roost.toml, 8000)."
    ),
    serve: bool = typer.Option(True, "--serve/--no-serve", help="Serve once built (default), or only build."),
    live_rate: float = typer.Option(
        20.0, "--live-rate", min=0.1, help="Events per second the simulated platform posts while serving."
    ),
    as_json: bool = JsonOption,
) -> None:
    """The whole system in one command: simulate the platform, stream it through the firehose,
    curate, train, export, index, seed the ads, and serve everything with the web UI.

    Rerunning reuses the finished stages; Ctrl-C stops cleanly (and a rerun goes on from there)."""
    from roost.demo import build, check_port
    from roost.demo import serve as serve_demo
    from roost.demo.plan import parse_duration
    from roost.demo.stages import StageFailed
    from roost.serve.config import ServeConfig
    from roost.workspace import ConfigError

    ws = workspace(ctx)
    try:
        budget = parse_duration(time_budget)
        port = port if port is not None else ws.config("serve", ServeConfig).port
        if serve:
            check_port(host, port)
        summaries = build(ws, budget, err_console if as_json else console)
    except KeyboardInterrupt:
        err_console.print("\nInterrupted. The finished stages are kept; `roost demo` goes on from here.")
        raise typer.Exit(130) from None
    except (ValueError, OSError, ConfigError, StageFailed) as exc:
        fail(str(exc))
    if as_json:
        emit(summaries, True, print)
    if serve:
        serve_demo(ws, host=host, port=port, live_rate=live_rate, console=console)
