"""What this machine's processors can do fast: the defaults that depend on it (bf16 training) read it here."""

from __future__ import annotations

from pathlib import Path

# x86 flags with bf16 matrix instructions; without them PyTorch emulates bf16 matmuls on CPU, which measured
# ~40x slower than fp32 for SmolLM2-135M LoRA steps on an AVX2-only machine (docs/experiments.md, 2026-12-07).
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def native_bf16() -> bool:
    """bf16 is fast here: a CUDA GPU that supports it, or a CPU with bf16 matrix instructions."""
    import torch

    if torch.cuda.is_available():
        return bool(torch.cuda.is_bf16_supported())
    return any(flag in cpu_flags() for flag in NATIVE_BF16_FLAGS)
