"""The GPUs the planner knows, from their vendors' datasheets (each entry names its source).

Units: dense tensor-core TFLOP/s (datasheets print the 2:4-sparse figure first, twice the dense
one; the planner never uses sparse figures); HBM in GiB as the devices report it ("80 GB" parts
show 80 GiB); bandwidths in GB/s per GPU and per direction, which is what NCCL's bus bandwidth is
compared with (datasheets print NVLink both directions added: "900 GB/s" is 450 each way).
Network is the per-GPU NIC line rate of the vendor's reference 8-GPU server (one NIC per GPU).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Datasheet:
    title: str
    url: str
    date: str


@dataclass(frozen=True)
class GPU:
    key: str
    name: str
    generation: str  # ampere, hopper, blackwell, cdna3: what the calibration table is keyed on
    bf16_tflops: float
    fp8_tflops: float | None  # None: no fp8 tensor cores
    hbm_gib: float
    hbm_gbps: float
    scale_up_gpus: int  # GPUs joined by NVLink / Infinity Fabric in one server
    scale_up_gbps: float
    network_gbps: float
    datasheet: Datasheet
    system: Datasheet  # where the server's NVLink domain and NICs come from

    @property
    def hbm_bytes(self) -> float:
        return self.hbm_gib * 2.0**30

    def peak_flops(self, fp8: bool = False) -> float:
        if fp8:
            if self.fp8_tflops is None:
                raise ValueError(f"{self.name} has no fp8 tensor cores")
            return self.fp8_tflops * 1e12
        return self.bf16_tflops * 1e12


A100_DATASHEET = Datasheet(
    "NVIDIA A100 Tensor Core GPU datasheet (SXM4: BF16 312 TFLOPS dense / 624 sparse)",
    "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf",
    "2021-06",
)
DGX_A100 = Datasheet(
    "NVIDIA DGX A100 datasheet (8× A100 on NVSwitch, NVLink 3 600 GB/s per GPU; 8× ConnectX-6 "
    "200 Gb/s HDR InfiniBand for compute)",
    "https://images.nvidia.com/aem-dam/Solutions/Data-Center/nvidia-dgx-a100-datasheet.pdf",
    "2020-05",
)
H100_DATASHEET = Datasheet(
    "NVIDIA H100 Tensor Core GPU datasheet (SXM: BF16 1,979 / FP8 3,958 TFLOPS with sparsity, "
    "HBM3 3.35 TB/s, NVLink 900 GB/s; PCIe: BF16 1,513 / FP8 3,026 with sparsity, 2 TB/s, "
    "NVLink bridge 600 GB/s)",
    "https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet",
    "2023-03",
)
DGX_H100 = Datasheet(
    "NVIDIA DGX H100 datasheet (8× H100 SXM, 4× NVSwitch; 8× ConnectX-7 400 Gb/s for compute)",
    "https://resources.nvidia.com/en-us-dgx-systems/ai-enterprise-dgx",
    "2023-03",
)
H200_DATASHEET = Datasheet(
    "NVIDIA H200 Tensor Core GPU datasheet (SXM: 141 GB HBM3e, 4.8 TB/s; BF16 1,979 / FP8 3,958 "
    "TFLOPS with sparsity; NVLink 900 GB/s)",
    "https://resources.nvidia.com/en-us-data-center-overview-mc/en-us-data-center-overview/hpc-datasheet-sc23-h200",
    "2023-11",
)
DGX_B200 = Datasheet(
    "NVIDIA DGX B200 datasheet (8× B200: 1,440 GB HBM3e, 64 TB/s; FP8 72 PFLOPS with sparsity; "
    "NVLink 5 1.8 TB/s per GPU; 8× ConnectX-7 400 Gb/s) and HGX B200 per-GPU specifications "
    "(BF16 4.5 / FP8 9 PFLOPS with sparsity at 1,000 W)",
    "https://resources.nvidia.com/en-us-dgx-systems/dgx-b200-datasheet",
    "2024-05",
)
MI300X_DATASHEET = Datasheet(
    "AMD Instinct MI300X Accelerator data sheet (BF16 1,307.4 / FP8 2,614.9 TFLOPS dense, 192 GB "
    "HBM3 at 5.3 TB/s, 7 Infinity Fabric links at 128 GB/s each for 896 GB/s peer-to-peer)",
    "https://www.amd.com/content/dam/amd/en/documents/instinct-tech-docs/data-sheets/amd-instinct-mi300x-data-sheet.pdf",
    "2023-12",
)
MI300X_PLATFORM = Datasheet(
    "AMD Instinct MI300X Platform data sheet (8× MI300X fully connected by Infinity Fabric; "
    "one 400 Gb/s NIC per GPU in the reference cluster design)",
    "https://www.amd.com/content/dam/amd/en/documents/instinct-tech-docs/data-sheets/amd-instinct-mi300x-platform-data-sheet.pdf",
    "2023-12",
)

GPUS: dict[str, GPU] = {
    g.key: g
    for g in (
        GPU(
            "a100-40gb",
            "NVIDIA A100 40GB SXM4",
            "ampere",
            312,
            None,
            40,
            1555,
            8,
            300,
            25,
            A100_DATASHEET,
            DGX_A100,
        ),
        GPU(
            "a100-80gb",
            "NVIDIA A100 80GB SXM4",
            "ampere",
            312,
            None,
            80,
            2039,
            8,
            300,
            25,
            A100_DATASHEET,
            DGX_A100,
        ),
        GPU(
            "h100-sxm",
            "NVIDIA H100 SXM5 80GB",
            "hopper",
            989.5,
            1979,
            80,
            3350,
            8,
            450,
            50,
            H100_DATASHEET,
            DGX_H100,
        ),
        # PCIe cards pair up over NVLink bridges; beyond a pair they talk over PCIe and the NIC.
        GPU(
            "h100-pcie",
            "NVIDIA H100 PCIe 80GB",
            "hopper",
            756.5,
            1513,
            80,
            2000,
            2,
            300,
            50,
            H100_DATASHEET,
            H100_DATASHEET,
        ),
        GPU(
            "h200",
            "NVIDIA H200 SXM 141GB",
            "hopper",
            989.5,
            1979,
            141,
            4800,
            8,
            450,
            50,
            H200_DATASHEET,
            DGX_H100,
        ),
        GPU(
            "b200",
            "NVIDIA B200 (HGX, 1,000 W)",
            "blackwell",
            2250,
            4500,
            180,
            8000,
            8,
            900,
            50,
            DGX_B200,
            DGX_B200,
        ),
        GPU(
            "mi300x",
            "AMD Instinct MI300X",
            "cdna3",
            1307.4,
            2614.9,
            192,
            5300,
            8,
            448,
            50,
            MI300X_DATASHEET,
            MI300X_PLATFORM,
        ),
    )
}
ALIASES = {"a100": "a100-80gb", "h100": "h100-sxm", "h200-sxm": "h200"}


def gpu(name: str) -> GPU:
    """A GPU by key or alias (`h100` is the SXM part, `a100` the 80 GB one)."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in GPUS:
        raise ValueError(f"unknown GPU {name!r}; choose one of {', '.join([*GPUS, *ALIASES])}")
    return GPUS[key]
