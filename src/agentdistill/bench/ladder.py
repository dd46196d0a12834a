"""The attribution ladder: where the speed-up over the teacher comes from, one effect per rung, one invocation.

Every rung replays the same recorded conversations (bench/mas.py) at the same concurrency on the same machine,
one vLLM server after another. The main ladder is cumulative, as the paper's Tables 1-2, with continuous
batching, prefix caching and conditional agents in every rung, the teacher's included:
  1 teacher-size: a random-weight Llama >= 7x the student (`--load-format dummy`, speed only), full role prompts
  2 the student, full role prompts (speed only: it was not trained on them)          -> the size effect
  3 the student's own compact prompts                                                -> context distillation
  3b the same, the student's own outputs (greedy to EOS): the customized student before inference optimization
  4 + constrained decoding   5 + speculation   6 + W8A8                              -> stage two
Rungs 1-3 send each call's recorded output length (`ignore_eos`); 3b-6 let the student answer, since a grammar
or a drafter only means something on the student's own outputs. The system breakdown, on the student's compact
prompts: one request at a time with no prefix cache and an Evaluator call after every plan, then + continuous
batching, + prefix caching, + conditional agents (= rung 3). Ratios go against rung 1 and rung 3b.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from agentdistill.bench.mas import Conversation, bench_endpoint, recorded_conversations
from agentdistill.errors import UserError
from agentdistill.fileio import atomic_write_json
from agentdistill.paths import RunPaths

TEACHER_FACTOR = 7.0  # the teacher-size stand-in has at least this many times the student's parameters
MAIN = ("1", "2", "3", "3b", "4", "5", "6")
SYSTEM = ("s1", "s2", "s3")


@dataclass(frozen=True)
class Rung:
    key: str
    label: str
    model: Path
    prompts: str = "student"
    own_outputs: bool = False
    constrained: bool = False
    profile: str = "plain"
    prefix_caching: bool = True
    batching: bool = True
    conditional: bool = True
    dummy: bool = False
    quality: str | None = None  # the run's evaluation that measured this configuration's task success
    skip: str | None = None  # why the rung cannot run (a stage it needs has not run)
    notes: list[str] = field(default_factory=list)


def llama_params(config: dict[str, Any]) -> int:
    """Parameters of a Llama-style config (embeddings, attention, MLP, norms; the head counted once if tied)."""
    h, layers, inter, vocab = (config["hidden_size"], config["num_hidden_layers"], config["intermediate_size"],
                               config["vocab_size"])
    heads = config["num_attention_heads"]
    head_dim = config.get("head_dim") or h // heads
    kv = config.get("num_key_value_heads") or heads
    attn = h * heads * head_dim * 2 + h * kv * head_dim * 2
    per_layer = attn + 3 * h * inter + 2 * h
    embed = vocab * h * (1 if config.get("tie_word_embeddings") else 2)
    return layers * per_layer + embed + h


def teacher_size_config(student: Path, out: Path, factor: float = TEACHER_FACTOR) -> dict[str, Any]:
    """A Llama config with the student's tokenizer and vocabulary, grown from the student's shape (depth doubled,
    then width doubled, alternately) until it has `factor` times its parameters: SmolLM2-135M with the trimmed
    vocabulary (115M) becomes 60 layers of width 1,152 (0.87B). Written beside copies of the tokenizer files,
    for `--load-format dummy`."""
    import shutil

    base = json.loads((student / "config.json").read_text())
    target = factor * llama_params(base)
    config = {k: v for k, v in base.items() if k not in ("quantization_config", "auto_map")}
    heads = base["num_attention_heads"]
    config.update(architectures=["LlamaForCausalLM"], model_type="llama",
                  head_dim=base.get("head_dim") or base["hidden_size"] // heads,
                  num_key_value_heads=base.get("num_key_value_heads") or heads)
    grow_depth = True
    while llama_params(config) < target:
        if grow_depth:
            config["num_hidden_layers"] *= 2
        else:
            for key in ("hidden_size", "intermediate_size", "num_attention_heads", "num_key_value_heads"):
                config[key] *= 2
        grow_depth = not grow_depth
    out.mkdir(parents=True, exist_ok=True)
    for f in student.iterdir():
        if f.is_file() and (f.name.startswith("tokenizer") or f.name in ("special_tokens_map.json",
                                                                         "chat_template.jinja", "vocab.json",
                                                                         "merges.txt")):
            shutil.copy2(f, out / f.name)
    atomic_write_json(out / "config.json", config)
    return {"path": str(out), "params": llama_params(config), "student_params": llama_params(base),
            "factor": round(llama_params(config) / llama_params(base), 2)}


def best_quantized(run_dir: Path, scheme: str = "int8") -> Path | None:
    """The run's W8A8 checkpoint of `scheme` with the highest token agreement (optimize/quantize.json)."""
    report = run_dir / "optimize" / "quantize.json"
    if not report.is_file():
        return None
    checkpoints = json.loads(report.read_text()).get("checkpoints", {})
    scored = [(c.get("token_agreement", 0.0), Path(c["path"])) for c in checkpoints.values()
              if c.get("scheme") == scheme and Path(c["path"]).is_dir()]
    return max(scored)[1] if scored else None


