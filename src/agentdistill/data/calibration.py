"""Calibration sets for static W8A8: public (P), in-domain (I), mixed (M), and a held-out long in-domain test set.

Static per-tensor scales are fixed offline from the activations a calibration set produces, so the set decides
which activations clip in production. The paper's targeted calibration mixes public text (1.4k samples) with
in-domain agent traces (5.8k); M here keeps that ratio at the same sample count as P and I, so a lower clip rate
for M is a property of its content, not of having more samples.

An in-domain sample is one conversation: every agent call of an episode, in order, so it is as long as the
prompts a served student reads back to back. Samples are stored as messages and rendered with the student's own
chat template when they are tokenized (optimize/activations.py), so one set serves any checkpoint.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path
from typing import Any

from agentdistill.data.cpt_public import load_conversations
from agentdistill.errors import UserError
from agentdistill.fileio import read_jsonl

SETS = ("P", "I", "M")
PUBLIC_SHARE_OF_MIXED = 1.4 / (1.4 + 5.8)  # the paper's M: 1.4k public + 5.8k in-domain


def episode_samples(sft_path: Path) -> list[dict[str, Any]]:
    """One in-domain sample per episode: its agent calls (message lists) in the order they were recorded."""
    if not sft_path.is_file():
        raise UserError(f"no SFT records at {sft_path}: run 'agentdistill datasets RUN' first")
    calls: dict[str, list[list[dict[str, Any]]]] = defaultdict(list)
    for record in read_jsonl(sft_path):
        episode = str(record.get("episode_id", ""))
        if episode and not episode.startswith("curated:") and record.get("messages"):
            calls[episode].append(record["messages"])
    return [{"source": "domain", "id": eid, "calls": calls[eid]} for eid in sorted(calls)]


def public_samples() -> list[dict[str, Any]]:
    """One public sample per chitchat conversation (MIT), plain text."""
    return [{"source": "public", "id": cid, "text": text} for cid, text in load_conversations()]


def build_calibration_sets(sft_train: Path, sft_val: Path, samples: int, test_samples: int,
                           seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """P, I, M with `samples` each, and `test` from held-out (val) episodes; one-line error when a source is short."""
    if samples < 1 or test_samples < 1:
        raise UserError("calibration and test sample counts must be at least 1")
    rng = random.Random(seed)
    domain = episode_samples(sft_train)
    held_out = episode_samples(sft_val)
    public = public_samples()
    for name, pool, need in (("in-domain (SFT train episodes)", domain, samples),
                             ("held-out (SFT val episodes)", held_out, test_samples), ("public", public, samples)):
        if len(pool) < need:
            raise UserError(f"only {len(pool)} {name} samples for {need} requested: lower --samples/--test-samples")
    rng.shuffle(domain)
    rng.shuffle(public)
    rng.shuffle(held_out)
    n_public = max(1, round(samples * PUBLIC_SHARE_OF_MIXED))
    mixed = public[:n_public] + domain[: samples - n_public]
    rng.shuffle(mixed)
    return {"P": public[:samples], "I": domain[:samples], "M": mixed, "test": held_out[:test_samples]}
