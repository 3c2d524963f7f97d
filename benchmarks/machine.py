"""Where a benchmark ran: CPU model, ISA flags, threads, load, fp32 and bf16 GEMM rates.

Every script in ``benchmarks/`` calls ``print_machine()`` first, so each figure comes with
the machine it was measured on (CPUs of the same machine type differ: with native bf16 a
bf16 GEMM runs ~4x fp32, with AVX2 only ~60x slower).

    python benchmarks/machine.py        # just the report
"""

from __future__ import annotations

import os
import platform
from typing import Any

import torch

from tl_bilinear.train.precision import gemm_rates

#: The ISA flags that decide CPU GEMM speed by precision (``/proc/cpuinfo`` names).
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def cpu_model_and_flags() -> tuple[str, list[str]]:
    """The CPU model name and which of ``ISA_FLAGS`` it has (Linux ``/proc/cpuinfo``)."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    flags = set(fields.get("flags", "").split())
    return fields.get("model name") or platform.processor() or "unknown", [f for f in ISA_FLAGS if f in flags]


def machine_report() -> dict[str, Any]:
    """CPU model, ISA flags, torch version and threads, load average, fp32/bf16 GEMM GFLOP/s."""
    model, flags = cpu_model_and_flags()
    gemm = gemm_rates(1024, 1024, 1024, torch.device("cpu"))  # what precision "auto" screens with
    return {
        "cpu": model,
        "isa_flags": flags,
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "load_average": list(os.getloadavg()),
        "gemm_gflops": {"fp32": gemm.fp32, "bf16": gemm.bf16},
    }


def print_machine() -> dict[str, Any]:
    """Print ``machine_report()`` in three lines and return it (for a benchmark's JSON)."""
    report = machine_report()
    rates = report["gemm_gflops"]
    flags = " ".join(report["isa_flags"]) or f"none of {', '.join(ISA_FLAGS)}"
    print(f"CPU: {report['cpu']} ({report['cpu_count']} cores); ISA flags: {flags}")
    print(
        f"torch {report['torch']}, {report['threads']} threads; load average "
        f"{' '.join(f'{x:.2f}' for x in report['load_average'])}"
    )
    print(
        f"GEMM 1024^3: fp32 {rates['fp32']:,.0f} GFLOP/s, bf16 {rates['bf16']:,.0f} GFLOP/s "
        f"(bf16 {rates['bf16'] / rates['fp32']:.2f}x fp32)",
        flush=True,
    )
    return report


if __name__ == "__main__":
    print_machine()
