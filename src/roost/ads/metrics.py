"""How good click predictions are, as ads teams measure them: AUC (ranking), normalized cross-entropy
(He et al. 2014, "Practical lessons from predicting clicks on ads at Facebook": the log loss divided
by that of always predicting the observed click rate, so below 1 means better than knowing only the
average), and calibration (predicted clicks over observed clicks, overall and by bins of pCTR)."""

from __future__ import annotations

import msgspec
import numpy as np

_EPS = 1e-7


class CalibrationBin(msgspec.Struct):
    low: float  # pCTR range of the bin
    high: float
    impressions: int
    mean_pctr: float
    ctr: float  # observed


class ClickMetrics(msgspec.Struct):
    impressions: int
    clicks: int
    ctr: float
    mean_pctr: float
    calibration: float | None  # predicted clicks / observed clicks (1 is calibrated)
    auc: float | None  # None when all or none were clicked
    log_loss: float | None
    normalized_entropy: float | None
    bins: list[CalibrationBin]


def click_metrics(pctr: np.ndarray, clicked: np.ndarray, *, bins: int = 10) -> ClickMetrics:
    """Metrics of predictions `pctr` against outcomes `clicked` (0/1); bins are quantiles of pCTR."""
    from sklearn.metrics import log_loss, roc_auc_score

    p = np.clip(np.asarray(pctr, np.float64), _EPS, 1 - _EPS)
    y = np.asarray(clicked, np.int64)
    n, clicks = len(y), int(y.sum())
    if n == 0:
        return ClickMetrics(0, 0, 0.0, 0.0, None, None, None, None, [])
    ctr = clicks / n
    both = 0 < clicks < n
    loss = float(log_loss(y, p, labels=[0, 1]))
    background = -float(ctr * np.log(ctr) + (1 - ctr) * np.log(1 - ctr)) if both else None
    return ClickMetrics(
        impressions=n,
        clicks=clicks,
        ctr=round(ctr, 6),
        mean_pctr=round(float(p.mean()), 6),
        calibration=round(float(p.sum()) / clicks, 4) if clicks else None,
        auc=round(float(roc_auc_score(y, p)), 4) if both else None,
        log_loss=round(loss, 6),
        normalized_entropy=round(loss / background, 4) if background else None,
        bins=_bins(p, y, bins),
    )


def _bins(p: np.ndarray, y: np.ndarray, count: int) -> list[CalibrationBin]:
    edges = np.unique(np.quantile(p, np.linspace(0, 1, count + 1)))
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))
    out = []
    for b in range(max(len(edges) - 1, 1)):
        mask = which == b
        if mask.any():
            out.append(
                CalibrationBin(
                    low=round(float(edges[b]), 6),
                    high=round(float(edges[min(b + 1, len(edges) - 1)]), 6),
                    impressions=int(mask.sum()),
                    mean_pctr=round(float(p[mask].mean()), 6),
                    ctr=round(float(y[mask].mean()), 6),
                )
            )
    return out
