"""Datasets built from a small real simulation: splits, targets, mutators, curated cases, CPT mix, CLI."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
from cli_runner import run_cli

from agentdistill.config import SimulateConfig
from agentdistill.data.build import build_datasets
from agentdistill.data.curated import load_curated
from agentdistill.data.gate import JudgeGate, episode_from_input
from agentdistill.data.messages import refined_message, teacher_message
from agentdistill.data.mutators import MutationInput
from agentdistill.domain.dealership import DealershipDomain
from agentdistill.domain.dealership.mutators import MUTATORS as REGISTRY
from agentdistill.simulate.runner import simulate
from agentdistill.simulate.store import TraceStore

DOMAIN = DealershipDomain()

RATIO = 0.3


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dsrun")
    simulate(SimulateConfig(episodes=120, workers=1, error_rate=0.1), root, show_progress=False)
    build_datasets(root, public_ratio=RATIO, val_fraction=0.2, seed=0, show_progress=False, evaluator_rejects=1)
    return root


@pytest.fixture(scope="module")
def episodes(run: Path) -> list[dict]:
    return list(TraceStore(run).episodes())


@pytest.fixture(scope="module")
def gate() -> JudgeGate:
    return JudgeGate(DealershipDomain())


def test_layout_and_stats(run: Path) -> None:
    ds = run / "datasets"
    for kind in ("cpt", "sft", "dpo"):
        for split in ("train", "val"):
            assert (ds / kind / f"{split}.jsonl").exists()
    stats = json.loads((ds / "stats.json").read_text())
    assert stats["sft"]["records"]["train"] > 0 and stats["dpo"]["records"]["val"] > 0
    assert stats["dpo"]["by_source"]["curated"] >= 50
    assert "mutator_dropped_judge_accepted" in stats["dpo"] and "duplicates_removed" in stats["sft"]


def test_no_episode_in_both_splits(run: Path) -> None:
    ids = {split: {r["episode_id"] for kind in ("sft", "dpo") for r in _read(run / "datasets" / kind / f"{split}.jsonl")}
           for split in ("train", "val")}
    assert ids["train"] and ids["val"]
    assert not ids["train"] & ids["val"]
    assert not any(i.startswith("curated:") for i in ids["val"])


def test_sft_target_is_refined_exactly_when_wrong(run: Path, episodes: list[dict]) -> None:
    calls: dict[tuple[str, str], list[dict]] = {}
    for ep in episodes:
        for c in ep["calls"]:
            calls.setdefault((ep["episode_id"], c["agent"], json.dumps(c["messages"][1], sort_keys=True)), []).append(c)
    records = _read(run / "datasets/sft/train.jsonl") + _read(run / "datasets/sft/val.jsonl")
    assert any(r["target_source"] == "refined" for r in records)
    for r in records:
        if r["target_source"] == "evaluator_reject":  # made from a call, not a copy of one (tested below)
            continue
        candidates = calls[(r["episode_id"], r["agent"], json.dumps(r["messages"][1], sort_keys=True))]
        match = [c for c in candidates if len(c["messages"]) == len(r["messages"]) - 1]
        assert match, "record without a source call"
        wanted = [(refined_message(c), "refined") if c["verdict"]["correct"] is False else (teacher_message(c), "teacher")
                  for c in match]
        assert (r["messages"][-1], r["target_source"]) in wanted


def test_executor_targets_well_formed(run: Path) -> None:
    records = [r for r in _read(run / "datasets/sft/train.jsonl") if r["agent"] == "executor"]
    assert records
    for r in records:
        target = r["messages"][-1]
        assert target["role"] == "assistant"
        if target.get("tool_calls"):
            assert target["content"] == "" and len(target["tool_calls"]) == 1
            tc = target["tool_calls"][0]
            assert tc["type"] == "function" and tc["id"] and tc["function"]["name"]
            args = json.loads(tc["function"]["arguments"])
            assert isinstance(args, dict) and tc["function"]["arguments"] == json.dumps(args, sort_keys=True)
        else:
            assert target["content"] == "DONE"


def test_mutators_cover_every_rule_and_argument_error() -> None:
    rules = {m.rule for m in REGISTRY.values()}
    assert {f"R{i}" for i in range(1, 17)} <= rules
    for kind in ("stock_number", "date", "time", "customer_id", "amount_or_term", "missing_argument"):
        assert f"exec_wrong_{kind}" in REGISTRY or f"exec_{kind}" in REGISTRY


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_mutator_output_rejected_by_judge(name: str, episodes: list[dict], gate: JudgeGate) -> None:
    m = REGISTRY[name]
    outputs = 0
    for ep in episodes:
        for call in ep["calls"]:
            if call["agent"] != m.agent or not call["verdict"]["correct"] or outputs >= 25:
                continue
            out = m(MutationInput(call, ep, gate.world, random.Random(outputs)))
            if out is None:
                continue
            outputs += 1
            assert gate.rejects(call, out[0], out[1], ep), f"{name}: judge accepted {out}"
    assert outputs > 0, f"{name} never applied"


def test_curated_cases(gate: JudgeGate) -> None:
    cases = load_curated(DealershipDomain().hard_negatives_path())
    assert len(cases) >= 50
    for case in cases:
        call = {"agent": case["agent"], "messages": case["prompt"], "turn": 0}
        ep = episode_from_input(call)
        for side, want in (("chosen", True), ("rejected", False)):
            msg = case[side][0]
            v = gate.verdict(call, msg.get("content") or "", msg.get("tool_calls") or [], ep)
            assert v["correct"] is want, f"{case['id']} {side}: {v['reason']}"


def test_cpt_context_and_public_ratio(run: Path) -> None:
    train = _read(run / "datasets/cpt/train.jsonl")
    assert all(r["context"].startswith("[") and r["context"].endswith("]") and r["text"] for r in train)
    assert {r["source"] for r in train} == {"domain", "public"}
    pub = sum(len(r["text"]) for r in train if r["source"] == "public")
    assert abs(pub / sum(len(r["text"]) for r in train) - RATIO) <= 0.05
    assert any(r["context"].startswith("[public conversation |") for r in train)
    assert any("vehicle listing" in r["context"] for r in train)


def test_ppl_sets_disjoint_from_cpt(run: Path) -> None:
    cpt = {r["text"] for split in ("train", "val") for r in _read(run / "datasets/cpt" / f"{split}.jsonl")}
    for name in ("domain", "public"):
        ppl = _read(run / "datasets/ppl" / f"{name}.jsonl")
        assert ppl and not {r["text"] for r in ppl} & cpt


def test_deterministic(run: Path, tmp_path: Path) -> None:
    other = tmp_path / "copy"
    shutil.copytree(run / "traces", other / "traces")
    build_datasets(other, public_ratio=RATIO, val_fraction=0.2, seed=0, show_progress=False, evaluator_rejects=1)
    for path in sorted((run / "datasets").rglob("*.json*")):
        rel = path.relative_to(run)
        assert (other / rel).read_bytes() == path.read_bytes(), rel


def test_evaluator_reject_records_are_what_the_judge_expects(run: Path) -> None:
    """Rejecting a mutated plan is the judged-correct evaluator output; approving it is judged wrong."""
    from agentdistill.judge.judge import Judge

    judge = Judge(DealershipDomain())
    records = [r for split in ("train", "val") for r in _read(run / f"datasets/sft/{split}.jsonl")
               if r["target_source"] == "evaluator_reject"]
    stats = json.loads((run / "datasets/stats.json").read_text())
    assert len(records) == stats["sft"]["by_target_source"]["evaluator_reject"] >= 5
    for r in records:
        assert r["agent"] == "evaluator"
        target = json.loads(r["messages"][-1]["content"])
        assert target["verdict"] == "reject" and target["feedback"]
        call = {"agent": "evaluator", "messages": r["messages"][:-1]}
        assert judge.judge_call({**call, "completion": r["messages"][-1]["content"]})["correct"]
        approve = json.dumps({"feedback": "", "verdict": "approve"})
        assert not judge.judge_call({**call, "completion": approve})["correct"]


def test_compact_prompts_by_default_full_on_request(run: Path, tmp_path: Path) -> None:
    """Compact records differ from full ones only in the system prompt, which names the record's role."""
    from agentdistill.mas.prompts import compact_prompt, role_of

    full = tmp_path / "full"
    shutil.copytree(run / "traces", full / "traces")
    build_datasets(full, public_ratio=RATIO, val_fraction=0.2, seed=0, show_progress=False, prompt_style="full",
                   evaluator_rejects=1)
    assert json.loads((run / "datasets/stats.json").read_text())["settings"]["prompt_style"] == "compact"
    for kind, key in (("sft", "messages"), ("dpo", "prompt")):
        compact_recs, full_recs = _read(run / f"datasets/{kind}/train.jsonl"), _read(full / f"datasets/{kind}/train.jsonl")
        assert len(compact_recs) == len(full_recs) > 0
        for c, f in zip(compact_recs, full_recs, strict=True):
            assert c[key][0]["content"] == compact_prompt(c["agent"], DOMAIN, "v1")
            assert role_of(f[key][0]["content"]) == c["agent"] and len(f[key][0]["content"]) > 10_000
            assert c[key][1:] == f[key][1:]
            assert {k: v for k, v in c.items() if k != key} == {k: v for k, v in f.items() if k != key}


