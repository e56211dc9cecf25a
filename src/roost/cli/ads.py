"""`roost ads ...`: advertisers, campaigns, creatives, targeting previews, reports, the models ads
learn, a simulated day, and the /ads API: thin commands over roost.ads. Money is written as
amounts ("12.50") and stored as micros."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import typer

from roost.cli.common import JsonOption, console, emit, fail, option_time, workspace

app = typer.Typer(
    help="Ads: campaigns, generated copy, targeting, the auction, a simulated day.", no_args_is_help=True
)
advertisers_app = typer.Typer(help="Advertisers.", no_args_is_help=True)
campaigns_app = typer.Typer(help="Campaigns: budgets, bids, targeting, brand safety.", no_args_is_help=True)
creatives_app = typer.Typer(
    help="Creatives: written by hand or by the model, always checked.", no_args_is_help=True
)
train_app = typer.Typer(
    help="Train the models ads use and store them with the campaigns.", no_args_is_help=True
)
app.add_typer(advertisers_app, name="advertisers")
app.add_typer(campaigns_app, name="campaigns")
app.add_typer(creatives_app, name="creatives")
app.add_typer(train_app, name="train")


def _store(ctx: typer.Context):
    from roost.ads.config import AdsConfig
    from roost.ads.schema import SchemaError
    from roost.ads.store import Store
    from roost.workspace import ConfigError

    ws = workspace(ctx)
    try:
        config = ws.config("ads", AdsConfig)
        return Store.open(ws, config.database, sqlite_synchronous=config.sqlite_synchronous)
    except (ConfigError, SchemaError, ValueError) as exc:
        fail(str(exc))


def _service(ctx: typer.Context, *, index: bool = False, engine: bool = False):
    from roost.ads.service import AdsService
    from roost.workspace import ConfigError

    try:
        return AdsService.open(
            workspace(ctx), index="workspace" if index else None, engine="workspace" if engine else None
        )
    except (ConfigError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))


def _money(value: str, name: str) -> int:
    from roost.ads.money import parse_money

    try:
        return parse_money(value)
    except ValueError as exc:
        fail(f"--{name}: {exc}")


def _refused(exc: Exception) -> None:
    fail(str(exc))


# -- advertisers ----------------------------------------------------------------------------------
@advertisers_app.command("add")
def advertiser_add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="The advertiser's name."),
    as_json: bool = JsonOption,
) -> None:
    """Add an advertiser."""
    from roost.ads.store import StoreError

    with _store(ctx) as store:
        try:
            advertiser = store.add_advertiser(name)
        except StoreError as exc:
            _refused(exc)
    emit(advertiser, as_json, lambda a: console.print(f"advertiser {a.id}: {a.name}"))


@advertisers_app.command("list")
def advertiser_list(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """List advertisers."""
    with _store(ctx) as store:
        found = store.advertisers()
    emit(found, as_json, lambda rows: [console.print(f"{a.id:>5}  {a.name}") for a in rows])


# -- campaigns ------------------------------------------------------------------------------------
@campaigns_app.command("add")
def campaign_add(
    ctx: typer.Context,
    advertiser: int = typer.Option(..., "--advertiser", help="Advertiser id."),
    name: str = typer.Option(..., "--name", help="Campaign name."),
    objective: str = typer.Option(
        "traffic", "--objective", help="awareness (bid per 1,000), traffic or engagement (per click)."
    ),
    bid: str = typer.Option(
        ..., "--bid", help="Bid: per click, or per 1,000 impressions for awareness (e.g. 0.80)."
    ),
    daily_budget: str = typer.Option(
        ..., "--daily-budget", help="Most it may spend in a UTC day (e.g. 50.00)."
    ),
    total_budget: str = typer.Option(..., "--total-budget", help="Most it may spend in all."),
    start: str | None = typer.Option(None, "--start", help="When it starts (ISO-8601; default now)."),
    end: str | None = typer.Option(None, "--end", help="When it ends (ISO-8601; default never)."),
    keyword: list[str] = typer.Option([], "--keyword", "-k", help="A keyword, phrase or #tag (repeat)."),
    topic: list[str] = typer.Option([], "--topic", "-t", help="A topic to target (repeat)."),
    lang: list[str] = typer.Option([], "--lang", help="A language of its audience (repeat; ISO 639-1)."),
    brief: str = typer.Option(
        "", "--brief", help="What it advertises, to whom (its embedding finds conversations)."
    ),
    block: list[str] = typer.Option(
        [], "--block", help="A brand-safety category to stay away from (repeat)."
    ),
    cap: int = typer.Option(0, "--frequency-cap", help="Impressions per user per day (0: no cap)."),
    pacing: str = typer.Option("even", "--pacing", help="even (spread over the day) or asap."),
    url: str = typer.Option("", "--url", help="Landing URL."),
    handle: str = typer.Option("", "--handle", help="Account handle (@name)."),
    as_json: bool = JsonOption,
) -> None:
    """Create a campaign."""
    import msgspec

    from roost.ads.store import CampaignSpec, StoreError, Targeting

    try:
        spec = msgspec.convert(
            {
                "name": name,
                "objective": objective,
                "bid_micros": _money(bid, "bid"),
                "daily_budget_micros": _money(daily_budget, "daily-budget"),
                "total_budget_micros": _money(total_budget, "total-budget"),
                "start": option_time(start, "start") or dt.datetime.now(dt.UTC),
                "end": option_time(end, "end"),
                "targeting": Targeting(keywords=keyword, topics=topic, languages=lang, brief=brief),
                "blocked_categories": block,
                "frequency_cap": cap,
                "pacing": pacing,
                "landing_url": url,
                "handle": handle,
            },
            CampaignSpec,
        )
    except msgspec.ValidationError as exc:
        fail(str(exc))
    with _store(ctx) as store:
        try:
            campaign = store.add_campaign(advertiser, spec)
        except (StoreError, ValueError) as exc:
            _refused(exc)
    emit(campaign, as_json, _render_campaign)


@campaigns_app.command("list")
def campaign_list(
    ctx: typer.Context,
    status: str | None = typer.Option(None, "--status", help="active, paused or archived."),
    as_json: bool = JsonOption,
) -> None:
    """List campaigns with their budgets and spend."""
    with _store(ctx) as store:
        found = store.campaigns(status=status)
    emit(found, as_json, lambda rows: [_render_campaign(c) for c in rows])


@campaigns_app.command("show")
def campaign_show(
    ctx: typer.Context, campaign_id: int = typer.Argument(...), as_json: bool = JsonOption
) -> None:
    """Show a campaign."""
    from roost.ads.store import StoreError

    with _store(ctx) as store:
        try:
            campaign = store.campaign(campaign_id)
        except StoreError as exc:
            _refused(exc)
    emit(campaign, as_json, _render_campaign)


def _set_status(ctx: typer.Context, campaign_id: int, status: str, as_json: bool) -> None:
    from roost.ads.store import StoreError

    with _store(ctx) as store:
        try:
            campaign = store.update_campaign(campaign_id, {"status": status})
        except StoreError as exc:
            _refused(exc)
    emit(campaign, as_json, _render_campaign)


@campaigns_app.command("pause")
def campaign_pause(
    ctx: typer.Context, campaign_id: int = typer.Argument(...), as_json: bool = JsonOption
) -> None:
    """Pause a campaign (it stops entering auctions)."""
    _set_status(ctx, campaign_id, "paused", as_json)


@campaigns_app.command("resume")
def campaign_resume(
    ctx: typer.Context, campaign_id: int = typer.Argument(...), as_json: bool = JsonOption
) -> None:
    """Resume a paused campaign."""
    _set_status(ctx, campaign_id, "active", as_json)


@campaigns_app.command("archive")
def campaign_archive(
    ctx: typer.Context, campaign_id: int = typer.Argument(...), as_json: bool = JsonOption
) -> None:
    """Archive a campaign (kept with its ledger, never served again unless resumed)."""
    _set_status(ctx, campaign_id, "archived", as_json)


def _render_campaign(c: Any) -> None:
    from roost.ads.money import format_money

    per = "per click" if c.objective != "awareness" else "CPM"
    t = c.targeting
    console.print(
        f"[bold]{c.id:>5}[/] {c.name} [dim]({c.status}, {c.objective}, {c.pacing})[/]  "
        f"bid {format_money(c.bid_micros)} {per}  budget {format_money(c.daily_budget_micros)}/day, "
        f"{format_money(c.total_budget_micros)} in all, spent {format_money(c.spent_micros)}",
        highlight=False,
    )
    console.print(
        f"       keywords {t.keywords or '-'}  topics {t.topics or '-'}  languages {t.languages or 'any'}  "
        f"blocks {c.blocked_categories or '-'}  cap {c.frequency_cap or '-'}",
        markup=False,
        highlight=False,
    )


# -- creatives -------------------------------------------------------------------------------------
@creatives_app.command("list")
def creative_list(
    ctx: typer.Context, campaign_id: int = typer.Argument(...), as_json: bool = JsonOption
) -> None:
    """List a campaign's creatives."""
    with _store(ctx) as store:
        found = store.creatives(campaign_id)
    emit(
        found,
        as_json,
        lambda rows: [
            console.print(f"{c.id:>5} [dim]{c.status}[/]  {c.text}", highlight=False) for c in rows
        ],
    )


