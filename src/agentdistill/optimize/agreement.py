"""Greedy token agreement of a quantized model with the bf16 student on held-out agent calls.

The bf16 student decodes each call greedily (transformers `generate`); the quantized model then reads the same
prompt plus that continuation in one forward, and agreement is the share of continuation positions where its
argmax is the bf16 token. One forward per call makes it cheap enough to score every calibration set and both
schemes, including FP8 through compressed-tensors' emulation on CPUs without FP8 kernels.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch


def prompt_ids(tokenizer: Any, messages: list[dict[str, Any]]) -> torch.Tensor:
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
    if isinstance(ids, dict) or hasattr(ids, "input_ids"):
        ids = ids["input_ids"]
    return torch.tensor(ids, dtype=torch.long).reshape(1, -1)


def greedy_references(model: torch.nn.Module, tokenizer: Any, calls: list[dict[str, Any]],
                      max_new_tokens: int) -> list[dict[str, Any]]:
    """The bf16 student's greedy continuation of every call: {"agent", "prompt", "continuation"} token ids."""
    refs = []
    with torch.no_grad():
        for call in calls:
            ids = prompt_ids(tokenizer, call["messages"])
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                 do_sample=False, pad_token_id=tokenizer.eos_token_id)
            refs.append({"agent": call["agent"], "prompt": ids, "continuation": out[0, ids.shape[1]:]})
    return refs


def token_agreement(model: torch.nn.Module, refs: list[dict[str, Any]]) -> dict[str, Any]:
    """Share of reference tokens the model would also pick greedily, overall and per role."""
    hits: dict[str, int] = defaultdict(int)
    totals: dict[str, int] = defaultdict(int)
    exact: dict[str, int] = defaultdict(int)
    calls: dict[str, int] = defaultdict(int)
    with torch.no_grad():
        for ref in refs:
            cont = ref["continuation"]
            if cont.numel() == 0:
                continue
            ids = torch.cat([ref["prompt"][0], cont]).reshape(1, -1)
            logits = model(input_ids=ids).logits[0]
            start = ref["prompt"].shape[1] - 1
            picked = logits[start: start + cont.numel()].argmax(-1)
            same = int((picked == cont).sum())
            role = ref["agent"]
            hits[role] += same
            totals[role] += cont.numel()
            exact[role] += int(same == cont.numel())
            calls[role] += 1
    total = sum(totals.values())
    return {"token_agreement": round(sum(hits.values()) / total, 4) if total else None,
            "calls_identical": round(sum(exact.values()) / max(1, sum(calls.values())), 4),
            "per_role": {r: {"token_agreement": round(hits[r] / totals[r], 4), "calls": calls[r],
                             "calls_identical": round(exact[r] / calls[r], 4)} for r in sorted(totals)}}
