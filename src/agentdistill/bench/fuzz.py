"""`agentdistill bench fuzz`: hostile outputs (bench/hostile.py) through every role of the MAS, the judge and the
trace writer, counted per role and kind, with crashes (exceptions out of an episode) and episodes that ended on
a recorded exception; plus the slowest parse per model-text parser. Target: 0 and 0."""

from __future__ import annotations

import io
import time
from collections import Counter
from pathlib import Path
from typing import Any

from agentdistill.bench import machine_info
from agentdistill.bench.hostile import ROLES, HostileBackend
from agentdistill.fileio import atomic_write_json
from agentdistill.judge.judge import Judge
from agentdistill.mas import model_text
from agentdistill.mas.plan import PlanError, parse_plan
from agentdistill.mas.runtime import MAS, MASConfig
from agentdistill.simulate.episode import run_episode
from agentdistill.simulate.store import TraceStore
from agentdistill.simulate.user import ScriptedUser

PARSERS = {
    "understanding": model_text.understanding,
    "verdict": model_text.verdict,
    "json_object": model_text.json_object,
    "tool_arguments": model_text.tool_arguments,
}


def time_parsers(domain: Any, texts: list[str]) -> dict[str, float]:
    """The slowest parse, in ms, of each parser over `texts` (each returns a value or its typed error)."""
    tools = domain.tool_names()
    slowest: dict[str, float] = {}
    for text in texts:
        for name, fn in [*PARSERS.items(), ("plan", lambda t: parse_plan(t, tools))]:
            t0 = time.perf_counter()
            try:
                fn(text)
            except (model_text.ModelTextError, PlanError):
                pass
            slowest[name] = max(slowest.get(name, 0.0), (time.perf_counter() - t0) * 1000)
    return {k: round(v, 3) for k, v in slowest.items()}


def fuzz_episodes(domain: Any, outputs: int, seed: int = 0, rate: float = 0.5,
                  progress: Any = None) -> dict[str, Any]:
    """Conversations with a hostile teacher until `outputs` hostile answers were sent; what came out."""
    backend = HostileBackend(domain, seed=seed, rate=rate)
    mas, judge = MAS(domain, backend, MASConfig(halstead_threshold=0.0)), Judge(domain)  # evaluator on every plan
    types = [s.name for s in domain.scenario_types()]
    crashes: list[str] = []
    errors: Counter = Counter()
    exits: Counter = Counter()
    texts: list[str] = []
    episodes = 0
    sink = io.StringIO()
    while backend.total < outputs:
        sc = domain.make_scenario(types[episodes % len(types)], f"fuzz:{seed}:{episodes}")
        try:
            ep = run_episode(f"fuzz-{episodes}", sc, mas, ScriptedUser(sc, domain.fallback_reply), backend)
            judge.judge_episode(ep)
            TraceStore.write(sink, ep)  # the trace must serialize (lone surrogates, huge values)
            sink.seek(0)
            sink.truncate()
        except Exception as exc:  # noqa: BLE001 - a crash is what this benchmark counts
            crashes.append(f"{type(exc).__name__}: {exc}"[:200])
        else:
            if err := ep.get("error"):
                errors[f"{err['stage']}:{err['type']}:{err['where']}"] += 1
            exits[ep["exit"]] += 1
        texts += [t for _, _, t in backend.sent]
        backend.sent = []
        episodes += 1
        if progress is not None:
            progress(backend.total)
    return {"episodes": episodes, "hostile_outputs": backend.total,
            "by_role": {r: sum(backend.counts[r].values()) for r in ROLES},
            "by_role_and_kind": backend.counts, "crashes": len(crashes), "crash_examples": crashes[:5],
            "episode_errors": sum(errors.values()), "episode_errors_by_kind": dict(errors),
            "exits": dict(exits), "slowest_parse_ms": time_parsers(domain, texts[:3_000])}


def bench_fuzz(outputs: int = 10_000, seed: int = 0, out: Path = Path("benchmarks/results/fuzz.json"),
               progress: Any = None) -> dict[str, Any]:
    from agentdistill.domain.registry import make_domain

    t0 = time.perf_counter()
    result = fuzz_episodes(make_domain(), outputs, seed=seed, progress=progress)
    result = {"benchmark": "fuzz", "command": f"agentdistill bench fuzz --outputs {outputs} --seed {seed}",
              "what": "hostile model outputs through every MAS role, the judge and the trace writer; "
                      "crashes and episode_errors must be 0",
              "machine": machine_info(), "elapsed_s": round(time.perf_counter() - t0, 1),
              "limits": model_text.LIMITS.__dict__, **result}
    atomic_write_json(Path(out), result)
    return result
