"""The scale-out run as an ordered list of launch commands: vLLM servers, our stages, accelerate-launched training.

Each step names the output that shows it is done, so a rerun skips finished steps (as `agentdistill run` does).
The teacher server is stopped before training so its GPUs are free for accelerate.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from agentdistill.scale.config import ScaleConfig, Serving
from agentdistill.serve.vllm_server import ServeConfig, VLLMServer

CLI = ["python", "-m", "agentdistill.cli"]


@dataclass(frozen=True)
class Step:
    name: str
    kind: Literal["server", "command", "stop"]
    argv: list[str] = field(default_factory=list)
    done_when: Path | None = None  # the step is skipped when this exists
    health_url: str | None = None  # servers: ready when GET answers 200
    stops: str | None = None  # stop steps: the server step they end
    startup_timeout_s: float = 1800.0

    @property
    def shell(self) -> str:
        return shlex.join(self.argv)


def vllm_argv(serving: Serving, model: str | Path) -> list[str]:
    """The same server argv as `agentdistill serve` (serve/vllm_server.py), plus the scale-out flags."""
    extra = ["--tensor-parallel-size", str(serving.tensor_parallel_size)]
    if serving.gpu_memory_utilization is not None:
        extra += ["--gpu-memory-utilization", str(serving.gpu_memory_utilization)]
    config = ServeConfig(model=model, host=serving.host, port=serving.port,
                         served_model_name=serving.served_model_name, max_model_len=serving.max_model_len,
                         tool_parser=serving.tool_parser, dtype=serving.dtype, max_num_seqs=serving.max_num_seqs,
                         quantization=serving.quantization, extra_args=extra + serving.extra_args)
    argv = VLLMServer(config).command()
    return ["python", *argv[1:]] if argv[0] == sys.executable else argv


def _server(name: str, serving: Serving, model: str | Path) -> Step:
    return Step(name, "server", vllm_argv(serving, model), health_url=serving.base_url.removesuffix("/v1") + "/health",
                startup_timeout_s=serving.startup_timeout_s)


def _train(c: ScaleConfig, stage: str, model: Path, out: Path, config: Path, eval_data: bool) -> Step:
    t = c.train
    data = c.run_dir / "datasets" / stage
    argv = ["accelerate", "launch", "--config_file", str(t.accelerate_config), "--num_processes", str(t.num_processes),
            "--num_machines", str(t.num_machines), "-m", "agentdistill.cli", "train", stage, "--model", str(model),
            "--data", str(data / "train.jsonl"), "--out", str(out), "--config", str(config)]
    if eval_data:
        argv += ["--eval-data", str(data / "val.jsonl")]
    return Step(f"train {stage}", "command", argv, done_when=out / "train_summary.json")


def launch_plan(c: ScaleConfig) -> list[Step]:
    """simulate (teacher) -> eval/bench the teacher -> datasets -> base -> [expand] -> CPT -> SFT -> DPO (accelerate)
    -> serve the student (TP, FP8) -> eval/bench the student -> report."""
    run, models = c.run_dir, c.run_dir / "models"
    teacher_url, student_url = c.teacher.base_url, c.student.base_url
    steps: list[Step] = []
    if c.teacher.model is not None:
        steps.append(_server("serve teacher", c.teacher, c.teacher.model))
    sim = [*CLI, "simulate", "--out", str(run), "--episodes", str(c.simulate.episodes), "--workers",
           str(c.simulate.workers), "--teacher", teacher_url, "--teacher-model", c.teacher.served_model_name,
           "--domain", c.domain, "--no-progress"]
    if c.simulate.long_share is not None:
        sim += ["--long-share", str(c.simulate.long_share)]
    steps.append(Step("simulate", "command", sim, done_when=run / "summary.json"))
    e = c.eval
    evaluate = [*CLI, "eval", "model"]
    suites = ["--heldout", str(e.heldout), "--stress", str(e.stress), "--workers", str(e.workers), "--no-progress"]
    steps.append(Step("eval teacher", "command", [*evaluate, teacher_url, "--run", str(run), "--name", "teacher",
                                                   "--prompt-style", "full", *suites],
                      done_when=run / "eval" / "teacher" / "summary.json"))
    bench = [*CLI, "bench", "mas", str(run), "--conversations", str(e.bench_conversations),
             *(arg for n in e.bench_concurrency for arg in ("--concurrency", str(n)))]
    steps.append(Step("bench teacher", "command", [*bench, "--url", teacher_url, "--prompts", "full", "--out",
                                                    str(run / "bench" / "mas_teacher.json")],
                      done_when=run / "bench" / "mas_teacher.json"))
    if c.teacher.model is not None:
        steps.append(Step("stop teacher", "stop", stops="serve teacher"))
    steps.append(Step("datasets", "command", [*CLI, "datasets", str(run), "--prompt-style", c.train.prompt_style,
                                               "--no-progress"], done_when=run / "datasets" / "sft" / "train.jsonl"))
    start = models / "pretrained"
    steps.append(Step("base", "command", [*CLI, "train", "prepare", "--model", str(c.base), "--out", str(start)],
                      done_when=start / "config.json"))
    if c.train.expand_every:
        expanded = models / "expanded"
        steps.append(Step("expand", "command", [*CLI, "train", "expand", "--model", str(start), "--out",
                                                 str(expanded), "--every", str(c.train.expand_every)],
                          done_when=expanded / "config.json"))
        start = expanded
    steps.append(_train(c, "cpt", start, models / "cpt", c.train.cpt, eval_data=True))
    steps.append(_train(c, "sft", models / "cpt", models / "sft", c.train.sft, eval_data=True))
    steps.append(_train(c, "dpo", models / "sft", models / "dpo", c.train.dpo, eval_data=False))
    steps.append(_server("serve student", c.student, models / "dpo"))
    steps.append(Step("eval student", "command", [*evaluate, student_url, "--run", str(run), "--name", "dpo",
                                                   "--prompt-style", c.train.prompt_style, "--constrain", e.constrain,
                                                   *suites], done_when=run / "eval" / "dpo" / "summary.json"))
    steps.append(Step("bench student", "command", [*bench, "--url", student_url, "--out",
                                                    str(run / "bench" / "mas.json")],
                      done_when=run / "bench" / "mas.json"))
    steps.append(Step("stop student", "stop", stops="serve student"))
    steps.append(Step("report", "command", [*CLI, "report", str(run), "--student", "dpo", "--teacher", "teacher"]))
    return steps


def render_script(c: ScaleConfig, steps: list[Step]) -> str:
    """A bash script of the plan, for clusters where a scheduler, not `--execute`, runs it."""
    lines = ["#!/usr/bin/env bash", f"# agentdistill scale-out plan for {c.run_dir} (agentdistill run --config)",
             "set -euo pipefail", 'wait_ready() { for _ in $(seq 1 "$2"); do curl -sf "$1" >/dev/null && return 0; '
             'sleep 5; done; echo "not ready: $1" >&2; exit 1; }', ""]
    pids: dict[str, str] = {}
    for step in steps:
        lines.append(f"# {step.name}")
        if step.kind == "server":
            var = step.name.split()[-1].upper() + "_PID"
            pids[step.name] = var
            lines += [f"{step.shell} &", f"{var}=$!", f"wait_ready {step.health_url} {int(step.startup_timeout_s // 5)}"]
        elif step.kind == "stop":
            lines.append(f"kill ${pids[step.stops or '']} && wait ${pids[step.stops or '']} || true")
        elif step.done_when is not None:
            lines.append(f"[ -e {shlex.quote(str(step.done_when))} ] || {step.shell}")
        else:
            lines.append(step.shell)
        lines.append("")
    return "\n".join(lines)
