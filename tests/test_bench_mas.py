"""`bench mas`: recorded conversations replayed against a real vLLM on 127.0.0.1, and its cross-check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_runner import run_cli
from test_serve import build_tiny_model, free_port
from test_simulate_cli import assert_one_line_error

from agentdistill.bench.mas import (
    parse_slos,
    percentile,
    recorded_conversations,
    run_mas_bench,
    summarize_replay,
    turn_latencies,
)
from agentdistill.config import SimulateConfig
from agentdistill.errors import UserError


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from agentdistill.simulate.runner import simulate

    root = tmp_path_factory.mktemp("masrun")
    simulate(SimulateConfig(episodes=12, seed=3, long_share=0.0), root, show_progress=False)  # 5 Evaluator calls
    return root


def _row(agent: str, turn: int, start: float, end: float, tokens: int = 4) -> dict:
    return {"agent": agent, "turn": turn, "start": start, "end": end, "ttft_s": 0.1, "e2el_s": end - start,
            "itl_s": [0.05] * (tokens - 1), "tpot_s": 0.05, "output_tokens": tokens, "prompt_tokens": 10}


def test_percentile_is_numpys_linear_one():
    values = [5.0, 1.0, 9.0, 3.0, 7.5, 2.0]
    for q in (0, 50, 90, 99, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_turn_latency_spans_first_call_sent_to_last_answered_and_goodput_counts_slos():
    conv = [_row("understander", 1, 0.0, 1.0), _row("planner", 1, 1.0, 3.0), _row("explainer", 2, 3.0, 3.5)]
    assert sorted(turn_latencies([conv])) == [0.5, 3.0]
    summary = summarize_replay(4.0, [conv], parse_slos(["e2el:1500"]))
    assert summary["turns"] == 2 and summary["call_throughput"] == 0.75 and summary["turn_throughput"] == 0.5
    assert summary["good_share"] == pytest.approx(2 / 3, abs=1e-4) and summary["request_goodput"] == 0.5
    assert summary["p99_turn_latency_ms"] == pytest.approx(1000 * float(np.percentile([0.5, 3.0], 99)), abs=0.01)
    assert set(summary["per_role"]) == {"understander", "planner", "explainer"}


def test_bad_slos_are_one_line_errors():
    for bad, needle in (("speed:3", "unknown SLO metric"), ("ttft:fast", "number of milliseconds"),
                        ("e2el:-1", "positive")):
        with pytest.raises(UserError, match=needle):
            parse_slos([bad])


def test_replayed_calls_keep_order_turns_and_recorded_lengths(run_dir: Path):
    from agentdistill.simulate.store import TraceStore

    recorded = {ep["episode_id"]: ep for ep in TraceStore(run_dir).episodes()}
    student = recorded_conversations(run_dir, 4, "student", max_output_tokens=64)
    full = recorded_conversations(run_dir, 4, "full", max_output_tokens=64)
    assert len(student) == 4
    for s, f in zip(student, full, strict=True):
        calls = sorted(recorded[s.conversation_id]["calls"], key=lambda c: c["call_index"])
        assert [c.agent for c in s.calls] == [c["agent"] for c in calls]
        assert [c.turn for c in s.calls] == [c["turn"] for c in calls]
        assert [c.max_tokens for c in s.calls] == [min(c["tokens_out"], 64) for c in calls]
        assert f.calls[0].messages[0]["content"] == calls[0]["messages"][0]["content"]  # the teacher's prompt
        assert len(s.calls[0].messages[0]["content"]) < len(f.calls[0].messages[0]["content"]) / 3


def test_replay_on_vllm_answers_every_call_at_its_length_and_agrees_with_vllm_bench_serve(run_dir, tmp_path):
    model = build_tiny_model(tmp_path / "student")
    out = tmp_path / "mas.json"
    result = run_mas_bench(run_dir, model=model, conversations=3, concurrency=[1, 3], max_output_tokens=24,
                           slos=["e2el:60000"], port=free_port(), max_model_len=2048, out=out,
                           crosscheck_requests=12, enforce_eager=True)
    assert json.loads(out.read_text())["runs"].keys() == {"1", "3"}
    convs = recorded_conversations(run_dir, 3, "student", max_output_tokens=24)
    expected_tokens = sum(c.max_tokens for conv in convs for c in conv.calls)
    turns = sum(len({c.turn for c in conv.calls}) for conv in convs)
    for run in result["runs"].values():
        assert run["completed"] == result["calls"] and run["turns"] == turns
        assert run["total_output_tokens"] == expected_tokens  # ignore_eos: the recorded length, every call
        assert run["good_share"] == 1.0 and run["p90_turn_latency_ms"] > 0 and run["mean_ttft_ms"] > 0
        assert sum(r["completed"] for r in run["per_role"].values()) == result["calls"]
    assert result["machine"]["cpus"] >= 1
    check = result["crosscheck"]
    assert check["requests"] == 12 and check["rounds"] == 2 and set(check["ratio"]) >= {"mean_e2el_ms", "request_throughput"}
    assert all(len(check["per_round"][side]) == 2 for side in ("ours", "vllm_bench_serve"))
    # the same requests, token for token
    assert check["ratio"]["total_output_tokens"] == 1.0, json.dumps(check)
    # TPOT as vLLM defines it, (E2EL - TTFT) / (output tokens - 1), so the means add up; and rates agree with counts
    ours, n = check["ours"], check["output_tokens"]
    assert abs(ours["mean_ttft_ms"] + ours["mean_tpot_ms"] * (n - 1) - ours["mean_e2el_ms"]) < 0.01 * ours["mean_e2el_ms"]
    assert abs(ours["output_throughput"] / ours["request_throughput"] - n) < 0.01 * n
    # each side's least-disturbed round within a factor 2: catches a unit or clock error, not a 10% disagreement.
    # Under pytest-xdist the neighbouring test's load lands in one round or another (CI once measured one of our
    # rounds at 590 ms and the next at 1594 ms, vLLM's at 428 and 421), so the mean over rounds says more about the
    # neighbour than about either tool. The 10% target is the benchmark's `agree`, measured on the default student
    # in benchmarks/results/mas.json.
    def best(side: str, key: str) -> float:
        values = [r[key] for r in check["per_round"][side]]
        return max(values) if key.endswith("throughput") else min(values)

    for key in check["agreement_on"]:
        ratio = best("ours", key) / best("vllm_bench_serve", key)
        assert 0.5 <= ratio <= 2.0, (key, ratio, json.dumps(check))


def test_cli_bad_input_is_one_line_exit_2(run_dir, tmp_path):
    assert_one_line_error(run_cli("bench", "mas", run_dir, "--prompts", "teacher", "--url", "http://127.0.0.1:9"),
                          "unknown prompts")
    assert_one_line_error(run_cli("bench", "mas", run_dir, "--slo", "ttft", "--url", "http://127.0.0.1:9"),
                          "number of milliseconds")
    assert_one_line_error(run_cli("bench", "mas", tmp_path, "--url", "http://127.0.0.1:9"), "no traces")


def test_teacher_size_stand_in_has_seven_times_the_students_parameters(tmp_path):
    from agentdistill.bench.ladder import llama_params, teacher_size_config

    student = build_tiny_model(tmp_path / "student")
    info = teacher_size_config(student, tmp_path / "teacher")
    config = json.loads((tmp_path / "teacher" / "config.json").read_text())
    assert info["factor"] >= 7 and llama_params(config) == info["params"]
    assert config["vocab_size"] == json.loads((student / "config.json").read_text())["vocab_size"]
    assert (tmp_path / "teacher" / "tokenizer.json").is_file()
    # the parameter count matches what transformers builds from the same config
    from transformers import LlamaConfig, LlamaForCausalLM

    assert llama_params(config) == sum(p.numel() for p in LlamaForCausalLM(LlamaConfig(**config)).parameters())


def test_ladder_rungs_on_vllm_replay_the_same_conversations_and_resume(run_dir, tmp_path):
    from agentdistill.bench.ladder import run_ladder

    student = build_tiny_model(tmp_path / "student")
    out = tmp_path / "ladder.json"
    kwargs = dict(student=student, conversations=2, max_turns=1, concurrency=2, sweep=[1], max_model_len=2048,
                  enforce_eager=True, port=free_port(), out=out, max_output_tokens=16)
    result = run_ladder(run_dir, rungs=["1", "4", "6", "s1"], **kwargs)
    rungs = result["rungs"]
    assert rungs["6"]["skipped"].startswith("no int8 checkpoint")
    assert rungs["1"]["dummy_weights"] and rungs["1"]["prompts"] == "full"
    assert rungs["4"]["constrained"] and rungs["4"]["own_outputs"]
    conditional = recorded_conversations(run_dir, 2, max_turns=1)
    every_plan = recorded_conversations(run_dir, 2, max_turns=1, conditional=False)
    plans = sum(c.agent == "planner" for conv in conditional for c in conv.calls)
    assert sum(len(c.calls) for c in every_plan) >= sum(len(c.calls) for c in conditional)
    assert sum(c.agent == "evaluator" for conv in every_plan for c in conv.calls) >= plans
    assert rungs["s1"]["calls_per_replay"] == sum(len(c.calls) for c in every_plan)
    for key in ("1", "4", "s1"):
        assert rungs[key]["runs"]["2"]["completed"] == rungs[key]["calls_per_replay"]
        assert rungs[key]["runs"]["2"]["turn_throughput"] > 0
    assert result["ratios"]["1"]["qps_vs_1"] == 1.0
    again = run_ladder(run_dir, rungs=["1", "s1"], **kwargs)  # finished rungs are kept, not rerun
    assert again["rungs"]["1"] == rungs["1"] and again["rungs"]["s1"] == rungs["s1"]
    assert set(rungs["1"]["runs"]) == {"1", "2"} and set(rungs["s1"]["runs"]) == {"2"}  # the sweep: main ladder

    # the report of a run with a ladder: its table, the W8A8 rung's reason, and every plot rendered in Chromium
    from browser import screenshot_report

    from agentdistill.report import build_report

    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "bench").mkdir(exist_ok=True)
    shutil.copy(out, run / "bench" / "ladder.json")
    report = build_report(run)
    assert report["sections"]["Attribution ladder"] and report["sections"]["Per-role latency profile"]
    markdown = Path(report["markdown"]).read_text()
    assert "| 6 | + W8A8" in markdown and "no int8 checkpoint" in markdown
    plots = screenshot_report(Path(report["html"]), tmp_path / "report.png")
    alts = {p["alt"] for p in plots}
    assert {"Turns/s and P90 turn latency per rung", "Mean time to first token and decode time per role",
            "P90 turn latency against turns/s as concurrency grows, per rung"} <= alts
    assert all(p["complete"] and p["natural"] > 0 and p["height"] > 50 for p in plots), plots
    assert (tmp_path / "report.png").stat().st_size > 20_000


def test_cli_ladder_unknown_rung_is_one_line_exit_2(run_dir, tmp_path):
    student = build_tiny_model(tmp_path / "student")
    assert_one_line_error(run_cli("bench", "ladder", run_dir, "--student", student, "--rung", "9",
                                  "--out", tmp_path / "l.json"), "unknown rung 9")
