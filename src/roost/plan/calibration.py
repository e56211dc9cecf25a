"""Every tunable constant of the throughput model, per hardware generation, in this one place.

Each constant is a fraction of a datasheet peak that real kernels or collectives sustain, except
`overlap`, the share of overlappable time that actually hides data-parallel traffic. `matmul` is
the one calibration per hardware generation (`calibrate` fits it to published runs); the others
are set from the measurements named beside them and shared across generations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Calibration:
    matmul: float  # of the dense tensor-core peak, sustained by the layers' matmuls and attention
    memory: float  # of HBM bandwidth, sustained by element-wise kernels (norms, activations, softmax)
    scale_up: float  # of NVLink / Infinity Fabric per-direction bandwidth, as NCCL bus bandwidth
    network: float  # of the NIC line rate, as NCCL bus bandwidth across servers
    overlap: float  # of the compute it runs under, how much data-parallel communication hides


CALIBRATIONS: dict[str, Calibration] = {
    # Ampere, from the A100 runs of Megatron-LM 2021 (Tables 1-2), Korthikanti et al. 2022
    # (Table 5) and OPT-175B: `matmul` fitted by `calibrate` to all of them (tests/plan checks the
    # fit still lands here); `overlap` set from Megatron-LM Table 2's ZeRO-3 runs, the only ones
    # whose time hinges on it. memory: element-wise kernels move ~1.5 of the A100 80GB's 2.0 TB/s.
    # scale_up: NCCL all-reduce bus bandwidth inside a DGX A100 is ~230 of 300 GB/s. network:
    # ~0.8 of the NIC line rate, the bus bandwidth nccl-tests reaches across servers.
    "ampere": Calibration(matmul=0.694, memory=0.75, scale_up=0.77, network=0.8, overlap=0.5),
    # Later generations have no run among the development cases. Their matmul share is Ampere's
    # fitted 0.694 scaled by the ratio of large bf16 GEMM efficiencies (A100 ~0.88 of peak with
    # cuBLAS; H100 SXM ~0.78; B200 ~0.75; MI300X ~0.50 with hipBLASLt): a prior until one of
    # their runs is fitted with `calibrate`.
    "hopper": Calibration(matmul=0.61, memory=0.80, scale_up=0.80, network=0.8, overlap=0.5),
    "blackwell": Calibration(matmul=0.59, memory=0.80, scale_up=0.80, network=0.8, overlap=0.5),
    "cdna3": Calibration(matmul=0.39, memory=0.70, scale_up=0.70, network=0.8, overlap=0.5),
}


def calibration(generation: str) -> Calibration:
    if generation not in CALIBRATIONS:
        raise ValueError(f"no calibration for {generation!r}; known: {', '.join(CALIBRATIONS)}")
    return CALIBRATIONS[generation]


def calibrate(
    base: Calibration,
    predict: Callable[[Calibration], Sequence[float]],
    observed: Sequence[float],
) -> Calibration:
    """`base` with `matmul` chosen so that predicted rates best match observed ones.

    `predict(c)` returns one predicted rate (TFLOP/s per GPU, or tokens/s) per observed run; the fit
    minimises the mean squared log ratio, so over- and under-prediction weigh the same. One run is
    enough ("one calibration per hardware generation"); more runs average out their noise.
    """
    if not observed:
        raise ValueError("calibrating needs at least one observed run")

    def loss(matmul: float) -> float:
        predicted = predict(replace(base, matmul=matmul))
        return sum(math.log(p / o) ** 2 for p, o in zip(predicted, observed, strict=True))

    # Golden-section search on [0.05, 1]: the loss is unimodal in matmul efficiency since every
    # predicted rate rises monotonically with it.
    lo, hi = 0.05, 1.0
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = loss(a), loss(b)
    for _ in range(32):  # brackets to 0.618^32 ≈ 2e-7 of the interval
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = loss(b)
    return replace(base, matmul=round((lo + hi) / 2, 4))
