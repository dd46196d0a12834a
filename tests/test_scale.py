"""The scale-out plan: every command it writes parses under the real CLI that will run it (vLLM's server,
accelerate launch, ours), with the flags the config asks for; no GPU needed."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import yaml

from agentdistill.cli import app
from agentdistill.errors import UserError
from agentdistill.scale import launch_plan, load_scale_config, render_script
from agentdistill.scale.execute import execute_plan
from agentdistill.scale.plan import Step

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "gpu-8b.yaml"


def parse_ours(args: list[str]):
    """Resolve `agentdistill ARGS` down to its subcommand and parse its options, without running it."""
    command = typer.main.get_command(app)
    ctx = command.make_context("agentdistill", list(args))
    while hasattr(command, "resolve_command"):  # a group (typer ships its own click)
        name, command, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
        ctx = command.make_context(name, rest, parent=ctx)
    return ctx


def vllm_parser():
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    return make_arg_parser(FlexibleArgumentParser())


@pytest.fixture(scope="module")
def plan():
    config = load_scale_config(EXAMPLE)
    return config, {s.name: s for s in launch_plan(config)}


def test_servers_get_tensor_parallelism_fp8_and_our_serving_flags(plan):
    config, steps = plan
    parser = vllm_parser()
    teacher = parser.parse_args(steps["serve teacher"].argv[3:])
    assert steps["serve teacher"].argv[:3] == ["python", "-m", "vllm.entrypoints.openai.api_server"]
    assert (teacher.model, teacher.tensor_parallel_size, teacher.max_num_seqs) == (
        "meta-llama/Llama-3.1-70B-Instruct", 8, 256)
    assert teacher.tool_call_parser == "llama3_json" and teacher.enable_auto_tool_choice
    assert teacher.gpu_memory_utilization == 0.9 and teacher.dtype == "bfloat16"
    student = parser.parse_args(steps["serve student"].argv[3:])
    assert student.model == str(config.run_dir / "models" / "dpo")
    assert (student.tensor_parallel_size, student.quantization, student.port) == (2, "fp8", 8001)
    assert student.enable_prefix_caching and student.tool_call_parser == "hermes"
    assert steps["serve student"].health_url == "http://127.0.0.1:8001/health"


def test_training_goes_through_accelerate_with_fsdp_and_the_paper_yamls(plan):
    from accelerate.commands.launch import launch_command_parser

    config, steps = plan
    for stage, start in (("cpt", "expanded"), ("sft", "cpt"), ("dpo", "sft")):
        argv = steps[f"train {stage}"].argv
        assert argv[:2] == ["accelerate", "launch"]
        launch = launch_command_parser().parse_args(argv[2:])
        assert launch.config_file == "configs/accelerate/fsdp.yaml" and launch.num_processes == 8
        assert launch.module and launch.training_script == "agentdistill.cli"
        ctx = parse_ours(launch.training_script_args)
        assert ctx.info_name == stage and ctx.params["model"] == config.run_dir / "models" / start
        assert ctx.params["config"] == Path(f"configs/train/paper-{stage}.yaml")
        assert (ROOT / ctx.params["config"]).is_file() and (ROOT / launch.config_file).is_file()
        assert ctx.params["data"] == config.run_dir / "datasets" / stage / "train.jsonl"
    fsdp = yaml.safe_load((ROOT / "configs/accelerate/fsdp.yaml").read_text())
    assert fsdp["distributed_type"] == "FSDP"


def test_every_stage_of_ours_parses_and_points_at_the_right_endpoint(plan):
    config, steps = plan
    order = list(steps)
    assert order.index("stop teacher") < order.index("train cpt") < order.index("serve student")
    ours = [s for s in steps.values() if s.argv[:3] == ["python", "-m", "agentdistill.cli"]]
    assert {s.name for s in ours} >= {"simulate", "eval teacher", "bench teacher", "datasets", "base", "expand",
                                       "eval student", "bench student", "report"}
    for step in ours:
        parse_ours(step.argv[3:])  # raises click.UsageError on a flag our CLI does not have
    sim = parse_ours(steps["simulate"].argv[3:])
    assert (sim.params["teacher"], sim.params["workers"], sim.params["episodes"]) == (
        "http://127.0.0.1:8000/v1", 64, 7172)
    assert parse_ours(steps["eval student"].argv[3:]).params["model"] == "http://127.0.0.1:8001/v1"
    assert parse_ours(steps["expand"].argv[3:]).params["every"] == 4
    assert parse_ours(steps["bench student"].argv[3:]).params["concurrency"] == [1, 16, 64]


def test_script_skips_done_steps_and_stops_the_teacher_before_training(plan, tmp_path):
    config, steps = plan
    script = render_script(config, list(steps.values()))
    assert script.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in script
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    assert f"[ -e {config.run_dir}/summary.json ] || {steps['simulate'].shell}" in script
    assert script.index("kill $TEACHER_PID") < script.index("train cpt")
    assert shlex.split(steps["train sft"].shell) == steps["train sft"].argv


def test_a_teacher_url_starts_no_server(tmp_path):
    raw = yaml.safe_load(EXAMPLE.read_text())
    raw["teacher"] = {"url": "http://teacher.internal:9000/v1", "served_model_name": "llama-70b"}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    steps = launch_plan(load_scale_config(path))
    assert not any("teacher" in s.name and s.kind != "command" for s in steps)
    sim = next(s for s in steps if s.name == "simulate")
    assert sim.argv[sim.argv.index("--teacher") + 1] == "http://teacher.internal:9000/v1"
    assert sim.argv[sim.argv.index("--teacher-model") + 1] == "llama-70b"


@pytest.mark.parametrize(("edit", "needle"), [
    ({"teacher": {"model": "m", "url": "http://x/v1"}}, "invalid teacher: Value error, give exactly one"),
    ({"student": {"tensor_parallel_size": 0}}, "invalid student.tensor_parallel_size"),
    ({"base": None}, "invalid base"),
    ({"domain": "no_such_domain"}, "invalid domain"),
])
def test_bad_config_is_one_line(tmp_path, edit, needle):
    raw = yaml.safe_load(EXAMPLE.read_text()) | edit
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(UserError, match=needle):
        load_scale_config(path)
    result = subprocess.run([sys.executable, "-m", "agentdistill.cli", "run", "--config", str(path)],
                            capture_output=True, text=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len((result.stdout + result.stderr).strip().splitlines()) == 1


def test_cli_writes_the_plan_and_execute_runs_steps_in_order_skipping_done_ones(tmp_path):
    raw = yaml.safe_load(EXAMPLE.read_text()) | {"run_dir": str(tmp_path / "run")}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = subprocess.run([sys.executable, "-m", "agentdistill.cli", "run", "--config", str(path)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    plan = json.loads((tmp_path / "run" / "launch.json").read_text())
    assert [s["name"] for s in plan][:3] == ["serve teacher", "simulate", "eval teacher"]
    assert (tmp_path / "run" / "launch.sh").is_file()
    # execute: a real server process (python's http.server answers /health with 404 -> use a directory with it),
    # commands in order, done steps skipped, the server stopped at the end
    served = tmp_path / "www"
    served.mkdir()
    (served / "health").write_text("ok")
    port = 18000 + (hash(str(tmp_path)) % 1000)
    marker = tmp_path / "done.txt"
    steps = [Step("serve x", "server", [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                        "--directory", str(served)], health_url=f"http://127.0.0.1:{port}/health",
                  startup_timeout_s=30),
             Step("already", "command", [sys.executable, "-c", "raise SystemExit(3)"], done_when=served),
             Step("write", "command", [sys.executable, "-c", f"open({str(marker)!r}, 'w').write('x')"],
                  done_when=marker),
             Step("stop x", "stop", stops="serve x")]
    assert execute_plan(steps, tmp_path / "logs", echo=lambda _: None) == ["serve x", "write"]
    assert marker.exists()
    assert execute_plan(steps, tmp_path / "logs", echo=lambda _: None) == []  # all done: not even the server
    failing = [Step("boom", "command", [sys.executable, "-c", "raise SystemExit(5)"])]
    with pytest.raises(UserError, match="boom failed with exit code 5"):
        execute_plan(failing, tmp_path / "logs", echo=lambda _: None)
