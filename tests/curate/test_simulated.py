"""Curation of the simulated platform, judged against what the simulator knows it made."""

from __future__ import annotations

import itertools
from collections import Counter

from roost.curate.corpus import read_corpus
from roost.curate.pipeline import curate
from roost.firehose.simulate import SimConfig, Simulator
from roost.rawstore import RawStore
from tests.curate.handmade import small_config


def test_copies_spam_and_deletes_on_the_simulated_platform(ws) -> None:
    small_config(ws, chunk_rows=2000)
    truth, deleted = {}, set()
    events = list(
        itertools.islice(Simulator(SimConfig(seed=3, spam_campaigns_per_day=40.0)).labelled(), 12_000)
    )
    with RawStore.in_dir(ws.raw_dir) as store:
        store.apply(event for event, _ in events)
    for event, label in events:
        if event.type == "post":
            truth[event.id] = label
        else:
            deleted.add(event.id)
    curate(ws)

    kept: dict[str, dict] = {}
    for batch in read_corpus(ws.corpus_dir, ["id", "lang", "reply_to"]):
        kept.update((row["id"], row) for row in batch.to_pylist())
    assert not deleted & kept.keys()
    present = [i for i in truth if i not in deleted]
    removed = Counter()
    total = Counter()
    for post_id in present:
        label = truth[post_id]
        kind = "spam" if label.is_spam else "copy" if label.copy_of else label.kind
        total[kind] += 1
        removed[kind] += post_id not in kept
    share = {kind: removed[kind] / total[kind] for kind in total}
    print({kind: f"{share[kind]:.2f} of {total[kind]}" for kind in sorted(total)})
    assert total["copy"] >= 20 and share["copy"] >= 0.9
    assert total["spam"] >= 50 and share["spam"] >= 0.6
    assert share["repost"] >= 0.9  # the same text as the post it reposts
    assert share["reply"] <= 0.35 and share["original"] <= 0.4
    languages = Counter(row["lang"] for row in kept.values())
    assert sum(languages[lang] for lang in ("en", "es", "fr", "de")) >= 0.97 * len(kept)
    # Threads survive: most kept replies have their parent in the corpus too.
    replies = [row for row in kept.values() if row["reply_to"]]
    assert sum(row["reply_to"] in kept for row in replies) >= 0.5 * len(replies)
