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
from collections.abc import Callable, Sequence
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
    return walk_runs(match_runs(matches, k), k)


def match_runs(matches: Sequence[bool], k: int) -> list[int]:
    """For a drafter whose token at each position is fixed (a draft model under greedy decoding): the run of
    matches, at most k, from each position."""
    runs = []
    for start in range(len(matches)):
        run = 0
        while run < k and start + run < len(matches) and matches[start + run]:
            run += 1
        runs.append(run)
    return runs


def walk_runs(runs: Sequence[int], k: int) -> tuple[int, int]:
    """(drafting steps, accepted tokens) when a draft started at continuation position t has `runs[t]` tokens right."""
    steps = accepted = 0
    pos = 1
    while pos < len(runs):
        run = min(runs[pos], k, len(runs) - pos)
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
    """MGL of a draft model at draft length k on each record's last message, overall and per role."""

    def runs(prompt: torch.Tensor, cont: torch.Tensor) -> list[int]:
        ids = torch.cat([prompt, cont]).unsqueeze(0)
        logits = drafter(input_ids=ids).logits[0]
        start = prompt.shape[0] - 1
        picked = logits[start: start + cont.numel()].argmax(-1)
        return match_runs((picked == cont).tolist(), k)

    return replay_runs(runs, tokenizer, records, k, max_new_tokens)


def replay_runs(runs: Callable[[torch.Tensor, torch.Tensor], list[int]], tokenizer: Any,
                records: Sequence[dict[str, Any]], k: int, max_new_tokens: int = 256) -> dict[str, Any]:
    """MGL overall and per role, with a bootstrap interval, where `runs(prompt, answer)` gives each position's run of
    right draft tokens for one drafter."""
    steps: dict[str, int] = defaultdict(int)
    accepted: dict[str, int] = defaultdict(int)
    calls: dict[str, int] = defaultdict(int)
    tokens: dict[str, int] = defaultdict(int)
    per_call: list[tuple[int, int]] = []
    with torch.no_grad():
        for record in records:
            prompt, cont = continuation_ids(tokenizer, record["messages"])
            cont = cont[:max_new_tokens]
            if cont.numel() < 2:  # nothing to draft after the prefill's token
                continue
            s, a = walk_runs(runs(prompt, cont), k)
            per_call.append((s, a))
            role = str(record.get("agent", "?"))
            steps[role] += s
            accepted[role] += a
            calls[role] += 1
            tokens[role] += int(cont.numel())
    total_steps, total_accepted = sum(steps.values()), sum(accepted.values())
    return {"k": k, "calls": sum(calls.values()), "tokens": sum(tokens.values()),
            "mean_acceptance_length": mean_generated_length(total_steps, total_accepted),
            "per_role": {r: {"calls": calls[r], "tokens": tokens[r],
                             "mean_acceptance_length": mean_generated_length(steps[r], accepted[r])}
                         for r in sorted(calls)},
            "interval_95": bootstrap_interval(per_call)}


def bootstrap_interval(per_call: Sequence[tuple[int, int]], resamples: int = 1000,
                       seed: int = 0) -> list[float] | None:
    """95% bootstrap interval of MGL over calls: how far another sample of the same traffic could land."""
    if not per_call:
        return None
    gen = torch.Generator().manual_seed(seed)
    pairs = torch.tensor(per_call, dtype=torch.float64)
    idx = torch.randint(len(per_call), (resamples, len(per_call)), generator=gen)
    sums = pairs[idx].sum(1)
    mgls = 1 + sums[:, 1] / sums[:, 0].clamp(min=1)
    low, high = torch.quantile(mgls, torch.tensor([0.025, 0.975], dtype=torch.float64)).tolist()
    return [round(low, 3), round(high, 3)]
