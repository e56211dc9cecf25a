"""One partition's lexical index (tantivy): text (BM25, positions for phrases), hashtags, author,
language, time and links, with a query builder that turns a parsed query and filters into tantivy's
boolean query.

Engagement is not a tantivy field: it grows after a post is indexed, and an inverted index cannot
update a field in place, so it lives in the in-memory columns (as Earlybird kept its counters
beside the index). A partition's index is derived from the index store: `catch_up` adds whatever
the store holds past the index's highest key, which is how it is built, rebuilt and recovered.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import msgspec
import numpy as np
import tantivy

from roost.search.query import Filters
from roost.search.store import IndexStore, gc_paused, utc_ms
from roost.search.text import (
    ANALYZER,
    ParsedQuery,
    analyzer,
    normalize_tag,
    split_hashtag,
    terms,
    text_with_tags,
)

WRITER_HEAP = 48_000_000  # tantivy flushes a segment when its indexing buffer reaches this


def schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("text", tokenizer_name=ANALYZER, index_option="position")
    builder.add_text_field("hashtags", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("author", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("lang", tokenizer_name="raw", index_option="basic")
    builder.add_integer_field("key", indexed=True, fast=True)
    builder.add_integer_field("created", indexed=True, fast=True)  # ms since the epoch
    builder.add_boolean_field("links", indexed=True, fast=True)
    return builder.build()


_SCHEMA = schema()
_NO_SCORE = 0.0  # filters only narrow the set; they add nothing to a post's BM25 score


def document(
    key: int, text: str, hashtags: list[str], author: str, lang: str | None, created: int, links: bool
) -> tantivy.Document:
    """A post's tantivy document (`created` in ms). One `from_dict` call: indexing pays Python per
    post, and building the document field by field cost twice as much."""
    return tantivy.Document.from_dict(
        {
            "text": text_with_tags(text, hashtags),
            "hashtags": list(dict.fromkeys(normalize_tag(t) for t in hashtags)) if hashtags else [],
            "author": author,
            "lang": lang or "",
            "key": key,
            "created": created,
            "links": links,
        },
        _SCHEMA,
    )


class _Indexed(msgspec.Struct):
    """What a stored post (roost.posts.encode) adds to the store's own columns for its document:
    decoding only these fields skips the rest of the Post (timestamps, metrics), half the cost."""

    text: str
    hashtags: list[str] = []


_decode_indexed = msgspec.json.Decoder(_Indexed).decode


class LexicalPartition:
    """A partition's tantivy index in `directory`. Writable ones open a writer on first write."""

    def __init__(self, directory: Path, *, writable: bool = True) -> None:
        self.directory = directory
        self.writable = writable
        directory.mkdir(parents=True, exist_ok=True)
        self.index = tantivy.Index(_SCHEMA, path=str(directory), reuse=True)
        self.index.register_tokenizer(ANALYZER, analyzer())
        self.index.config_reader("Manual")
        self._writer: tantivy.IndexWriter | None = None

    @property
    def writer(self) -> tantivy.IndexWriter:
        if not self.writable:
            raise RuntimeError(f"{self.directory} is open read-only")
        if self._writer is None:
            self._writer = self.index.writer(heap_size=WRITER_HEAP, num_threads=1)
        return self._writer

    def add(self, docs: Iterable[tantivy.Document]) -> None:
        add = self.writer.add_document
        for doc in docs:
            add(doc)

    def delete(self, keys: Iterable[int]) -> None:
        writer = self.writer
        for key in keys:
            writer.delete_documents_by_term("key", key)

    def delete_present(self, keys: list[int]) -> int:
        """Delete those of `keys` this index still holds, committing if there were any."""
        query = tantivy.Query.term_set_query(_SCHEMA, "key", keys)
        present = self.index.searcher().search(query, 1, count=True).count
        if present:
            self.delete(keys)
            self.commit()
        return present

    def commit(self) -> None:
        """Publish what was added and deleted (atomically), and let searches see it."""
        if self._writer is not None:
            self._writer.commit()
            self.index.reload()

    def reload(self) -> None:
        self.index.reload()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.commit()
            self._writer.wait_merging_threads()
            self._writer = None

    def max_key(self) -> int:
        """The highest key this index holds (-1 when empty): it catches up from the key after."""
        searcher = self.index.searcher()
        result = searcher.search(tantivy.Query.all_query(), 1, count=False, order_by_field="key")
        if not result.hits:
            return -1
        return searcher.fast_field_values("key", [result.hits[0][1]])[0]

    def num_docs(self) -> int:
        return self.index.searcher().num_docs

    def catch_up(self, store: IndexStore, part: int, *, batch: int = 20_000) -> int:
        """Add the partition's live posts the store holds past this index's highest key; commit."""
        added = 0
        for rows in store.document_rows(part=part, after_key=self.max_key(), batch=batch):
            with gc_paused():
                self.add(_stored_document(*row) for row in rows)
            added += len(rows)
        if added:
            self.commit()
        return added

    def search(
        self, query: tantivy.Query, limit: int, *, latest: bool = False
    ) -> tuple[np.ndarray, np.ndarray]:
        """(keys, scores) of the best `limit` matches, best first; with `latest`, the newest first
        and the score is the creation time in ms."""
        searcher = self.index.searcher()
        if latest:
            result = searcher.search(query, limit, count=False, order_by_field="created")
        else:
            result = searcher.search(query, limit, count=False)
        hits = result.hits
        if not hits:
            return np.empty(0, np.int64), np.empty(0, np.float64)
        scores, addresses = zip(*hits, strict=True)
        keys = np.asarray(searcher.fast_field_values("key", list(addresses)), np.int64)
        return keys, np.asarray(scores, np.float64)


