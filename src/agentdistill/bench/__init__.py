"""Benchmarks: each writes one JSON result with the machine it ran on; speed targets live here, never in tests."""

from __future__ import annotations

import os
import platform


def machine_info() -> dict[str, object]:
    """What a benchmark result must say about where it was measured."""
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}
