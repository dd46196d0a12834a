"""Static per-tensor activation ranges of every quantized linear input, and the clip rate they cause on test data.

W8A8 with static scales fixes each linear layer's input range offline (min-max over a calibration set), so any
test activation outside it is clipped: the paper's silent regression on long contexts. The clip rate is the
share of test activations, over all quantized linear inputs, that fall outside the calibrated [min, max].

One forward per calibration sample gives the ranges for every calibration length at once: the model is causal,
so the activations of a sample cut to L tokens are exactly the first L positions of the full sample, and a
running min/max over positions read at L - 1 is the range a length-L calibration would have measured.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import torch

Ranges = dict[str, tuple[float, float]]  # module name -> (min, max)


def quantized_linears(model: torch.nn.Module, ignore: Sequence[str] = ("lm_head",)) -> dict[str, torch.nn.Linear]:
    """The linear layers W8A8 quantizes: every nn.Linear but the output head (kept in bf16, as llm-compressor does)."""
    return {name: module for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and name.split(".")[-1] not in ignore}


@contextlib.contextmanager
def linear_inputs(model: torch.nn.Module, callback: Any) -> Iterator[None]:
    """Call `callback(name, x)` with the input of every quantized linear layer during forwards in this block."""
    handles = [module.register_forward_pre_hook(lambda _m, args, name=name: callback(name, args[0].detach()))
               for name, module in quantized_linears(model).items()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def clip_rate(x: torch.Tensor, low: float, high: float) -> float:
    """Share of the elements of x strictly outside [low, high]: the definition every count below follows."""
    return float(((x < low) | (x > high)).sum()) / max(1, x.numel())


def prefix_ranges(model: torch.nn.Module, samples: Sequence[torch.Tensor], lengths: Sequence[int]) -> dict[int, Ranges]:
    """For each calibration length L, each layer's min/max over the first L tokens of every sample (one forward each)."""
    lengths = sorted(set(lengths))
    low: dict[str, torch.Tensor] = {}
    high: dict[str, torch.Tensor] = {}

    def observe(name: str, x: torch.Tensor) -> None:
        x = x.float().reshape(-1, x.shape[-2], x.shape[-1])[0]  # [T, d]: one sample per forward
        at = torch.tensor([min(n, x.shape[0]) - 1 for n in lengths])
        lo = torch.cummin(x.amin(-1), 0).values[at]
        hi = torch.cummax(x.amax(-1), 0).values[at]
        low[name] = torch.minimum(low[name], lo) if name in low else lo
        high[name] = torch.maximum(high[name], hi) if name in high else hi

    with torch.no_grad(), linear_inputs(model, observe):
        for ids in samples:
            model(input_ids=ids.reshape(1, -1))
    return {n: {name: (float(low[name][i]), float(high[name][i])) for name in low} for i, n in enumerate(lengths)}


def clip_counts(model: torch.nn.Module, samples: Sequence[torch.Tensor],
                configs: dict[str, Ranges]) -> dict[str, dict[str, float]]:
    """Clipped and total test activations per named range set, all sets counted in the same forwards.

    Per layer, the sets' bounds are sorted once and each activation is placed among them with two bucketize
    calls, so 21 range sets cost about as much as two comparisons, not 42.
    """
    names = list(configs)
    clipped = dict.fromkeys(names, 0)
    total = 0

    def observe(layer: str, x: torch.Tensor) -> None:
        nonlocal total
        x = x.float().flatten()
        total += x.numel()
        lows = torch.tensor([configs[n][layer][0] for n in names], dtype=torch.float32)
        highs = torch.tensor([configs[n][layer][1] for n in names], dtype=torch.float32)
        lo_sorted, lo_order = torch.sort(lows)
        hi_sorted, hi_order = torch.sort(highs)
        # below[j]: elements < lo_sorted[j]  (bucketize right=True gives how many bounds are <= x)
        at_or_below = torch.bincount(torch.bucketize(x, lo_sorted, right=True), minlength=len(names) + 1)
        below = torch.cumsum(at_or_below, 0)[:-1]
        # above[j]: elements > hi_sorted[j]  (right=False gives how many bounds are < x)
        strictly = torch.bincount(torch.bucketize(x, hi_sorted, right=False), minlength=len(names) + 1)
        above = x.numel() - torch.cumsum(strictly, 0)[:-1]
        for j, i in enumerate(lo_order.tolist()):
            clipped[names[i]] += int(below[j])
        for j, i in enumerate(hi_order.tolist()):
            clipped[names[i]] += int(above[j])

    with torch.no_grad(), linear_inputs(model, observe):
        for ids in samples:
            model(input_ids=ids.reshape(1, -1))
    return {n: {"clipped": clipped[n], "total": total, "clip_rate": clipped[n] / max(1, total)} for n in names}
