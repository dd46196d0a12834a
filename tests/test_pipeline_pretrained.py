"""`agentdistill run --preset smoke-pretrained --base DIR --curve`: a pretrained base customized end to end, with
the budget curve and the final student evaluated with and without constrained decoding (real vLLM servers).
Its own file so that it runs beside test_pipeline.py on the other core."""

from __future__ import annotations

import json
from pathlib import Path

from cli_runner import run_cli
from test_serve import build_tiny_model


def test_run_on_a_pretrained_base_with_the_budget_curve(tmp_path: Path):
    # a pretrained base (`--base DIR`, here the tiny random Llama of test_serve.py): chat template, trimmed vocabulary,
    # perplexity before and after CPT, LoRA on the top layer for CPT, SFT and DPO, and the final student
    # evaluated with and without constrained decoding
    base = build_tiny_model(tmp_path / "tiny")
    bad = run_cli("run", "--preset", "smoke", "--base", base, "--out", tmp_path / "x")
    assert bad.returncode == 2 and "--base needs a preset" in bad.stderr + bad.stdout
    pre = tmp_path / "pretrained"
    res = run_cli("run", "--preset", "smoke-pretrained", "--base", base, "--out", pre,
                  "--workers", "2", "--no-progress", "--sft-steps", "8", "--curve", timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    curve = json.loads((pre / "eval" / "budget_curve.json").read_text())  # SFT snapshots at 1/4, 1/2, all
    assert [p["steps"] for p in curve["points"]] == [2, 4, 8] and (pre / "eval" / "budget_curve.png").is_file()
    assert all(p["heldout_pass"] is not None and p["role_scores"] for p in curve["points"])
    assert "stress" not in json.loads((pre / "eval" / "sft_step2" / "summary.json").read_text())
    for stage in ("pretrained", "trimmed", "cpt", "sft", "dpo"):
        assert (pre / "models" / stage / "config.json").is_file(), stage
    vocab = {stage: json.loads((pre / "models" / stage / "config.json").read_text())["vocab_size"]
             for stage in ("pretrained", "trimmed", "dpo")}
    assert vocab["trimmed"] == vocab["dpo"] <= vocab["pretrained"]
    ppl = json.loads((pre / "eval" / "perplexity.json").read_text())
    assert set(ppl) == {"before_cpt", "after_cpt"} and set(ppl["after_cpt"]) == {"domain", "public"}
    summary = json.loads((pre / "run_summary.json").read_text())
    for stage in ("cpt", "sft", "dpo"):
        assert summary["training"][stage]["config"]["lora_layers"] == 1
        assert summary["training"][stage]["method"] == "lora"
    assert summary["training"]["cpt"]["config"]["model_in"].endswith("trimmed")
    constrained = json.loads((pre / "eval" / "dpo" / "summary.json").read_text())
    free = json.loads((pre / "eval" / "dpo_free" / "summary.json").read_text())
    assert constrained["constrained_roles"] == ["understander", "planner", "evaluator", "executor"]
    assert "constrained_roles" not in free and free["model"] == constrained["model"]
    assert free["perplexity"] == constrained["perplexity"]  # same weights: measured once
    assert constrained["prompt_style"] == "focused"
    assert "| dpo_free |" in (pre / "eval" / "comparison.md").read_text()
