"""The ads store: advertisers, campaigns, creatives, trained models and the append-only ledger of
impressions and clicks, on SQLite (the workspace's ads.db) or PostgreSQL (by URL).

`charge` is the one way money moves: in a single transaction it appends the impression to the
ledger, takes the price from the campaign's total budget, then from its budget for the day, and
counts the user's impression against the frequency cap. Each check is the WHERE clause of the
UPDATE that spends (`spent + price <= budget`), so two ad servers charging the same campaign at
once cannot both pass a check only one of them fits: the second waits for the first's row lock
and re-evaluates against what the first wrote. If any step fails the whole transaction rolls back
and nothing is charged. `audit` checks that the counters and the ledger agree to the micro.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Literal
from urllib.parse import urlparse

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from roost.ads.categories import check_categories
from roost.ads.money import MAX_MICROS
from roost.ads.schema import (
    advertisers,
    campaign_days,
    campaigns,
    create_engine,
    creatives,
    frequency,
    ledger,
    migrate,
    models,
    now_ms,
)
from roost.workspace import Workspace

Objective = Literal["awareness", "traffic", "engagement"]
CampaignStatus = Literal["active", "paused", "archived"]
CreativeStatus = Literal["active", "paused", "rejected"]
Pacing = Literal["even", "asap"]
Slot = Literal["timeline", "search"]
UtcDatetime = Annotated[dt.datetime, msgspec.Meta(tz=True)]

MAX_LIST = 200  # keywords, topics, languages: more than this is a mistake, not a campaign
MAX_FREQUENCY_CAP = 1_000_000  # an INTEGER column on PostgreSQL; any real cap is far below


class StoreError(ValueError):
    """A request the store refuses (a change that does not fit); the message says why."""


class NotFound(StoreError):
    """No advertiser, campaign, creative or impression with that id."""


# -- time ------------------------------------------------------------------------------------------
def to_ms(when: dt.datetime) -> int:
    if when.tzinfo is None:
        raise ValueError("times must carry a time zone (UTC)")
    return int(when.timestamp() * 1000)


def from_ms(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


def budget_day(ms: int) -> str:
    """The budget day an instant falls in: the UTC date."""
    return from_ms(ms).date().isoformat()


# -- records ---------------------------------------------------------------------------------------
class Advertiser(msgspec.Struct, kw_only=True):
    id: int
    name: str
    created_at: dt.datetime


class Targeting(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Who and where: keywords and topics of the conversations, the languages of the people, and a
    brief (what is advertised, to whom) whose embedding finds conversations with no keyword in
    common. All empty: everywhere the brand-safety rules allow."""

    keywords: list[str] = []
    topics: list[str] = []
    languages: list[str] = []
    brief: str = ""


