"""The index's record of what it holds (`index/index.db`, SQLite): every indexed post with its key,
partition and live engagement, tombstones, partitions, popular queries, and the firehose cursor.

This file is the index's source of truth. A batch of events and the cursor it reaches are one
transaction here, so a crash can never separate them; the lexical and vector indexes are derived
from it, each knowing how far it got, and catch up from it when they open (see roost.search.index).
Keys are dense integers in arrival order: the lexical and vector indexes and the in-memory columns
all address a post by its key.
"""

from __future__ import annotations

import datetime as dt
import gc
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from roost.posts import Event, Metrics, Post, decode_post, encode
from roost.search.text import has_links, normalize_tag

_SCHEMA = """
CREATE TABLE IF NOT EXISTS posts (
    key      INTEGER PRIMARY KEY,  -- dense, in arrival order
    id       TEXT NOT NULL,          -- an edited post keeps its id on a new key; the old row is deleted
    seq      INTEGER,              -- the log seq that brought it (NULL for imports)
    part     INTEGER NOT NULL,
    created  INTEGER NOT NULL,     -- ms since the epoch, UTC
    author   TEXT NOT NULL,
    lang     TEXT,
    links    INTEGER NOT NULL,
    likes    INTEGER NOT NULL,     -- the platform's counts, as last received ...
    reposts  INTEGER NOT NULL,
    replies  INTEGER NOT NULL,
    quotes   INTEGER NOT NULL,
    views    INTEGER NOT NULL,
    seen_reposts INTEGER NOT NULL DEFAULT 0,  -- ... and what the stream itself has shown since
    seen_replies INTEGER NOT NULL DEFAULT 0,
    seen_quotes  INTEGER NOT NULL DEFAULT 0,
    deleted  INTEGER NOT NULL DEFAULT 0,
    data     BLOB NOT NULL         -- the Post as received (roost.posts.encode)
);
CREATE INDEX IF NOT EXISTS posts_by_id ON posts (id, key);
CREATE TABLE IF NOT EXISTS tags (
    tag     TEXT NOT NULL,          -- normalize_tag: no '#', case-folded
    key     INTEGER NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (tag, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_by_time ON tags (created);
CREATE TABLE IF NOT EXISTS deletes (id TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS partitions (
    part        INTEGER PRIMARY KEY,
    first_key   INTEGER NOT NULL,
    posts       INTEGER NOT NULL,
    first_created INTEGER NOT NULL,
    min_created INTEGER NOT NULL,
    max_created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cursors (name TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS queries (query TEXT PRIMARY KEY, count INTEGER NOT NULL, last INTEGER NOT NULL);
"""

_COLUMNS = (
    "key, part, created, author, lang, links, likes, reposts, replies, quotes, views, "
    "seen_reposts, seen_replies, seen_quotes, deleted"
)


def created_ms(post: Post) -> int:
    return int(post.created_at.timestamp() * 1000)


def engagement(likes: int, reposts: int, replies: int, quotes: int) -> float:
    """One number for how much a post was engaged with: shares and replies weigh more than likes,
    as they cost the reader more than a tap."""
    return likes + 2.0 * (reposts + quotes) + replies


@dataclass
class Row:
    """What the in-memory columns and the lexical index need of one post."""

    key: int
    part: int
    created: int
    author: str
    lang: str | None
    links: bool
    engagement: float
    deleted: bool


@dataclass
class Applied:
    """What one `apply` changed, for the derived indexes and the in-memory columns to follow."""

    added: list[tuple[Row, Post]] = field(default_factory=list)
    deleted: list[tuple[int, int]] = field(default_factory=list)  # (key, part)
    engagement: dict[int, float] = field(default_factory=dict)  # key -> its new engagement
    partitions: set[int] = field(default_factory=set)  # partitions that got posts


@dataclass
class Partition:
    part: int
    first_key: int
    posts: int
    first_created: int
    min_created: int
    max_created: int


class _Known:
    """A post already in the store, as `apply` needs it while it works through a batch."""

    __slots__ = ("counts", "data", "deleted", "key", "part", "seen")

    def __init__(self, key: int, part: int, data: bytes, counts: tuple, seen: list[int], deleted: bool):
        self.key, self.part, self.data = key, part, data
        self.counts, self.seen, self.deleted = counts, seen, deleted


