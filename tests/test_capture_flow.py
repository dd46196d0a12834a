"""Bring your own MAS, end to end on 127.0.0.1 (issue 17): the command sequence of examples/openai_mas/README.md.

The example MAS (OpenAI client only) runs through `agentdistill proxy` in front of a real vLLM serving a tiny
model; its traces are verified with the example's own verifier, become datasets holding only what was captured,
train a student (`train sft`, a few steps), and `agentdistill eval` scores the student by running the same MAS
against it on conversations the capture did not include, with the same verifier. Every stage is the real CLI.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_runner import run_cli
from test_capture import EXAMPLE, mas, proxy
from test_serve import build_tiny_model, free_port
from test_simulate_cli import assert_one_line_error

from agentdistill.serve.vllm_server import ServeConfig, VLLMServer
from agentdistill.simulate.store import TraceStore

ROOT = EXAMPLE.parents[2]
VERIFIER = "examples.openai_mas.checks:verify"
AGENTS = {"router", "order_agent", "explainer"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """(the tiny base model, the URL of vLLM serving it): the one vLLM this module starts itself."""
    base = build_tiny_model(tmp_path_factory.mktemp("flow") / "base")
    with VLLMServer(ServeConfig(model=base, port=free_port(), enforce_eager=True, max_model_len=2048)) as server:
        yield base, server.url


def test_captured_mas_to_dataset_to_student_to_eval(served: tuple[Path, str], tmp_path: Path) -> None:
    base, upstream = served
    run = tmp_path / "mine"
    with proxy(run, upstream) as url:  # 1. record the unmodified MAS in front of our served model
        replies = mas(url, "--headers", "--conversations", "3")
    assert len(replies) == 5  # 2 + 2 + 1 user turns
    calls = [c for ep in TraceStore(run).episodes() for c in ep["calls"]]
    assert len({c["episode_id"] for c in calls}) == 3 and {c["agent"] for c in calls} <= AGENTS
    assert {c["model"] for c in calls} == {"student"}  # vLLM's answers, recorded

    res = run_cli("verify", run, "--verifier", VERIFIER, cwd=ROOT)  # 2. the user's verdicts and y*
    assert res.returncode == 0, res.stderr
    res = run_cli("datasets", run, "--no-progress", timeout=180)  # 3. datasets: only what was captured
    assert res.returncode == 0, res.stderr
    stats = json.loads((run / "datasets" / "stats.json").read_text())
    assert stats["settings"]["captured"] and stats["cpt"]["train"]["records"] == 0
    assert "curated" not in stats["dpo"]["by_source"]
    sft = [json.loads(x) for s in ("train", "val") for x in (run / "datasets" / "sft" / f"{s}.jsonl").read_text()
           .splitlines()]
    assert {r["agent"] for r in sft} <= AGENTS and any(r["target_source"] == "refined" for r in sft)
    routes = [r["messages"][-1]["content"] for r in sft if r["agent"] == "router" and r["target_source"] == "refined"]
    assert set(routes) <= {"orders", "chat"}  # the tiny model's garbled routes, corrected by the verifier

    student = run / "models" / "sft"  # 4. a student trained on them (a few steps: the flow, not the quality)
    res = run_cli("train", "sft", "--model", base, "--data", run / "datasets" / "sft" / "train.jsonl", "--out",
                  student, "--max-steps", "3", timeout=300)
    assert res.returncode == 0, res.stderr
    assert (student / "config.json").is_file()

    mas_cmd = f"{sys.executable} {EXAMPLE} --base-url {{base_url}} --headers --start 3 --conversations 2"
    assert_one_line_error(run_cli("eval", "model", student, "--run", run, "--verifier", VERIFIER, cwd=ROOT),
                          "--mas")  # a captured run is evaluated by running the user's MAS
    res = run_cli("eval", "model", student, "--run", run, "--name", "sft", "--mas", mas_cmd, "--verifier", VERIFIER,
                  "--enforce-eager", "--no-progress", cwd=ROOT, timeout=400)  # 5. the student scored
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((run / "eval" / "sft" / "summary.json").read_text())
    captured = summary["captured"]
    assert summary["mas"]["exit_code"] == 0, (run / "eval" / "sft" / "mas.log").read_text()[-2000:]
    assert captured["episodes"] == 2 and captured["user_verifier"]["episodes"] == 2
    assert 0 <= captured["pass_rate"] <= 1 and set(captured["role_scores"]) <= AGENTS
    assert "public" in summary["perplexity"] and "domain" not in summary["perplexity"]
    evaluated = list(TraceStore(run / "eval" / "sft" / "captured").episodes())
    users = [t["user"] for ep in evaluated for t in ep["turns"]]
    assert users == ["Has my order A101 been delivered yet?", "Are you open on Sunday?",
                     "And where is order A100 now?"]  # conversations the capture did not include
    assert all(c["verdict"]["source"] == f"verifier:{VERIFIER}" for ep in evaluated for c in ep["calls"]
               if c["agent"] != "order_agent")
