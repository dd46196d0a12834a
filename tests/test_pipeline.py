"""`agentdistill run --preset smoke`: every stage chained, a real vLLM server included (the slowest test)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from cli_runner import run_cli


def test_run_smoke_preset_chains_every_stage(tmp_path: Path):
    out = tmp_path / "smoke"
    res = run_cli("run", "--preset", "smoke", "--out", out, "--workers", "2", "--no-progress", timeout=420)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "Traceback" not in res.stderr
    assert json.loads((out / "summary.json").read_text())["episodes"] == 40
    stats = json.loads((out / "datasets" / "stats.json").read_text())
    assert stats["sft"]["records"]["train"] > 0 and stats["dpo"]["records"]["train"] > 0
    for stage in ("tokenizer", "base", "base_expanded", "cpt", "cpt_plain", "sft", "dpo"):
        assert (out / "models" / stage).is_dir(), stage
    for stage in ("base", "cpt", "sft", "dpo"):
        assert (out / "models" / stage / "config.json").is_file()
        assert not list((out / "models" / stage).glob("adapter_*")), "LoRA must be merged"
    base_layers = json.loads((out / "models" / "base" / "config.json").read_text())["num_hidden_layers"]
    expanded = json.loads((out / "models" / "cpt" / "config.json").read_text())["num_hidden_layers"]
    assert expanded == base_layers + base_layers // 2  # one zero-initialised block after every 2
    summary = json.loads((out / "run_summary.json").read_text())
    for stage in ("base", "cpt", "sft", "dpo"):
        assert summary["training"][stage]["steps"] > 0
    fig5 = summary["figure5"]
    curve = fig5["context_aware_cpt"]["with_context"]
    assert len(curve) == 48 and all(math.isfinite(x) for x in curve[:5])
    dpo = json.loads((out / "eval" / "dpo" / "summary.json").read_text())
    assert dpo["heldout"]["episodes"] == 2 and dpo["stress"]["episodes"] == 1
    assert set(dpo["perplexity"]) == {"domain", "public"}
    # the student is trained on compact role prompts and evaluated with them; the teacher reads full prompts
    assert stats["settings"]["prompt_style"] == "compact"
    assert json.loads((out / "models" / "dpo" / "train_summary.json").read_text())["prompt_style"] == "compact"
    assert dpo["prompt_style"] == "compact"
    assert json.loads((out / "eval" / "teacher" / "summary.json").read_text())["prompt_style"] == "full"
    table = (out / "eval" / "comparison.md").read_text()
    assert "| teacher |" in table and "| dpo |" in table

    # `--ablation` on the finished run: only SFT+DPO without CPT train; nothing finished is redone
    sft_summary = out / "models" / "sft" / "train_summary.json"
    before = sft_summary.stat().st_mtime_ns
    res = run_cli("run", "--preset", "smoke", "--out", out, "--workers", "2", "--no-progress", "--ablation",
                  timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    assert sft_summary.stat().st_mtime_ns == before
    assert "== sft (no CPT)" in res.stderr
    summary = json.loads((out / "run_summary.json").read_text())
    assert {"sft_nocpt", "dpo_nocpt"} <= set(summary["training"])
    nocpt = json.loads((out / "models" / "sft_nocpt" / "config.json").read_text())
    assert nocpt["num_hidden_layers"] == expanded  # trained from the expanded base, not from the CPT model
    assert summary["training"]["sft_nocpt"]["config"]["model_in"].endswith("base_expanded")
    assert "| dpo_nocpt |" in (out / "eval" / "comparison.md").read_text()

    # a pretrained base (`--base DIR`, here the smoke run's base model): chat template, trimmed vocabulary,
    # perplexity before and after CPT, LoRA on the top layer for CPT, SFT and DPO, and the final student
    # evaluated with and without constrained decoding
    bad = run_cli("run", "--preset", "smoke", "--base", out / "models" / "base", "--out", tmp_path / "x")
    assert bad.returncode == 2 and "--base needs a preset" in bad.stderr + bad.stdout
    pre = tmp_path / "pretrained"
    res = run_cli("run", "--preset", "smoke-pretrained", "--base", out / "models" / "base", "--out", pre,
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
