"""The `agentdistill` console script end to end: real subprocesses, real files, real kill -9."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from cli_runner import run_cli

from agentdistill.mas.prompts import ROLE_HEADER
from agentdistill.simulate.store import TraceStore

CLI = "agentdistill"


def sim_args(out: Path, episodes: int, workers: int, seed: int = 3) -> list[str]:
    return ["simulate", "--episodes", str(episodes), "--workers", str(workers), "--seed", str(seed),
            "--out", str(out), "--no-progress"]


def shard_lines(root: Path) -> list[str]:
    lines: list[str] = []
    for shard in sorted((root / "traces").glob("episodes-*.jsonl")):
        lines += [ln for ln in shard.read_text(encoding="utf-8").splitlines() if ln.strip()]
    return lines


def records(root: Path) -> list[dict]:
    return [json.loads(ln) for ln in shard_lines(root)]


def passes(root: Path) -> dict[str, bool]:
    return {r["episode_id"]: r["judgement"]["pass"] for r in records(root)}


def assert_one_line_error(res: subprocess.CompletedProcess, *needles: str) -> str:
    assert res.returncode == 2, (res.returncode, res.stdout[-2000:], res.stderr[-2000:])
    assert "Traceback" not in res.stderr and "Traceback" not in res.stdout
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="module")
def run40(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sim") / "run40"
    res = run_cli(*sim_args(out, 40, 2))
    assert res.returncode == 0, res.stderr
    return out


# ------------------------------------------------------------------------------------------ simulate
def test_simulate_writes_shards_prompts_summary_and_config(run40: Path):
    traces = run40 / "traces"
    for name in ("episodes-000.jsonl", "episodes-001.jsonl", "prompts.json"):
        assert (traces / name).is_file(), name
    for name in ("summary.json", "simulate.yaml"):
        assert (run40 / name).is_file(), name

    recs = records(run40)
    ids = [r["episode_id"] for r in recs]
    assert len(ids) == len(set(ids)) == 40
    assert set(ids) == {f"train-3-{i:06d}" for i in range(40)}

    summary = json.loads((run40 / "summary.json").read_text())
    assert summary["episodes"] == 40
    assert summary["agent_calls"] == sum(len(r["calls"]) for r in recs)
    assert summary["agent_calls"] == sum(r["stats"]["agent_calls"] for r in recs)
    n_pass = sum(bool(r["judgement"]["pass"]) for r in recs)
    assert summary["pass_rate"] == round(n_pass / 40, 4)
    assert summary["episodes_core"] + summary["episodes_long_tail"] == 40
    assert sum(v["episodes"] for v in summary["pass_rate_by_type"].values()) == 40
    assert summary["turns_per_episode"] == round(sum(len(r["turns"]) for r in recs) / 40, 2)
    assert summary["run"]["episodes_run"] == 40

    # on disk the system prompt is a reference; expanded it is the full text again
    raw_first = recs[0]["calls"][0]["messages"][0]
    assert raw_first["role"] == "system" and raw_first["content"].startswith("@prompt:")
    calls = list(TraceStore(run40).calls())
    assert len(calls) == summary["agent_calls"]
    registry = json.loads((traces / "prompts.json").read_text())
    for call in calls:
        system = call["messages"][0]
        assert system["role"] == "system"
        assert not system["content"].startswith("@prompt:")
        assert f"{ROLE_HEADER}{call['agent'].capitalize()}" in system["content"]
        assert "# Policy" in system["content"] and "# Tools" in system["content"]
        assert system["content"] in registry["prompts"].values()
        if call["agent"] == "executor":
            assert isinstance(call["tools"], list) and call["tools"][0]["type"] == "function"


def test_simulate_is_deterministic_across_worker_counts(run40: Path, tmp_path: Path):
    out = tmp_path / "one-worker"
    res = run_cli(*sim_args(out, 40, 1))
    assert res.returncode == 0, res.stderr
    assert passes(out) == passes(run40)
    assert len(shard_lines(out)) == 40


def test_resume_refuses_changed_setting(run40: Path):
    before = (run40 / "simulate.yaml").read_text()
    res = run_cli(*sim_args(run40, 40, 2, seed=4))
    assert_one_line_error(res, "seed")
    assert (run40 / "simulate.yaml").read_text() == before


def test_rerun_of_finished_run_adds_nothing(run40: Path, tmp_path: Path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run40, copy)
    res = run_cli(*sim_args(copy, 40, 2))
    assert res.returncode == 0, res.stderr
    assert passes(copy) == passes(run40)
    assert len(shard_lines(copy)) == 40


def _start_and_kill(cmd: list[str], root: Path, min_lines: int, kill_group: bool) -> subprocess.Popen:
    proc = subprocess.Popen([CLI, *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if (root / "traces").is_dir() and len(shard_lines(root)) >= min_lines:
                break
            assert proc.poll() is None, "the run finished before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("no episodes were written within 60 s")
    finally:
        if kill_group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    return proc


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def test_resume_after_kill_9_of_the_process_group(tmp_path: Path):
    out = tmp_path / "killed"
    cmd = sim_args(out, 400, 2)
    proc = _start_and_kill(cmd, out, min_lines=10, kill_group=True)
    _kill_group(proc.pid)
    partial = 0
    for line in shard_lines(out):
        try:
            json.loads(line)
            partial += 1
        except json.JSONDecodeError:  # the kill cut this write mid-line
            pass
    assert 0 < partial < 400
    # a write cut mid-line (the kill may already have left one; this makes sure there is one)
    with (out / "traces" / "episodes-001.jsonl").open("a", encoding="utf-8") as fh:
        fh.write('{"episode_id":"train-3-000399","turns":[{"user":"I would li')

    res = run_cli(*cmd)
    assert res.returncode == 0, res.stderr
    lines = shard_lines(out)
    recs = [json.loads(ln) for ln in lines]  # every line parses: the torn tail was cut
    ids = [r["episode_id"] for r in recs]
    assert len(ids) == len(set(ids)), "duplicate episodes after resume"
    assert set(ids) == {f"train-3-{i:06d}" for i in range(400)}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["episodes"] == 400
    assert summary["run"]["episodes_run"] == 400 - partial


def test_resume_after_kill_9_of_the_parent_only(tmp_path: Path):
    out = tmp_path / "parent-killed"
    cmd = sim_args(out, 160, 2)
    proc = _start_and_kill(cmd, out, min_lines=10, kill_group=False)
    try:
        res = run_cli(*cmd)
        assert res.returncode == 0, res.stderr
        time.sleep(0.2)
        ids = []
        for ln in shard_lines(out):
            ids.append(json.loads(ln)["episode_id"])
        assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} duplicated episodes after resume"
        assert set(ids) == {f"train-3-{i:06d}" for i in range(160)}
    finally:
        _kill_group(proc.pid)  # the orphans, if any


# -------------------------------------------------------------------------------------------- verify
def test_verify_keeps_pass_counts_then_rejects_a_corrupt_shard(run40: Path, tmp_path: Path):
    import shutil

    run = tmp_path / "verify"
    shutil.copytree(run40, run)
    before = passes(run)
    summary_before = json.loads((run / "summary.json").read_text())
    res = run_cli("verify", run)
    assert res.returncode == 0, res.stderr
    assert passes(run) == before
    summary = json.loads((run / "summary.json").read_text())
    for key in ("episodes", "agent_calls", "pass_rate", "pass_rate_by_type", "injected_faults"):
        assert summary[key] == summary_before[key], key
    assert len(list(TraceStore(run).calls())) == summary["agent_calls"]  # still expands after the rewrite

    shard = run / "traces" / "episodes-000.jsonl"
    lines = shard.read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(len(lines) // 2, "{not json\n")
    shard.write_text("".join(lines), encoding="utf-8")
    res = run_cli("verify", run)
    assert_one_line_error(res, "malformed trace file", "episodes-000.jsonl")

    res = run_cli(*sim_args(run, 40, 2))  # resume over the same corrupt shard: also one line
    assert_one_line_error(res, "malformed trace file")


def test_verify_record_missing_fields_is_one_line(tmp_path: Path):
    run = tmp_path / "incomplete"
    (run / "traces").mkdir(parents=True)
    (run / "traces" / "episodes-000.jsonl").write_text('{"episode_id":"x","turns":[],"calls":[]}\n')
    assert_one_line_error(run_cli("verify", run), "malformed trace file")


# ----------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("args, needle", [
    (["simulate", "--scenario", "nope", "--episodes", "2"], "nope"),
    (["simulate", "--seed", "-1", "--episodes", "2"], "seed"),
    (["simulate", "--seed", "abc", "--episodes", "2"], "seed"),
    (["simulate", "--error-rate", "2", "--episodes", "2"], "error_rate"),
    (["simulate", "--suite", "bogus", "--episodes", "2"], "suite"),
    (["simulate", "--episodes", "0"], "episodes"),
    (["simulate", "--policy", "v9", "--episodes", "2"], "v9"),
])
def test_bad_simulate_values(tmp_path: Path, args: list[str], needle: str):
    res = run_cli(*args, "--out", tmp_path / "run", "--no-progress")
    assert_one_line_error(res, needle)
    assert not list(tmp_path.glob("run/traces/*.jsonl"))


def test_unreachable_teacher(tmp_path: Path):
    port = closed_port()
    res = run_cli("simulate", "--teacher", f"http://127.0.0.1:{port}", "--episodes", "2", "--out", tmp_path / "r",
              "--no-progress", timeout=60)
    assert_one_line_error(res, f"127.0.0.1:{port}", "unreachable")


def test_bad_teacher_url_scheme(tmp_path: Path):
    res = run_cli("simulate", "--teacher", "ftp://x", "--episodes", "2", "--out", tmp_path / "r", "--no-progress")
    assert_one_line_error(res, "teacher")


def test_garbage_shard(tmp_path: Path):
    run = tmp_path / "garbage"
    (run / "traces").mkdir(parents=True)
    (run / "traces" / "episodes-000.jsonl").write_bytes(b"\x00garbage\n[1, 2]\n")
    assert_one_line_error(run_cli("verify", run), "malformed trace file")
    (run / "traces" / "episodes-000.jsonl").write_text("[1, 2]\n")
    assert_one_line_error(run_cli("verify", run), "malformed trace file")


def test_verify_missing_dir_and_empty_dir(tmp_path: Path):
    assert_one_line_error(run_cli("verify", tmp_path / "nowhere"), "does not exist")
    assert_one_line_error(run_cli("verify", tmp_path), "no traces")


def test_unwritable_output_dir(tmp_path: Path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    res = run_cli(*sim_args(blocker / "sub", 2, 1))
    assert_one_line_error(res, "not writable")
    assert blocker.read_text() == "x"


def test_report_on_a_missing_run_is_one_line_exit_2(tmp_path: Path):
    assert_one_line_error(run_cli("report", tmp_path / "nowhere"), "no run directory")
    assert_one_line_error(run_cli("gate", tmp_path), "not decided")


def test_unknown_preset(tmp_path: Path):
    assert_one_line_error(run_cli("run", "--preset", "huge", "--out", tmp_path / "r", "--no-progress"), "huge")


def test_unknown_option_and_command():
    assert_one_line_error(run_cli("simulate", "--bogus-flag"), "bogus")
    assert_one_line_error(run_cli("frobnicate"), "frobnicate")


# -------------------------------------------------------------------------------------------- domain
def test_domain_json_and_policy():
    res = run_cli("domain", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert len(info["tools"]) >= 12
    assert len(info["rules"]) >= 15
    assert len(info["scenarios"]) >= 30
    assert any(s["long_tail"] for s in info["scenarios"])
    assert {"dealer_hours", "book_test_drive"} <= {s["name"] for s in info["scenarios"]}

    res = run_cli("domain", "--policy")
    assert res.returncode == 0, res.stderr
    assert len(res.stdout.splitlines()) > 10
    from agentdistill.domain.dealership import DealershipDomain

    assert res.stdout.strip() == DealershipDomain().policy_text("v1").strip()

    res = run_cli("domain", "--tools")
    assert res.returncode == 0
    assert len(json.loads(res.stdout)) == len(info["tools"])


# ------------------------------------------------------------------------------------ run and bench
def test_bench_simulate_json(tmp_path: Path):
    out = tmp_path / "bench" / "simulate.json"
    res = run_cli("bench", "simulate", "--episodes", "30", "--workers", "2", "--out", out, "--no-progress")
    assert res.returncode == 0, res.stderr
    result = json.loads(out.read_text())
    assert result["episodes"] == 30
    for key in ("episodes_per_s", "agent_calls_per_s", "agent_calls_per_conversation"):
        assert isinstance(result[key], int | float) and result[key] > 0, key
    assert result["agent_calls"] >= 30


def test_bench_train_dtype_json(tmp_path: Path):
    out = tmp_path / "train_dtype.json"
    res = run_cli("bench", "train-dtype", "nano", "--batch", "2", "--length", "16", "--steps", "1", "--out", out)
    assert res.returncode == 0, res.stderr
    result = json.loads(out.read_text())
    (row,) = result["models"]
    assert row["model"] == "nano" and row["vocab"] == 8192
    assert row["fp32_tokens_per_s"] > 0 and row["bf16_autocast_tokens_per_s"] > 0
    assert abs(row["bf16_speedup"] - row["bf16_autocast_tokens_per_s"] / row["fp32_tokens_per_s"]) < 0.01
    assert isinstance(result["machine"]["amx_bf16"], bool)


def test_bench_train_dtype_unknown_model_is_one_line(tmp_path: Path):
    res = run_cli("bench", "train-dtype", "gigantic", "--out", tmp_path / "x.json")
    assert res.returncode == 2
    assert "gigantic" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "x.json").exists()


def test_domain_flag_picks_the_second_domain_and_rejects_an_unknown_one(tmp_path: Path):
    res = run_cli(*sim_args(tmp_path / "cs", 4, 1), "--domain", "cardservices", "--error-rate", "0")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "name: cardservices" in (tmp_path / "cs" / "simulate.yaml").read_text()
    assert json.loads((tmp_path / "cs" / "summary.json").read_text())["clean_pass_rate"] == 1.0
    assert_one_line_error(run_cli(*sim_args(tmp_path / "bad", 2, 1), "--domain", "nope"), "unknown domain")