class IndexStore:
    """index.db. The writer (one per index) applies batches; readers on any thread read through
    connections of their own (WAL: they never block the writer)."""

    def __init__(self, path: Path | str, *, readonly: bool = False) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = self._connect()
            # synchronous=NORMAL in WAL keeps every commit across a process crash (kill -9); data and
            # cursor share each transaction, so a power cut can only lose them together.
            db.execute("PRAGMA journal_mode=WAL")
            # The id index takes posts in random order: a page cache that holds it (64 MiB, not
            # SQLite's 2 MiB) keeps each insert and lookup from reading pages back from the OS.
            db.execute("PRAGMA cache_size=-65536")
            db.executescript(_SCHEMA)
            self._writer = db
        self._local = threading.local()

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=60, isolation_level=None)
        else:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA synchronous=NORMAL")
        return db

    @property
    def db(self) -> sqlite3.Connection:
        """This thread's reading connection."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        return db

    def close(self) -> None:
        if not self.readonly:
            self._writer.close()

    # -- reading ------------------------------------------------------------------------------
    def cursor(self, name: str) -> int | None:
        row = self.db.execute("SELECT seq FROM cursors WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    def partitions(self) -> list[Partition]:
        rows = self.db.execute("SELECT * FROM partitions ORDER BY part").fetchall()
        return [Partition(*row) for row in rows]

    def rows(self, *, part: int | None = None, after_key: int = -1) -> Iterator[Row]:
        """Every post's row in key order (of one partition), deleted ones included."""
        where, args = "key > ?", [after_key]
        if part is not None:
            where += " AND part = ?"
            args.append(part)
        last = after_key
        while True:
            batch = self.db.execute(
                f"SELECT {_COLUMNS} FROM posts WHERE {where} ORDER BY key LIMIT 50000",
                [last, *args[1:]],
            ).fetchall()
            if not batch:
                return
            for r in batch:
                yield Row(r[0], r[1], r[2], r[3], r[4], bool(r[5]), _engagement_of(r), bool(r[14]))
            last = batch[-1][0]

    def texts(self, *, part: int, after_key: int = -1, alive: bool = True) -> Iterator[tuple[int, bytes]]:
        """(key, Post JSON) of a partition's posts after `after_key`, in key order."""
        last = after_key
        while True:
            batch = self.db.execute(
                "SELECT key, data FROM posts WHERE part = ? AND key > ? "
                + ("AND deleted = 0 " if alive else "")
                + "ORDER BY key LIMIT 20000",
                (part, last),
            ).fetchall()
            if not batch:
                return
            yield from batch
            last = batch[-1][0]

    def document_rows(self, *, part: int, after_key: int = -1, batch: int = 20_000) -> Iterator[list[tuple]]:
        """Batches of (key, created, author, lang, links, data) of a partition's live posts after
        `after_key`, in key order: what its lexical documents are built from."""
        last = after_key
        while True:
            rows = self.db.execute(
                "SELECT key, created, author, lang, links, data FROM posts "
                "WHERE part = ? AND key > ? AND deleted = 0 ORDER BY key LIMIT ?",
                (part, last, batch),
            ).fetchall()
            if not rows:
                return
            yield rows
            last = rows[-1][0]

    def posts(self, keys: Iterable[int]) -> dict[int, Post]:
        """The posts with these keys, their metrics replaced by the live counts."""
        keys = list(keys)
        out: dict[int, Post] = {}
        for start in range(0, len(keys), 500):
            part = keys[start : start + 500]
            marks = ",".join("?" * len(part))
            for r in self.db.execute(
                f"SELECT key, data, likes, reposts, replies, quotes, views, seen_reposts, seen_replies, "
                f"seen_quotes FROM posts WHERE key IN ({marks})",
                part,
            ):
                post = decode_post(r[1])
                post.metrics = Metrics(
                    likes=r[2],
                    reposts=max(r[3], r[7]),
                    replies=max(r[4], r[8]),
                    quotes=max(r[5], r[9]),
                    views=r[6],
                )
                out[r[0]] = post
        return out

    def keys_with_tag(self, tag: str) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT key FROM tags WHERE tag = ?", (normalize_tag(tag),))]

    def tag_counts(self, start_ms: int, end_ms: int) -> dict[str, int]:
        """Posts per hashtag created in [start_ms, end_ms), deleted posts left out."""
        rows = self.db.execute(
            "SELECT t.tag, count(*) FROM tags t JOIN posts p ON p.key = t.key "
            "WHERE t.created >= ? AND t.created < ? AND p.deleted = 0 GROUP BY t.tag",
            (start_ms, end_ms),
        )
        return dict(rows.fetchall())

    def tags_with_prefix(self, prefix: str, limit: int) -> list[tuple[str, int]]:
        """Hashtags starting with `prefix` (normalised), most used first."""
        return self.db.execute(
            "SELECT tag, count(*) AS uses FROM tags WHERE tag >= ? AND tag < ? GROUP BY tag "
            "ORDER BY uses DESC, tag LIMIT ?",
            (prefix, prefix + "\U0010ffff", limit),
        ).fetchall()

    def key_of(self, post_id: str) -> int | None:
        """The key of the post's newest version (after an edit, the one that is indexed)."""
        row = self.db.execute(
            "SELECT key FROM posts WHERE id = ? ORDER BY key DESC LIMIT 1", (post_id,)
        ).fetchone()
        return None if row is None else row[0]

    def popular_queries(self, prefix: str, limit: int) -> list[tuple[str, int]]:
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return self.db.execute(
            "SELECT query, count FROM queries WHERE query LIKE ? ESCAPE '\\' "
            "ORDER BY count DESC, query LIMIT ?",
            (escaped + "%", limit),
        ).fetchall()

    # -- writing ------------------------------------------------------------------------------
    def log_query(self, query: str, when_ms: int) -> None:
        """Count a query that was searched (for suggestions); its own small transaction."""
        self._writer.execute(
            "INSERT INTO queries (query, count, last) VALUES (?, 1, ?) "
            "ON CONFLICT (query) DO UPDATE SET count = count + 1, last = excluded.last",
            (query, when_ms),
        )

    def apply(
        self,
        events: list[Event],
        cursor: tuple[str, int] | None,
        *,
        partition_posts: int,
        partition_ms: int,
    ) -> Applied:
        """Store a batch of events and set the cursor, in one transaction.

        A post seen before updates its counts (engagement grows after indexing); one whose text
        changed is indexed anew under a new key and the old key deleted. A delete tombstones the id,
        so the post stays out even if it is received again. Replies, reposts and quotes add to the
        counts of the post they point at.
        """
        db = self._writer
        applied = Applied()
        db.execute("BEGIN IMMEDIATE")
        try:
            known = self._known(db, events)
            tombstoned = self._tombstoned(db, [e.id for e in events])
            parts = {p.part: p for p in self.partitions_in(db)}
            active = max(parts.values(), key=lambda p: p.part) if parts else None
            next_key = db.execute("SELECT coalesce(max(key), -1) + 1 FROM posts").fetchone()[0]
            inserts, tags, updates, deletes = [], [], {}, []
            add_insert, add_tag, add_applied = inserts.append, tags.append, applied.added.append
            for event in events:
                if event.type == "delete":
                    if event.id not in tombstoned:
                        tombstoned.add(event.id)
                        deletes.append((event.id,))
                    old = known.get(event.id)
                    if old is not None and not old.deleted:
                        old.deleted = True
                        applied.deleted.append((old.key, old.part))
                    continue
                post = event.post
                assert post is not None
                if post.id in tombstoned:
                    continue
                old = known.get(post.id)
                data = encode(post)
                if old is not None and not old.deleted:
                    if data == old.data:
                        continue
                    if _same_but_counts(old.data, post):
                        old.data, old.counts = data, _counts(post)
                        updates[old.key] = old
                        continue
                    old.deleted = True  # an edit: the old text leaves, the new one is indexed anew
                    applied.deleted.append((old.key, old.part))
                created = created_ms(post)
                if (
                    active is None
                    or active.posts >= partition_posts
                    or created - active.first_created >= partition_ms
                ):
                    part = 0 if active is None else active.part + 1
                    active = parts[part] = Partition(part, next_key, 0, created, created, created)
                active.posts += 1
                if created < active.min_created:
                    active.min_created = created
                elif created > active.max_created:
                    active.max_created = created
                key, next_key = next_key, next_key + 1
                m = post.metrics
                counts = (m.likes, m.reposts, m.replies, m.quotes, m.views)
                links = has_links(post)
                part = active.part
                if part not in applied.partitions:
                    applied.partitions.add(part)
                add_insert(
                    (key, post.id, event.seq, part, created, post.author_id, post.lang, links, *counts, data)
                )
                if post.hashtags:
                    for tag in dict.fromkeys(normalize_tag(t) for t in post.hashtags):
                        add_tag((tag, key, created))
                known[post.id] = _Known(key, part, data, counts, [0, 0, 0], False)
                add_applied((Row(key, part, created, post.author_id, post.lang, links, 0.0, False), post))
                if post.reply_to or post.repost_of or post.quote_of:
                    for target, slot in ((post.repost_of, 0), (post.reply_to, 1), (post.quote_of, 2)):
                        parent = known.get(target) if target else None
                        if parent is not None and not parent.deleted:
                            parent.seen[slot] += 1
                            updates[parent.key] = parent
            db.executemany(
                "INSERT INTO posts (key, id, seq, part, created, author, lang, links, likes, "
                "reposts, replies, quotes, views, data) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                inserts,
            )
            db.executemany("INSERT OR IGNORE INTO tags (tag, key, created) VALUES (?, ?, ?)", tags)
            db.executemany("INSERT OR IGNORE INTO deletes (id) VALUES (?)", deletes)
            db.executemany(
                "UPDATE posts SET deleted = 1 WHERE key = ?", [(key,) for key, _ in applied.deleted]
            )
            db.executemany(
                "UPDATE posts SET data = ?, likes = ?, reposts = ?, replies = ?, quotes = ?, views = ?, "
                "seen_reposts = ?, seen_replies = ?, seen_quotes = ? WHERE key = ?",
                [(k.data, *k.counts, *k.seen, k.key) for k in updates.values()],
            )
            db.executemany(
                "INSERT INTO partitions VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (part) DO UPDATE SET "
                "posts = excluded.posts, min_created = excluded.min_created, "
                "max_created = excluded.max_created",
                [
                    (p.part, p.first_key, p.posts, p.first_created, p.min_created, p.max_created)
                    for p in parts.values()
                    if p.part in applied.partitions
                ],
            )
            if cursor is not None:
                db.execute(
                    "INSERT INTO cursors (name, seq) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
                    cursor,
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        for k in updates.values():
            c, s = k.counts, k.seen
            applied.engagement[k.key] = engagement(c[0], max(c[1], s[0]), max(c[2], s[1]), max(c[3], s[2]))
        for row, post in applied.added:
            k = known[post.id]
            c, s = k.counts, k.seen
            row.engagement = engagement(c[0], max(c[1], s[0]), max(c[2], s[1]), max(c[3], s[2]))
            row.deleted = k.deleted
            applied.engagement.pop(row.key, None)
        return applied

    @staticmethod
    def partitions_in(db: sqlite3.Connection) -> list[Partition]:
        return [Partition(*row) for row in db.execute("SELECT * FROM partitions ORDER BY part")]

    @staticmethod
    def _known(db: sqlite3.Connection, events: list[Event]) -> dict[str, _Known]:
        wanted = {e.id for e in events}
        for e in events:
            if e.post is not None:
                wanted.update(t for t in (e.post.reply_to, e.post.repost_of, e.post.quote_of) if t)
        ids = list(wanted)
        known: dict[str, _Known] = {}
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            for r in db.execute(
                f"SELECT id, key, part, data, likes, reposts, replies, quotes, views, seen_reposts, "
                f"seen_replies, seen_quotes, deleted FROM posts WHERE id IN ({marks}) ORDER BY key",
                part,
            ):
                known[r[0]] = _Known(r[1], r[2], r[3], tuple(r[4:9]), list(r[9:12]), bool(r[12]))
        return known

    @staticmethod
    def _tombstoned(db: sqlite3.Connection, ids: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            found.update(r[0] for r in db.execute(f"SELECT id FROM deletes WHERE id IN ({marks})", part))
        return found


def _counts(post: Post) -> tuple[int, int, int, int, int]:
    m = post.metrics
    return (m.likes, m.reposts, m.replies, m.quotes, m.views)


def _same_but_counts(old_data: bytes, post: Post) -> bool:
    """Whether `post` differs from the stored one in its metrics at most."""
    old = decode_post(old_data)
    old.metrics = post.metrics
    return encode(old) == encode(post)


def _engagement_of(r: tuple) -> float:
    likes, reposts, replies, quotes = r[6], r[7], r[8], r[9]
    return engagement(likes, max(reposts, r[11]), max(replies, r[12]), max(quotes, r[13]))


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a batch is indexed. A batch allocates several containers
    per post and none of them form cycles, yet every 700 allocations start a collection, and the
    older generations are walked again and again: a quarter of the store's CPU time per batch in
    one measurement. Reference counting still frees everything; a collection runs after the batch."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def utc_ms(when: dt.datetime) -> int:
    """ms since the epoch of a timestamp (a naive one is taken to be UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)