def test_focused_records_carry_only_each_roles_fields(run: Path, tmp_path: Path) -> None:
    """A focused record is a full one with the role header as system prompt and only the role's own input fields
    (no transcript); calls that then become identical are one record; the trainer reads the style back."""
    from agentdistill.data.messages import restyle_prompt
    from agentdistill.mas.prompts import ROLE_INPUT_FIELDS, compact_prompt, parse_input, style_of

    out = {}
    for style in ("full", "focused"):
        out[style] = tmp_path / style
        shutil.copytree(run / "traces", out[style] / "traces")
        build_datasets(out[style], public_ratio=RATIO, val_fraction=0.2, seed=0, show_progress=False,
                       prompt_style=style, evaluator_rejects=1)
    assert json.loads((out["focused"] / "datasets/stats.json").read_text())["settings"]["prompt_style"] == "focused"
    for kind, key in (("sft", "messages"), ("dpo", "prompt")):
        focused, full_recs = ([r for split in ("train", "val") for r in _read(out[s] / f"datasets/{kind}/{split}.jsonl")]
                              for s in ("focused", "full"))
        assert any(parse_input(m.get("content") or "").get("history") for f in full_recs for m in f[key])

        def call(rec: dict, key: str = key) -> str:  # what deduplication compares (a duplicate keeps its first id)
            return json.dumps([rec[key], rec.get("chosen"), rec.get("rejected")], sort_keys=True)

        restyled = {call({**f, key: restyle_prompt(f[key], "focused", DOMAIN, "v1")}) for f in full_recs}
        assert {call(c) for c in focused} == restyled  # the same calls ...
        assert 0 < len(focused) < len(full_recs)  # ... deduplicated
        for c in focused:
            assert c[key][0]["content"] == compact_prompt(c["agent"], DOMAIN, "v1")
            fields = set(parse_input(c[key][1]["content"]))
            assert fields and fields <= set(ROLE_INPUT_FIELDS[c["agent"]]), (c["agent"], fields)
            assert style_of(c[key]) == "focused"
    compact = _read(run / "datasets/sft/train.jsonl")
    assert {style_of(r["messages"]) for r in compact} == {"compact"}


