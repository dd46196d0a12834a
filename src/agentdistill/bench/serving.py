"""Benchmark: serving profiles side by side on the same recorded agent calls, one vLLM server after another.

Every profile (serve/profiles.py: plain, ngram, suffix, eagle3, draft, +quantized) serves the same student and
receives the same requests: the held-out agent calls of a run (SFT val records, the prompt the student reads in
the MAS), greedy, at each concurrency. Per profile and concurrency it reports vLLM-bench-style throughput and
latency, the mean acceptance length (the paper's MGL, 1 + accepted / drafting steps) from vLLM's own per-request
spec-decode metrics, per role as well, and the share of outputs token-identical to the plain profile's (greedy
speculation must not change a token; W8A8 may). Speed-ups are ratios to `plain` within this one run.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx

from agentdistill.bench import machine_info
from agentdistill.bench.mas import latency_stats
from agentdistill.errors import UserError
from agentdistill.fileio import atomic_write_json, read_jsonl
from agentdistill.paths import RunPaths
from agentdistill.serve.profiles import ServingProfile, parse_profile


def recorded_calls(run_dir: Path, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """`n` held-out agent calls, the roles interleaved evenly: {"agent", "messages"} without the target."""
    path = RunPaths(run_dir).dataset("sft", "val")
    if not path.is_file():
        raise UserError(f"no held-out agent calls at {path}: run 'agentdistill datasets RUN' first")
    by_role: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in read_jsonl(path):
        if record.get("messages") and record["messages"][-1].get("role") == "assistant":
            by_role[record.get("agent", "?")].append({"agent": record.get("agent", "?"),
                                                      "messages": record["messages"][:-1]})
    if not by_role:
        raise UserError(f"{path} holds no agent calls")
    rng = random.Random(seed)
    for calls in by_role.values():
        rng.shuffle(calls)
    out: list[dict[str, Any]] = []
    while len(out) < n and any(by_role.values()):
        for role in sorted(by_role):
            if by_role[role] and len(out) < n:
                out.append(by_role[role].pop())
    return out


async def drive(url: str, model: str, calls: list[dict[str, Any]], concurrency: int,
                 max_tokens: int) -> tuple[float, list[dict[str, Any]]]:
    """Send every call, `concurrency` in flight; returns wall seconds and per-call results in call order."""
    sem = asyncio.Semaphore(concurrency)
    results: list[dict[str, Any]] = [{} for _ in calls]
    async with httpx.AsyncClient(timeout=600.0) as client:
        async def one(i: int, call: dict[str, Any]) -> None:
            async with sem:
                t0 = time.perf_counter()
                body = {"model": model, "messages": call["messages"], "max_tokens": max_tokens, "temperature": 0.0}
                if call.get("structured_outputs"):
                    body["structured_outputs"] = call["structured_outputs"]
                resp = await client.post(f"{url}/v1/chat/completions", json=body)
                latency = time.perf_counter() - t0
                if resp.status_code != 200:
                    raise UserError(f"the server answered {resp.status_code}: {resp.text[:200]}")
                body = resp.json()
                spec = (body.get("metrics") or {}).get("speculative_decoding") or {}
                message = body["choices"][0]["message"]
                results[i] = {"agent": call["agent"], "latency_s": latency, "content": message.get("content") or "",
                              "output_tokens": body["usage"]["completion_tokens"],
                              "text": (message.get("content") or "") + repr(message.get("tool_calls") or ""),
                              "spec_steps": spec.get("num_spec_steps", 0),
                              "accepted": spec.get("num_accepted_draft_tokens", 0)}

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i, c) for i, c in enumerate(calls)))
        return time.perf_counter() - t0, results


def mgl(rows: list[dict[str, Any]]) -> float | None:
    steps = sum(r["spec_steps"] for r in rows)
    return round(1 + sum(r["accepted"] for r in rows) / steps, 3) if steps else None


def summarize(wall_s: float, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """vLLM bench serve's names for what one batch of requests measured."""
    out_tokens = sum(r["output_tokens"] for r in rows)
    by_role: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_role[r["agent"]].append(r)
    return {
        "completed": len(rows), "duration_s": round(wall_s, 2), "total_output_tokens": out_tokens,
        "request_throughput": round(len(rows) / wall_s, 3), "output_throughput": round(out_tokens / wall_s, 2),
        **latency_stats("e2el", [r["latency_s"] for r in rows]),
        "mean_acceptance_length": mgl(rows),
        "per_role": {role: {"calls": len(rs), "output_tokens": sum(r["output_tokens"] for r in rs),
                            "mean_acceptance_length": mgl(rs)} for role, rs in sorted(by_role.items())},
    }


