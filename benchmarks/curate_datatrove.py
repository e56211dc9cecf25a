"""datatrove's side of `bench_curate`: the closest datatrove pipeline to `roost curate`, on the same posts.

Runs inside its own virtual environment (datatrove pins clash with roost's), started by
bench_curate.py as `python curate_datatrove.py POSTS.jsonl WORKDIR TOKENIZER_DIR SPAM_REGEX`. Stages,
each a LocalPipelineExecutor with one worker, as datatrove's own examples chain them:

1. read JSONL, ftfy (text fixing: entities, Unicode), PII (e-mails, IPs), Gopher repetition and
   quality filters (thresholds relaxed for posts, or they drop nearly every post; relaxed, they
   keep about as many as roost does, so both sides do the same work downstream), the same
   spam phrases as a regex filter, fastText lid.176 (the same compressed model roost uses, labels
   only), write JSONL;
2-5. MinHash dedup (signatures, buckets, clusters, filter) with datatrove's defaults (word 5-grams,
   14 bands of 8);
6. tokenize with the tokenizer roost trained, writing datatrove's token files.

Prints one JSON line: documents in and out, wall and CPU seconds of the whole run.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main(posts: Path, work: Path, tokenizer_dir: Path, spam_regex: str, lid_model: Path) -> dict:
    from datatrove.executor.local import LocalPipelineExecutor
    from datatrove.pipeline.dedup.minhash import (
        MinhashConfig,
        MinhashDedupBuckets,
        MinhashDedupCluster,
        MinhashDedupFilter,
        MinhashDedupSignature,
    )
    from datatrove.pipeline.filters import (
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
        RegexFilter,
    )
    from datatrove.pipeline.formatters import FTFYFormatter, PIIFormatter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.tokens import DocumentTokenizer
    from datatrove.pipeline.writers import JsonlWriter

    language = LanguageFilter(label_only=True)
    # The same model file roost reads ("downloading" it copies the local file), so nothing is fetched.
    language.model.MODEL_URL = str(lid_model.resolve())
    minhash = MinhashConfig()

    def run(name: str, pipeline: list, tasks: int = 1) -> None:
        executor = LocalPipelineExecutor(
            pipeline=pipeline, tasks=tasks, workers=1, logging_dir=str(work / "logs" / name)
        )
        executor.run()

    run(
        "filter",
        [
            JsonlReader(str(posts.parent), glob_pattern=posts.name),
            FTFYFormatter(),
            PIIFormatter(),
            # Top n-gram shares count n-grams seen once, so every short post "repeats": off.
            GopherRepetitionFilter(top_n_grams=()),
            # Thresholds for posts: a word or two, any word length, no stop words needed, hashtags
            # and emoji allowed, trailing "..." allowed (truncated cross-posts).
            GopherQualityFilter(
                min_doc_words=1,
                min_avg_word_length=None,
                max_avg_word_length=None,
                min_stop_words=None,
                max_symbol_word_ratio=0.5,
                max_non_alpha_words_ratio=0.5,
                max_ellipsis_lines_ratio=None,
            ),
            RegexFilter(spam_regex),
            language,
            JsonlWriter(str(work / "filtered")),
        ],
    )
    run(
        "signatures",
        [JsonlReader(str(work / "filtered")), MinhashDedupSignature(str(work / "sigs"), minhash)],
    )
    # One task per bucket (datatrove requires it), run one after another on one worker.
    run(
        "buckets",
        [MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=minhash)],
        minhash.num_buckets,
    )
    run("clusters", [MinhashDedupCluster(str(work / "buckets"), str(work / "remove"), config=minhash)])
    run(
        "dedup",
        [
            JsonlReader(str(work / "filtered")),
            MinhashDedupFilter(str(work / "remove")),
            JsonlWriter(str(work / "deduped")),
        ],
    )
    run(
        "tokenize",
        [
            JsonlReader(str(work / "deduped")),
            DocumentTokenizer(
                str(work / "tokens"), tokenizer_name_or_path=str(tokenizer_dir / "tokenizer.json")
            ),
        ],
    )
    kept = sum(1 for path in (work / "deduped").glob("*.jsonl*") for _ in _lines(path))
    return {"kept": kept}


def _lines(path: Path):
    import gzip

    with gzip.open(path, "rt") if path.suffix == ".gz" else open(path) as handle:
        yield from handle


if __name__ == "__main__":
    posts, work, tokenizer_dir, spam_regex, lid_model = sys.argv[1:6]
    started, cpu_started = time.perf_counter(), cpu_seconds()
    result = main(Path(posts), Path(work), Path(tokenizer_dir), spam_regex, Path(lid_model))
    result.update(seconds=time.perf_counter() - started, cpu_seconds=cpu_seconds() - cpu_started)
    print(json.dumps(result))