def ladder_rungs(run_dir: Path, student: Path, speculation: str, quantized: Path | None) -> dict[str, Rung]:
    paths = RunPaths(run_dir)
    teacher = paths.root / "bench" / "teacher-size"
    quant = quantized or best_quantized(run_dir)
    from agentdistill.pipeline import FREE

    spec_profile = speculation.split("+quantized=")[0]
    rungs = [
        Rung("1", "teacher-size (dummy weights), full prompts", teacher, prompts="full", dummy=True),
        Rung("2", "student, full prompts", student, prompts="full"),
        Rung("3", "student, compact prompts", student),
        Rung("3b", "student, compact prompts, own outputs", student, own_outputs=True, quality=f"dpo{FREE}"),
        Rung("4", "+ constrained decoding", student, own_outputs=True, constrained=True, quality="dpo"),
        Rung("5", f"+ speculation ({spec_profile})", student, own_outputs=True, constrained=True,
             profile=spec_profile, quality="dpo", notes=["greedy speculation keeps the tokens: quality of rung 4"]),
        Rung("6", "+ W8A8 int8", student, own_outputs=True, constrained=True,
             profile=f"{spec_profile}+quantized={quant}" if quant else spec_profile,
             skip=None if quant else "no int8 checkpoint: run 'agentdistill optimize quantize RUN'",
             notes=["task success of the quantized student not measured by this bench"]),
        Rung("s1", "student, one request at a time, no prefix cache, every plan evaluated", student,
             prefix_caching=False, batching=False, conditional=False),
        Rung("s2", "+ continuous batching", student, prefix_caching=False, conditional=False),
        Rung("s3", "+ prefix caching", student, conditional=False),
    ]
    return {r.key: r for r in rungs}


def _conversations(run_dir: Path, rung: Rung, n: int, max_turns: int, cap: int,
                   cache: dict[tuple[str, bool], list[Conversation]]) -> list[Conversation]:
    key = (rung.prompts, rung.conditional)
    if key not in cache:
        cache[key] = recorded_conversations(run_dir, n, rung.prompts, max_output_tokens=cap, max_turns=max_turns,
                                            conditional=rung.conditional)
    convs = cache[key]
    if rung.own_outputs or rung.constrained:
        convs = [Conversation(c.conversation_id, [replace(call, max_tokens=cap) if rung.own_outputs else call
                                                  for call in c.calls]) for c in convs]
    if rung.constrained:
        from agentdistill.bench.serving import role_payloads

        payloads = role_payloads(run_dir)
        convs = [Conversation(c.conversation_id, [replace(call, extra={"structured_outputs": payloads[call.agent]})
                                                  if call.agent in payloads else call for call in c.calls])
                 for c in convs]
    return convs


def spec_counters(metrics: dict[str, float]) -> tuple[float, float]:
    return (metrics.get("vllm:spec_decode_num_drafts_total", 0.0),
            metrics.get("vllm:spec_decode_num_accepted_tokens_total", 0.0))


def run_rung(rung: Rung, run_dir: Path, convs: list[Conversation], concurrencies: list[int], port: int,
             max_model_len: int, enforce_eager: bool, dtype: str) -> dict[str, Any]:
    """One server for the rung; every concurrency replayed on it; MGL from vLLM's spec-decode counters."""
    from agentdistill.serve.profiles import parse_profile
    from agentdistill.serve.vllm_server import ServeConfig, VLLMServer

    profile = parse_profile(rung.profile, rung.model)
    config = ServeConfig(model=profile.model or rung.model, port=port, max_model_len=max_model_len,
                         enable_prefix_caching=rung.prefix_caching,
                         max_num_seqs=max(concurrencies) if rung.batching else 1,
                         speculative_config=profile.speculative_config, dtype=dtype, enforce_eager=enforce_eager,
                         load_format="dummy" if rung.dummy else None)
    extra = {"ignore_eos": False} if rung.own_outputs else None
    with VLLMServer(config) as server:
        drafts0, accepted0 = spec_counters(server.metrics())
        runs = bench_endpoint(server.url, config.served_model_name, convs, concurrencies, extra_body=extra,
                              fit_to=max_model_len)
        after = server.metrics()
    drafts, accepted = spec_counters(after)
    mgl = round(1 + (accepted - accepted0) / (drafts - drafts0), 3) if drafts > drafts0 else None
    return {"key": rung.key, "label": rung.label, "model": str(config.model), "profile": profile.name,
            "prompts": rung.prompts, "own_outputs": rung.own_outputs, "constrained": rung.constrained,
            "prefix_caching": rung.prefix_caching, "batching": rung.batching, "conditional": rung.conditional,
            "dummy_weights": rung.dummy, "calls_per_replay": sum(len(c.calls) for c in convs),
            "startup_s": round(server.startup_s or 0.0, 1), "mean_acceptance_length": mgl,
            "prefix_cache_hit_rate": _hit_rate(after), "runs": runs, "notes": rung.notes}


