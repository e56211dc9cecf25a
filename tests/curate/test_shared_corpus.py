"""On real posts (../shared/data/real_posts, skipped when absent): filters made for posts keep posts."""

from __future__ import annotations

import json
import random
from collections import Counter

from roost.curate.config import CurateConfig
from roost.curate.langid import LanguageId, model_text
from roost.curate.stages import build_steps
from roost.curate.steps import Doc, Exclusions, run_steps
from tests.conftest import REAL_POSTS, need
from tests.curate.handmade import make_post


def sample(n: int) -> list[dict]:
    rows = [json.loads(line) for line in need(REAL_POSTS).read_text(encoding="utf-8").splitlines()]
    return random.Random(0).sample(rows, n)


def test_post_filters_keep_real_posts() -> None:
    rows = sample(4000)
    exclusions = Exclusions(sample=0.0)
    steps = [s for s in build_steps(CurateConfig()) if s.name != "dedup"]
    docs = [Doc(post=make_post(i, r["text"], lang=r["lang"]), text=r["text"]) for i, r in enumerate(rows)]
    kept = list(run_steps(steps, docs, exclusions))
    share = len(kept) / len(rows)
    print(f"kept {share:.1%} of {len(rows)} real posts; removed {dict(exclusions.counts)}")
    assert share >= 0.97  # Gopher's web-page rules keep almost none of them


def test_language_id_on_real_posts() -> None:
    rows = sample(3000)
    lid = LanguageId(CurateConfig().langid)
    right, combined, counted = Counter(), 0, Counter()
    for row in rows:
        clean = model_text(row["text"])
        bucket = "long" if len(clean) >= 50 else "short"
        counted[bucket] += 1
        right[bucket] += lid.predict(clean)[0] == row["lang"]
        combined += lid.decide(row["text"], row["lang"])[0] == row["lang"]
    accuracy = {b: right[b] / counted[b] for b in counted}
    print(f"model alone: {accuracy}; with the declared language as prior: {combined / len(rows):.4f}")
    assert accuracy["long"] >= 0.95
    assert combined / len(rows) >= 0.99
