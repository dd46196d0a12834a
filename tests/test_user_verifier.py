"""`agentdistill verify RUN --verifier module:function`: a user's own verdicts reach the judgement, the call
verdicts and the SFT targets (real simulate, verify and datasets processes)."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from cli_runner import run_cli
from test_simulate_cli import assert_one_line_error

from agentdistill.simulate.store import TraceStore

FIX = '{"entities": {}, "intents": ["greeting"], "missing": []}'
CHECKS = f"""
from agentdistill.judge.user_verifier import CallVerdict, Verdict


def verify(episode):
    # a house rule our judge cannot know (even-numbered conversations only); the first Understander call is corrected
    first = next(i for i, c in enumerate(episode["calls"]) if c["agent"] == "understander")
    ok = int(episode["episode_id"][-1]) % 2 == 0
    return Verdict(ok, "even" if ok else "odd",
                   {{first: CallVerdict(False, "house style", {{"completion": {FIX!r}}})}})


def explodes(episode):
    raise RuntimeError("verifier bug")


def not_a_verdict(episode):
    return {{"pass": True}}
"""


@pytest.fixture(scope="module")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("verifier") / "run"
    res = run_cli("simulate", "--episodes", "6", "--workers", "1", "--error-rate", "0", "--out", run, "--no-progress")
    assert res.returncode == 0, res.stderr
    return run


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "desk_checks.py").write_text(textwrap.dedent(CHECKS))
    return tmp_path


def _copy(simulated: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(simulated, run)
    return run


def test_user_verdicts_reach_judgement_calls_and_sft_targets(simulated: Path, work: Path) -> None:
    run = _copy(simulated, work)
    res = run_cli("verify", run, "--verifier", "desk_checks:verify", cwd=work)
    assert res.returncode == 0, res.stderr
    assert json.loads((run / "summary.json").read_text())["user_verifier"] == {"episodes": 6, "passed": 3, "errors": 0}
    episodes = list(TraceStore(run).episodes())
    assert len(episodes) == 6
    for ep in episodes:
        mine = ep["judgement"]["user_verifier"]
        even = int(ep["episode_id"][-1]) % 2 == 0
        assert mine["pass"] is even and mine["name"] == "desk_checks:verify"
        assert ep["judgement"]["pass"] is (even and ep["judgement"]["end_state"] and not ep["judgement"]["violations"])
        first = next(c for c in ep["calls"] if c["agent"] == "understander")
        assert first["verdict"] == {"correct": False, "reason": "house style", "source": "verifier:desk_checks:verify"}
        assert first["refined"] == {"completion": FIX}
    assert {ep["judgement"]["pass"] for ep in episodes} == {True, False}  # the verifier decides some of them

    res = run_cli("datasets", run, "--no-progress", timeout=300)
    assert res.returncode == 0, res.stderr
    records = [json.loads(x) for split in ("train", "val")
               for x in (run / "datasets" / "sft" / f"{split}.jsonl").read_text().splitlines()]
    refined = [r for r in records if r["agent"] == "understander" and r["target_source"] == "refined"]
    assert len(refined) == 6 and all(r["messages"][-1]["content"] == FIX for r in refined)


def test_a_verifier_that_raises_fails_its_episodes_and_the_run_goes_on(simulated: Path, work: Path) -> None:
    run = _copy(simulated, work)
    res = run_cli("verify", run, "--verifier", "desk_checks:explodes", cwd=work)
    assert res.returncode == 0, res.stderr
    assert json.loads((run / "summary.json").read_text())["user_verifier"] == {"episodes": 6, "passed": 0, "errors": 6}
    for ep in TraceStore(run).episodes():
        assert ep["judgement"]["pass"] is False
        assert ep["judgement"]["user_verifier"]["error"] == "RuntimeError: verifier bug"


def test_bad_verifiers_are_one_line_errors(simulated: Path, work: Path) -> None:
    run = _copy(simulated, work)
    before = sorted(p.read_bytes() for p in (run / "traces").glob("episodes-*.jsonl"))
    assert_one_line_error(run_cli("verify", run, "--verifier", "desk_checks:not_a_verdict", cwd=work),
                          "returned dict, not a Verdict")
    assert_one_line_error(run_cli("verify", run, "--verifier", "no_such_module:verify", cwd=work), "cannot be loaded")
    assert_one_line_error(run_cli("verify", run, "--verifier", "desk_checks", cwd=work), "module:attr")
    assert sorted(p.read_bytes() for p in (run / "traces").glob("episodes-*.jsonl")) == before  # nothing rewritten


def test_eval_scores_a_model_with_the_user_verifier(simulated: Path, work: Path) -> None:
    run = _copy(simulated, work)
    res = run_cli("eval", "model", "scripted", "--run", run, "--name", "teacher", "--suite", "heldout",
                  "--heldout", "4", "--verifier", "desk_checks:verify", "--no-progress", cwd=work, timeout=300)
    assert res.returncode == 0, res.stderr
    heldout = json.loads((run / "eval" / "teacher" / "summary.json").read_text())["heldout"]
    assert heldout["user_verifier"] == {"episodes": 4, "passed": 2, "errors": 0}
    assert heldout["pass_rate"] <= 0.5
    assert_one_line_error(run_cli("eval", "model", "scripted", "--run", run, "--suite", "heldout", "--verifier",
                                  "desk_checks:nope", cwd=work), "cannot be loaded")
