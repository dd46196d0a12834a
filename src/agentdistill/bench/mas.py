"""Benchmark at the level of the multi-agent system: recorded conversations replayed against an endpoint.

Replay keeps a conversation's dependency structure, as agent-session replay does in AIPerf: a role's call is sent
when the call before it in the conversation has been answered, `concurrency` conversations overlap, and every
call carries its recorded prompt and output length (`max_tokens` = the recorded length, `ignore_eos`). So a model
that cannot drive the MAS (a random-weight teacher-size model) carries exactly the same traffic as the student.
Calls stream, and each is timed as `vllm bench serve` times it (TTFT at the first chunk, ITL between chunks,
TPOT = (E2EL - TTFT) / (output tokens - 1)); the metric names are its names, reported per call, per role and per
user turn, with turns/s, calls/s, P90 turn latency (the paper's headline metric) and goodput under SLOs.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx

from agentdistill.errors import UserError

PROMPT_VIEWS = ("student", "full")
SLO_METRICS = ("ttft", "tpot", "itl", "e2el")


@dataclass
class ReplayCall:
    agent: str
    turn: int
    messages: list[dict[str, Any]]
    max_tokens: int
    extra: dict[str, Any] = field(default_factory=dict)  # request fields of this call (a role's grammar)


@dataclass
class Conversation:
    conversation_id: str
    calls: list[ReplayCall] = field(default_factory=list)


def recorded_conversations(run_dir: Path, n: int, prompts: str = "student", style: str = "focused",
                           max_output_tokens: int = 256, seed: int = 0, max_turns: int | None = None,
                           conditional: bool = True) -> list[Conversation]:
    """`n` recorded conversations of the run's traces, calls in their recorded order. `prompts`: "full" sends what
    the teacher read, "student" the same call as the student's runtime sends it (`style`, data/messages.py).
    `max_turns` keeps each conversation's first user turns. `conditional=False` replays the MAS without
    conditional invocation: every plan also goes to the LLM Evaluator, whose call is a recorded Evaluator call
    of the same prompt view (the nearest one in the conversation, else one of another conversation)."""
    from agentdistill.data.messages import canonical_messages, restyle_prompt
    from agentdistill.simulate.runner import run_domain
    from agentdistill.simulate.store import TraceStore

    if prompts not in PROMPT_VIEWS:
        raise UserError(f"unknown prompts {prompts!r}: use {' or '.join(PROMPT_VIEWS)}")
    if n < 1:
        raise UserError("conversations must be at least 1")
    store = TraceStore(run_dir)
    episodes = list(store.episodes(expand=False))
    random.Random(seed).shuffle(episodes)
    domain = run_domain(run_dir) if prompts == "student" else None

    def replayed(ep: dict[str, Any], call: dict[str, Any]) -> ReplayCall:
        call = store.expand(call)
        messages = canonical_messages(call["messages"])
        if domain is not None:
            messages = restyle_prompt(messages, style, domain, ep.get("policy_version") or domain.policy_version)
        return ReplayCall(call["agent"], int(call.get("turn", 0)), messages,
                          max(1, min(int(call.get("tokens_out") or 1), max_output_tokens)))

    out: list[Conversation] = []
    for ep in episodes[:n]:
        conv = Conversation(ep["episode_id"])
        for call in sorted(ep["calls"], key=lambda c: c.get("call_index", 0)):
            if max_turns is None or int(call.get("turn", 0)) <= max_turns:
                conv.calls.append(replayed(ep, call))
        if conv.calls:
            out.append(conv)
    if not out:
        raise UserError(f"no recorded agent calls in {store.traces}")
    if not conditional:
        pool = [replayed(ep, c) for ep in episodes for c in ep["calls"] if c["agent"] == "evaluator"][:64]
        out = [always_evaluate(conv, pool) for conv in out]
    return out


def always_evaluate(conv: Conversation, pool: list[ReplayCall]) -> Conversation:
    """The conversation as a MAS without conditional invocation sends it: an Evaluator call after every plan."""
    own = [c for c in conv.calls if c.agent == "evaluator"] or pool
    if not own:
        raise UserError("no recorded Evaluator call to replay unconditional evaluation with")
    calls: list[ReplayCall] = []
    for i, call in enumerate(conv.calls):
        calls.append(call)
        following = conv.calls[i + 1].agent if i + 1 < len(conv.calls) else None
        if call.agent == "planner" and following != "evaluator":
            calls.append(replace(own[i % len(own)], turn=call.turn))
    return Conversation(conv.conversation_id, calls)


async def stream_call(client: httpx.AsyncClient, url: str, model: str, call: ReplayCall,
                      extra_body: dict[str, Any] | None = None, fit_to: int | None = None) -> dict[str, Any]:
    """One streamed chat completion, timed the way `vllm bench serve` times its openai-chat backend."""
    body = {"model": model, "messages": call.messages, "max_tokens": call.max_tokens, "temperature": 0.0,
            "ignore_eos": True, "stream": True, "stream_options": {"include_usage": True}, **call.extra,
            **(extra_body or {})}
    if fit_to:  # keep the prompt's last tokens that fit beside the output (vLLM's own truncation)
        body["truncate_prompt_tokens"] = fit_to - call.max_tokens
    start = time.perf_counter()
    ttft: float | None = None
    last = start
    itl: list[float] = []
    output_tokens = 0
    prompt_tokens = 0
    text: list[str] = []
    async with client.stream("POST", f"{url}/v1/chat/completions", json=body) as resp:
        if resp.status_code != 200:
            detail = (await resp.aread()).decode(errors="replace")[:200]
            raise UserError(f"the server answered {resp.status_code}: {detail}")
        async for line in resp.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            now = time.perf_counter()
            data = json.loads(line[len("data: "):])
            if data.get("choices"):
                if ttft is None:
                    ttft = now - start
                else:
                    itl.append(now - last)
                last = now
                text.append(data["choices"][0].get("delta", {}).get("content") or "")
            elif data.get("usage"):
                output_tokens = data["usage"].get("completion_tokens") or 0
                prompt_tokens = data["usage"].get("prompt_tokens") or 0
    if ttft is None:
        raise UserError(f"the server at {url} streamed no token for a {call.agent} call")
    e2el = last - start
    return {"agent": call.agent, "turn": call.turn, "start": start, "end": last, "ttft_s": ttft, "e2el_s": e2el,
            "itl_s": itl, "tpot_s": (e2el - ttft) / (output_tokens - 1) if output_tokens > 1 else 0.0,
            "output_tokens": output_tokens, "prompt_tokens": prompt_tokens, "text": "".join(text)}


async def replay(url: str, model: str, conversations: list[Conversation], concurrency: int,
                 extra_body: dict[str, Any] | None = None,
                 fit_to: int | None = None) -> tuple[float, list[list[dict[str, Any]]]]:
    """Every conversation, `concurrency` of them in flight, each call after the one before it answered.
    `fit_to` (the server's max_model_len) truncates prompts from the left so prompt and output fit."""
    if concurrency < 1:
        raise UserError("concurrency must be at least 1")
    sem = asyncio.Semaphore(concurrency)
    results: list[list[dict[str, Any]]] = [[] for _ in conversations]
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=httpx.Timeout(900.0), limits=limits) as client:
        async def one(i: int, conv: Conversation) -> None:
            async with sem:
                for call in conv.calls:
                    results[i].append(await stream_call(client, url, model, call, extra_body, fit_to))

        t0 = time.perf_counter()
        await asyncio.gather(*(one(i, c) for i, c in enumerate(conversations)))
        return time.perf_counter() - t0, results


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, as numpy (and so vllm bench serve) computes it."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = q / 100 * (len(ordered) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def latency_stats(name: str, seconds: list[float]) -> dict[str, float]:
    ms = [1000 * s for s in seconds]
    return {f"mean_{name}_ms": round(statistics.fmean(ms), 2) if ms else 0.0,
            f"median_{name}_ms": round(percentile(ms, 50), 2), f"p90_{name}_ms": round(percentile(ms, 90), 2),
            f"p99_{name}_ms": round(percentile(ms, 99), 2)}


