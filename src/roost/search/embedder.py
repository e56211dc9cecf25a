"""What turns text into the vectors the dense index holds: the in-house model through the serving
engine (its mean-pooled, unit-length hidden states, after `roost index tune-embedder`), or a
sentence-transformers model installed on this machine. Chosen by `[search] embedder`; nothing is
ever downloaded.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from roost.workspace import Workspace

TUNED_DIR = "embedder"  # <index>/embedder: where tune-embedder writes the tuned model (a run)
ST_PREFIX = "st:"


class Embedder(Protocol):
    name: str  # identifies the model: vectors of different names are never compared
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """(N, dim) float32 unit rows."""
        ...


class EngineEmbedder:
    """The in-house model's embeddings through a serving Engine (its own thread and batching)."""

    def __init__(self, engine: Any, name: str) -> None:
        self.engine = engine
        self.name = name
        self.dim = engine.model.config.dim

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dim), np.float32)
        return self.engine.embed(list(texts), truncate=True)

    def close(self) -> None:
        self.engine.close()


class SentenceTransformerEmbedder:
    """A sentence-transformers model from a local directory (HF_HUB_OFFLINE: never downloads)."""

    def __init__(self, directory: Path) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise RuntimeError(
                "[search] embedder names a sentence-transformers model, but sentence-transformers "
                "is not installed: pip install sentence-transformers"
            ) from exc
        if not Path(directory).is_dir():
            raise FileNotFoundError(f"no sentence-transformers model directory at {directory}")
        self.model = SentenceTransformer(str(directory), device="cpu", local_files_only=True)
        self.name = f"st:{Path(directory).resolve().name}"
        dimension = (
            getattr(self.model, "get_embedding_dimension", None)
            or self.model.get_sentence_embedding_dimension
        )
        self.dim = int(dimension())

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.empty((0, self.dim), np.float32)
        vectors = self.model.encode(list(texts), batch_size=128, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32)

    def close(self) -> None:
        return None


def engine_for(ws: Workspace, source: str, **serve_overrides: Any) -> Any:
    """An Engine over a run or export (name or path) with [serve]'s settings; CPU threads are the
    caller's business."""
    import msgspec

    from roost.serve.config import ServeConfig
    from roost.serve.engine import Engine
    from roost.serve.loader import load_served_model

    config = msgspec.structs.replace(ws.config("serve", ServeConfig), **serve_overrides)
    served = load_served_model(ws, source, device=config.device, dtype=config.dtype)
    return Engine(served.model, served.tokenizer, config, name=served.name)


def load_embedder(
    ws: Workspace, choice: str, index_dir: Path, *, batch_tokens: int | None = None
) -> Embedder | None:
    """The embedder `[search] embedder` names (see SearchConfig), or None for "none" or when "auto"
    finds no model at all (the index is then lexical only). `batch_tokens` sets the engine's
    padded tokens per forward ([serve]'s when None)."""
    if choice == "none":
        return None
    if choice.startswith(ST_PREFIX):
        return SentenceTransformerEmbedder(Path(choice[len(ST_PREFIX) :]).expanduser())
    source = choice
    if choice == "auto":
        tuned = index_dir / TUNED_DIR
        if (tuned / "config.json").exists():
            source = str(tuned)
        else:
            source = ""
            has_run = any((p / "config.json").exists() for p in ws.runs_dir.glob("*"))
            if not has_run:
                return None
    overrides: dict[str, Any] = {"max_batch": 1, "cuda_graphs": False}
    if batch_tokens is not None:
        overrides["embed_batch_tokens"] = batch_tokens
    engine = engine_for(ws, source, **overrides)
    name = Path(source).name if source else engine.name
    return EngineEmbedder(engine, f"roost:{name}:{_fingerprint(engine)}")


def _fingerprint(engine: Any) -> str:
    """A short hash of the model's weights' shapes and a few values: retuning the embedder changes
    it, so old vectors are recomputed rather than compared with new ones."""
    import hashlib

    import torch

    digest = hashlib.sha256()
    with torch.no_grad():
        for name, tensor in sorted(engine.model.state_dict().items()):
            if tensor.numel():
                flat = tensor.detach().float().flatten()
                digest.update(name.encode())
                digest.update(flat[:: max(1, flat.numel() // 64)].cpu().numpy().tobytes())
    return digest.hexdigest()[:12]
