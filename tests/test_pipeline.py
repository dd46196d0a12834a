"""`agentdistill run --preset smoke`: every stage chained, a real vLLM server included (the slowest test).

It runs on the second built-in domain, so the whole pipeline is shown to need nothing of the default one
(tests/test_pipeline_pretrained.py runs the default domain).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from browser import screenshot_report
from cli_runner import run_cli


def test_run_smoke_preset_chains_every_stage(tmp_path: Path):
    out = tmp_path / "smoke"
    res = run_cli("run", "--preset", "smoke", "--out", out, "--workers", "2", "--no-progress",
                  "--domain", "cardservices", timeout=420)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads((out / "eval" / "dpo" / "summary.json").read_text())["domain"] == "cardservices"
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
    teacher = json.loads((out / "eval" / "teacher" / "summary.json").read_text())
    assert {"heldout", "heldout_phrasing", "stress"} <= set(teacher)  # the teacher runs every suite the student does
    assert set(dpo) >= {"heldout_phrasing"} and "held-out phrasing E2E" in table
    # the run report puts the training mix beside the suites it is judged on
    report = json.loads((out / "eval" / "conversations.json").read_text())
    assert {"train", "heldout", "heldout_phrasing", "stress"} <= set(report["runs"])
    assert report["runs"]["train"]["calls_per_conversation"]["mean"] > 0
    assert (out / "eval" / "conversation_lengths.png").is_file() and "| train |" in report["markdown"]
    # the run ends with its report: every section present, the gate decided on held-out and stress, and every
    # plot rendered in headless Chromium
    assert "open the report:" in res.stdout
    html = out / "report" / "report.html"
    markdown = (out / "report" / "report.md").read_text()
    for title in ("Data", "Training curves", "Quality", "Promotion gate", "Budget curve", "Drafter acceptance",
                  "Calibration and W8A8", "Attribution ladder", "Per-role latency profile"):
        assert f"## {title}" in markdown, title
    assert "Verdict: dpo " in markdown and "| heldout | 1 |" in markdown and "| stress | 1 |" in markdown
    assert "Not run: not measured (agentdistill bench ladder" in markdown
    plots = screenshot_report(html, tmp_path / "report.png")
    assert {p["alt"] for p in plots} >= {"Training loss per logged step, one line per stage",
                                         "Conversation lengths: the training mix beside the suites it is judged on"}
    assert all(p["complete"] and p["natural"] > 0 and p["height"] > 50 for p in plots), plots

    # `--ablation` on the finished run: only SFT+DPO without CPT train; nothing finished is redone; the run keeps
    # its domain without --domain
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


def test_run_with_an_unknown_domain_is_a_one_line_error(tmp_path: Path):
    res = run_cli("run", "--preset", "smoke", "--out", tmp_path / "x", "--domain", "no_such_domain")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "unknown domain 'no_such_domain'" in res.stderr and len(res.stderr.strip().splitlines()) == 1
