"""Spam: boilerplate phrases in a post, and bot accounts judged over the whole corpus.

A post is boilerplate spam when it matches one of the configured phrases ("follow for follow",
"check my bio", crypto giveaways). An account is a bot when it sits in the most-active tail (posting
around the clock, or more than almost everyone) or blasts copies of one text; every post of such an
account goes. Account rules need counts over every rank's posts, so they run in the global stage
(`clusters.py`) on the per-author counts this module merges.
"""

from __future__ import annotations

import re

import numpy as np

from roost.curate.config import SpamConfig
from roost.curate.steps import Doc, Filter

#: Per-author activity: how many posts, and the first and last post time (µs since the epoch).
AUTHOR_DTYPE = np.dtype([("author", "<u8"), ("posts", "<i8"), ("first", "<i8"), ("last", "<i8")])

_DAY_US = 86_400 * 1_000_000


class BoilerplateSpam(Filter):
    """Posts matching a configured spam phrase.

    Patterns are matched one by one against the lowercased text, and only when the text contains
    the literal text each one starts with: a substring test costs a fraction of a regex search, and
    most posts contain none of them.
    """

    name = "spam"

    def __init__(self, config: SpamConfig) -> None:
        super().__init__()
        self.patterns = [(literal_prefix(p), re.compile(p)) for p in config.boilerplate_patterns]

    def reject(self, doc: Doc) -> str | None:
        text = doc.text.lower()
        for prefix, pattern in self.patterns:
            if prefix in text and pattern.search(text):
                return "boilerplate"
        return None


def literal_prefix(pattern: str) -> str:
    """Text every match of `pattern` starts with ("" when it cannot tell)."""
    if "|" in re.sub(r"\\.|\[[^\]]*\]|\((?:[^()]|\([^()]*\))*\)", "", pattern):
        return ""  # an alternative at the top level: matches need not share a start
    prefix = []
    for ch in pattern:
        if ch in "\\.^$*+?{}[]|()":
            if ch in "*?{" and prefix:
                prefix.pop()  # the last character was optional or repeated
            break
        prefix.append(ch)
    return "".join(prefix)


def author_activity(authors: np.ndarray, created_us: np.ndarray) -> np.ndarray:
    """One AUTHOR_DTYPE row per distinct author hash, sorted by hash."""
    if authors.size == 0:
        return np.zeros(0, AUTHOR_DTYPE)
    order = np.lexsort((created_us, authors))
    authors, created_us = authors[order], created_us[order]
    starts = np.flatnonzero(np.r_[True, authors[1:] != authors[:-1]])
    ends = np.r_[starts[1:], authors.size]
    out = np.zeros(starts.size, AUTHOR_DTYPE)
    out["author"] = authors[starts]
    out["posts"] = ends - starts
    out["first"] = created_us[starts]
    out["last"] = created_us[ends - 1]
    return out


def merge_activity(tables: list[np.ndarray]) -> np.ndarray:
    """Several AUTHOR_DTYPE tables as one: counts added, first/last widened."""
    if not tables:
        return np.zeros(0, AUTHOR_DTYPE)
    rows = np.concatenate(tables)
    if rows.size == 0:
        return rows
    order = np.argsort(rows["author"], kind="stable")
    rows = rows[order]
    starts = np.flatnonzero(np.r_[True, rows["author"][1:] != rows["author"][:-1]])
    out = np.zeros(starts.size, AUTHOR_DTYPE)
    out["author"] = rows["author"][starts]
    out["posts"] = np.add.reduceat(rows["posts"], starts)
    out["first"] = np.minimum.reduceat(rows["first"], starts)
    out["last"] = np.maximum.reduceat(rows["last"], starts)
    return out


def most_active_authors(activity: np.ndarray, config: SpamConfig) -> np.ndarray:
    """Author hashes in the most-active tail: more posts per day, over the span of their posts (at
    least a day), than anyone posting by hand keeps up."""
    if activity.size == 0:
        return np.zeros(0, np.uint64)
    days = np.maximum((activity["last"] - activity["first"]) / _DAY_US, 1.0)
    return np.sort(activity["author"][activity["posts"] / days >= config.bot_posts_per_day])


def blasting_authors(
    cluster: np.ndarray, authors: np.ndarray, created_us: np.ndarray, activity: np.ndarray, config: SpamConfig
) -> np.ndarray:
    """Author hashes whose posting is copy-paste blasting: at least `blast_min_copies` copies of one
    text within `blast_window_minutes`, and such bursts at least `blast_min_share` of everything
    they posted.

    `cluster`, `authors` and `created_us` are parallel arrays over the original (non-reply) posts
    that are in some duplicate cluster; `activity` (AUTHOR_DTYPE, sorted) has every author's post
    count. Copies spread over days are a habit, and one burst in a month of posting is an accident;
    an account that mostly bursts is a bot.
    """
    need, window = config.blast_min_copies, int(config.blast_window_minutes * 60 * 1_000_000)
    if cluster.size < need:
        return np.zeros(0, np.uint64)
    order = np.lexsort((created_us, authors, cluster))
    cluster, authors, created_us = cluster[order], authors[order], created_us[order]
    starts = np.flatnonzero(np.r_[True, (cluster[1:] != cluster[:-1]) | (authors[1:] != authors[:-1])])
    ends = np.r_[starts[1:], cluster.size]
    in_burst: dict[int, int] = {}
    for start, end in zip(
        starts[ends - starts >= need].tolist(), ends[ends - starts >= need].tolist(), strict=True
    ):
        times = created_us[start:end]
        # Posts within the window up to each post, itself included; a full window marks them all.
        counts = np.arange(times.size) - np.searchsorted(times, times - window) + 1
        full = np.flatnonzero(counts >= need)
        if full.size:
            marks = np.zeros(times.size + 1, dtype=np.int64)
            np.add.at(marks, full - counts[full] + 1, 1)
            np.add.at(marks, full + 1, -1)
            author = int(authors[start])
            in_burst[author] = in_burst.get(author, 0) + int((np.cumsum(marks[:-1]) > 0).sum())
    if not in_burst:
        return np.zeros(0, np.uint64)
    found = np.array(sorted(in_burst), dtype=np.uint64)
    bursts = np.array([in_burst[a] for a in found.tolist()], dtype=np.int64)
    posts = activity["posts"][np.searchsorted(activity["author"], found)]
    return found[bursts >= config.blast_min_share * posts]