def _hit_rate(metrics: dict[str, float]) -> float | None:
    queries = metrics.get("vllm:prefix_cache_queries_total", 0.0)
    return round(metrics.get("vllm:prefix_cache_hits_total", 0.0) / queries, 4) if queries else None


def quality_of(run_dir: Path, name: str | None) -> dict[str, Any] | None:
    """Held-out and stress pass rates and violations of the run's evaluation `name` (eval/NAME/summary.json)."""
    path = RunPaths(run_dir).eval / (name or "") / "summary.json"
    if not name or not path.is_file():
        return None
    data = json.loads(path.read_text())
    return {suite: {k: data[suite].get(k) for k in ("pass_rate", "policy_violation_rate", "episodes")}
            for suite in ("heldout", "stress") if suite in data} | {"evaluation": name}


def run_ladder(run_dir: Path, *, student: Path | None = None, rungs: list[str] | None = None,
               conversations: int = 4, max_turns: int = 3, concurrency: int = 8, sweep: list[int] | None = None,
               speculation: str = "suffix", quantized: Path | None = None, max_output_tokens: int = 128,
               port: int = 8013, max_model_len: int = 8192, enforce_eager: bool = False, dtype: str = "auto",
               out: Path | None = None) -> dict[str, Any]:
    """Run the chosen rungs (default: the main ladder and the system breakdown) and write the table; an
    interrupted ladder keeps the rungs it finished (each is written as it ends) and reruns only the others."""
    from agentdistill.bench import machine_info
    from agentdistill.serve.vllm_server import serving_dtype

    run_dir = Path(run_dir)
    student = Path(student) if student else RunPaths(run_dir).model("dpo")
    if not (student / "config.json").is_file():
        raise UserError(f"no student checkpoint at {student}: train it first or pass --student")
    table = ladder_rungs(run_dir, student, speculation, quantized)
    chosen = rungs or [*MAIN, *SYSTEM]
    unknown = [k for k in chosen if k not in table]
    if unknown:
        raise UserError(f"unknown rung {', '.join(unknown)}: choose from {', '.join(table)}")
    dtype = serving_dtype(dtype)  # what every rung's server serves, written into the result
    concurrencies = sorted({concurrency, *(sweep or [])})
    out = out or Path(run_dir) / "bench" / "ladder.json"
    settings = {"run": str(run_dir), "student": str(student), "conversations": conversations,
                "max_turns": max_turns, "concurrency": concurrency, "concurrencies": concurrencies,
                "max_output_tokens": max_output_tokens, "dtype": dtype, "enforce_eager": enforce_eager}
    result: dict[str, Any] = {"bench": "ladder", **settings, "machine": machine_info(), "rungs": {}}
    if out.is_file():
        old = json.loads(out.read_text())
        if {k: old.get(k) for k in settings} == settings:
            result["rungs"] = old.get("rungs", {})
    if "1" in chosen:
        result["teacher_size"] = teacher_size_config(student, RunPaths(run_dir).root / "bench" / "teacher-size")
    cache: dict[tuple[str, bool], list[Conversation]] = {}
    for key in chosen:
        rung = table[key]
        if key in result["rungs"] and "runs" in result["rungs"][key]:
            continue
        if rung.skip:
            result["rungs"][key] = {"key": key, "label": rung.label, "skipped": rung.skip}
            continue
        convs = _conversations(run_dir, rung, conversations, max_turns, max_output_tokens, cache)
        measured = run_rung(rung, run_dir, convs, concurrencies if key in MAIN else [concurrency], port,
                            max_model_len, enforce_eager, dtype)
        measured["quality"] = quality_of(run_dir, rung.quality)
        result["rungs"][key] = measured
        result["ratios"] = ratios(result["rungs"], concurrency)
        atomic_write_json(out, result)
    result["ratios"] = ratios(result["rungs"], concurrency)
    atomic_write_json(out, result)
    return result


def ratios(rungs: dict[str, Any], concurrency: int) -> dict[str, dict[str, float]]:
    """Turns/s and P90 turn latency of every measured rung against rung 1 (teacher-size) and rung 3b."""
    def at(key: str) -> dict[str, Any] | None:
        return (rungs.get(key) or {}).get("runs", {}).get(str(concurrency))

    out: dict[str, dict[str, float]] = {}
    for key in rungs:
        run = at(key)
        if run is None:
            continue
        row: dict[str, float] = {}
        for ref in ("1", "3b"):
            base = at(ref)
            if base and base["turn_throughput"]:
                row[f"qps_vs_{ref}"] = round(run["turn_throughput"] / base["turn_throughput"], 3)
                row[f"p90_turn_latency_vs_{ref}"] = round(run["p90_turn_latency_ms"] / base["p90_turn_latency_ms"], 3)
        out[key] = row
    return out
