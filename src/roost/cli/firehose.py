"""`roost firehose`: serve the stream, consume one into the raw store, manage who may read it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

from roost.cli.common import JsonOption, console, emit, err_console, fail, workspace

if TYPE_CHECKING:  # imported for real inside the commands, so `roost --help` stays fast
    from collections.abc import Iterable

    from roost.firehose.config import FirehoseConfig
    from roost.firehose.consumers import Registry
    from roost.firehose.filters import Entitlements
    from roost.posts import Event

app = typer.Typer(
    help="The firehose: the event log, its HTTP stream, consumers and keys.", no_args_is_help=True
)
consumers_app = typer.Typer(
    help="Consumers: keys, entitlements, revocation, audit log.", no_args_is_help=True
)
admin_app = typer.Typer(
    help="Admin keys, which guard the server's /firehose/admin routes.", no_args_is_help=True
)
app.add_typer(consumers_app, name="consumers")
app.add_typer(admin_app, name="admin-key")

# A consumer makes and drops about ten objects per event, nearly all freed by reference counting;
# at the default threshold (700) the cycle collector runs every ~70 events and took a third of
# the consumer's CPU in docs/benchmarks.md. Cycles are still collected, just in larger sweeps.
CONSUMER_GC_THRESHOLDS = (100_000, 50, 100)

LangOption = typer.Option(None, "--lang", help="Allowed language (ISO 639 code); repeat for more. None: all.")
KeywordOption = typer.Option(
    None, "--keyword", help="Allowed word/phrase, or #hashtag; repeat for more. None: no keyword filter."
)
SampleOption = typer.Option(1.0, "--sample", min=0.0, max=1.0, help="Share of posts delivered, in (0, 1].")
RepostsOption = typer.Option(True, "--reposts/--no-reposts", help="Whether reposts are delivered.")


def _config(ctx: typer.Context) -> FirehoseConfig:
    from roost.firehose.config import FirehoseConfig

    return workspace(ctx).config("firehose", FirehoseConfig)


def _entitlements(
    lang: list[str] | None, keyword: list[str] | None, sample: float, reposts: bool
) -> Entitlements:
    from roost.firehose.filters import Entitlements

    try:
        return Entitlements(languages=lang or [], keywords=keyword or [], sample_rate=sample, reposts=reposts)
    except ValueError as exc:
        fail(str(exc))


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: str = typer.Option(None, "--host", help="Address to listen on (default: [firehose] host)."),
    port: int = typer.Option(None, "--port", help="Port to listen on (default: [firehose] port)."),
) -> None:
    """Serve GET /firehose/stream and the admin routes until interrupted."""
    import msgspec

    from roost.firehose.server import serve as run_server

    config = _config(ctx)
    config = msgspec.structs.replace(config, host=host or config.host, port=port or config.port)
    run_server(config, workspace(ctx))


@app.command("consume")
def consume(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="The server, e.g. http://127.0.0.1:8750"),
    key: str = typer.Option(..., "--key", envvar="ROOST_FIREHOSE_KEY", help="This consumer's key."),
    name: str = typer.Option(None, "--name", help="The cursor's name in the raw store."),
    lang: list[str] = LangOption,
    keyword: list[str] = KeywordOption,
    sample: float = typer.Option(None, "--sample", help="Ask for a sample of this share of posts."),
    reposts: bool = typer.Option(None, "--reposts/--no-reposts", help="Ask for reposts or not."),
    compress: bool = typer.Option(False, "--compress", help="Ask for a zstd-compressed stream."),
    start: str = typer.Option("earliest", "--start", help="With no cursor yet: 'earliest' or 'latest'."),
    accept_gap: bool = typer.Option(
        False, "--accept-gap", help="Skip ahead if our cursor is past retention."
    ),
    until: int = typer.Option(None, "--until", help="Stop once the cursor reaches this seq."),
    as_json: bool = JsonOption,
) -> None:
    """Keep the raw store up to date with a firehose server, exactly once, until interrupted."""
    import gc
    import signal
    import threading

    from roost.firehose.client import Backoff, FirehoseError, StreamConsumer
    from roost.rawstore import RawStore

    config = _config(ctx)
    filters = {}
    if lang:
        filters["lang"] = ",".join(lang)
    if keyword:
        filters["keywords"] = ",".join(keyword)
    if sample is not None:
        filters["sample"] = repr(sample)
    if reposts is not None:
        filters["reposts"] = "true" if reposts else "false"
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    gc.set_threshold(*CONSUMER_GC_THRESHOLDS)
    with RawStore.in_dir(workspace(ctx).raw_dir) as store:
        consumer = StreamConsumer(
            url,
            key,
            store,
            name=name or config.consumer_name,
            filters=filters,
            compress=compress,
            start=start,
            accept_gap=accept_gap,
            backoff=Backoff(config.backoff_initial_seconds, config.backoff_max_seconds),
            read_timeout=config.read_timeout_seconds,
        )
        try:
            stats = consumer.run(stop=stop, until=until)
        except (FirehoseError, ValueError) as exc:
            fail(str(exc))
    emit(
        stats,
        as_json,
        lambda s: console.print(f"{s.events} events in {s.batches} batches; cursor {s.cursor}"),
    )


@app.command("status")
def status(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """The log's head, horizon, segments and size."""
    from roost.firehose.log import Log

    stats = Log(workspace(ctx).firehose_dir).stats()
    emit(
        stats,
        as_json,
        lambda s: console.print(
            f"head {s.head}, whole from seq {s.horizon}, {s.segments} segments, {s.bytes / 1e6:.1f} MB"
        ),
    )


