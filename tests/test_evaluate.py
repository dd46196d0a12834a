"""Evaluation metrics on traces and models with known answers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from cli_runner import run_cli

from agentdistill.config import SimulateConfig
from agentdistill.evaluate.compare import comparison
from agentdistill.evaluate.run_eval import evaluate_model
from agentdistill.simulate.runner import simulate
from agentdistill.simulate.store import TraceStore
from agentdistill.simulate.summary import pass_hat_k, summarize


def test_pass_hat_k_matches_tau_bench_definition():
    # task a: 2 of 4 trials pass; task b: 4 of 4; task c: 0 of 4
    trials = {"a": [True, False, True, False], "b": [True] * 4, "c": [False] * 4}
    got = pass_hat_k(trials)
    assert got["1"] == pytest.approx((0.5 + 1 + 0) / 3, abs=1e-4)
    assert got["2"] == pytest.approx((1 / 6 + 1 + 0) / 3, abs=1e-4)  # C(2,2)/C(4,2) = 1/6
    assert got["3"] == pytest.approx(1 / 3, abs=1e-4)
    assert got["4"] == pytest.approx(1 / 3, abs=1e-4)
    assert pass_hat_k({}) == {}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("evalrun")
    simulate(SimulateConfig(episodes=8, workers=1, error_rate=0.0, scenario_types=["dealer_hours"]), root,
             show_progress=False)
    return root


def _rewrite(root: Path, edit) -> None:
    TraceStore(root).rewrite(edit)


def test_role_scores_and_rates_on_hand_edited_traces(small_run: Path):
    """Mark known calls wrong and known episodes failed: the summary must report exactly that."""
    seen = {"n": 0}

    def edit(ep):
        seen["n"] += 1
        if seen["n"] <= 2:  # two of eight episodes fail, each with one wrong planner call and one violation
            ep["judgement"]["pass"] = False
            ep["judgement"]["violations"] = [{"rule_id": "R3", "title": "x", "reason": "y", "turn": 1}]
            planner = next(c for c in ep["calls"] if c["agent"] == "planner")
            planner["verdict"] = {"correct": False, "reason": "hand-made"}
        if seen["n"] == 3:  # one malformed explainer call
            explainer = next(c for c in ep["calls"] if c["agent"] == "explainer")
            explainer["malformed"] = "empty_reply"

    _rewrite(small_run, edit)
    s = summarize(TraceStore(small_run), write=False)
    planners = s["calls_by_agent"]["planner"]
    assert s["episodes"] == 8
    assert s["pass_rate"] == 0.75
    assert s["policy_violation_rate"] == 0.25
    assert s["role_scores"]["planner"] == pytest.approx(round(1 - 2 / planners, 4))
    assert s["role_scores"]["understander"] == 1.0
    assert s["malformed_rate"] == pytest.approx(round(1 / s["agent_calls"], 4))
    assert s["pass_hat_k"] == {"1": 0.75}


def test_comparison_table_orders_models_and_formats(tmp_path: Path):
    for name, p in (("dpo", 0.9), ("teacher", 0.8), ("sft", 0.5)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "summary.json").write_text(json.dumps({
            "name": name, "heldout": {"pass_rate": p, "role_scores": {"planner": p}, "malformed_rate": 0.0},
            "stress": {"pass_rate": p / 2, "policy_violation_rate": 0.1},
            "perplexity": {"domain": 3.25, "public": 40.0} if name != "teacher" else None,
        }))
    result = comparison(tmp_path)
    assert [r["name"] for r in result["rows"]] == ["teacher", "sft", "dpo"]
    lines = result["markdown"].splitlines()
    assert lines[2].startswith("| teacher | - | 80.0 |")
    assert "| 45.0 |" in lines[4] and "3.25" in lines[4]
    assert (tmp_path / "comparison.md").read_text() == result["markdown"]


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size(tmp_path: Path):
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from agentdistill.evaluate.perplexity import perplexity

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.train_from_iterator(["the quick brown fox jumps"] * 20, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|pad|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<|pad|>")
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1))
    with torch.no_grad():
        model.lm_head.weight.zero_()  # every logit 0: a uniform distribution over the vocabulary
    model.config.tie_word_embeddings = False
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    ppl = perplexity(tmp_path, ["the quick brown fox", "jumps over the fox"])
    assert math.isclose(ppl, len(tok), rel_tol=1e-4)


def test_evaluate_scripted_teacher_writes_summary(tmp_path: Path):
    result = evaluate_model("scripted", tmp_path, "teacher", heldout_episodes=6, stress_episodes=2, workers=2,
                            error_rate=0.0, show_progress=False)
    assert result["heldout"]["episodes"] == 6 and result["stress"]["episodes"] == 2
    assert result["heldout"]["pass_rate"] == 1.0 and result["stress"]["pass_rate"] == 1.0
    assert set(result["heldout"]["role_scores"]) >= {"understander", "planner", "executor", "explainer"}
    assert json.loads((tmp_path / "eval" / "teacher" / "summary.json").read_text()) == result
    assert result["prompt_style"] == "full"


@pytest.mark.parametrize("style", ["compact", "focused"])
def test_scripted_teacher_passes_with_short_prompts_too(tmp_path: Path, style: str):
    """Short prompts keep the role header, so role routing (and the scripted reference) still works; focused
    inputs keep every field the reference reads."""
    result = evaluate_model("scripted", tmp_path, "teacher", heldout_episodes=4, stress_episodes=1, workers=2,
                            error_rate=0.0, show_progress=False, prompt_style=style)
    assert result["prompt_style"] == style and result["heldout"]["pass_rate"] == 1.0
    assert result["stress"]["pass_rate"] == 1.0


def test_model_prompt_style_comes_from_the_training_summary(tmp_path: Path):
    from agentdistill.evaluate.run_eval import model_prompt_style

    assert model_prompt_style("scripted") == "full"
    assert model_prompt_style(str(tmp_path)) == "full"  # a checkpoint we did not fine-tune
    (tmp_path / "train_summary.json").write_text(json.dumps({"prompt_style": "compact"}))
    assert model_prompt_style(str(tmp_path)) == "compact"


def test_evaluate_rejects_unknown_model(tmp_path: Path):
    from agentdistill.errors import UserError

    with pytest.raises(UserError, match="neither 'scripted'"):
        evaluate_model("not-a-model", tmp_path, "x", heldout_episodes=1, stress_episodes=0, show_progress=False)


def test_eval_cli_rejects_an_unknown_prompt_style(tmp_path: Path):
    res = run_cli("eval", "model", "scripted", "--run", tmp_path, "--prompt-style", "tiny")
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1
    assert "--prompt-style must be one of auto, full, compact, focused" in res.stderr


def test_budget_curve_plot_writes_a_png(tmp_path):
    from agentdistill.evaluate.plots import plot_budget_curve

    points = [{"records_seen": n, "cpu_minutes": n / 40, "heldout_pass": p,
               "role_scores": {"planner": p, "executor": p / 2}} for n, p in ((100, 0.1), (200, 0.3), (400, 0.5))]
    out = plot_budget_curve(points, tmp_path / "curve.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000