def call_metrics(rows: list[dict[str, Any]], duration_s: float) -> dict[str, Any]:
    """`vllm bench serve`'s metrics for a set of calls over `duration_s`."""
    out_tokens = sum(r["output_tokens"] for r in rows)
    in_tokens = sum(r["prompt_tokens"] for r in rows)
    metrics: dict[str, Any] = {
        "completed": len(rows), "total_input_tokens": in_tokens, "total_output_tokens": out_tokens,
        "request_throughput": round(len(rows) / duration_s, 4),
        "output_throughput": round(out_tokens / duration_s, 3),
        "total_token_throughput": round((in_tokens + out_tokens) / duration_s, 3)}
    metrics.update(latency_stats("ttft", [r["ttft_s"] for r in rows]))
    metrics.update(latency_stats("tpot", [r["tpot_s"] for r in rows if r["output_tokens"] > 1]))
    metrics.update(latency_stats("itl", [x for r in rows for x in r["itl_s"]]))
    metrics.update(latency_stats("e2el", [r["e2el_s"] for r in rows]))
    return metrics


def parse_slos(slos: list[str] | None) -> dict[str, float]:
    """"ttft:500" -> {"ttft": 500.0} (milliseconds), the form of `vllm bench serve --goodput`."""
    out: dict[str, float] = {}
    for item in slos or []:
        name, _, value = item.partition(":")
        if name not in SLO_METRICS:
            raise UserError(f"unknown SLO metric {name!r} in {item!r}: use {', '.join(SLO_METRICS)}")
        try:
            out[name] = float(value)
        except ValueError:
            raise UserError(f"SLO {item!r} needs a number of milliseconds, as ttft:500") from None
        if out[name] <= 0:
            raise UserError(f"SLO {item!r} must be positive")
    return out


