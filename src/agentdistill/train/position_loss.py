"""Mean token loss by position in the document, with or without its context prefix (the paper's Figure 5).

The paper's case for context-aware CPT is that the first tokens of a context-less document carry a loss far above
the rest (they cannot be predicted), so their gradients are noise. This measures exactly that on any checkpoint,
using the same token layout as CPT training (trainers.cpt_example): start token, optional context, text.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from agentdistill.errors import UserError


def per_position_loss(model_dir: Path, records: list[dict[str, Any]], max_positions: int = 64,
                      with_context: bool = True, max_length: int = 2048) -> list[float]:
    """Mean next-token loss at document positions 0..max_positions-1 (0 = first text token).

    Records are CPT records ({"context", "text"}); a position no record reaches is NaN. Plain forward passes,
    one record at a time (exact, no padding effects; this is an analysis, not a hot path).
    """
    import torch
    import torch.nn.functional as F

    from agentdistill.train.trainers import cpt_example, load_model, load_tokenizer

    if not records:
        raise UserError("per_position_loss needs at least one record")
    tokenizer = load_tokenizer(model_dir)
    model = load_model(model_dir, torch.float32).eval()
    sums, counts = [0.0] * max_positions, [0] * max_positions
    with torch.no_grad():
        for rec in records:
            ex = cpt_example(tokenizer, rec.get("context") or "", rec["text"], with_context, max_length)
            ids = torch.tensor([ex["input_ids"]])
            first = ex["completion_mask"].index(1)  # index of text position 0 in the sequence
            if first == 0:
                raise UserError(f"model dir {model_dir}: the tokenizer has no start token to predict position 0 from")
            logits = model(input_ids=ids).logits[0, :-1].float()
            losses = F.cross_entropy(logits, ids[0, 1:], reduction="none")  # losses[j] scores token j+1
            for pos in range(min(max_positions, ids.shape[1] - first)):
                sums[pos] += float(losses[first + pos - 1])
                counts[pos] += 1
    return [s / c if c else math.nan for s, c in zip(sums, counts, strict=True)]
