"""Benchmarks: each writes one JSON result with the machine it ran on; speed targets live here, never in tests."""

from __future__ import annotations

import os
import platform

from agentdistill.hardware import cpu_flags


def machine_info() -> dict[str, object]:
    """What a benchmark result must say about where it was measured (AMX decides how fast bf16/int8 run)."""
    flags = cpu_flags()
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
            "amx_bf16": "amx_bf16" in flags, "amx_int8": "amx_int8" in flags, "avx512_bf16": "avx512_bf16" in flags,
            "avx512f": "avx512f" in flags, "avx2": "avx2" in flags}
