"""The real-time search index: a firehose sink that keeps a lexical (tantivy) and a vector (usearch)
index of posts, partitioned by arrival time as Twitter's Earlybird was, searchable as soon as a
batch is applied.

How a batch flows (`apply`): the index store (SQLite) takes the events and the cursor in one
transaction; then the in-memory columns (time, author, language, links, engagement, alive) learn
the new keys and tombstones, so a delete is honoured by every search from that moment on; then the
newest partition's tantivy index adds the posts and commits, which makes them searchable; then the
posts are queued for the dense indexer, a thread that embeds them and adds them to the partition's
vector index. Engagement counts change in the columns, not in the inverted index.

Partitions: posts fill the newest partition until it holds `partition_posts` or spans
`partition_hours`; keys are dense and in arrival order, so a partition is a key range and a time
range, and a time filter skips whole partitions. Deletes are tombstones at once; tantivy's own
delete (exact) follows in the same commit, and a partition's vectors are rebuilt without the
deleted ones once they pass `rebuild_deleted_fraction` (vector libraries' deletes are not trusted).

Crash safety: the store is the source of truth and every derived index knows how far it got (the
lexical index its highest key, the vector index the watermark saved with it). Opening the index
catches each up from the store, adding every post exactly once, so a follower killed at any point
resumes from the store's cursor with nothing lost and nothing doubled.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import tantivy

from roost.posts import Event, Post, decode_post
from roost.search.config import SearchConfig
from roost.search.embedder import Embedder
from roost.search.lexical import LexicalPartition, document, full_query, partition_dir
from roost.search.query import Filters
from roost.search.store import Applied, IndexStore, Partition, Row, gc_paused, utc_ms
from roost.search.text import ParsedQuery, indexed_text
from roost.search.vectors import VectorPartition

log = logging.getLogger(__name__)

# With filters that let at most this many posts through, dense search scores all of them exactly
# instead of asking the HNSW graph for more and more neighbours until enough pass.
EXACT_DENSE_LIMIT = 4096


class Columns:
    """Per-key metadata in numpy arrays, for filtering and ranking candidates without the store.

    Arrays grow by doubling; a reader takes `arrays()` once and `size` before it, so a concurrent
    append never shows it a half-written row."""

    def __init__(self, capacity: int = 1024) -> None:
        self.size = 0
        self.created = np.zeros(capacity, np.int64)
        self.author = np.zeros(capacity, np.int32)
        self.lang = np.zeros(capacity, np.int16)
        self.links = np.zeros(capacity, bool)
        self.engagement = np.zeros(capacity, np.float32)
        self.alive = np.zeros(capacity, bool)
        self.authors: dict[str, int] = {}
        self.langs: dict[str | None, int] = {}
        self.max_created = 0

    def append(self, rows: list[Row]) -> None:
        if not rows:
            return
        need = rows[-1].key + 1
        if need > len(self.created):
            self._grow(max(need, 2 * len(self.created)))
        # One numpy assignment per column rather than six item writes per row: a third less time,
        # and a batch can be a million rows (opening a built index).
        n = len(rows)
        keys = np.fromiter((row.key for row in rows), np.int64, n)
        authors, langs = self.authors, self.langs
        created = np.fromiter((row.created for row in rows), np.int64, n)
        self.created[keys] = created
        self.author[keys] = np.fromiter(
            (authors.setdefault(row.author, len(authors)) for row in rows), np.int32, n
        )
        self.lang[keys] = np.fromiter((langs.setdefault(row.lang, len(langs)) for row in rows), np.int16, n)
        self.links[keys] = np.fromiter((row.links for row in rows), bool, n)
        self.engagement[keys] = np.fromiter((row.engagement for row in rows), np.float32, n)
        self.alive[keys] = np.fromiter((not row.deleted for row in rows), bool, n)
        self.max_created = max(self.max_created, int(created.max()))
        self.size = max(self.size, need)

    def _grow(self, capacity: int) -> None:
        for name in ("created", "author", "lang", "links", "engagement", "alive"):
            old = getattr(self, name)
            new = np.zeros(capacity, old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def mask(self, keys: np.ndarray, filters: Filters, tagged: np.ndarray | None) -> np.ndarray:
        """Which of `keys` are alive and pass `filters` (`tagged`: the sorted keys with the
        filter's hashtag)."""
        ok = self.alive[keys].copy()
        if filters.since is not None:
            ok &= self.created[keys] >= utc_ms(filters.since)
        if filters.until is not None:
            ok &= self.created[keys] < utc_ms(filters.until)
        if filters.lang is not None:
            code = self.langs.get(filters.lang)
            ok &= self.lang[keys] == code if code is not None else False
        if filters.author is not None:
            code = self.authors.get(filters.author)
            ok &= self.author[keys] == code if code is not None else False
        if filters.has_links is not None:
            ok &= self.links[keys] == filters.has_links
        if tagged is not None:
            ok &= np.isin(keys, tagged, assume_unique=False)
        return ok


class _DenseQueue:
    """Posts waiting to be embedded: (key, partition, text), oldest first."""

    def __init__(self) -> None:
        self.items: deque[tuple[int, int, str]] = deque()
        self.cond = threading.Condition()
        self.busy = 0  # taken, not yet added

    def put(self, items: Iterable[tuple[int, int, str]]) -> None:
        with self.cond:
            self.items.extend(items)
            self.cond.notify_all()

    def put_back(self, items: list[tuple[int, int, str]]) -> None:
        with self.cond:
            self.items.extendleft(reversed(items))

    def take(self, limit: int, timeout: float) -> list[tuple[int, int, str]]:
        with self.cond:
            if not self.items:
                self.cond.wait(timeout)
            taken = [self.items.popleft() for _ in range(min(limit, len(self.items)))]
            self.busy = len(taken)
            return taken

    def done(self) -> None:
        with self.cond:
            self.busy = 0
            self.cond.notify_all()

    def wait_empty(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.items or self.busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    def __len__(self) -> int:
        return len(self.items) + self.busy


class SearchIndex:
    """The index in `directory` (the workspace's `index/`). `readonly` opens what is on disk for
    searching only (the CLI next to a running follower); otherwise this object is the one writer.
    `embedder` None: lexical only."""

    def __init__(
        self,
        directory: Path | str,
        config: SearchConfig | None = None,
        embedder: Embedder | None = None,
        *,
        readonly: bool = False,
    ) -> None:
        self.directory = Path(directory)
        self.config = config or SearchConfig()
        self.embedder = embedder
        self.readonly = readonly
        if readonly and not (self.directory / "index.db").exists():
            raise FileNotFoundError(f"no search index in {self.directory}: run `roost index build` first")
        self.store = IndexStore(self.directory / "index.db", readonly=readonly)
        self._write_lock = threading.Lock()
        self.columns = Columns()
        self.columns.append(list(self.store.rows()))
        self.partitions: dict[int, Partition] = {p.part: p for p in self.store.partitions()}
        self.lexical: dict[int, LexicalPartition] = {}
        self.vectors: dict[int, VectorPartition] = {}
        self.deferred_lexical = False  # `index build`: worker processes write sealed partitions
        for part in self.partitions:
            self._lexical(part)
            if embedder is not None:
                self._vectors(part)
        self._dense = _DenseQueue()
        self._dense_stop = threading.Event()
        self._dense_thread: threading.Thread | None = None
        self._deleted_since_rebuild: set[int] = set()  # partitions with deletes since the last check
        self._rebuild_lock = threading.Lock()
        if not readonly:
            for part, lexical in self.lexical.items():
                lexical.catch_up(self.store, part)
            self.reconcile_deletes()
            if embedder is not None:
                for part, vectors in self.vectors.items():
                    self._dense.put(self._unembedded(part, vectors.watermark))
                self._dense_thread = threading.Thread(
                    target=self._dense_loop, name="roost-dense", daemon=True
                )
                self._dense_thread.start()

    @classmethod
    def open(cls, ws, *, readonly: bool = False, embedder: Embedder | str | None = "config") -> SearchIndex:
        """The workspace's index with its [search] config and (unless given) its embedder."""
        from roost.search.embedder import load_embedder

        config = ws.config("search", SearchConfig)
        if embedder == "config":
            embedder = load_embedder(
                ws, config.embedder, ws.index_dir, batch_tokens=config.embed_batch_tokens
            )
        return cls(ws.index_dir, config, embedder, readonly=readonly)

    # -- the firehose sink ------------------------------------------------------------------------
    def cursor(self, name: str) -> int | None:
        return self.store.cursor(name)

    def apply(self, events: list[Event], *, cursor: tuple[str, int] | None = None) -> Applied:
        """Index a batch of events and commit the cursor with it (see the module docstring)."""
        if self.readonly:
            raise RuntimeError("this index was opened read-only")
        with self._write_lock, gc_paused():
            config = self.config
            applied = self.store.apply(
                events,
                cursor,
                partition_posts=config.partition_posts,
                partition_ms=int(config.partition_hours * 3_600_000),
            )
            self._remember(applied)
            if not self.deferred_lexical:
                self._index_lexical(applied)
            if self.embedder is not None:
                self._dense.put(
                    (row.key, row.part, indexed_text(post)) for row, post in applied.added if not row.deleted
                )
            return applied

    def _remember(self, applied: Applied) -> None:
        """Columns first: a key must be known before the lexical index can return it."""
        cols = self.columns
        cols.append([row for row, _ in applied.added])
        for key, _ in applied.deleted:
            cols.alive[key] = False
        for key, value in applied.engagement.items():
            cols.engagement[key] = value
        if applied.deleted:
            with self._rebuild_lock:
                self._deleted_since_rebuild.update(part for _, part in applied.deleted)
        if applied.partitions:
            newest_before = max(self.partitions, default=-1)
            for part in applied.partitions:  # before searches learn of the partition
                self._lexical(part)
                if self.embedder is not None:
                    self._vectors(part)
            self.partitions = {p.part: p for p in self.store.partitions()}
            if max(self.partitions) > newest_before >= 0 and not self.deferred_lexical:
                self._seal(newest_before)

    def _index_lexical(self, applied: Applied) -> None:
        touched: set[int] = set()
        by_part: dict[int, list[tantivy.Document]] = {}
        for row, post in applied.added:
            if not row.deleted:
                by_part.setdefault(row.part, []).append(
                    document(row.key, post.text, post.hashtags, row.author, row.lang, row.created, row.links)
                )
        for part, items in by_part.items():
            self.lexical[part].add(items)
            touched.add(part)
        deleted: dict[int, list[int]] = {}
        for key, part in applied.deleted:
            deleted.setdefault(part, []).append(key)
        for part, keys in deleted.items():
            self.lexical[part].delete(keys)
            touched.add(part)
        for part in touched:
            self.lexical[part].commit()

    def _seal(self, part: int) -> None:
        """A partition that no longer takes posts: its writer's memory is given back."""
        lexical = self.lexical.get(part)
        if lexical is not None:
            lexical.close()

    def _lexical(self, part: int) -> LexicalPartition:
        if part not in self.lexical:
            self.lexical[part] = LexicalPartition(
                partition_dir(self.directory, part) / "lexical", writable=not self.readonly
            )
        return self.lexical[part]

    def _vectors(self, part: int) -> VectorPartition:
        if part not in self.vectors:
            assert self.embedder is not None
            c = self.config
            self.vectors[part] = VectorPartition(
                partition_dir(self.directory, part),
                self.embedder.name,
                self.embedder.dim,
                dtype=c.vector_dtype,
                connectivity=c.connectivity,
                expansion_add=c.expansion_add,
                expansion_search=c.expansion_search,
            )
        return self.vectors[part]

    def reconcile_deletes(self) -> None:
        """Delete from each partition's lexical index the posts the store has tombstoned but it
        still holds (a crash between the store's commit and tantivy's, or deletes that reached a
        partition while a build worker wrote it)."""
        alive = self.columns.alive
        for part, p in self.partitions.items():
            dead = np.flatnonzero(~alive[p.first_key : self.partition_end(p)]) + p.first_key
            if len(dead):
                self._lexical(part).delete_present(dead.tolist())

    def reload_lexical(self) -> None:
        """See partitions that another process (an `index build` worker) wrote."""
        for part in self.partitions:
            self._lexical(part).reload()

    # -- the dense indexer ------------------------------------------------------------------------
    def _unembedded(self, part: int, watermark: int) -> list[tuple[int, int, str]]:
        return [
            (key, part, indexed_text(decode_post(data)))
            for key, data in self.store.texts(part=part, after_key=watermark)
        ]

    def _dense_loop(self) -> None:
        assert self.embedder is not None
        last_save = time.monotonic()
        while True:
            items = self._dense.take(self.config.embed_batch, timeout=0.2)
            try:
                if items:
                    self._embed(items)
                if self._deleted_since_rebuild:
                    self._rebuild_if_needed()
                if time.monotonic() - last_save >= self.config.vector_save_s:
                    self.save_vectors()
                    last_save = time.monotonic()
            except Exception:
                # Lexical search goes on; the batch goes back to the front (keys must reach a
                # partition in order, its watermark says all below it are in) and is retried.
                log.exception("dense indexing failed for %d posts; retrying", len(items))
                self._dense.put_back(items)
                self._dense_stop.wait(1.0)
            finally:
                self._dense.done()
            if self._dense_stop.is_set():
                return  # what is still queued is above the saved watermarks: the next open redoes it

    def _embed(self, items: list[tuple[int, int, str]]) -> None:
        assert self.embedder is not None
        alive = self.columns.alive
        items = [item for item in items if alive[item[0]]]
        if not items:
            return
        vectors = self.embedder.embed([text for _, _, text in items])
        keys = np.fromiter((key for key, _, _ in items), np.int64, len(items))
        parts = np.fromiter((part for _, part, _ in items), np.int64, len(items))
        for part in np.unique(parts):
            rows = parts == part
            self._vectors(int(part)).add(keys[rows], vectors[rows])

    def _rebuild_if_needed(self) -> None:
        with self._rebuild_lock:
            parts, self._deleted_since_rebuild = self._deleted_since_rebuild, set()
        for part in parts:
            vectors = self.vectors.get(part)
            if vectors is None or not len(vectors):
                continue
            keys = vectors.keys()
            dead = int((~self.columns.alive[keys]).sum())
            if dead and dead >= self.config.rebuild_deleted_fraction * len(keys):
                self.rebuild_vectors(part)

    def rebuild_vectors(self, part: int) -> int:
        """Rebuild a partition's vector index from its live vectors; returns how many were dropped."""
        vectors = self.vectors[part]
        keys = vectors.keys()
        dropped = vectors.rebuild(np.sort(keys[self.columns.alive[keys]]))
        vectors.save()
        log.info("partition %d: vectors rebuilt without %d deleted posts", part, dropped)
        return dropped

    def wait_dense(self, timeout: float = 600.0) -> bool:
        """Block until every applied post is in the vector index (True) or `timeout` passes."""
        return self._dense.wait_empty(timeout)

    @property
    def dense_pending(self) -> int:
        return len(self._dense)

    def save_vectors(self) -> None:
        for vectors in list(self.vectors.values()):
            if vectors.watermark != vectors.saved_watermark or not vectors.path.exists():
                vectors.save()

    # -- searching --------------------------------------------------------------------------------
    def parts_for(self, filters: Filters) -> list[Partition]:
        """Partitions whose time range meets the filter's, newest first."""
        lo = utc_ms(filters.since) if filters.since else None
        hi = utc_ms(filters.until) if filters.until else None
        return [
            p
            for p in sorted(self.partitions.values(), key=lambda p: -p.part)
            if (lo is None or p.max_created >= lo) and (hi is None or p.min_created < hi)
        ]

    def lexical_search(
        self, parsed: ParsedQuery, filters: Filters, limit: int, *, latest: bool = False
    ) -> list[tuple[int, float]]:
        """(key, BM25 score) best first; with `latest`, posts matching every word, newest first
        (score = creation time in ms). Deleted posts never appear."""
        query = full_query(parsed, filters, match_all=latest)
        cols = self.columns
        keys, scores = [], []
        for p in self.parts_for(filters):
            k, s = self.lexical[p.part].search(query, limit, latest=latest)
            keys.append(k)
            scores.append(s)
        if not keys:
            return []
        key, score = np.concatenate(keys), np.concatenate(scores)
        live = key < cols.size
        live[live] = cols.alive[key[live]]
        key, score = key[live], score[live]
        if len(key) > limit:
            top = np.argpartition(-score, limit - 1)[:limit]
            key, score = key[top], score[top]
        order = np.argsort(-score, kind="stable")
        return list(zip(key[order].tolist(), score[order].tolist(), strict=True))

    def dense_search(self, vector: np.ndarray, filters: Filters, limit: int) -> list[tuple[int, float]]:
        """(key, cosine similarity) best first, among live posts that pass `filters`."""
        if self.embedder is None or not self.vectors:
            return []
        parts = [p for p in self.parts_for(filters) if p.part in self.vectors]
        tagged = (
            np.sort(np.asarray(self.store.keys_with_tag(filters.hashtag), np.int64))
            if filters.hashtag
            else None
        )
        cols = self.columns
        if filters.any:
            allowed = self._allowed_keys(parts, filters, tagged)
            if len(allowed) <= EXACT_DENSE_LIMIT:
                return self._exact(vector, allowed, limit)
        found: list[tuple[int, float]] = []
        for p in parts:
            vectors = self.vectors[p.part]
            count = limit * 2 if filters.any else limit + 16
            while True:
                keys, sims = vectors.search(vector, count)
                keys_ok = keys[keys < cols.size]
                ok = cols.mask(keys_ok, filters, tagged)
                passed = [
                    (int(k), float(s)) for k, s in zip(keys_ok[ok], sims[keys < cols.size][ok], strict=True)
                ]
                if len(passed) >= limit or count >= len(vectors):
                    break
                count *= 4
            found.extend(passed[:limit])
        found.sort(key=lambda item: -item[1])
        return found[:limit]

    def _allowed_keys(
        self, parts: list[Partition], filters: Filters, tagged: np.ndarray | None
    ) -> np.ndarray:
        if tagged is not None:
            keys = tagged
        else:
            ranges = [np.arange(p.first_key, self.partition_end(p)) for p in parts]
            keys = np.concatenate(ranges) if ranges else np.empty(0, np.int64)
        keys = keys[keys < self.columns.size]
        return keys[self.columns.mask(keys, filters, None if tagged is None else tagged)]

    def partition_end(self, p: Partition) -> int:
        """The key after the partition's last (partitions are key ranges, in order)."""
        later = [q.first_key for q in self.partitions.values() if q.part > p.part]
        return min(later) if later else self.columns.size

    def _exact(self, vector: np.ndarray, keys: np.ndarray, limit: int) -> list[tuple[int, float]]:
        found: list[tuple[int, float]] = []
        for part, vectors in self.vectors.items():
            p = self.partitions[part]
            mine = keys[(keys >= p.first_key) & (keys < self.partition_end(p))]
            held, matrix = vectors.vectors(mine)
            if len(held):
                sims = matrix @ vector.astype(np.float32)
                found.extend(zip(held.tolist(), sims.tolist(), strict=True))
        found.sort(key=lambda item: -item[1])
        return found[:limit]

    def posts(self, keys: Iterable[int]) -> dict[int, Post]:
        """The posts with these keys, with their live counts."""
        return self.store.posts(keys)

    # -- lifecycle ------------------------------------------------------------------------------
    def close(self) -> None:
        """Finish the dense queue, save vectors and commit everything (a clean stop; a crash loses
        nothing either, it only leaves more to catch up on next open)."""
        if self._dense_thread is not None:
            self._dense_stop.set()
            self._dense.put([])
            self._dense_thread.join()
            self._dense_thread = None
        if not self.readonly:
            self.save_vectors()
            for lexical in self.lexical.values():
                lexical.close()
        self.store.close()

    def __enter__(self) -> SearchIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
