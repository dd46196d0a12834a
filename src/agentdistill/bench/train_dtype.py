"""Benchmark: training throughput in float32 vs bfloat16 autocast, per model, on this machine.

Why: on CPUs with AMX (`amx_bf16` in /proc/cpuinfo) bf16 matmuls run several times faster than fp32, but a
training step is more than matmuls (softmax over the vocabulary, optimizer, elementwise ops), so what a model
gains depends on its shape. This measures one optimizer step (forward, backward, AdamW) on random tokens, the
same batch for both dtypes in the same process, and reports tokens/s and their ratio. No timing asserts.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from agentdistill.bench import machine_info
from agentdistill.errors import UserError
from agentdistill.fileio import atomic_write_json


def training_machine() -> dict[str, Any]:
    """The machine block of a training benchmark: where bf16 runs fast (AMX) matters as much as the core count."""
    import torch

    return {**machine_info(), "torch_threads": torch.get_num_threads()}


def _load(model: str, vocab: int) -> Any:
    """A preset name builds a fresh Llama of that shape; anything else is a local HF checkpoint directory."""
    import torch

    from agentdistill.train.models import PRESETS, get_preset, seeded_llama, shape_config
    from agentdistill.train.trainers import load_model

    if model in PRESETS:
        return seeded_llama(shape_config(get_preset(model), vocab))
    if not Path(model).is_dir():
        raise UserError(f"model {model!r} is neither a preset ({', '.join(PRESETS)}) nor a checkpoint directory")
    return load_model(Path(model), torch.float32)


def tokens_per_s(model: Any, dtype: str, batch: int, length: int, steps: int) -> float:
    """One warm-up step, then `steps` timed optimizer steps on one fixed random batch."""
    import torch

    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, model.config.vocab_size, (batch, length), generator=generator)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * length * steps / (time.perf_counter() - t0)


def bench_train_dtype(models: list[str], batch: int = 8, length: int = 256, steps: int = 4, vocab: int = 8192,
                      out: str | Path = "benchmarks/results/train_dtype.json") -> dict[str, Any]:
    rows = []
    for name in models:
        model = _load(name, vocab)
        n_params = sum(p.numel() for p in model.parameters())
        fp32 = tokens_per_s(model, "fp32", batch, length, steps)
        bf16 = tokens_per_s(model, "bf16", batch, length, steps)
        rows.append({"model": name, "parameters": n_params, "vocab": model.config.vocab_size,
                     "fp32_tokens_per_s": round(fp32, 1), "bf16_autocast_tokens_per_s": round(bf16, 1),
                     "bf16_speedup": round(bf16 / fp32, 2)})
        del model
    result = {
        "benchmark": "train_dtype",
        "command": f"agentdistill bench train-dtype {' '.join(models)} --batch {batch} --length {length} "
                   f"--steps {steps}",
        "what": "one optimizer step (forward, backward, AdamW) on random tokens, fp32 vs torch.autocast bf16",
        "machine": training_machine(),
        "batch": batch, "length": length, "steps": steps,
        "models": rows,
    }
    atomic_write_json(out, result)
    return result
