"""Benchmark: how fast the scripted teacher produces verified conversations (the paper simulated 7,172
conversations -> 495,772 agent calls). Writes one JSON file; no timing asserts anywhere."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from agentdistill.bench import machine_info
from agentdistill.config import SimulateConfig
from agentdistill.fileio import atomic_write_json

PAPER = {"conversations": 7172, "agent_calls": 495772, "agent_calls_per_conversation": round(495772 / 7172, 1)}


def bench_simulate(episodes: int = 7172, workers: int = 2, seed: int = 0, error_rate: float = 0.03,
                   out: str | Path = "benchmarks/results/simulate.json", keep: str | Path | None = None,
                   show_progress: bool = True) -> dict[str, Any]:
    from agentdistill.simulate.runner import simulate

    run_dir = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="agentdistill-bench-"))
    cfg = SimulateConfig(episodes=episodes, workers=workers, seed=seed, error_rate=error_rate)
    t0 = time.perf_counter()
    summary = simulate(cfg, run_dir, show_progress=show_progress)
    wall = time.perf_counter() - t0
    trace_bytes = sum(p.stat().st_size for p in (run_dir / "traces").glob("*"))
    if not keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    result = {
        "benchmark": "simulate",
        "command": f"agentdistill bench simulate --episodes {episodes} --workers {workers} --seed {seed} "
                   f"--error-rate {error_rate}",
        "machine": machine_info(),
        "episodes": summary["episodes"],
        "agent_calls": summary["agent_calls"],
        "wall_s": round(wall, 2),
        "episodes_per_s": round(summary["episodes"] / wall, 2),
        "agent_calls_per_s": round(summary["agent_calls"] / wall, 1),
        "agent_calls_per_conversation": summary["agent_calls_per_episode"],
        "turns_per_conversation": summary["turns_per_episode"],
        "pass_rate": summary["pass_rate"],
        "clean_pass_rate": summary["clean_pass_rate"],
        "injected_flagged_rate": summary["injected_flagged_rate"],
        "trace_megabytes": round(trace_bytes / 2**20, 1),
        "paper": PAPER,
    }
    atomic_write_json(out, result)
    return result