class CampaignSpec(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A campaign as an advertiser asks for it. Money in micros (1 unit = 1,000,000)."""

    name: str
    objective: Objective = "traffic"
    # per click for traffic and engagement, per 1,000 impressions for awareness
    bid_micros: int
    daily_budget_micros: int
    total_budget_micros: int
    start: UtcDatetime
    end: UtcDatetime | None = None
    targeting: Targeting = msgspec.field(default_factory=Targeting)
    blocked_categories: list[str] = []
    frequency_cap: int = 0  # impressions per user per day; 0: no cap
    pacing: Pacing = "even"
    landing_url: str = ""
    handle: str = ""

    def check(self) -> None:
        """ValueError naming the first field that does not make sense."""
        if not 1 <= len(self.name.strip()) <= 200:
            raise ValueError("name: give 1 to 200 characters")
        if self.bid_micros < 1 or self.daily_budget_micros < 1:
            raise ValueError("bid_micros and daily_budget_micros must be positive")
        if max(self.bid_micros, self.total_budget_micros) > MAX_MICROS:
            raise ValueError(f"money: at most {MAX_MICROS} micros")
        if self.total_budget_micros < self.daily_budget_micros:
            raise ValueError("total_budget_micros must be at least daily_budget_micros")
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        if not 0 <= self.frequency_cap <= MAX_FREQUENCY_CAP:
            raise ValueError(f"frequency_cap: 0 (no cap) to {MAX_FREQUENCY_CAP} impressions per user and day")
        t = self.targeting
        for name, values in (("keywords", t.keywords), ("topics", t.topics), ("languages", t.languages)):
            if len(values) > MAX_LIST:
                raise ValueError(f"targeting.{name}: at most {MAX_LIST}")
            if any(not v.strip() or len(v) > 100 for v in values):
                raise ValueError(f"targeting.{name}: each must have 1 to 100 characters")
        if any(len(lang) != 2 or not lang.isalpha() or not lang.islower() for lang in t.languages):
            raise ValueError("targeting.languages: ISO 639-1 codes such as 'en', lowercase")
        if len(t.brief) > 2000:
            raise ValueError("targeting.brief: at most 2000 characters")
        check_categories(self.blocked_categories)
        if not self.landing_url and not self.handle:
            raise ValueError("give a landing_url or a handle: every ad must say where it leads")
        if self.landing_url:
            parts = urlparse(self.landing_url)
            if parts.scheme not in ("http", "https") or not parts.netloc or " " in self.landing_url:
                raise ValueError("landing_url must be an http(s) URL")
            if len(self.landing_url) > 200:
                raise ValueError("landing_url: at most 200 characters (the ad has 280 in all)")
        if self.handle and (
            not self.handle.startswith("@") or not self.handle[1:].replace("_", "").isalnum()
        ):
            raise ValueError("handle must look like @name (letters, digits, _)")

    @property
    def bid_per_click(self) -> bool:
        return self.objective != "awareness"


class Campaign(CampaignSpec, kw_only=True):
    id: int
    advertiser_id: int
    status: CampaignStatus
    spent_micros: int
    created_at: dt.datetime
    updated_at: dt.datetime


class Creative(msgspec.Struct, kw_only=True):
    id: int
    campaign_id: int
    text: str
    status: CreativeStatus
    score: float | None
    details: dict
    created_at: dt.datetime


class ImpressionCharge(msgspec.Struct, frozen=True, kw_only=True):
    """What `charge` records: one ad shown, at `price_micros`."""

    request_id: str
    position: int = 0
    campaign_id: int
    creative_id: int
    user_id: str
    slot: Slot
    context_post_id: str | None = None
    at_ms: int
    price_micros: int
    bid_micros: int
    pctr: float
    features: str = ""


class ChargeResult(msgspec.Struct, frozen=True):
    """`impression_id` when charged (or when this request was charged before: `duplicate`);
    otherwise `refused` says which rule stopped it."""

    impression_id: int | None
    refused: str | None = None  # inactive | total_budget | daily_budget | frequency_cap
    duplicate: bool = False


class LedgerEntry(msgspec.Struct, kw_only=True):
    id: int
    event_key: str
    kind: Literal["impression", "click"]
    at_ms: int
    day: str
    campaign_id: int
    creative_id: int
    user_id: str
    slot: str
    context_post_id: str | None
    impression_id: int | None
    amount_micros: int
    bid_micros: int
    pctr: float | None
    features: str


class DaySpend(msgspec.Struct):
    spent_micros: int = 0
    impressions: int = 0
    clicks: int = 0


class Served(msgspec.Struct, kw_only=True):
    """An impression with its outcome, for training and evaluating click models."""

    impression_id: int
    at_ms: int
    campaign_id: int
    creative_id: int
    user_id: str
    pctr: float | None
    features: str
    clicked: bool


class _Refusal(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


# -- the store -------------------------------------------------------------------------------------
class Store:
    """One per process (thread-safe: each call takes a pooled connection)."""

    def __init__(self, url: str, *, sqlite_synchronous: str = "NORMAL") -> None:
        self.url = url
        self.engine, self._writer = create_engine(url, sqlite_synchronous=sqlite_synchronous)
        self.dialect = self.engine.dialect.name
        self.schema_version = migrate(self._writer)
        self._q = _Statements(self.dialect)

    @classmethod
    def open(cls, ws: Workspace, database: str = "", *, sqlite_synchronous: str = "NORMAL") -> Store:
        """The workspace's store: `database` (a SQLAlchemy URL) or else the SQLite file ads.db."""
        return cls(database or f"sqlite:///{ws.ads_db}", sqlite_synchronous=sqlite_synchronous)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        with self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        with self.engine.connect() as conn:
            yield conn

    # -- advertisers ---------------------------------------------------------------------------
    def add_advertiser(self, name: str) -> Advertiser:
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise StoreError("an advertiser's name has 1 to 200 characters")
        created = now_ms()
        try:
            with self._write() as conn:
                new_id = conn.execute(
                    sa.insert(advertisers).values(name=name, created_ms=created).returning(advertisers.c.id)
                ).scalar_one()
        except IntegrityError:
            raise StoreError(f"there is already an advertiser named {name!r}") from None
        return Advertiser(id=new_id, name=name, created_at=from_ms(created))

    def advertisers(self) -> list[Advertiser]:
        with self._read() as conn:
            rows = conn.execute(sa.select(advertisers).order_by(advertisers.c.id)).all()
        return [Advertiser(id=r.id, name=r.name, created_at=from_ms(r.created_ms)) for r in rows]

    def advertiser(self, advertiser_id: int) -> Advertiser:
        with self._read() as conn:
            r = conn.execute(sa.select(advertisers).where(advertisers.c.id == advertiser_id)).first()
        if r is None:
            raise NotFound(f"no advertiser {advertiser_id}")
        return Advertiser(id=r.id, name=r.name, created_at=from_ms(r.created_ms))

    # -- campaigns -----------------------------------------------------------------------------
    def add_campaign(
        self, advertiser_id: int, spec: CampaignSpec, *, status: CampaignStatus = "active"
    ) -> Campaign:
        spec.check()
        self.advertiser(advertiser_id)
        now = now_ms()
        with self._write() as conn:
            new_id = conn.execute(
                sa.insert(campaigns)
                .values(
                    advertiser_id=advertiser_id,
                    status=status,
                    spent_micros=0,
                    created_ms=now,
                    updated_ms=now,
                    **_campaign_columns(spec),
                )
                .returning(campaigns.c.id)
            ).scalar_one()
        return self.campaign(new_id)

    def campaign(self, campaign_id: int) -> Campaign:
        with self._read() as conn:
            row = conn.execute(sa.select(campaigns).where(campaigns.c.id == campaign_id)).first()
        if row is None:
            raise NotFound(f"no campaign {campaign_id}")
        return _campaign(row)

    def campaigns(
        self, *, status: CampaignStatus | None = None, advertiser_id: int | None = None
    ) -> list[Campaign]:
        query = sa.select(campaigns).order_by(campaigns.c.id)
        if status is not None:
            query = query.where(campaigns.c.status == status)
        if advertiser_id is not None:
            query = query.where(campaigns.c.advertiser_id == advertiser_id)
        with self._read() as conn:
            return [_campaign(r) for r in conn.execute(query).all()]

    def update_campaign(self, campaign_id: int, changes: dict) -> Campaign:
        """Change some fields of a campaign (any of CampaignSpec's, and `status`); the result must
        still be a valid campaign, and its total budget cannot drop below what it has spent."""
        current = self.campaign(campaign_id)
        changes = dict(changes)
        status = changes.pop("status", current.status)
        if status not in ("active", "paused", "archived"):
            raise StoreError("status must be active, paused or archived")
        fields = {f: getattr(current, f) for f in CampaignSpec.__struct_fields__}
        unknown = set(changes) - set(fields)
        if unknown:
            raise StoreError(f"cannot change {', '.join(sorted(unknown))}")
        try:
            spec = msgspec.convert({**msgspec.to_builtins(fields), **changes}, CampaignSpec)
            spec.check()
        except (msgspec.ValidationError, ValueError) as exc:
            raise StoreError(str(exc)) from None
        with self._write() as conn:
            done = conn.execute(
                sa.update(campaigns)
                .where(campaigns.c.id == campaign_id, campaigns.c.spent_micros <= spec.total_budget_micros)
                .values(status=status, updated_ms=now_ms(), **_campaign_columns(spec))
            ).rowcount
        if not done:
            raise StoreError("total_budget_micros cannot be below what the campaign has already spent")
        return self.campaign(campaign_id)

    # -- creatives -----------------------------------------------------------------------------
    def add_creative(
        self,
        campaign_id: int,
        text: str,
        *,
        status: CreativeStatus = "active",
        score: float | None = None,
        details: dict | None = None,
    ) -> Creative:
        self.campaign(campaign_id)
        created = now_ms()
        with self._write() as conn:
            new_id = conn.execute(
                sa.insert(creatives)
                .values(
                    campaign_id=campaign_id,
                    text=text,
                    status=status,
                    score=score,
                    details=msgspec.json.encode(details or {}).decode(),
                    created_ms=created,
                )
                .returning(creatives.c.id)
            ).scalar_one()
        return self.creative(new_id)

    def creative(self, creative_id: int) -> Creative:
        with self._read() as conn:
            row = conn.execute(sa.select(creatives).where(creatives.c.id == creative_id)).first()
        if row is None:
            raise NotFound(f"no creative {creative_id}")
        return _creative(row)

    def creatives(
        self, campaign_id: int | None = None, *, status: CreativeStatus | None = None
    ) -> list[Creative]:
        query = sa.select(creatives).order_by(creatives.c.id)
        if campaign_id is not None:
            query = query.where(creatives.c.campaign_id == campaign_id)
        if status is not None:
            query = query.where(creatives.c.status == status)
        with self._read() as conn:
            return [_creative(r) for r in conn.execute(query).all()]

    def set_creative_status(self, creative_id: int, status: CreativeStatus) -> Creative:
        if status not in ("active", "paused", "rejected"):
            raise StoreError("a creative's status is active, paused or rejected")
        with self._write() as conn:
            if not conn.execute(
                sa.update(creatives).where(creatives.c.id == creative_id).values(status=status)
            ).rowcount:
                raise NotFound(f"no creative {creative_id}")
        return self.creative(creative_id)

    # -- money -----------------------------------------------------------------------------------
    def charge(self, imp: ImpressionCharge) -> ChargeResult:
        """Record one impression and charge it, all or nothing (see the module docstring)."""
        if imp.price_micros < 0:
            raise ValueError("a price cannot be negative")
        key = f"imp:{imp.request_id}:{imp.position}"
        day = budget_day(imp.at_ms)
        try:
            with self._write() as conn:
                before = conn.execute(self._q.by_key, {"key": key}).scalar()
                if before is not None:  # a retried request: it was charged once, and that is that
                    return ChargeResult(before, duplicate=True)
                impression_id = self._charge(conn, imp, key, day)
        except _Refusal as refusal:
            return ChargeResult(None, refusal.reason)
        except IntegrityError:  # the same request charged by another process meanwhile (PostgreSQL)
            with self._read() as conn:
                found = conn.execute(self._q.by_key, {"key": key}).scalar()
            if found is None:
                raise
            return ChargeResult(found, duplicate=True)
        return ChargeResult(impression_id)

    def _charge(self, conn: sa.Connection, imp: ImpressionCharge, key: str, day: str) -> int:
        # The campaign's rows are locked from its first UPDATE to the commit, and every ad server
        # charging that campaign queues there: the statements that touch no shared row come first.
        q = self._q
        impression_id = conn.execute(
            q.add_impression,
            {
                "event_key": key,
                "kind": "impression",
                "at_ms": imp.at_ms,
                "day": day,
                "campaign_id": imp.campaign_id,
                "creative_id": imp.creative_id,
                "user_id": imp.user_id,
                "slot": imp.slot,
                "context_post_id": imp.context_post_id,
                "impression_id": None,
                "amount_micros": imp.price_micros,
                "bid_micros": imp.bid_micros,
                "pctr": imp.pctr,
                "features": imp.features,
            },
        ).scalar_one()
        day_key = {"cid": imp.campaign_id, "b_day": day}
        conn.execute(q.new_day, day_key)
        at = {"cid": imp.campaign_id, "at": imp.at_ms}
        row = conn.execute(q.spend_total, {**at, "price": imp.price_micros}).first()
        if row is None:
            raise _Refusal("total_budget" if conn.execute(q.active, at).first() else "inactive")
        daily_budget, cap = row
        if not conn.execute(
            q.spend_day, {**day_key, "price": imp.price_micros, "budget": daily_budget}
        ).rowcount:
            raise _Refusal("daily_budget")
        if cap:
            user_key = {**day_key, "user": imp.user_id}
            conn.execute(q.new_frequency, user_key)
            if not conn.execute(q.count_frequency, {**user_key, "cap": cap}).rowcount:
                raise _Refusal("frequency_cap")
        return impression_id

    def record_click(self, impression_id: int, at_ms: int | None = None) -> int | None:
        """Append a click on an impression (never charged: impressions are); returns its ledger id,
        or None when this impression's click is already recorded (a repeat is not a second click)."""
        try:
            with self._write() as conn:
                imp = conn.execute(
                    sa.select(ledger).where(ledger.c.id == impression_id, ledger.c.kind == "impression")
                ).first()
                if imp is None:
                    raise NotFound(f"no impression {impression_id}")
                at = imp.at_ms if at_ms is None else at_ms
                if at < imp.at_ms:
                    raise StoreError("a click cannot come before its impression")
                click_id = conn.execute(
                    sa.insert(ledger)
                    .values(
                        event_key=f"click:{impression_id}",
                        kind="click",
                        at_ms=at,
                        day=imp.day,
                        campaign_id=imp.campaign_id,
                        creative_id=imp.creative_id,
                        user_id=imp.user_id,
                        slot=imp.slot,
                        context_post_id=imp.context_post_id,
                        impression_id=impression_id,
                        amount_micros=0,
                        bid_micros=imp.bid_micros,
                        pctr=None,
                        features="",
                    )
                    .returning(ledger.c.id)
                ).scalar_one()
                d = campaign_days.c
                conn.execute(
                    sa.update(campaign_days)
                    .where(d.campaign_id == imp.campaign_id, d.day == imp.day)
                    .values(clicks=d.clicks + 1)
                )
        except IntegrityError:
            return None
        return click_id

    # -- reading spend -----------------------------------------------------------------------------
    def day_spend(self, day: str) -> dict[int, DaySpend]:
        """Each campaign's counters for a budget day (campaigns with nothing yet are left out)."""
        with self._read() as conn:
            rows = conn.execute(self._q.day_spend, {"b_day": day}).all()
        return {r.campaign_id: DaySpend(r.spent_micros, r.impressions, r.clicks) for r in rows}

    def user_frequency(self, user_id: str, day: str) -> dict[int, int]:
        """Impressions this user has seen today, per campaign."""
        with self._read() as conn:
            return dict(conn.execute(self._q.user_frequency, {"user": user_id, "b_day": day}).all())

    def impressions_for(self, request_id: str, positions: int) -> list[LedgerEntry]:
        """The impressions a request was charged for, by position (empty: not served yet)."""
        keys = [f"imp:{request_id}:{p}" for p in range(positions)]
        with self._read() as conn:
            rows = conn.execute(self._q.by_keys, {"keys": keys}).all()
        return [LedgerEntry(**r._asdict()) for r in rows]

    def ledger(
        self,
        *,
        since_ms: int | None = None,
        until_ms: int | None = None,
        kind: str | None = None,
        campaign_id: int | None = None,
    ) -> list[LedgerEntry]:
        query = sa.select(ledger).order_by(ledger.c.id)
        if since_ms is not None:
            query = query.where(ledger.c.at_ms >= since_ms)
        if until_ms is not None:
            query = query.where(ledger.c.at_ms < until_ms)
        if kind is not None:
            query = query.where(ledger.c.kind == kind)
        if campaign_id is not None:
            query = query.where(ledger.c.campaign_id == campaign_id)
        with self._read() as conn:
            return [LedgerEntry(**r._asdict()) for r in conn.execute(query).all()]

    def served(self, *, since_ms: int | None = None, until_ms: int | None = None) -> list[Served]:
        """Impressions (served in [since, until)) joined with whether they were clicked."""
        imp = ledger.alias("imp")
        click = ledger.alias("click")
        query = (
            sa.select(
                imp.c.id,
                imp.c.at_ms,
                imp.c.campaign_id,
                imp.c.creative_id,
                imp.c.user_id,
                imp.c.pctr,
                imp.c.features,
                click.c.id.is_not(None).label("clicked"),
            )
            .select_from(
                imp.outerjoin(click, sa.and_(click.c.impression_id == imp.c.id, click.c.kind == "click"))
            )
            .where(imp.c.kind == "impression")
            .order_by(imp.c.id)
        )
        if since_ms is not None:
            query = query.where(imp.c.at_ms >= since_ms)
        if until_ms is not None:
            query = query.where(imp.c.at_ms < until_ms)
        with self._read() as conn:
            return [
                Served(
                    impression_id=r[0],
                    at_ms=r[1],
                    campaign_id=r[2],
                    creative_id=r[3],
                    user_id=r[4],
                    pctr=r[5],
                    features=r[6],
                    clicked=bool(r[7]),
                )
                for r in conn.execute(query).all()
            ]

    def ledger_totals(
        self, *, since_ms: int | None = None, until_ms: int | None = None
    ) -> dict[int, DaySpend]:
        """Per campaign, what the ledger itself says was spent, shown and clicked (reports)."""
        l = ledger.c  # noqa: E741
        query = sa.select(
            l.campaign_id,
            sa.func.coalesce(sa.func.sum(l.amount_micros), 0),
            sa.func.sum(sa.case((l.kind == "impression", 1), else_=0)),
            sa.func.sum(sa.case((l.kind == "click", 1), else_=0)),
        ).group_by(l.campaign_id)
        if since_ms is not None:
            query = query.where(l.at_ms >= since_ms)
        if until_ms is not None:
            query = query.where(l.at_ms < until_ms)
        with self._read() as conn:
            return {r[0]: DaySpend(int(r[1]), int(r[2]), int(r[3])) for r in conn.execute(query).all()}

    def audit(self) -> list[str]:
        """Where the counters and the ledger disagree (empty: every micro accounted for): each
        campaign's lifetime spend against its ledger, each day's counters against that day's entries."""
        problems: list[str] = []
        l = ledger.c  # noqa: E741
        with self._read() as conn:
            by_day = {
                (r[0], r[1]): (int(r[2]), int(r[3]), int(r[4]))
                for r in conn.execute(
                    sa.select(
                        l.campaign_id,
                        l.day,
                        sa.func.sum(l.amount_micros),
                        sa.func.sum(sa.case((l.kind == "impression", 1), else_=0)),
                        sa.func.sum(sa.case((l.kind == "click", 1), else_=0)),
                    ).group_by(l.campaign_id, l.day)
                ).all()
            }
            counters = {
                (r.campaign_id, r.day): (r.spent_micros, r.impressions, r.clicks)
                for r in conn.execute(sa.select(campaign_days)).all()
            }
            lifetime = dict(conn.execute(sa.select(campaigns.c.id, campaigns.c.spent_micros)).all())
        for key in sorted(set(by_day) | set(counters)):
            if by_day.get(key, (0, 0, 0)) != counters.get(key, (0, 0, 0)):
                problems.append(
                    f"campaign {key[0]} on {key[1]}: ledger (spent, impressions, clicks) "
                    f"{by_day.get(key, (0, 0, 0))} but counters {counters.get(key, (0, 0, 0))}"
                )
        for campaign_id, spent in lifetime.items():
            in_ledger = sum(v[0] for k, v in by_day.items() if k[0] == campaign_id)
            if in_ledger != spent:
                problems.append(
                    f"campaign {campaign_id}: spent {spent} micros but the ledger holds {in_ledger}"
                )
        return problems

    # -- models ------------------------------------------------------------------------------------
    def save_model(self, name: str, data: bytes, meta: dict) -> int:
        """Store a new version of a trained model; returns its version number."""
        for attempt in range(5):
            try:
                with self._write() as conn:
                    latest = conn.execute(
                        sa.select(sa.func.max(models.c.version)).where(models.c.name == name)
                    ).scalar()
                    version = (latest or 0) + 1
                    conn.execute(
                        sa.insert(models).values(
                            name=name,
                            version=version,
                            created_ms=now_ms(),
                            data=data,
                            meta=msgspec.json.encode(meta).decode(),
                        )
                    )
                return version
            except IntegrityError:  # another process saved the same version number first
                if attempt == 4:
                    raise
                time.sleep(0.01)
        raise AssertionError("unreachable")

    def load_model(self, name: str) -> tuple[int, bytes, dict] | None:
        """(version, data, meta) of the newest version of a model, or None."""
        with self._read() as conn:
            row = conn.execute(
                sa.select(models.c.version, models.c.data, models.c.meta)
                .where(models.c.name == name)
                .order_by(models.c.version.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        return row.version, bytes(row.data), msgspec.json.decode(row.meta)

    def model_version(self, name: str) -> int:
        """The newest version of a model (0: none), cheaply, to see whether to reload."""
        with self._read() as conn:
            return (
                conn.execute(sa.select(sa.func.max(models.c.version)).where(models.c.name == name)).scalar()
                or 0
            )


class _Statements:
    """The statements every ad request runs, built once: building and keying a statement costs more
    than executing it on SQLite."""

    def __init__(self, dialect: str) -> None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        c, d, f, l = campaigns.c, campaign_days.c, frequency.c, ledger.c  # noqa: E741
        cid, at, price, day = (sa.bindparam(n) for n in ("cid", "at", "price", "b_day"))
        live = (
            c.id == cid,
            c.status == "active",
            c.start_ms <= at,
            sa.or_(c.end_ms.is_(None), c.end_ms > at),
        )
        self.active = sa.select(c.id).where(*live)
        self.spend_total = (
            sa.update(campaigns)
            .where(*live, c.spent_micros + price <= c.total_budget_micros)
            .values(spent_micros=c.spent_micros + price)
            .returning(c.daily_budget_micros, c.frequency_cap)
        )
        self.new_day = (
            insert(campaign_days)
            .values(campaign_id=cid, day=day, spent_micros=0, impressions=0, clicks=0)
            .on_conflict_do_nothing()
        )
        self.spend_day = (
            sa.update(campaign_days)
            .where(d.campaign_id == cid, d.day == day, d.spent_micros + price <= sa.bindparam("budget"))
            .values(spent_micros=d.spent_micros + price, impressions=d.impressions + 1)
        )
        user = sa.bindparam("user")
        self.new_frequency = (
            insert(frequency)
            .values(campaign_id=cid, user_id=user, day=day, impressions=0)
            .on_conflict_do_nothing()
        )
        self.count_frequency = (
            sa.update(frequency)
            .where(f.campaign_id == cid, f.user_id == user, f.day == day, f.impressions < sa.bindparam("cap"))
            .values(impressions=f.impressions + 1)
        )
        self.add_impression = sa.insert(ledger).returning(l.id)
        self.by_key = sa.select(l.id).where(l.event_key == sa.bindparam("key"))
        self.by_keys = (
            sa.select(ledger).where(l.event_key.in_(sa.bindparam("keys", expanding=True))).order_by(l.id)
        )
        self.user_frequency = sa.select(f.campaign_id, f.impressions).where(f.user_id == user, f.day == day)
        self.day_spend = sa.select(campaign_days).where(d.day == day)


def _campaign_columns(spec: CampaignSpec) -> dict:
    return {
        "name": spec.name.strip(),
        "objective": spec.objective,
        "bid_micros": spec.bid_micros,
        "daily_budget_micros": spec.daily_budget_micros,
        "total_budget_micros": spec.total_budget_micros,
        "start_ms": to_ms(spec.start),
        "end_ms": to_ms(spec.end) if spec.end is not None else None,
        "targeting": msgspec.json.encode(spec.targeting).decode(),
        "blocked_categories": msgspec.json.encode(check_categories(spec.blocked_categories)).decode(),
        "frequency_cap": spec.frequency_cap,
        "pacing": spec.pacing,
        "landing_url": spec.landing_url,
        "handle": spec.handle,
    }


def _campaign(r: sa.Row) -> Campaign:
    return Campaign(
        id=r.id,
        advertiser_id=r.advertiser_id,
        name=r.name,
        objective=r.objective,
        status=r.status,
        bid_micros=r.bid_micros,
        daily_budget_micros=r.daily_budget_micros,
        total_budget_micros=r.total_budget_micros,
        spent_micros=r.spent_micros,
        start=from_ms(r.start_ms),
        end=from_ms(r.end_ms) if r.end_ms is not None else None,
        targeting=msgspec.json.decode(r.targeting, type=Targeting),
        blocked_categories=msgspec.json.decode(r.blocked_categories, type=list[str]),
        frequency_cap=r.frequency_cap,
        pacing=r.pacing,
        landing_url=r.landing_url,
        handle=r.handle,
        created_at=from_ms(r.created_ms),
        updated_at=from_ms(r.updated_ms),
    )


def _creative(r: sa.Row) -> Creative:
    return Creative(
        id=r.id,
        campaign_id=r.campaign_id,
        text=r.text,
        status=r.status,
        score=r.score,
        details=msgspec.json.decode(r.details),
        created_at=from_ms(r.created_ms),
    )