@creatives_app.command("add")
def creative_add(
    ctx: typer.Context,
    campaign_id: int = typer.Argument(...),
    text: str = typer.Argument(..., help="The ad's text (checked like generated copy)."),
    as_json: bool = JsonOption,
) -> None:
    """Add a hand-written creative, if it passes every rule."""
    from roost.ads.store import StoreError

    service = _service(ctx)
    try:
        creative = service.add_creative(campaign_id, text)
    except (StoreError, ValueError) as exc:
        _refused(exc)
    finally:
        service.close()
    emit(creative, as_json, lambda c: console.print(f"creative {c.id}: {c.text}", highlight=False))


@creatives_app.command("generate")
def creative_generate(
    ctx: typer.Context,
    campaign_id: int = typer.Argument(...),
    product: str = typer.Option(..., "--product", help="What is advertised."),
    audience: str = typer.Option("", "--audience", help="To whom."),
    tone: str = typer.Option("friendly", "--tone", help="How it should sound."),
    must: list[str] = typer.Option([], "--must", help="A term every variant must contain (repeat)."),
    ban: list[str] = typer.Option([], "--ban", help="A term no variant may contain (repeat)."),
    language: str | None = typer.Option(None, "--lang", help="Language (default: the campaign's first)."),
    n: int = typer.Option(3, "-n", help="Variants wanted."),
    save: bool = typer.Option(
        False, "--save", help="Store the variants that pass as the campaign's creatives."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Write ad copy with the model: only variants that pass every rule, and why the others failed."""
    import msgspec

    from roost.ads.store import StoreError

    fields: dict[str, Any] = {
        "product": product,
        "audience": audience,
        "tone": tone,
        "must_include": must,
        "banned": ban,
        "n": n,
    }
    if language:
        fields["language"] = language
    service = _service(ctx, engine=True)
    try:
        result, saved = service.generate(campaign_id, fields, save=save)
    except (StoreError, ValueError, RuntimeError, msgspec.ValidationError) as exc:
        _refused(exc)
    finally:
        service.close()
    emit({**msgspec.to_builtins(result), "saved": saved}, as_json, _render_creatives)


def _render_creatives(result: dict) -> None:
    for v in result["variants"]:
        console.print(f"[green]✓[/] [dim]{v['rank']:+.3f}[/]  {v['text']}", highlight=False)
    for v in result["rejected"][:10]:
        console.print(f"[red]✗[/] [dim]{'; '.join(v['reasons'])}[/]  {v['text']}", highlight=False)
    if result["shortfall"]:
        console.print(f"[yellow]{result['shortfall']}[/]")
    if result["saved"]:
        console.print(f"saved as creatives {', '.join(str(c.id) for c in result['saved'])}")


# -- targeting, reports, safety --------------------------------------------------------------------
@app.command("preview")
def preview(
    ctx: typer.Context,
    campaign_id: int = typer.Argument(...),
    limit: int = typer.Option(20, "--limit", "-n", help="How many conversations."),
    as_json: bool = JsonOption,
) -> None:
    """The live conversations a campaign would be shown next to (from the search index)."""
    from roost.ads.store import StoreError

    service = _service(ctx, index=True)
    if service.retriever is None:
        service.close()
        fail("no search index: run `roost index build` first")
    try:
        hits = service.preview(campaign_id, limit=limit)
    except StoreError as exc:
        _refused(exc)
    finally:
        service.close()

    def render(rows: Any) -> None:
        for h in rows:
            flag = f"[red]blocked {h.categories}[/]" if h.blocked else f"[dim]{h.categories or ''}[/]"
            console.print(
                f"{h.score:.4f} [dim]@{h.post.author_id}[/] {flag}  {' '.join(h.post.text.split())}",
                highlight=False,
            )

    emit(hits, as_json, render)


@app.command("report")
def report(
    ctx: typer.Context,
    campaign_id: int = typer.Argument(...),
    since: str | None = typer.Option(None, "--since", help="From (ISO-8601; default 24 hours ago)."),
    until: str | None = typer.Option(None, "--until", help="Until (ISO-8601; default now)."),
    as_json: bool = JsonOption,
) -> None:
    """A campaign's spend, impressions, clicks and pCTR quality, from the ledger."""
    from roost.ads.money import format_money
    from roost.ads.store import StoreError

    service = _service(ctx)
    try:
        result = service.report(
            campaign_id, since=option_time(since, "since"), until=option_time(until, "until")
        )
    except StoreError as exc:
        _refused(exc)
    finally:
        service.close()
    emit(
        result,
        as_json,
        lambda r: console.print(
            f"campaign {r.campaign_id}: spent {format_money(r.spent_micros)}, {r.impressions:,} impressions, "
            f"{r.clicks:,} clicks (CTR {r.ctr:.2%}), CPM {format_money(r.cpm_micros)}; pCTR AUC "
            f"{r.clicks_metrics.auc}, calibration {r.clicks_metrics.calibration}"
        ),
    )


@app.command("safety")
def safety(
    ctx: typer.Context, text: str = typer.Argument(..., help="A post's text."), as_json: bool = JsonOption
) -> None:
    """Which brand-safety categories a text falls in, and why."""
    from roost.ads.safety import SafetyClassifier

    with _store(ctx) as store:
        verdict = SafetyClassifier.load(store).explain(text)
    emit(
        verdict,
        as_json,
        lambda v: console.print(
            f"{v.categories or 'none'}  lexicon {v.lexicon}  model {v.model}", markup=False
        ),
    )


@app.command("audit")
def audit(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Check that every campaign's spend counters agree with the ledger, to the micro."""
    with _store(ctx) as store:
        problems = store.audit()
    emit(
        {"problems": problems},
        as_json,
        lambda r: console.print("\n".join(r["problems"]) or "the ledger and the counters agree"),
    )
    if problems:
        raise typer.Exit(1)


# -- models -----------------------------------------------------------------------------------------
@train_app.command("safety")
def train_safety(
    ctx: typer.Context,
    posts: Path = typer.Option(
        ..., "--posts", help="Labelled real posts (posts.jsonl with offensive/hate tasks)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Train the brand-safety classifier (obscenity, hate) and report it against the lexicons."""
    from roost.ads.safety import MODEL_NAME, SafetyClassifier, evaluate, train_from_real_posts

    if not posts.exists():
        fail(f"{posts} does not exist")
    model = train_from_real_posts(posts)
    with _store(ctx) as store:
        version = store.save_model(MODEL_NAME, model.to_bytes(), model.meta)
    quality = evaluate(SafetyClassifier(model), posts)
    emit(
        {"version": version, "thresholds": model.meta["thresholds"], "test": quality},
        as_json,
        _render_quality,
    )


def _render_quality(result: dict) -> None:
    console.print(f"safety model version {result['version']}, thresholds {result['thresholds']}")
    for q in result["test"]:
        console.print(
            f"  {q.category:10s} {q.posts} test posts: lexicon F1 {q.lexicon['f1']:.3f} "
            f"(P {q.lexicon['precision']:.3f} R {q.lexicon['recall']:.3f}), "
            f"with the model F1 {q.combined['f1']:.3f} "
            f"(P {q.combined['precision']:.3f} R {q.combined['recall']:.3f})"
        )


@train_app.command("topics")
def train_topics_command(
    ctx: typer.Context,
    posts: int = typer.Option(20_000, "--posts", help="Simulated posts to learn from."),
    as_json: bool = JsonOption,
) -> None:
    """Train the topic classifier on simulated posts (whose topics the simulator knows)."""
    from roost.ads.topics import MODEL_NAME, train_topics

    model = train_topics(posts)
    with _store(ctx) as store:
        version = store.save_model(MODEL_NAME, model.to_bytes(), model.meta)
    emit(
        {"version": version, **model.meta},
        as_json,
        lambda r: console.print(f"topics model version {r['version']}: {r}"),
    )


@train_app.command("pctr")
def train_pctr(
    ctx: typer.Context,
    hours: float = typer.Option(24.0, "--hours", help="Learn from the last this many hours of the ledger."),
    as_json: bool = JsonOption,
) -> None:
    """Train the click model on the ledger's recent impressions and clicks."""
    from roost.ads.pctr import train_from_store
    from roost.ads.schema import now_ms

    with _store(ctx) as store:
        try:
            model = train_from_store(store, since_ms=now_ms() - int(hours * 3_600_000))
        except ValueError as exc:
            _refused(exc)
    emit(model.meta, as_json, lambda m: console.print(f"pCTR model version {m['version']}: {m}"))


@train_app.command("engagement")
def train_engagement(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Train the ad-copy engagement model on every creative's clicks in the ledger."""
    from roost.ads.engagement import EngagementModel

    with _store(ctx) as store:
        try:
            model = EngagementModel.train_from_store(store)
        except ValueError as exc:
            _refused(exc)
    emit(model.classifier.meta, as_json, lambda m: console.print(f"engagement model: {m}"))


# -- simulation and serving ------------------------------------------------------------------------
@app.command("simulate")
def simulate(
    ctx: typer.Context,
    day: bool = typer.Option(True, "--day", help="Simulate one day (after a day of history)."),
    posts: int = typer.Option(20_000, "--posts", help="The platform's posts per day."),
    users: int = typer.Option(5_000, "--users", help="Simulated users."),
    seed: int = typer.Option(7, "--seed", help="Seed: the same seed gives the same day."),
    budget_fill: float = typer.Option(
        0.15, "--budget-fill", help="Budgets: yesterday's cost of this share of each campaign's auctions."
    ),
    model: str = typer.Option(
        "none", "--model", help="A run that embeds and writes copy; 'auto' the newest; 'none'."
    ),
    database: str = typer.Option(
        "", "--database", help="An empty database URL for the run (default <home>/ads-sim/ads.db, replaced)."
    ),
    as_json: bool = JsonOption,
) -> None:
    """Run a simulated day of ad traffic and report spend, pacing, clicks and pCTR quality."""
    import msgspec

    from roost.ads.simulate import DayConfig, simulate_day

    if not day:
        fail("only --day is simulated so far")
    try:
        config = DayConfig(seed=seed, posts=posts, users=users, budget_fill=budget_fill)
        result = simulate_day(workspace(ctx), config, database=database, model=model)
    except (ValueError, msgspec.ValidationError, FileNotFoundError) as exc:
        fail(str(exc))
    emit(result, as_json, _render_day)


def _render_day(r: Any) -> None:
    from roost.ads.money import format_money

    m = r.clicks_metrics
    console.print(
        f"[bold]{r.day}[/] (seed {r.seed}): {r.posts:,} posts, {r.requests:,} ad requests, {r.impressions:,} "
        f"impressions ({r.filled / max(r.requests, 1):.0%} filled), {r.clicks:,} clicks (CTR {m.ctr:.2%}), "
        f"spent {format_money(r.spent_micros)} of {format_money(r.budget_micros)}"
    )
    console.print(
        f"pCTR: AUC {m.auc}, normalized entropy {m.normalized_entropy}, calibration {m.calibration} "
        f"({r.pctr_versions} models through the day); p50 {r.latency_ms['p50']} ms, "
        f"p99 {r.latency_ms['p99']} ms per request; {r.took_s} s"
    )
    console.print(
        f"brand safety: {r.blocked_impressions} impressions next to a blocked category "
        f"({r.blocked_incident_impressions} by the incidents' own labels); exclusions {r.excluded}"
    )
    for c in r.campaigns:
        console.print(
            f"  {c.name[:26]:26s} {c.pacing:5s} budget {format_money(c.daily_budget_micros):>9} spent "
            f"{c.spent_share:7.1%} (held back {c.held_back:4.0%})  {c.impressions:6,} imps "
            f"{c.clicks:5,} clicks CTR {c.ctr:6.2%} CPM "
            f"{format_money(c.cpm_micros):>7}  freq ≤{c.max_user_frequency}/{c.frequency_cap or '-'}  "
            f"AUC {c.clicks_metrics.auc}",
            highlight=False,
        )
        if c.undeliverable_at is not None:
            console.print(
                f"    [yellow]budget not deliverable[/]: from {c.undeliverable_at} UTC its traffic was "
                f"forecast to buy {c.forecast_share:.1%} of it"
            )
    if r.audit:
        console.print("[red]ledger audit:[/] " + "; ".join(r.audit))


@app.command("serve")
def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8200, "--port", help="Port to listen on."),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
) -> None:
    """Serve /ads alone (Bearer keys from `roost keys add`); the demo app mounts it with the rest."""
    import uvicorn

    from roost.ads.api import create_app
    from roost.apikeys import ApiKeyStore

    ws = workspace(ctx)
    service = _service(ctx, index=True, engine=True)
    keys = ApiKeyStore(ws.api_keys_db)
    try:
        uvicorn.run(create_app(service, keys), host=host, port=port, log_level=log_level, access_log=False)
    finally:
        service.close()
        keys.close()