def meets(row: dict[str, Any], slos: dict[str, float]) -> bool:
    values = {"ttft": row["ttft_s"], "tpot": row["tpot_s"], "e2el": row["e2el_s"],
              "itl": max(row["itl_s"], default=0.0)}
    return all(1000 * values[name] <= limit for name, limit in slos.items())


def turn_latencies(conversations: list[list[dict[str, Any]]]) -> list[float]:
    """Seconds from a user turn's first call sent to its last call answered."""
    out = []
    for rows in conversations:
        by_turn: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            by_turn[r["turn"]].append(r)
        out += [max(r["end"] for r in rs) - min(r["start"] for r in rs) for rs in by_turn.values()]
    return out


def summarize_replay(duration_s: float, conversations: list[list[dict[str, Any]]],
                     slos: dict[str, float] | None = None) -> dict[str, Any]:
    """Per call, per role and per user turn, with goodput where SLOs are given."""
    rows = [r for conv in conversations for r in conv]
    turns = turn_latencies(conversations)
    summary: dict[str, Any] = {"duration_s": round(duration_s, 3), "conversations": len(conversations),
                               "turns": len(turns), **call_metrics(rows, duration_s),
                               "turn_throughput": round(len(turns) / duration_s, 4),
                               "call_throughput": round(len(rows) / duration_s, 4)}
    summary.update({k.replace("e2el", "turn_latency"): v for k, v in latency_stats("e2el", turns).items()})
    if slos:
        good = sum(meets(r, slos) for r in rows)
        summary["slos_ms"] = slos
        summary["request_goodput"] = round(good / duration_s, 4)
        summary["good_share"] = round(good / len(rows), 4)
    by_role: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_role[r["agent"]].append(r)
    summary["per_role"] = {role: call_metrics(rs, duration_s) for role, rs in sorted(by_role.items())}
    return summary


def bench_endpoint(url: str, model: str, conversations: list[Conversation], concurrencies: list[int],
                   slos: dict[str, float] | None = None, extra_body: dict[str, Any] | None = None,
                   warmup: int = 2, fit_to: int | None = None) -> dict[str, dict[str, Any]]:
    """Replay the conversations at each concurrency against a running endpoint, after the first call of `warmup`
    of them (compiled graphs and grammars; the role prompts they cache are cached in any running server)."""
    if warmup:
        first_calls = [Conversation(c.conversation_id, c.calls[:1]) for c in conversations[:warmup]]
        asyncio.run(replay(url, model, first_calls, warmup, extra_body, fit_to))
    runs = {}
    for c in concurrencies:
        wall, rows = asyncio.run(replay(url, model, conversations, c, extra_body, fit_to))
        runs[str(c)] = summarize_replay(wall, rows, slos)
    return runs


