"""Who may read the firehose (`consumers.db`): consumers with hashed keys and entitlements, admin
keys, and an audit log of every connect, disconnect and change.

Keys are made and checked by `roost.apikeys` (shown once, stored as a SHA-256, compared in constant
time): consumer keys read `rfh_<key id>_<secret>`, admin keys `rfa_...`. Revocation is permanent:
a revoked consumer keeps its row (for the audit log) and its key never works again.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from pathlib import Path
from typing import Any

import msgspec

from roost.apikeys import DUMMY_HASH, hashes_match, new_key, parse_key
from roost.firehose.filters import Entitlements

CONSUMER_PREFIX = "rfh"
ADMIN_PREFIX = "rfa"
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS consumers (
    name            TEXT PRIMARY KEY,
    key_id          TEXT NOT NULL UNIQUE,
    key_hash        BLOB NOT NULL,
    entitlements    TEXT NOT NULL,     -- Entitlements as JSON
    rate_limit      INTEGER NOT NULL,  -- connects per minute; 0: no limit
    max_connections INTEGER NOT NULL,  -- open streams at once; 0: no limit
    created_at      TEXT NOT NULL,
    revoked_at      TEXT
);
CREATE TABLE IF NOT EXISTS admin_keys (
    key_id     TEXT PRIMARY KEY,
    key_hash   BLOB NOT NULL,
    label      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS audit (
    id       INTEGER PRIMARY KEY,
    at       TEXT NOT NULL,
    consumer TEXT NOT NULL,   -- a consumer's name, or "admin:<key id>" for admin-key changes
    action   TEXT NOT NULL,   -- add, revoke, entitle, connect, disconnect, refuse, admin-key-...
    detail   TEXT NOT NULL    -- JSON object
);
CREATE INDEX IF NOT EXISTS audit_by_consumer ON audit (consumer, id);
"""


class ConsumerError(ValueError):
    """A consumer or admin key cannot be added or changed as asked."""


class ConsumerExistsError(ConsumerError):
    """A consumer by that name exists (names are never reused, even after revocation)."""


class UnknownConsumerError(ConsumerError):
    """No consumer (or admin key) by that name (or id)."""


class Consumer(msgspec.Struct):
    """A consumer as listed (never with its key)."""

    name: str
    key_id: str
    entitlements: Entitlements
    rate_limit: int
    max_connections: int
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class AdminKey(msgspec.Struct):
    key_id: str
    label: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None


class AuditEntry(msgspec.Struct):
    at: dt.datetime
    consumer: str
    action: str
    detail: dict[str, Any]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