def test_cli(run: Path, tmp_path: Path) -> None:
    ok = run_cli("datasets", str(run), "--no-progress", "--val-fraction", "0.2", "--evaluator-rejects", "1")
    assert ok.returncode == 0, ok.stderr
    empty = run_cli("datasets", str(tmp_path))
    assert empty.returncode == 2 and "no traces found" in empty.stderr
    assert len(empty.stderr.strip().splitlines()) == 1
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "episodes-000.jsonl").write_text("")
    none = run_cli("datasets", str(tmp_path))
    assert none.returncode == 2 and "has no records" in none.stderr and len(none.stderr.strip().splitlines()) == 1
    style = run_cli("datasets", str(run), "--prompt-style", "tiny")
    assert style.returncode == 2 and "--prompt-style" in style.stderr and len(style.stderr.strip().splitlines()) == 1


def test_executor_steps_fold_into_one_record_per_turn(episodes: list[dict]) -> None:
    """With folding, no record is a prefix of a later record of the same role and episode, multi-step records
    exist (every assistant message is in the loss), and every step of the unfolded records is still trained:
    it is the last message of an unfolded record and appears as an assistant message of some folded one."""
    from agentdistill.data.sft import SftBuilder

    builds = {}
    for fold in (True, False):
        b = SftBuilder(0.2, 0, fold_steps=fold)
        for ep in episodes:
            b.add_episode(ep)
        builds[fold] = [r for split in b.splits.values() for r in split]
        if fold:
            assert b.stats["steps_folded"] > 0
    folded, unfolded = builds[True], builds[False]
    assert len(folded) < len(unfolded)
    by_episode: dict[tuple, list] = {}
    for r in folded:
        by_episode.setdefault((r["episode_id"], r["agent"]), []).append(r["messages"])
    for msgs in by_episode.values():
        for a, b in zip(msgs, msgs[1:], strict=False):
            assert b[:len(a)] != a
    assert any(sum(m["role"] == "assistant" for m in r["messages"]) >= 3 for r in folded if r["agent"] == "executor")
    trained = {(r["episode_id"], json.dumps(r["messages"][:i + 1], sort_keys=True))
               for r in folded for i, m in enumerate(r["messages"]) if m["role"] == "assistant"}
    for r in unfolded:
        assert (r["episode_id"], json.dumps(r["messages"], sort_keys=True)) in trained
