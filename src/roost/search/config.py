"""The `[search]` section of roost.toml: how the index is partitioned, which model embeds posts,
and how retrieval weighs relevance, recency and engagement. Every default works on one CPU."""

from __future__ import annotations

import msgspec


class SearchConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # -- index ----------------------------------------------------------------------------------
    # A partition takes posts in arrival order until it holds this many or spans this much time
    # (of created_at), as Earlybird's segments did; only the newest one is written.
    # A query fans out over every partition its time range meets, so fewer, fuller partitions are
    # faster to search; a week bounds how much a partition's rebuild after deletes has to redo.
    partition_posts: int = 250_000
    partition_hours: float = 168.0
    batch_events: int = 5000  # the most events applied in one transaction
    rebuild_deleted_fraction: float = 0.02  # rebuild a partition's vectors past this share of deletes
    build_workers: int = 2  # processes building sealed partitions' lexical indexes in `index build`

    # -- dense ----------------------------------------------------------------------------------
    # "auto": the tuned embedder in <index>/embedder when there is one, else the newest run;
    # a run or export name or directory (the in-house model); "st:<directory>" a sentence-transformers
    # model installed locally; "none": lexical only.
    embedder: str = "auto"
    embed_batch: int = 256  # posts embedded per call by the dense indexer
    # Padded tokens per forward of the embedder (the engine's [serve] embed_batch_tokens, for the
    # index's own engine): small forwards stay in a CPU's caches; 1024 embedded 1.4x faster than
    # 8192 on the 2-core box (docs/benchmarks.md). Raise it on a GPU.
    embed_batch_tokens: int = 1024
    # usearch storage: f32, f16 or i8. f16 halves the memory but keeps ~3 decimal digits, which can
    # reorder neighbours of an embedder whose similarities crowd together near 1.
    vector_dtype: str = "f32"
    connectivity: int = 16  # HNSW M
    expansion_add: int = 64  # HNSW efConstruction
    expansion_search: int = 128  # HNSW ef
    vector_save_s: float = 30.0  # how often the dense indexer saves what it added

    # -- retrieval --------------------------------------------------------------------------------
    candidates: int = 200  # taken from each of the lexical and dense sides before fusion
    rrf_k: int = 60  # reciprocal rank fusion's constant (Cormack et al. 2009)
    weight_relevance: float = 1.0  # final score: relevance (fused, scaled to 0..1) ...
    weight_recency: float = 0.15  # ... + recency (exp decay, 1 for the newest) ...
    weight_engagement: float = 0.15  # ... + engagement (log-scaled to 0..1 among the candidates)
    recency_halflife_hours: float = 24.0
    dense_min_similarity: float = 0.5  # a dense-only hit counts as matching (sort=latest) above this

    # -- answers and suggestions -------------------------------------------------------------------
    generator: str = ""  # run or export that writes answers and suggestions; "" newest run; "none"
    answer_posts: int = 12  # posts an answer is written from
    answer_min_similarity: float = 0.35  # a post supports a sentence at this similarity or more ...
    answer_min_shared_terms: int = 1  # ... and sharing at least this many content terms
    suggest_limit: int = 8

    def __post_init__(self) -> None:
        names = (
            "partition_posts",
            "batch_events",
            "embed_batch",
            "embed_batch_tokens",
            "candidates",
            "rrf_k",
        )
        for name in names:
            if getattr(self, name) < 1:
                raise ValueError(f"[search] {name} must be at least 1")
        if self.partition_hours <= 0 or self.recency_halflife_hours <= 0:
            raise ValueError("[search] partition_hours and recency_halflife_hours must be positive")
        if self.vector_dtype not in ("f32", "f16", "i8"):
            raise ValueError(f"[search] vector_dtype must be f32, f16 or i8, not {self.vector_dtype!r}")
        if not 0.0 < self.rebuild_deleted_fraction <= 1.0:
            raise ValueError("[search] rebuild_deleted_fraction must be in (0, 1]")