def _stored_document(
    key: int, created: int, author: str, lang: str | None, links: int, data: bytes
) -> tantivy.Document:
    post = _decode_indexed(data)
    return document(key, post.text, post.hashtags, author, lang, created, bool(links))


def build_partition(index_dir: Path, part: int) -> int:
    """Build (or finish) partition `part`'s lexical index from the store; for worker processes."""
    store = IndexStore(index_dir / "index.db", readonly=True)
    lexical = LexicalPartition(partition_dir(index_dir, part) / "lexical")
    try:
        return lexical.catch_up(store, part)
    finally:
        lexical.close()


def partition_dir(index_dir: Path, part: int) -> Path:
    return index_dir / f"p{part:05d}"


# -- queries ------------------------------------------------------------------------------------
def text_query(parsed: ParsedQuery, *, match_all: bool) -> tantivy.Query | None:
    """The query's words, phrases and hashtags: any of them (`match_all=False`, ranked by BM25, the
    more the better) or all of them. None when the query has nothing positive."""
    positive: list[tantivy.Query] = [_term("text", word) for word in parsed.words]
    positive += [_phrase(words) for words in parsed.phrases]
    positive += [_hashtag(tag) for tag in parsed.hashtags]
    negative = [_term("text", word) for word in parsed.excluded_words]
    negative += [_phrase(words) for words in parsed.excluded_phrases]
    negative += [_hashtag(tag) for tag in parsed.excluded_hashtags]
    if not positive:
        return None
    occur = tantivy.Occur.Must if match_all else tantivy.Occur.Should
    clauses = [(occur, q) for q in positive] + [(tantivy.Occur.MustNot, q) for q in negative]
    return tantivy.Query.boolean_query(clauses)


def filter_query(filters: Filters) -> list[tantivy.Query]:
    """One clause per filter, each scoring nothing."""
    clauses: list[tantivy.Query] = []
    if filters.since is not None or filters.until is not None:
        bounds: dict = {}
        if filters.since is not None:
            bounds["lower_bound"] = utc_ms(filters.since)
        if filters.until is not None:
            bounds.update(upper_bound=utc_ms(filters.until), include_upper=False)
        clauses.append(tantivy.Query.range_query(_SCHEMA, "created", tantivy.FieldType.Integer, **bounds))
    if filters.lang is not None:
        clauses.append(_term("lang", filters.lang))
    if filters.author is not None:
        clauses.append(_term("author", filters.author))
    if filters.hashtag is not None:
        clauses.append(_term("hashtags", normalize_tag(filters.hashtag)))
    if filters.has_links is not None:
        clauses.append(tantivy.Query.term_query(_SCHEMA, "links", filters.has_links))
    return [tantivy.Query.const_score_query(q, _NO_SCORE) for q in clauses]


def full_query(parsed: ParsedQuery, filters: Filters, *, match_all: bool) -> tantivy.Query:
    """Text and filters together; with no text, every post that passes the filters."""
    text = text_query(parsed, match_all=match_all)
    clauses = [(tantivy.Occur.Must, q) for q in filter_query(filters)]
    if text is not None and not clauses:
        # The words alone, not wrapped in one more boolean: a flat disjunction of terms is what
        # tantivy's block-max WAND top-k runs on, which skips the blocks that cannot make the top.
        return text
    if text is not None:
        clauses.append((tantivy.Occur.Must, text))
    if not clauses:
        return tantivy.Query.all_query()
    return tantivy.Query.boolean_query(clauses)


def _term(field: str, value: str) -> tantivy.Query:
    return tantivy.Query.term_query(_SCHEMA, field, value)


def _phrase(words: list[str]) -> tantivy.Query:
    return tantivy.Query.phrase_query(_SCHEMA, "text", words)


def _hashtag(tag: str) -> tantivy.Query:
    """A hashtag matches posts tagged with it, or posts that write its words in that order."""
    words = terms(split_hashtag(tag))
    tagged = _term("hashtags", normalize_tag(tag))
    if not words:
        return tagged
    written = _term("text", words[0]) if len(words) == 1 else _phrase(words)
    return tantivy.Query.boolean_query([(tantivy.Occur.Should, tagged), (tantivy.Occur.Should, written)])
