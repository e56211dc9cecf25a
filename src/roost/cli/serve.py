"""`roost serve` (the OpenAI-compatible API), `roost chat` (a terminal client for it) and
`roost keys` (the API's Bearer keys): thin commands over roost.serve and roost.apikeys."""

from __future__ import annotations

import sys
from typing import Any

import typer

from roost.cli.common import JsonOption, console, emit, fail, workspace

keys_app = typer.Typer(help="API keys of the HTTP API (/v1, /search, /ads).", no_args_is_help=True)


def serve_command(
    ctx: typer.Context,
    model: str | None = typer.Argument(
        None,
        help="Run name, run directory or HF export directory (default: serve.model, else the newest run).",
    ),
    host: str | None = typer.Option(None, "--host", help="Address to listen on (serve.host in roost.toml)."),
    port: int | None = typer.Option(None, "--port", help="Port to listen on (serve.port)."),
    max_batch: int | None = typer.Option(None, "--max-batch", help="Sequences decoded together (KV slots)."),
    max_queue: int | None = typer.Option(None, "--max-queue", help="Requests that may wait; more get 429."),
    device: str | None = typer.Option(None, "--device", help="auto, cpu or cuda."),
    dtype: str | None = typer.Option(None, "--dtype", help="auto, float32, bfloat16 or float16."),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
) -> None:
    """Serve a model behind an OpenAI-compatible API (Bearer keys from `roost keys add`)."""
    from roost.serve.server import serve
    from roost.workspace import ConfigError

    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "max_batch": max_batch,
        "max_queue": max_queue,
        "device": device,
        "dtype": dtype,
    }
    try:
        serve(
            workspace(ctx), model, log_level=log_level, **{k: v for k, v in options.items() if v is not None}
        )
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))


def chat_command(
    ctx: typer.Context,
    url: str | None = typer.Option(
        None, "--url", help="Server address (default: serve.host and serve.port)."
    ),
    api_key: str | None = typer.Option(None, "--api-key", envvar="ROOST_API_KEY", help="Bearer key."),
    model: str | None = typer.Option(None, "--model", help="Model id (default: the server's first)."),
    system: str | None = typer.Option(None, "--system", help="A system message to start with."),
    temperature: float = typer.Option(0.7, "--temperature", help="Sampling temperature (0: greedy)."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", help="Longest reply in tokens."),
) -> None:
    """Chat with a running server in the terminal; replies stream as they are generated.
    One message per line; an empty line or end of input quits."""
    import openai

    from roost.serve.chat import ChatSession
    from roost.serve.config import ServeConfig

    if not api_key:
        fail("an API key is needed: --api-key or ROOST_API_KEY (make one with `roost keys add`)")
    if url is None:
        config = workspace(ctx).config("serve", ServeConfig)
        url = f"http://{config.host}:{config.port}"
    interactive = sys.stdin.isatty()
    try:
        session = ChatSession(
            url, api_key, model=model, system=system, temperature=temperature, max_tokens=max_tokens
        )
        while True:
            if interactive:
                console.print("[bold]you>[/] ", end="")
            line = sys.stdin.readline()
            if not line.strip():
                return
            console.print("[bold]roost>[/] ", end="")
            for piece in session.reply(line.rstrip("\n")):
                sys.stdout.write(piece)
                sys.stdout.flush()
            sys.stdout.write("\n")
    except openai.APIError as exc:
        fail(f"the server answered: {exc}")
    except openai.APIConnectionError:
        fail(f"cannot reach {url}: is `roost serve` running?")


@keys_app.command("add")
def keys_add(
    ctx: typer.Context,
    label: str = typer.Option("", "--label", help="What the key is for (shown in `roost keys list`)."),
    as_json: bool = JsonOption,
) -> None:
    """Make an API key; it is printed once and only its hash is kept."""
    from roost.apikeys import ApiKeyStore

    store = ApiKeyStore(workspace(ctx).api_keys_db)
    record, key = store.add(label)
    store.close()
    emit(
        {"key_id": record.key_id, "label": record.label, "key": key},
        as_json,
        lambda r: console.print(f"{r['key']}\n[dim]key id {r['key_id']}: shown once, store it now[/]"),
    )


@keys_app.command("list")
def keys_list(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """List API keys (ids, labels, dates; never the keys)."""
    from roost.apikeys import ApiKeyStore

    store = ApiKeyStore(workspace(ctx).api_keys_db)
    records = store.list()
    store.close()
    emit(records, as_json, _render_keys)


@keys_app.command("revoke")
def keys_revoke(
    ctx: typer.Context,
    key_id: str = typer.Argument(..., help="The key id to revoke."),
    as_json: bool = JsonOption,
) -> None:
    """Revoke an API key: it stops working at once, everywhere."""
    from roost.apikeys import ApiKeyError, ApiKeyStore

    store = ApiKeyStore(workspace(ctx).api_keys_db)
    try:
        record = store.revoke(key_id)
    except ApiKeyError as exc:
        fail(str(exc))
    finally:
        store.close()
    emit(record, as_json, lambda r: console.print(f"revoked {r.key_id} ({r.label or 'no label'})"))


def _render_keys(records: list) -> None:
    from rich.table import Table

    if not records:
        console.print("No API keys yet: `roost keys add --label NAME`.")
        return
    table = Table("key id", "label", "created", "revoked")
    for r in records:
        table.add_row(
            r.key_id,
            r.label,
            r.created_at.isoformat(timespec="seconds"),
            (r.revoked_at and r.revoked_at.isoformat(timespec="seconds")) or "",
        )
    console.print(table)
