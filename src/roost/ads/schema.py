"""The ads database: its tables, how a connection to SQLite or PostgreSQL is set up, and the schema
version with its ordered migrations.

Money columns are BIGINT micros. Times are BIGINT milliseconds since the epoch (UTC) and budget days
'YYYY-MM-DD' (UTC), the same on both databases. The ledger is append-only, and the database enforces
it: a trigger refuses every UPDATE and DELETE of a ledger row, whoever sends it.

SQLite: WAL, and every write transaction starts with BEGIN IMMEDIATE, so writers queue on the lock
(busy timeout) instead of failing when a read transaction tries to become a write one. PostgreSQL:
READ COMMITTED, which is enough because every check that guards money is part of the UPDATE that
spends it (a concurrent transaction's UPDATE waits for the row lock and re-checks its WHERE clause
on the new row version).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import make_url

SCHEMA_VERSION = 1
# MIGRATIONS[i] takes a database from schema version i + 1 to i + 2, in one transaction. A fresh
# database gets the current tables at once and is stamped SCHEMA_VERSION.
MIGRATIONS: list[Callable[[sa.Connection], None]] = []
_PG_MIGRATION_LOCK = 0x526F6F7374  # pg_advisory_xact_lock key: one process migrates at a time

# Autoincrementing ids: BIGINT on PostgreSQL, INTEGER (the rowid) on SQLite.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Micros = sa.BigInteger
Ms = sa.BigInteger

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_ms", Ms, nullable=False),
)

advertisers = sa.Table(
    "advertisers",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("created_ms", Ms, nullable=False),
)

campaigns = sa.Table(
    "campaigns",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("advertiser_id", Id, sa.ForeignKey("advertisers.id"), nullable=False, index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("objective", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("bid_micros", Micros, nullable=False),
    sa.Column("daily_budget_micros", Micros, nullable=False),
    sa.Column("total_budget_micros", Micros, nullable=False),
    sa.Column("spent_micros", Micros, nullable=False, default=0),
    sa.Column("start_ms", Ms, nullable=False),
    sa.Column("end_ms", Ms, nullable=True),
    sa.Column("targeting", sa.Text, nullable=False),  # JSON: keywords, topics, languages, brief
    sa.Column("blocked_categories", sa.Text, nullable=False),  # JSON list of category slugs
    sa.Column("frequency_cap", sa.Integer, nullable=False),
    sa.Column("pacing", sa.String(20), nullable=False),
    sa.Column("landing_url", sa.String(500), nullable=False),
    sa.Column("handle", sa.String(100), nullable=False),
    sa.Column("created_ms", Ms, nullable=False),
    sa.Column("updated_ms", Ms, nullable=False),
    sa.CheckConstraint(
        "spent_micros >= 0 AND spent_micros <= total_budget_micros", name="spend_within_total"
    ),
    sa.CheckConstraint("bid_micros > 0 AND daily_budget_micros > 0", name="positive_money"),
)

creatives = sa.Table(
    "creatives",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("campaign_id", Id, sa.ForeignKey("campaigns.id"), nullable=False, index=True),
    sa.Column("text", sa.String(1000), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("score", sa.Float, nullable=True),  # the model's mean token log-prob (not money)
    sa.Column("details", sa.Text, nullable=False),  # JSON: how it was made and checked
    sa.Column("created_ms", Ms, nullable=False),
)

# Per campaign and budget day: what the ledger holds, kept as counters so that the check
# "spent + price <= daily budget" is one row's UPDATE.
campaign_days = sa.Table(
    "campaign_days",
    metadata,
    sa.Column("campaign_id", Id, sa.ForeignKey("campaigns.id"), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("spent_micros", Micros, nullable=False),
    sa.Column("impressions", sa.BigInteger, nullable=False),
    sa.Column("clicks", sa.BigInteger, nullable=False),
    sa.CheckConstraint("spent_micros >= 0", name="day_spend_not_negative"),
)

# Impressions per campaign, user and day, for frequency caps.
frequency = sa.Table(
    "frequency",
    metadata,
    sa.Column("campaign_id", Id, sa.ForeignKey("campaigns.id"), primary_key=True),
    sa.Column("user_id", sa.String(100), primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("impressions", sa.Integer, nullable=False),
)

ledger = sa.Table(
    "ledger",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    # "imp:<request>:<position>" or "click:<impression id>": a retried request or a repeated click
    # finds its entry instead of adding (and charging) a second one.
    sa.Column("event_key", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(10), nullable=False),  # impression | click
    sa.Column("at_ms", Ms, nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("campaign_id", Id, sa.ForeignKey("campaigns.id"), nullable=False),
    sa.Column("creative_id", Id, sa.ForeignKey("creatives.id"), nullable=False),
    sa.Column("user_id", sa.String(100), nullable=False),
    sa.Column("slot", sa.String(20), nullable=False),
    sa.Column("context_post_id", sa.String(100), nullable=True),
    sa.Column("impression_id", Id, nullable=True),  # a click's impression
    sa.Column("amount_micros", Micros, nullable=False),  # charged (clicks: 0, impressions are billed)
    sa.Column("bid_micros", Micros, nullable=False),
    sa.Column("pctr", sa.Float, nullable=True),  # the click rate predicted when it was served
    sa.Column("features", sa.Text, nullable=False),  # the pCTR model's features as served
    sa.CheckConstraint("amount_micros >= 0", name="amount_not_negative"),
    sa.Index("ledger_by_time", "at_ms"),
    sa.Index("ledger_by_campaign_day", "campaign_id", "day"),
    sa.Index("ledger_by_impression", "impression_id"),
)

# Trained models (pCTR, topics, brand safety, engagement), versioned, next to the data they learn
# from, so every ad server reading the database serves the same ones.
models = sa.Table(
    "models",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("created_ms", Ms, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
    sa.Column("meta", sa.Text, nullable=False),
)

_APPEND_ONLY = "the ledger is append-only"
for _operation in ("UPDATE", "DELETE"):
    sa.event.listen(
        ledger,
        "after_create",
        sa.DDL(
            f"CREATE TRIGGER ledger_no_{_operation.lower()} BEFORE {_operation} ON ledger "
            f"BEGIN SELECT RAISE(ABORT, '{_APPEND_ONLY}'); END"
        ).execute_if(dialect="sqlite"),
    )
sa.event.listen(
    ledger,
    "after_create",
    sa.DDL(
        "CREATE OR REPLACE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN RAISE EXCEPTION '{_APPEND_ONLY}'; END $$"
    ).execute_if(dialect="postgresql"),
)
sa.event.listen(
    ledger,
    "after_create",
    sa.DDL(
        "CREATE TRIGGER ledger_no_change BEFORE UPDATE OR DELETE ON ledger "
        "FOR EACH ROW EXECUTE FUNCTION ledger_append_only()"
    ).execute_if(dialect="postgresql"),
)


class SchemaError(RuntimeError):
    """The database cannot be used by this version of roost."""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def create_engine(url: str, *, sqlite_synchronous: str = "NORMAL") -> tuple[sa.Engine, sa.Engine]:
    """(engine for reads, engine for writes) over one connection pool. A plain `postgresql://` URL
    uses psycopg 3. SQLite must be a file: ad servers in several processes share it."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = sa.create_engine(parsed, pool_pre_ping=True, pool_size=8, max_overflow=24)
        return engine, engine
    if parsed.get_backend_name() != "sqlite":
        raise SchemaError(f"the ads store runs on SQLite or PostgreSQL, not {parsed.get_backend_name()}")
    if parsed.database in (None, "", ":memory:"):
        raise SchemaError("the ads store needs a SQLite file (an in-memory database is one per connection)")
    if sqlite_synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise SchemaError(
            f"sqlite_synchronous must be OFF, NORMAL, FULL or EXTRA, not {sqlite_synchronous!r}"
        )
    engine = sa.create_engine(
        parsed,
        connect_args={"timeout": 60, "check_same_thread": False},
        pool_size=4,
        max_overflow=60,
    )

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # roost emits BEGIN itself (below)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={sqlite_synchronous.upper()}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql(
            "BEGIN IMMEDIATE" if conn.get_execution_options().get("roost_write") else "BEGIN"
        )

    return engine, engine.execution_options(roost_write=True)


def migrate(writer: sa.Engine) -> int:
    """Create or upgrade the schema; returns its version. Safe when several processes open a new
    database at once (SQLite: the write lock; PostgreSQL: an advisory lock)."""
    with writer.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        if not sa.inspect(conn).has_table("schema_version"):
            metadata.create_all(conn)
            conn.execute(sa.insert(schema_version).values(version=SCHEMA_VERSION, applied_ms=now_ms()))
            return SCHEMA_VERSION
        version = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar_one()
        if version > SCHEMA_VERSION:
            raise SchemaError(
                f"the ads database has schema version {version}, newer than this roost's "
                f"{SCHEMA_VERSION}: upgrade roost before opening it"
            )
        for step in range(version, SCHEMA_VERSION):
            MIGRATIONS[step - 1](conn)
            conn.execute(sa.insert(schema_version).values(version=step + 1, applied_ms=now_ms()))
        return SCHEMA_VERSION