@app.command("compact")
def compact(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Apply retention now and drop deleted posts' bodies (needs the log's writer lock)."""
    from roost.firehose.log import LogError, LogWriter

    config = _config(ctx)
    try:
        with LogWriter(
            workspace(ctx).firehose_dir,
            segment_bytes=config.segment_bytes,
            retention_bytes=config.retention_bytes,
            retention_seconds=config.retention_hours * 3600,
        ) as writer:
            report = writer.compact()
    except LogError as exc:
        fail(str(exc))
    emit(
        report,
        as_json,
        lambda r: console.print(
            f"{r.posts_dropped} post bodies dropped, {r.segments_rewritten} segments rewritten, "
            f"{r.segments_removed} removed; whole from seq {r.horizon}"
        ),
    )


# -- consumers ----------------------------------------------------------------------------------
def _registry(ctx: typer.Context) -> Registry:
    from roost.firehose.consumers import Registry

    return Registry(workspace(ctx).consumers_db)


def _render_consumers(consumers: list) -> None:
    from rich.table import Table

    table = Table(
        "name", "key id", "languages", "keywords", "sample", "reposts", "rate/min", "max conn", "revoked"
    )
    for c in consumers:
        e = c.entitlements
        table.add_row(
            c.name,
            c.key_id,
            ",".join(e.languages) or "all",
            ",".join(e.keywords) or "-",
            f"{e.sample_rate:g}",
            "yes" if e.reposts else "no",
            str(c.rate_limit or "∞"),
            str(c.max_connections or "∞"),
            c.revoked_at.isoformat(timespec="seconds") if c.revoked_at else "",
        )
    console.print(table)


@consumers_app.command("add")
def consumers_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="A short unique name, e.g. 'acme-research'."),
    lang: list[str] = LangOption,
    keyword: list[str] = KeywordOption,
    sample: float = SampleOption,
    reposts: bool = RepostsOption,
    rate_limit: int = typer.Option(60, "--rate-limit", help="Connects per minute (0: no limit)."),
    max_connections: int = typer.Option(2, "--max-connections", help="Streams open at once (0: no limit)."),
    as_json: bool = JsonOption,
) -> None:
    """Add a consumer and print its key (shown this once; only its hash is stored)."""
    from roost.firehose.consumers import ConsumerError

    entitlements = _entitlements(lang, keyword, sample, reposts)
    try:
        consumer, key = _registry(ctx).add(
            name, entitlements, rate_limit=rate_limit, max_connections=max_connections
        )
    except ConsumerError as exc:
        fail(str(exc))

    def render(result: dict) -> None:
        console.print(f"added consumer [bold]{name}[/]; its key (shown once, store it now):")
        console.print(result["key"], markup=False, soft_wrap=True)

    emit({"consumer": consumer, "key": key}, as_json, render)


@consumers_app.command("list")
def consumers_list(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """List consumers, their entitlements and whether they are revoked."""
    emit(_registry(ctx).list(), as_json, _render_consumers)


@consumers_app.command("revoke")
def consumers_revoke(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The consumer to cut off."),
    as_json: bool = JsonOption,
) -> None:
    """Revoke a consumer for good; a running server ends its streams within a second."""
    from roost.firehose.consumers import ConsumerError

    try:
        consumer = _registry(ctx).revoke(name)
    except ConsumerError as exc:
        fail(str(exc))
    emit(
        consumer,
        as_json,
        lambda c: console.print(f"revoked {c.name} at {c.revoked_at:%Y-%m-%d %H:%M:%S} UTC"),
    )


@consumers_app.command("entitle")
def consumers_entitle(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The consumer to change."),
    lang: list[str] = LangOption,
    keyword: list[str] = KeywordOption,
    sample: float = SampleOption,
    reposts: bool = RepostsOption,
    rate_limit: int = typer.Option(None, "--rate-limit", help="Connects per minute (0: no limit)."),
    max_connections: int = typer.Option(
        None, "--max-connections", help="Streams open at once (0: no limit)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Replace a consumer's entitlements; open streams follow within a second."""
    from roost.firehose.consumers import ConsumerError

    entitlements = _entitlements(lang, keyword, sample, reposts)
    try:
        consumer = _registry(ctx).entitle(
            name, entitlements, rate_limit=rate_limit, max_connections=max_connections
        )
    except ConsumerError as exc:
        fail(str(exc))
    emit(consumer, as_json, lambda c: _render_consumers([c]))


