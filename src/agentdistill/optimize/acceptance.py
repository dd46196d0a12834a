"""A drafter's acceptance on recorded agent calls, replayed offline: the paper's MGL without a server.

Under greedy decoding a chain drafter of length k proposes its own argmax tokens; the verifier accepts them while
they equal its own greedy tokens, then adds one token of its own. So on a known continuation the drafter's
acceptance is fixed by one teacher-forced forward: at each position, does its argmax equal the next token? Walking
that match vector in steps of (run of matches, at most k) + 1 gives exactly the drafts, accepted tokens and mean
generated length (MGL = 1 + accepted / drafts) vLLM would count for that continuation. The continuation is either
what a trace recorded (the served model's answer: "replay recent traffic") or the target model's own greedy output.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import torch

from agentdistill.optimize.agreement import prompt_ids


def chain_acceptance(matches: Sequence[bool], k: int) -> tuple[int, int]:
    """(drafting steps, accepted tokens) for one continuation.

    `matches[t]` says whether the drafter's greedy token at continuation position t equals the verifier's. Position
    0 comes from the verifier's prefill, so drafting starts at 1; each step accepts the run of matches from where it
    starts (at most k, never past the end) and the verifier adds the next token itself.
    """
    if k < 1:
        raise ValueError("draft length k must be at least 1")
    steps = accepted = 0
    pos = 1
    while pos < len(matches):
        run = 0
        while run < k and pos + run < len(matches) and matches[pos + run]:
            run += 1
        steps += 1
        accepted += run
        pos += run + 1
    return steps, accepted


def mean_generated_length(steps: int, accepted: int) -> float | None:
    return round(1 + accepted / steps, 3) if steps else None


def continuation_ids(tokenizer: Any, messages: list[dict[str, Any]]) -> tuple[torch.Tensor, torch.Tensor]:
    """(prompt ids, continuation ids) of a record whose last message is the answer, as the chat template renders it."""
    prompt = prompt_ids(tokenizer, messages[:-1])[0]
    full = _rendered(tokenizer, messages)
    if full.shape[0] <= prompt.shape[0] or not torch.equal(full[: prompt.shape[0]], prompt):
        # a template that renders the prompt differently once an answer follows: tokenize the answer on its own
        answer = tokenizer(str(messages[-1].get("content") or ""), add_special_tokens=False)["input_ids"]
        return prompt, torch.tensor(answer, dtype=torch.long)
    return prompt, full[prompt.shape[0]:]


def _rendered(tokenizer: Any, messages: list[dict[str, Any]]) -> torch.Tensor:
    ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False)
    if isinstance(ids, dict) or hasattr(ids, "input_ids"):
        ids = ids["input_ids"]
    return torch.tensor(ids, dtype=torch.long)


def replay(drafter: torch.nn.Module, tokenizer: Any, records: Sequence[dict[str, Any]], k: int,
           max_new_tokens: int = 256) -> dict[str, Any]:
    """MGL of `drafter` at draft length k on each record's last message, overall and per role."""
    steps: dict[str, int] = defaultdict(int)
    accepted: dict[str, int] = defaultdict(int)
    calls: dict[str, int] = defaultdict(int)
    tokens: dict[str, int] = defaultdict(int)
    with torch.no_grad():
        for record in records:
            prompt, cont = continuation_ids(tokenizer, record["messages"])
            cont = cont[:max_new_tokens]
            if cont.numel() < 2:
                continue
            ids = torch.cat([prompt, cont]).reshape(1, -1)
            logits = drafter(input_ids=ids).logits[0]
            start = prompt.shape[0] - 1
            picked = logits[start: start + cont.numel()].argmax(-1)
            s, a = chain_acceptance((picked == cont).tolist(), k)
            role = str(record.get("agent", "?"))
            steps[role] += s
            accepted[role] += a
            calls[role] += 1
            tokens[role] += cont.numel()
    total_steps, total_accepted = sum(steps.values()), sum(accepted.values())
    return {"k": k, "calls": sum(calls.values()), "tokens": sum(tokens.values()),
            "mean_acceptance_length": mean_generated_length(total_steps, total_accepted),
            "per_role": {r: {"calls": calls[r], "tokens": tokens[r],
                             "mean_acceptance_length": mean_generated_length(steps[r], accepted[r])}
                         for r in sorted(calls)}}
