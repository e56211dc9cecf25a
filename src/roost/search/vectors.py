"""One partition's vector index (usearch HNSW over unit vectors, inner product), saved atomically
with the highest key it holds.

Deleted posts are never removed through the library: search results are filtered by the index's
tombstones at once, and a partition whose share of deleted vectors grows past a bound is rebuilt
from its live vectors (`rebuilt`), which is the only way a vector ever leaves. The file's meta
names the embedder, so vectors of another model are never mixed with the query's.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import threading
from pathlib import Path

import numpy as np

# usearch's extension carries its own copy of libstdc++ and exports it, GNU-unique symbols (the
# C++ locale's facet ids among them) included. Loaded before any user of the system's libstdc++,
# its definitions win for the whole process, and pyarrow later segfaulted compiling a std::regex
# while converting a time zone. The system's libstdc++, loaded into the global scope first, keeps
# the system's definitions the process-wide ones (importing torch first does the same).
with contextlib.suppress(OSError):  # OSError: not a glibc system, no system libstdc++ to protect
    ctypes.CDLL("libstdc++.so.6", mode=os.RTLD_GLOBAL)

from usearch.index import Index  # after the libstdc++ above


class VectorPartition:
    """A partition's usearch index. Adding and searching may happen on different threads."""

    def __init__(
        self,
        directory: Path,
        embedder: str,
        dim: int,
        *,
        dtype: str = "f32",
        connectivity: int = 16,
        expansion_add: int = 64,
        expansion_search: int = 128,
    ) -> None:
        self.directory = directory
        self.embedder, self.dim = embedder, dim
        self._options = {
            "dtype": dtype,
            "connectivity": connectivity,
            "expansion_add": expansion_add,
            "expansion_search": expansion_search,
        }
        self._lock = threading.Lock()
        self.watermark = -1  # the highest key added
        self.saved_watermark = -1
        self.index = self._new()
        meta = self._read_meta()
        if meta is not None and meta.get("embedder") == embedder and meta.get("dim") == dim:
            self.index.load(str(self.path))
            self.watermark = self.saved_watermark = int(meta["watermark"])

    @property
    def path(self) -> Path:
        return self.directory / "vectors.usearch"

    @property
    def meta_path(self) -> Path:
        return self.directory / "vectors.json"

    def _new(self) -> Index:
        return Index(ndim=self.dim, metric="ip", multi=False, **self._options)

    def _read_meta(self) -> dict | None:
        try:
            meta = json.loads(self.meta_path.read_text())
        except (FileNotFoundError, ValueError):
            return None
        return meta if self.path.exists() else None

    def __len__(self) -> int:
        return len(self.index)

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under keys, skipping keys already held (a replay after a crash adds each once)."""
        with self._lock:
            fresh = (
                ~np.asarray(self.index.contains(keys), dtype=bool)
                if len(self.index)
                else np.ones(len(keys), bool)
            )
            if fresh.any():
                self.index.add(keys[fresh], vectors[fresh], threads=1)
            if len(keys):
                self.watermark = max(self.watermark, int(keys.max()))

    def search(self, vector: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(keys, cosine similarities) of the `count` nearest vectors, best first."""
        with self._lock:
            if len(self.index) == 0:
                return np.empty(0, np.int64), np.empty(0, np.float32)
            matches = self.index.search(vector, min(count, len(self.index)))
        return matches.keys.astype(np.int64), 1.0 - matches.distances.astype(np.float32)

    def vectors(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(keys found, their vectors as float32) for the keys this index holds."""
        with self._lock:
            held = np.asarray(self.index.contains(keys), dtype=bool) if len(keys) else np.zeros(0, bool)
            found = keys[held]
            if not len(found):
                return found, np.empty((0, self.dim), np.float32)
            return found, np.asarray(self.index.get(found), dtype=np.float32).reshape(len(found), self.dim)

    def keys(self) -> np.ndarray:
        with self._lock:
            return np.asarray(self.index.keys, dtype=np.int64)

    def rebuild(self, alive: np.ndarray) -> int:
        """Replace the index by one holding only the vectors of `alive` keys; returns how many left."""
        with self._lock:
            before = len(self.index)
            keep = alive[np.asarray(self.index.contains(alive), dtype=bool)] if len(alive) else alive
            fresh = self._new()
            if len(keep):
                fresh.add(keep, np.asarray(self.index.get(keep), dtype=np.float32), threads=1)
            self.index = fresh
            return before - len(fresh)

    def save(self) -> None:
        """Write the index, then its meta, each by rename: a crash leaves the old pair or a newer
        index with the old meta, whose watermark is then lower than the truth (replay skips what
        is already held)."""
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            self.index.save(str(tmp))
            os.replace(tmp, self.path)
            watermark = self.watermark
        meta = {"embedder": self.embedder, "dim": self.dim, "watermark": watermark}
        tmp_meta = self.meta_path.with_suffix(".tmp")
        tmp_meta.write_text(json.dumps(meta))
        os.replace(tmp_meta, self.meta_path)
        self.saved_watermark = watermark
