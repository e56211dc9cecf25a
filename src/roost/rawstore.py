"""The raw store (`raw/raw.db`): every post received so far, once each, and every delete.

Importers and firehose consumers write here; curation reads from here. A batch of events and the
cursor it brings a source up to are committed in one SQLite transaction, so after a crash the store
and its cursor agree and a resumed consumer neither loses nor repeats an event. Posts are upserted by
id (importing a file twice stores each post once); a delete removes the post and leaves a tombstone
that keeps the post out even if it is received again later.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from roost.posts import Event, Post, decode_post, encode

_SCHEMA = """
CREATE TABLE IF NOT EXISTS posts (
    id   TEXT PRIMARY KEY,
    seq  INTEGER,            -- log seq of the event that last wrote it; NULL for imports
    data BLOB NOT NULL       -- the Post as JSON (roost.posts.encode)
);
CREATE TABLE IF NOT EXISTS deletes (
    id  TEXT PRIMARY KEY,
    seq INTEGER
);
CREATE TABLE IF NOT EXISTS cursors (
    name TEXT PRIMARY KEY,
    seq  INTEGER NOT NULL    -- the last seq committed from this source
);
"""

# Keeps a tombstoned post out; rewrites an existing post only when its bytes changed, so applying
# the same event twice leaves the file's contents as they were.
_UPSERT_POST = """
INSERT INTO posts (id, seq, data) SELECT ?1, ?2, ?3
WHERE NOT EXISTS (SELECT 1 FROM deletes WHERE id = ?1)
ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, data = excluded.data
WHERE posts.data IS NOT excluded.data
"""


@dataclass
class ApplyCounts:
    """What one `apply` call did."""

    posts: int = 0
    deletes: int = 0

    def __iadd__(self, other: ApplyCounts) -> ApplyCounts:
        self.posts += other.posts
        self.deletes += other.deletes
        return self


class RawStore:
    """The SQLite-backed raw store. One instance per thread."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        # WAL: readers (curation) never block the writer. synchronous=NORMAL keeps every committed
        # transaction across a process crash (kill -9); a power cut may lose the last transactions,
        # but since data and cursor are in the same one they are lost together, never apart.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    @classmethod
    def in_dir(cls, raw_dir: Path) -> RawStore:
        return cls(raw_dir / "raw.db")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RawStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------------
    def apply(self, events: Iterable[Event], *, cursor: tuple[str, int] | None = None) -> ApplyCounts:
        """Apply a batch of events, and set `cursor = (source name, seq)`, in one transaction."""
        posts: list[tuple[str, int | None, bytes]] = []
        deletes: list[tuple[str, int | None]] = []
        for event in events:
            if event.type == "post":
                assert event.post is not None
                posts.append((event.id, event.seq, encode(event.post)))
            else:
                deletes.append((event.id, event.seq))
        return self._write(posts, deletes, cursor)

    def add_posts(self, posts: Iterable[Post]) -> ApplyCounts:
        """Upsert posts that come without a log seq (imports)."""
        return self._write([(p.id, None, encode(p)) for p in posts], [], None)

    def _write(
        self,
        posts: list[tuple[str, int | None, bytes]],
        deletes: list[tuple[str, int | None]],
        cursor: tuple[str, int] | None,
    ) -> ApplyCounts:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            # Posts, then deletes: because a tombstone is permanent, the end state is the same as
            # applying the batch in event order (a deleted post ends up absent either way).
            before = db.total_changes
            db.executemany(_UPSERT_POST, posts)
            written = db.total_changes - before
            before = db.total_changes
            db.executemany("INSERT INTO deletes (id, seq) VALUES (?, ?) ON CONFLICT (id) DO NOTHING", deletes)
            tombstoned = db.total_changes - before
            db.executemany("DELETE FROM posts WHERE id = ?", [(d[0],) for d in deletes])
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
        return ApplyCounts(posts=written, deletes=tombstoned)

    # -- reading -----------------------------------------------------------------------------
    def cursor(self, name: str) -> int | None:
        """The last seq committed from source `name`, or None if it never committed."""
        row = self._db.execute("SELECT seq FROM cursors WHERE name = ?", (name,)).fetchone()
        return None if row is None else row[0]

    def count(self) -> int:
        return self._db.execute("SELECT count(*) FROM posts").fetchone()[0]

    def count_deletes(self) -> int:
        return self._db.execute("SELECT count(*) FROM deletes").fetchone()[0]

    def get(self, post_id: str) -> Post | None:
        row = self._db.execute("SELECT data FROM posts WHERE id = ?", (post_id,)).fetchone()
        return None if row is None else decode_post(row[0])

    def is_deleted(self, post_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM deletes WHERE id = ?", (post_id,)).fetchone() is not None

    def iter_raw(self, *, after_rowid: int = 0, batch: int = 4096) -> Iterator[tuple[int, bytes]]:
        """(rowid, Post JSON) in insertion order, streamed in batches so memory stays flat."""
        last = after_rowid
        while True:
            rows = self._db.execute(
                "SELECT rowid, data FROM posts WHERE rowid > ? ORDER BY rowid LIMIT ?", (last, batch)
            ).fetchall()
            if not rows:
                return
            yield from rows
            last = rows[-1][0]

    def iter_posts(self, *, after_rowid: int = 0) -> Iterator[Post]:
        for _, data in self.iter_raw(after_rowid=after_rowid):
            yield decode_post(data)

    def iter_deleted_ids(self) -> Iterator[str]:
        for (post_id,) in self._db.execute("SELECT id FROM deletes ORDER BY id"):
            yield post_id

    def last_rowid(self) -> int:
        """The newest post row's rowid (0 when there are none): where a reader that wants all stops."""
        return self._db.execute("SELECT coalesce(max(rowid), 0) FROM posts").fetchone()[0]

    def deleted_among(self, post_ids: Iterable[str]) -> set[str]:
        """Which of `post_ids` have been deleted."""
        ids = list(post_ids)
        found: set[str] = set()
        for start in range(0, len(ids), 500):  # SQLite caps the number of bound parameters
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = self._db.execute(f"SELECT id FROM deletes WHERE id IN ({marks})", part)
            found.update(row[0] for row in rows)
        return found