@consumers_app.command("audit")
def consumers_audit(
    ctx: typer.Context,
    name: str = typer.Argument(None, help="Only this consumer's entries."),
    limit: int = typer.Option(50, "--limit", min=1, help="How many of the newest entries."),
    as_json: bool = JsonOption,
) -> None:
    """The audit log: connects, disconnects, refusals and changes, newest first."""
    import msgspec

    entries = _registry(ctx).audit_log(consumer=name, limit=limit)

    def render(rows: list) -> None:
        for e in rows:
            detail = msgspec.json.encode(e.detail).decode()
            console.print(f"{e.at:%Y-%m-%d %H:%M:%S}  {e.consumer:<20} {e.action:<10} {detail}", markup=False)

    emit(entries, as_json, render)


# -- admin keys ---------------------------------------------------------------------------------
@admin_app.command("create")
def admin_create(
    ctx: typer.Context,
    label: str = typer.Option("", "--label", help="Who or what the key is for."),
    as_json: bool = JsonOption,
) -> None:
    """Make an admin key and print it (shown this once; only its hash is stored)."""
    admin_key, key = _registry(ctx).add_admin_key(label)

    def render(result: dict) -> None:
        console.print(f"admin key {admin_key.key_id} (shown once, store it now):")
        console.print(result["key"], markup=False, soft_wrap=True)

    emit({"admin_key": admin_key, "key": key}, as_json, render)


@admin_app.command("list")
def admin_list(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """List admin keys (ids and labels, never the keys)."""

    def render(keys: list) -> None:
        for k in keys:
            state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
            console.print(f"{k.key_id}  {k.label or '-':<20} created {k.created_at:%Y-%m-%d %H:%M}  {state}")

    emit(_registry(ctx).admin_keys(), as_json, render)


@admin_app.command("revoke")
def admin_revoke(
    ctx: typer.Context,
    key_id: str = typer.Argument(..., help="The key id, as `list` shows it."),
    as_json: bool = JsonOption,
) -> None:
    """Revoke an admin key for good."""
    from roost.firehose.consumers import ConsumerError

    try:
        admin_key = _registry(ctx).revoke_admin_key(key_id)
    except ConsumerError as exc:
        fail(str(exc))
    emit(admin_key, as_json, lambda k: console.print(f"revoked admin key {k.key_id}"))


def simulate_live(ctx: typer.Context, events: Iterable[Event], rate: float, as_json: bool) -> None:
    """`roost simulate --live`: append simulated events to the log at `rate`/s until interrupted."""
    import signal
    import threading

    from roost.firehose.live import run_live
    from roost.firehose.log import LogError

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if rate <= 0:
        fail(f"--rate must be > 0 events/s, not {rate}")
    ws = workspace(ctx)
    err_console.print(
        f"appending to {ws.firehose_dir} at {rate:,.0f} events/s (Ctrl-C stops)", highlight=False
    )
    try:
        report = run_live(ws, events, rate=rate, stop=stop)
    except LogError as exc:
        fail(str(exc))
    emit(
        report,
        as_json,
        lambda r: console.print(
            f"{r.events:,} events in {r.seconds:.1f} s ({r.events_per_s:,.0f}/s); head {r.head}"
        ),
    )
