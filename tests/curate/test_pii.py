"""PII scrubbing: recall on a generated labelled set, precision on look-alikes, nothing in the shards."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from roost.curate.config import PiiConfig
from roost.curate.pii import PiiScrubber, luhn_valid
from roost.curate.pipeline import curate
from roost.curate.shards import ShardSet
from roost.tokenizer import load_tokenizer
from tests.curate.handmade import chatter, make_post, small_config, store_posts
from tests.curate.pii_cases import labelled_cases

_TAG = re.compile(r"\[(?:email|phone|ip|card|secret)\]")


def test_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")


def test_recall_and_precision_on_the_labelled_set() -> None:
    positives, negatives = labelled_cases()
    scrubber = PiiScrubber(PiiConfig())
    found, total = Counter(), Counter()
    for case in positives:
        out = scrubber.scrub(case.text, case.lang)
        total[case.kind] += 1
        found[case.kind] += case.value not in out and f"[{case.kind}]" in out
    false_tags = sum(len(_TAG.findall(scrubber.scrub(case.text, case.lang))) for case in negatives)
    recall = sum(found.values()) / sum(total.values())
    precision = sum(found.values()) / (sum(found.values()) + false_tags)
    for kind in sorted(total):
        print(f"{kind:7s} recall {found[kind] / total[kind]:.3f} ({found[kind]}/{total[kind]})")
    print(
        f"overall recall {recall:.4f} over {sum(total.values())} cases; precision {precision:.4f} "
        f"({false_tags} tags in {len(negatives)} look-alikes)"
    )
    assert len(total) == 5 and sum(total.values()) >= 400
    assert recall >= 0.99
    assert precision >= 0.95


def test_replacement_keeps_the_rest_of_the_post() -> None:
    scrubber = PiiScrubber(PiiConfig())
    assert (
        scrubber.scrub("mail jane.doe@example.com, or call +44 20 7946 0958!")
        == "mail [email], or call [phone]!"
    )
    assert scrubber.scrub("api_key: sk_live_4eC39HqLyjWDarjtT1zdp7dc") == "api_key: [secret]"
    # A loopback address identifies no one; a handle is not an e-mail address.
    assert scrubber.scrub("server on 127.0.0.1, ping @jane") == "server on 127.0.0.1, ping @jane"


def test_no_pii_string_reaches_any_shard(ws) -> None:
    positives, _ = labelled_cases()
    posts = chatter(1500, seed=3)
    for i, case in enumerate(positives):
        # Each PII post also says something of its own, so dedup does not hide a leak.
        filler = " ".join(posts[i].text.split()[:6])
        posts.append(make_post(5000 + i, f"{filler} {case.text}", author=f"pii{i}", lang=case.lang))
    small_config(ws)
    store_posts(ws, posts)
    curate(ws)

    tokenizer = load_tokenizer(ws.tokenizer_dir)
    shards = ShardSet.open(ws.shards_dir)
    decoded = []
    for split in ("train", "val"):
        for shard in shards.shards(split):
            tokens = np.asarray(shard.tokens)
            decoded.append(
                tokenizer.decode(tokens[tokens != shards.eot_id].tolist(), skip_special_tokens=False)
            )
    text = "\n".join(decoded)
    assert len(text) > 10_000
    leaked = [case.value for case in positives if case.value in text]
    # Numbers can be written with other separators; compare digits only for phones and cards.
    digits_text = re.sub(r"\D", "", text)
    leaked += [
        case.value
        for case in positives
        if case.kind in ("phone", "card")
        and len(re.sub(r"\D", "", case.value)) >= 9
        and re.sub(r"\D", "", case.value) in digits_text
    ]
    assert leaked == []
    assert text.count("[email]") + text.count("[phone]") + text.count("[secret]") > 100