def run_mas_bench(run_dir: Path, *, url: str | None = None, model: Path | None = None,
                  served_model_name: str | None = None, profile: str = "plain", prompts: str = "student",
                  conversations: int = 16, concurrency: list[int] | None = None, max_output_tokens: int = 256,
                  slos: list[str] | None = None, port: int = 8012, max_model_len: int = 8192,
                  load_format: str | None = None, out: Path | None = None, label: str | None = None,
                  crosscheck_requests: int = 0, tokenizer: Path | None = None,
                  enforce_eager: bool = False) -> dict[str, Any]:
    """Replay a run's recorded conversations against `url`, or against `model` served here under `profile`
    (serve/profiles.py). `load_format="dummy"` serves random weights of `model`'s config: a speed-only stand-in.
    `crosscheck_requests` > 0 also times that many flat requests with `vllm bench serve` and with ours on the same
    server (bench/crosscheck.py); `tokenizer` (default `model`) is what vLLM's benchmark counts prompts with."""
    from agentdistill.bench import machine_info
    from agentdistill.evaluate.run_eval import model_prompt_style
    from agentdistill.fileio import atomic_write_json
    from agentdistill.paths import RunPaths

    run_dir = Path(run_dir)
    concurrency = concurrency or [1, 8]
    slo_ms = parse_slos(slos)
    if url is None and model is None:
        model = RunPaths(run_dir).model("dpo")
    style = model_prompt_style(str(model)) if model is not None else "focused"
    style = "focused" if style == "full" and prompts == "student" else style
    convs = recorded_conversations(run_dir, conversations, prompts, style, max_output_tokens)
    result: dict[str, Any] = {"bench": "mas", "mode": "replay", "run": str(run_dir), "label": label or profile,
                              "prompts": prompts if prompts == "full" else f"student ({style})",
                              "conversations": len(convs), "calls": sum(len(c.calls) for c in convs),
                              "concurrency": concurrency, "max_output_tokens": max_output_tokens,
                              "machine": machine_info()}
    if url is not None:
        from agentdistill.backends.openai_backend import OpenAIBackend

        endpoint = OpenAIBackend(url, model=served_model_name)
        base, name = endpoint.base_url.removesuffix("/v1"), endpoint.resolve_model()
        result.update(endpoint=base, model=name, runs=bench_endpoint(base, name, convs, concurrency, slo_ms))
        if crosscheck_requests:
            result["crosscheck"] = _crosscheck(base, name, tokenizer or model, convs, crosscheck_requests,
                                               max(concurrency))
    else:
        from agentdistill.serve.profiles import parse_profile
        from agentdistill.serve.vllm_server import ServeConfig, VLLMServer

        chosen = parse_profile(profile, Path(model))
        config = ServeConfig(model=chosen.model or model, port=port, max_model_len=max_model_len,
                             speculative_config=chosen.speculative_config, load_format=load_format,
                             max_num_seqs=max(concurrency), enforce_eager=enforce_eager)
        with VLLMServer(config) as server:
            result.update(model=str(config.model), profile=chosen.name, load_format=load_format or "auto",
                          startup_s=round(server.startup_s or 0.0, 1),
                          runs=bench_endpoint(server.url, config.served_model_name, convs, concurrency, slo_ms))
            if crosscheck_requests:
                result["crosscheck"] = _crosscheck(server.url, config.served_model_name, tokenizer or config.model,
                                                   convs, crosscheck_requests, max(concurrency))
    atomic_write_json(out or Path(run_dir) / "bench" / "mas.json", result)
    return result


def _crosscheck(base_url: str, name: str, tokenizer: str | Path | None, convs: list[Conversation], n: int,
                concurrency: int) -> dict[str, Any]:
    from agentdistill.bench.crosscheck import crosscheck

    if tokenizer is None:
        raise UserError("the cross-check needs a tokenizer for vllm bench serve: pass --tokenizer DIR")
    return crosscheck(base_url, name, tokenizer, convs, n=n, concurrency=concurrency)