def role_payloads(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Each constrained role's vLLM `structured_outputs` payload for the run's domain (mas/constraints.py)."""
    from agentdistill.mas.constraints import CONSTRAINABLE_ROLES, role_constraints
    from agentdistill.simulate.runner import run_domain

    return role_constraints(run_domain(run_dir), CONSTRAINABLE_ROLES)


def constrained(calls: list[dict[str, Any]], run_dir: Path) -> list[dict[str, Any]]:
    """The same calls with each constrained role's vLLM `structured_outputs` payload."""
    payloads = role_payloads(run_dir)
    return [{**c, "structured_outputs": payloads.get(c["agent"])} for c in calls]


def bench_profile(profile: ServingProfile, student: Path, calls: dict[str, list[dict[str, Any]]],
                  concurrencies: list[int], max_tokens: int, port: int, max_model_len: int,
                  enforce_eager: bool = False) -> dict[str, Any]:
    """Start one server for the profile, warm it up, then send the calls of each decoding mode at each
    concurrency; runs are keyed "C" (free decoding) or "C+constrained"."""
    from agentdistill.serve.vllm_server import ServeConfig, VLLMServer

    extra = ["--per-request-spec-decode-metrics", "summary"] if profile.speculative_config else []
    config = ServeConfig(model=profile.model or student, port=port, max_model_len=max_model_len,
                         speculative_config=profile.speculative_config, extra_args=extra,
                         max_num_seqs=max(concurrencies), enforce_eager=enforce_eager)
    with VLLMServer(config) as server:
        for mode_calls in calls.values():  # warm-up, grammars compiled once
            asyncio.run(drive(server.url, config.served_model_name, mode_calls[: min(4, len(mode_calls))], 2,
                              max_tokens))
        runs = {}
        for mode, mode_calls in calls.items():
            for c in concurrencies:
                wall, rows = asyncio.run(drive(server.url, config.served_model_name, mode_calls, c, max_tokens))
                key = str(c) if mode == "free" else f"{c}+{mode}"
                runs[key] = {"summary": summarize(wall, rows), "texts": [r["text"] for r in rows]}
        return {"profile": profile.name, "speculative_config": profile.speculative_config,
                "model": str(config.model), "startup_s": round(server.startup_s or 0.0, 1), "runs": runs}


def run_serving_bench(run_dir: Path, profiles: list[str], *, model: Path | None = None, calls: int = 48,
                      concurrency: list[int] | None = None, max_tokens: int = 96, port: int = 8011,
                      max_model_len: int = 4096, out: Path | None = None,
                      decoding: list[str] | None = None, enforce_eager: bool = False) -> dict[str, Any]:
    """Every profile on the same calls; ratios to the first profile (put `plain` first). `decoding`: free and/or
    constrained (each role's domain grammar or schema as vLLM structured outputs)."""
    run_dir = Path(run_dir)
    student = Path(model) if model else RunPaths(run_dir).model("dpo")
    parsed = [parse_profile(p, student) for p in profiles]
    if not parsed:
        raise UserError("name at least one --profile (plain first: it is the baseline)")
    concurrency = concurrency or [1, 8]
    if min(concurrency) < 1:
        raise UserError("concurrency must be at least 1")
    decoding = decoding or ["free"]
    unknown = set(decoding) - {"free", "constrained"}
    if unknown:
        raise UserError(f"unknown decoding {', '.join(sorted(unknown))}: use free and/or constrained")
    recorded = recorded_calls(run_dir, calls)
    modes = {mode: recorded if mode == "free" else constrained(recorded, run_dir) for mode in dict.fromkeys(decoding)}
    results = [bench_profile(p, student, modes, concurrency, max_tokens, port, max_model_len, enforce_eager)
               for p in parsed]
    base = results[0]
    for r in results:
        for c, run in r["runs"].items():
            ref = base["runs"][c]
            s, b = run["summary"], ref["summary"]
            run["vs_" + base["profile"]] = {
                "output_throughput_ratio": round(s["output_throughput"] / b["output_throughput"], 3),
                "request_throughput_ratio": round(s["request_throughput"] / b["request_throughput"], 3),
                "token_identical_share": round(sum(a == x for a, x in zip(run["texts"], ref["texts"], strict=True))
                                               / len(ref["texts"]), 3)}
    for r in results:
        for run in r["runs"].values():
            run.pop("texts")
    result = {"bench": "serving", "run": str(run_dir), "student": str(student), "calls": len(recorded),
              "roles": sorted({c["agent"] for c in recorded}), "max_tokens": max_tokens, "concurrency": concurrency,
              "decoding": list(modes),
              "machine": machine_info(), "profiles": results}
    out = out or Path("benchmarks/results/serving.json")
    atomic_write_json(out, result)
    return result
