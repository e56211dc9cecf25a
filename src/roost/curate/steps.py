"""The step contract: a step takes an iterator of documents, yields documents, and counts.

Like datatrove's pipeline steps: every step is called with the documents and its `rank` and
`world_size`, yields what it keeps (possibly changed), counts what it did in `stats`, and hands every
document it removes to the `Exclusions` writer with a reason. Steps know nothing about processes,
files or schedulers; the runner (`pipeline.py`) composes them and decides where they run.
"""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import msgspec

from roost.posts import Post


class Doc(msgspec.Struct):
    """A post on its way through curation: the original post, and what the steps found out."""

    post: Post
    #: The text as normalised (and scrubbed) so far; the post's own text is left as received.
    text: str
    #: Where it came from: the raw store's rowid; and, computed once on reading, its author's hash
    #: and its time in µs since the epoch.
    rowid: int = 0
    author_hash: int = 0
    created_us: int = 0
    lang: str = "und"
    lang_score: float = 0.0
    #: A removal a reply is forgiven when its parent is in the corpus (see clusters.py).
    soft_reason: str | None = None
    #: Filled by the dedup signature step: the exact-text hash, the near-dup key (dedup.near_key),
    #: the packed MinHash bands, and the one-added-word keys of a short post (see dedup.word_keys).
    exact_hash: int = 0
    key: str = ""
    bands: bytes = b""
    word_keys: tuple[int, list[int]] | None = None


class Exclusion(msgspec.Struct):
    """A removed document as quarantine keeps it."""

    reason: str
    rowid: int
    id: str
    author_id: str
    text: str


class Exclusions:
    """Counts removals by (step, reason) and keeps a deterministic sample of them.

    The sample is chosen by a hash of the post id, so a rerun samples the same posts.
    """

    def __init__(self, sample: float) -> None:
        self.counts: Counter[str] = Counter()
        self.sampled: list[Exclusion] = []
        self._cut = int(sample * 10_000)

    def add(self, step: str, reason: str, doc: Doc) -> None:
        # The text as the steps left it: scrubbed of PII when the PII step ran before the removal.
        self.add_record(f"{step}.{reason}", doc.rowid, doc.post.id, doc.post.author_id, doc.text)

    def add_record(self, key: str, rowid: int, post_id: str, author_id: str, text: str) -> None:
        self.counts[key] += 1
        if zlib.crc32(post_id.encode()) % 10_000 < self._cut:
            self.sampled.append(Exclusion(key, rowid, post_id, author_id, text))

    def add_undecodable(self, rowid: int, data: bytes | str, error: str) -> None:
        """A raw record that is not a Post: always kept for a person to look at."""
        self.counts["read.decode_error"] += 1
        # SQLite hands back text, not bytes, for a row some other tool stored as TEXT.
        text = data if isinstance(data, str) else data.decode("utf-8", "replace")
        self.sampled.append(Exclusion(f"read.decode_error: {error}", rowid, "", "", text))


class Step:
    """One stage of per-document work. Subclasses implement `process` (or override `__call__`)."""

    name = "step"

    def __init__(self) -> None:
        self.stats: Counter[str] = Counter()
        self.exclusions: Exclusions | None = None

    def __call__(self, docs: Iterable[Doc], rank: int = 0, world_size: int = 1) -> Iterator[Doc]:
        for doc in docs:
            self.process(doc)
            yield doc

    def process(self, doc: Doc) -> None:
        raise NotImplementedError

    def exclude(self, doc: Doc, reason: str) -> None:
        self.stats[f"removed.{reason}"] += 1
        if self.exclusions is not None:
            self.exclusions.add(self.name, reason, doc)


class Filter(Step):
    """A step that keeps or removes each document: `reject` returns a reason, or None to keep.

    A reason in `soft_reasons` does not remove the document here: it is marked, and the global
    stage decides (a short reply is kept when its parent is in the corpus).
    """

    soft_reasons: frozenset[str] = frozenset()

    def __call__(self, docs: Iterable[Doc], rank: int = 0, world_size: int = 1) -> Iterator[Doc]:
        stats = self.stats
        for doc in docs:
            reason = self.reject(doc)
            if reason is None:
                yield doc
            elif reason in self.soft_reasons:
                if doc.soft_reason is None:
                    doc.soft_reason = f"{self.name}.{reason}"
                stats[f"marked.{reason}"] += 1
                yield doc
            else:
                self.exclude(doc, reason)

    def reject(self, doc: Doc) -> str | None:
        raise NotImplementedError


def run_steps(
    steps: Sequence[Step], docs: Iterable[Doc], exclusions: Exclusions, rank: int = 0, world_size: int = 1
) -> Iterator[Doc]:
    """Chain `steps` over `docs` lazily; every step reports removals to `exclusions`."""
    stream: Iterable[Doc] = docs
    for step in steps:
        step.exclusions = exclusions
        stream = step(stream, rank, world_size)
    return iter(stream)


def step_stats(steps: Sequence[Step]) -> dict[str, dict[str, Any]]:
    """Each step's counters, for the manifest."""
    return {step.name: dict(sorted(step.stats.items())) for step in steps}
