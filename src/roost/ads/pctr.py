"""Predicted click-through rate: logistic regression on hashed features, trained on the ledger.

The auction logs every impression's features with it (`ledger.features`: space-separated names
such as `c:12|ut:football`), so the model trains on exactly what the server saw when it served,
and an impression's click (a later ledger row) is its label. Feature names are hashed (CRC-32)
into 2^20 weights; predicting is a sum of a few weights and a sigmoid. Saved in the ads store as
the model "pctr"; before one is trained every candidate gets `[ads] prior_ctr`.
"""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Iterable, Sequence

import msgspec
import numpy as np

MODEL_NAME = "pctr"
BITS = 20
_MASK = (1 << BITS) - 1


def feature_index(names: Iterable[str]) -> np.ndarray:
    """The weight indices of feature names (each counted once)."""
    return np.unique(np.fromiter((zlib.crc32(n.encode()) & _MASK for n in names), np.int64))


class PctrModel:
    def __init__(self, weights: np.ndarray, bias: float, meta: dict | None = None) -> None:
        self.weights = weights.astype(np.float32)
        self.bias = float(bias)
        self.meta = meta or {}

    @classmethod
    def prior(cls, ctr: float) -> PctrModel:
        """Every impression at `ctr`: the model before there is anything to learn from."""
        return cls(np.zeros(1 << BITS, np.float32), math.log(ctr / (1 - ctr)), {"prior": ctr})

    @property
    def trained(self) -> bool:
        return "prior" not in self.meta

    def predict(self, feature_lists: Sequence[Sequence[str]]) -> np.ndarray:
        logits = np.fromiter(
            (self.bias + float(self.weights[feature_index(f)].sum()) for f in feature_lists),
            np.float64,
            len(feature_lists),
        )
        return 1.0 / (1.0 + np.exp(-logits))

    @classmethod
    def train(
        cls, feature_lists: Sequence[Sequence[str]], clicked: np.ndarray, *, c: float = 0.1
    ) -> PctrModel:
        """Fit on impressions' features and whether each was clicked (L2, inverse strength `c`)."""
        from scipy.sparse import csr_matrix
        from sklearn.linear_model import LogisticRegression

        y = np.asarray(clicked, np.int64)
        if len(y) == 0 or y.min() == y.max():
            raise ValueError("a click model needs impressions both clicked and not clicked")
        indices = [feature_index(f) for f in feature_lists]
        indptr = np.cumsum([0, *(len(i) for i in indices)])
        # Train over the columns in use only (a few thousand of the 2^20): the solver's cost is
        # then that of the data, not of the hash space. Unused weights stay 0, as L2 would leave them.
        used, columns = np.unique(np.concatenate(indices), return_inverse=True)
        x = csr_matrix((np.ones(len(columns), np.float32), columns, indptr), shape=(len(indices), len(used)))
        model = LogisticRegression(C=c, solver="liblinear", max_iter=200).fit(x, y)
        weights = np.zeros(1 << BITS, np.float32)
        weights[used] = model.coef_[0]
        meta = {"impressions": len(y), "clicks": int(y.sum()), "c": c}
        return cls(weights, float(model.intercept_[0]), meta)

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        header = msgspec.json.encode({"bias": self.bias, "meta": self.meta})
        np.savez_compressed(buffer, weights=self.weights, header=np.frombuffer(header, np.uint8))
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> PctrModel:
        with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
            header = msgspec.json.decode(arrays["header"].tobytes())
            return cls(arrays["weights"], header["bias"], header["meta"])


def train_from_store(store, *, since_ms: int | None = None, until_ms: int | None = None) -> PctrModel:
    """Train on the ledger's impressions in [since, until) and save the model as a new version."""
    served = store.served(since_ms=since_ms, until_ms=until_ms)
    model = PctrModel.train([s.features.split() for s in served], np.array([s.clicked for s in served]))
    model.meta["version"] = store.save_model(MODEL_NAME, model.to_bytes(), model.meta)
    return model
