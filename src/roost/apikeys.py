"""API keys: how roost makes, stores and checks every secret key, and the store of the HTTP API's keys.

A key reads `<prefix>_<key id>_<secret>` and is shown once, when it is made. Only the SHA-256 of the
secret is stored (the secret is 256 random bits, so a slow password hash would add nothing). The key
id finds the row; the secret's hash is compared with `hmac.compare_digest`, and an unknown key id is
compared against a dummy hash, so a check takes the same time whatever part of a guess is right.

`ApiKeyStore` (`keys.db` in the workspace) holds the keys of the HTTP API: `/v1` (serving),
`/search` and `/ads` all accept the same Bearer keys. The firehose has its own consumer keys with
entitlements (roost.firehose.consumers), made and checked with the same functions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import sqlite3
from pathlib import Path

import msgspec

API_PREFIX = "rk"
_KEY = re.compile(r"^([a-z]{2,8})_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
# Compared against when a key id is unknown, so an unknown id costs what a wrong secret does.
DUMMY_HASH = hashlib.sha256(b"roost").digest()


def new_key(prefix: str) -> tuple[str, str, bytes]:
    """A fresh key: (the key to show once, its key id, the hash to store)."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return f"{prefix}_{key_id}_{secret}", key_id, hashlib.sha256(secret.encode()).digest()


def parse_key(key: str, prefix: str) -> tuple[str, bytes] | None:
    """(key id, hash of the secret) of a well-formed key with this prefix, else None."""
    m = _KEY.match(key)
    if not m or m[1] != prefix:
        return None
    return m[2], hashlib.sha256(m[3].encode()).digest()


def hashes_match(stored: bytes | None, presented: bytes) -> bool:
    """Constant-time comparison; `stored=None` (unknown key id) still costs one comparison."""
    return hmac.compare_digest(stored if stored is not None else DUMMY_HASH, presented) and stored is not None


class ApiKey(msgspec.Struct):
    """A key as listed (never with its secret)."""

    key_id: str
    label: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


class ApiKeyError(ValueError):
    """A key cannot be found or changed as asked."""


_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id     TEXT PRIMARY KEY,
    key_hash   BLOB NOT NULL,
    label      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
"""


class ApiKeyStore:
    """keys.db: the HTTP API's Bearer keys. One instance per thread; processes may share the file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add(self, label: str = "") -> tuple[ApiKey, str]:
        """Make a key; returns it as listed and the key itself, which is shown only this once."""
        key, key_id, key_hash = new_key(API_PREFIX)
        now = dt.datetime.now(dt.UTC)
        self._db.execute(
            "INSERT INTO api_keys VALUES (?, ?, ?, ?, NULL)", (key_id, key_hash, label, now.isoformat())
        )
        return ApiKey(key_id, label, now), key

    def list(self) -> list[ApiKey]:
        rows = self._db.execute(
            "SELECT key_id, label, created_at, revoked_at FROM api_keys ORDER BY created_at"
        ).fetchall()
        return [_api_key(row) for row in rows]

    def revoke(self, key_id: str) -> ApiKey:
        now = dt.datetime.now(dt.UTC).isoformat()
        cursor = self._db.execute(
            "UPDATE api_keys SET revoked_at = coalesce(revoked_at, ?) WHERE key_id = ?", (now, key_id)
        )
        if cursor.rowcount == 0:
            raise ApiKeyError(f"no API key with id {key_id!r}")
        row = self._db.execute(
            "SELECT key_id, label, created_at, revoked_at FROM api_keys WHERE key_id = ?", (key_id,)
        ).fetchone()
        return _api_key(row)

    def authenticate(self, key: str) -> ApiKey | None:
        """The key's record if `key` is a valid, unrevoked API key, else None (in constant time)."""
        parts = parse_key(key, API_PREFIX)
        row = None
        if parts is not None:
            row = self._db.execute(
                "SELECT key_id, label, created_at, revoked_at, key_hash FROM api_keys WHERE key_id = ?",
                (parts[0],),
            ).fetchone()
        stored = row[4] if row is not None else None
        if not hashes_match(stored, parts[1] if parts else DUMMY_HASH) or row is None or row[3] is not None:
            return None
        return _api_key(row[:4])


def _api_key(row: tuple) -> ApiKey:
    key_id, label, created_at, revoked_at = row
    return ApiKey(
        key_id=key_id,
        label=label,
        created_at=dt.datetime.fromisoformat(created_at),
        revoked_at=dt.datetime.fromisoformat(revoked_at) if revoked_at else None,
    )