class Registry:
    """consumers.db. One instance per thread; several processes may share the file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._encoder = msgspec.json.Encoder()

    def close(self) -> None:
        self._db.close()

    def data_version(self) -> int:
        """Changes whenever another connection (say, the CLI) commits to the file."""
        return self._db.execute("PRAGMA data_version").fetchone()[0]

    # -- consumers --------------------------------------------------------------------------
    def add(
        self,
        name: str,
        entitlements: Entitlements | None = None,
        *,
        rate_limit: int = 60,
        max_connections: int = 2,
        by: str = "cli",
    ) -> tuple[Consumer, str]:
        """Create a consumer; returns it and its key, which is not stored and cannot be shown again."""
        if not _NAME.match(name):
            raise ConsumerError(
                f"consumer name {name!r}: use 1-64 lowercase letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        if rate_limit < 0 or max_connections < 0:
            raise ConsumerError("rate limit and connection cap must be >= 0 (0: no limit)")
        entitlements = entitlements or Entitlements()
        key, key_id, key_hash = new_key(CONSUMER_PREFIX)
        try:
            with self._transaction():
                self._db.execute(
                    "INSERT INTO consumers VALUES (?, ?, ?, ?, ?, ?, ?, NULL)",
                    (
                        name,
                        key_id,
                        key_hash,
                        self._encoder.encode(entitlements).decode(),
                        rate_limit,
                        max_connections,
                        _now(),
                    ),
                )
                self._audit(
                    name,
                    "add",
                    {
                        "by": by,
                        "entitlements": entitlements,
                        "rate_limit": rate_limit,
                        "max_connections": max_connections,
                        "key_id": key_id,
                    },
                )
        except sqlite3.IntegrityError:
            raise ConsumerExistsError(f"consumer {name!r} exists already (names are never reused)") from None
        return self.get(name), key

    def get(self, name: str) -> Consumer:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM consumers WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise UnknownConsumerError(f"no consumer named {name!r}")
        return _consumer(row)

    def list(self) -> list[Consumer]:
        return [_consumer(r) for r in self._db.execute(f"SELECT {_COLUMNS} FROM consumers ORDER BY name")]

    def revoke(self, name: str, *, by: str = "cli") -> Consumer:
        """Revoke a consumer's key for good. Revoking twice is harmless."""
        consumer = self.get(name)
        if not consumer.revoked:
            with self._transaction():
                self._db.execute("UPDATE consumers SET revoked_at = ? WHERE name = ?", (_now(), name))
                self._audit(name, "revoke", {"by": by})
        return self.get(name)

    def entitle(
        self,
        name: str,
        entitlements: Entitlements,
        *,
        rate_limit: int | None = None,
        max_connections: int | None = None,
        by: str = "cli",
    ) -> Consumer:
        """Replace a consumer's entitlements (and, if given, its rate limit and connection cap)."""
        old = self.get(name)
        if old.revoked:
            raise ConsumerError(f"consumer {name!r} is revoked; add a new consumer instead")
        rate_limit = old.rate_limit if rate_limit is None else rate_limit
        max_connections = old.max_connections if max_connections is None else max_connections
        if rate_limit < 0 or max_connections < 0:
            raise ConsumerError("rate limit and connection cap must be >= 0 (0: no limit)")
        with self._transaction():
            self._db.execute(
                "UPDATE consumers SET entitlements = ?, rate_limit = ?, max_connections = ? WHERE name = ?",
                (self._encoder.encode(entitlements).decode(), rate_limit, max_connections, name),
            )
            self._audit(
                name,
                "entitle",
                {
                    "by": by,
                    "before": {
                        "entitlements": old.entitlements,
                        "rate_limit": old.rate_limit,
                        "max_connections": old.max_connections,
                    },
                    "after": {
                        "entitlements": entitlements,
                        "rate_limit": rate_limit,
                        "max_connections": max_connections,
                    },
                },
            )
        return self.get(name)

    def authenticate(self, key: str) -> Consumer | None:
        """The consumer whose key this is (revoked or not), or None for any other string."""
        parts = parse_key(key, CONSUMER_PREFIX)
        row = None
        if parts is not None:
            row = self._db.execute(
                f"SELECT {_COLUMNS}, key_hash FROM consumers WHERE key_id = ?", (parts[0],)
            ).fetchone()
        if not hashes_match(row[-1] if row else None, parts[1] if parts else DUMMY_HASH) or row is None:
            return None
        return _consumer(row[:-1])

    # -- admin keys -------------------------------------------------------------------------
    def add_admin_key(self, label: str = "") -> tuple[AdminKey, str]:
        """Make an admin key; returns it and the key itself, shown this once."""
        key, key_id, key_hash = new_key(ADMIN_PREFIX)
        with self._transaction():
            self._db.execute(
                "INSERT INTO admin_keys VALUES (?, ?, ?, ?, NULL)", (key_id, key_hash, label, _now())
            )
            self._audit(f"admin:{key_id}", "admin-key-add", {"label": label})
        return self._admin_key(key_id), key

    def admin_keys(self) -> list[AdminKey]:
        rows = self._db.execute(
            "SELECT key_id, label, created_at, revoked_at FROM admin_keys ORDER BY created_at"
        )
        return [_admin(r) for r in rows]

    def revoke_admin_key(self, key_id: str) -> AdminKey:
        key = self._admin_key(key_id)
        if key.revoked_at is None:
            with self._transaction():
                self._db.execute("UPDATE admin_keys SET revoked_at = ? WHERE key_id = ?", (_now(), key_id))
                self._audit(f"admin:{key_id}", "admin-key-revoke", {})
        return self._admin_key(key_id)

    def check_admin(self, key: str) -> AdminKey | None:
        """The admin key this is, if it is one and not revoked."""
        parts = parse_key(key, ADMIN_PREFIX)
        row = None
        if parts is not None:
            row = self._db.execute(
                "SELECT key_id, label, created_at, revoked_at, key_hash FROM admin_keys WHERE key_id = ?",
                (parts[0],),
            ).fetchone()
        if not hashes_match(row[-1] if row else None, parts[1] if parts else DUMMY_HASH) or row is None:
            return None
        return None if row[3] is not None else _admin(row[:-1])

    def _admin_key(self, key_id: str) -> AdminKey:
        row = self._db.execute(
            "SELECT key_id, label, created_at, revoked_at FROM admin_keys WHERE key_id = ?", (key_id,)
        ).fetchone()
        if row is None:
            raise UnknownConsumerError(f"no admin key with id {key_id!r}")
        return _admin(row)

    # -- audit ------------------------------------------------------------------------------
    def audit(self, consumer: str, action: str, detail: dict[str, Any]) -> None:
        """Record an event about a consumer (the server's connects and disconnects)."""
        self._audit(consumer, action, detail)

    def _audit(self, consumer: str, action: str, detail: dict[str, Any]) -> None:
        self._db.execute(
            "INSERT INTO audit (at, consumer, action, detail) VALUES (?, ?, ?, ?)",
            (_now(), consumer, action, self._encoder.encode(detail).decode()),
        )

    def audit_log(self, *, consumer: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """The newest `limit` entries, newest first, for one consumer or all."""
        query = "SELECT at, consumer, action, detail FROM audit"
        args: tuple[Any, ...] = ()
        if consumer is not None:
            query += " WHERE consumer = ?"
            args = (consumer,)
        rows = self._db.execute(query + " ORDER BY id DESC LIMIT ?", (*args, limit))
        return [
            AuditEntry(at=dt.datetime.fromisoformat(at), consumer=c, action=a, detail=msgspec.json.decode(d))
            for at, c, a, d in rows
        ]

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *rest: object) -> None:
        self._db.execute("ROLLBACK" if kind else "COMMIT")


_COLUMNS = "name, key_id, entitlements, rate_limit, max_connections, created_at, revoked_at"
_entitlements_decoder = msgspec.json.Decoder(Entitlements)


def _consumer(row: tuple[Any, ...]) -> Consumer:
    name, key_id, entitlements, rate_limit, max_connections, created_at, revoked_at = row
    return Consumer(
        name=name,
        key_id=key_id,
        entitlements=_entitlements_decoder.decode(entitlements),
        rate_limit=rate_limit,
        max_connections=max_connections,
        created_at=dt.datetime.fromisoformat(created_at),
        revoked_at=dt.datetime.fromisoformat(revoked_at) if revoked_at else None,
    )


def _admin(row: tuple[Any, ...]) -> AdminKey:
    key_id, label, created_at, revoked_at = row
    return AdminKey(
        key_id=key_id,
        label=label,
        created_at=dt.datetime.fromisoformat(created_at),
        revoked_at=dt.datetime.fromisoformat(revoked_at) if revoked_at else None,
    )
