"""Stage two, calibration and W8A8: clip rates on hand-made tensors, the prefix trick against truncated forwards,
compressed-tensors checkpoints (int8, fp8) close to bf16, vLLM serving our int8 checkpoint with n-gram speculation,
serving profiles, and one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import torch
from cli_runner import run_cli
from test_serve import build_tiny_model, free_port
from test_simulate_cli import assert_one_line_error

from agentdistill.errors import UserError
from agentdistill.optimize.activations import clip_counts, clip_rate, prefix_ranges
from agentdistill.optimize.quantize import W8A8Variant, apply_static_w8a8
from agentdistill.serve.profiles import parse_profile


class OneLinear(torch.nn.Module):
    """A model whose only quantized layer sees exactly the tensor it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = torch.nn.Linear(3, 2)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.proj(input_ids.float().reshape(-1, 3))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "student")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run directory holding only what calibration reads: SFT records of a few episodes per split."""
    root = tmp_path_factory.mktemp("run")
    for split, n in (("train", 6), ("val", 3)):
        path = root / "datasets" / "sft" / f"{split}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w") as fh:
            for e in range(n):
                for agent in ("planner", "explainer"):
                    messages = [{"role": "system", "content": f"You are the {agent}."},
                                {"role": "user", "content": f"episode {split}{e}: is A100{e} available for financing?"},
                                {"role": "assistant", "content": "sure let me check the vehicle stock number"}]
                    fh.write(json.dumps({"messages": messages, "agent": agent, "episode_id": f"{split}-{e}"}) + "\n")
    return root


# ------------------------------------------------------------------------------------------- clip rates
def test_clip_rate_counts_strictly_outside_the_range():
    x = torch.tensor([-3.0, -1.0, 0.0, 1.0, 2.0, 5.0])
    assert clip_rate(x, -1.0, 2.0) == pytest.approx(2 / 6)  # -3 and 5; the bounds themselves are inside
    assert clip_rate(x, -10.0, 10.0) == 0.0


def test_clip_counts_match_brute_force_for_many_range_sets_at_once():
    model = OneLinear()
    samples = [torch.tensor([[-3.0, -1.0, 0.5], [2.0, 2.0, 7.0]]), torch.tensor([[0.0, -1.0, 9.0]])]
    configs = {"narrow": {"proj": (-1.0, 2.0)}, "wide": {"proj": (-5.0, 10.0)}, "low": {"proj": (0.0, 0.5)},
               "same": {"proj": (-1.0, 2.0)}}
    counts = clip_counts(model, samples, configs)
    everything = torch.cat([s.flatten() for s in samples])
    for name, ranges in configs.items():
        low, high = ranges["proj"]
        expected = int(((everything < low) | (everything > high)).sum())
        assert counts[name]["clipped"] == expected, name
        assert counts[name]["total"] == everything.numel()
    assert counts["narrow"]["clipped"] == 3 and counts["wide"]["clipped"] == 0


def test_prefix_ranges_equal_forwards_of_truncated_samples(tiny: Path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32).eval()
    samples = [torch.randint(0, 500, (40,), generator=torch.Generator().manual_seed(s)) for s in range(3)]
    once = prefix_ranges(model, samples, [5, 17, 40])
    for n in (5, 17, 40):
        truncated = prefix_ranges(model, [s[:n] for s in samples], [n])[n]
        for layer, (low, high) in truncated.items():
            assert once[n][layer] == pytest.approx((low, high), abs=1e-5), (n, layer)
    layer = "model.layers.0.mlp.down_proj"
    assert once[5][layer][1] <= once[40][layer][1] and once[5][layer][0] >= once[40][layer][0]


# ------------------------------------------------------------------------------------------- W8A8
@pytest.mark.parametrize(("scheme", "variant"), [
    ("int8", W8A8Variant()), ("fp8", W8A8Variant()), ("int8", W8A8Variant(weights="tensor")),
    ("int8", W8A8Variant(activations="dynamic", keep=("down_proj",)))])
def test_w8a8_stays_close_to_bf16(tiny: Path, scheme: str, variant: W8A8Variant):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32).eval()
    calib = [torch.randint(0, 500, (64,), generator=torch.Generator().manual_seed(s)) for s in range(4)]
    ranges = prefix_ranges(model, calib, [64])[64]
    ids = torch.randint(0, 500, (1, 64), generator=torch.Generator().manual_seed(99))
    with torch.no_grad():
        ref = model(input_ids=ids).logits
        apply_static_w8a8(model, ranges, scheme, variant)
        quant = model(input_ids=ids).logits
    kept = [m for n, m in model.named_modules() if n.endswith("down_proj")]
    assert all(hasattr(m, "weight_scale") != bool(variant.keep) for m in kept)
    q_proj = next(m for n, m in model.named_modules() if n.endswith("q_proj"))
    assert q_proj.weight_scale.numel() == (q_proj.weight.shape[0] if variant.weights == "channel" else 1)
    assert hasattr(q_proj, "input_scale") == (variant.activations == "static")
    assert not torch.equal(ref, quant)  # the forward really is fake-quantized
    assert (ref.argmax(-1) == quant.argmax(-1)).float().mean() >= 0.85
    assert (ref - quant).abs().max() <= 0.1 * ref.abs().max()


def test_ranges_from_another_model_are_refused(tiny: Path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32).eval()
    with pytest.raises(UserError, match="do not cover this model"):
        apply_static_w8a8(model, {"model.layers.0.self_attn.q_proj": (-1.0, 1.0)}, "int8")


def test_calibrate_and_quantize_cli_then_vllm_serves_int8_with_ngram(tiny: Path, run_dir: Path):
    res = run_cli("optimize", "calibrate", run_dir, "--model", tiny, "--samples", 4, "--test-samples", 2,
                  "--length", 8, "--length", 32, "--test-length", 32, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    curve = json.loads((run_dir / "optimize" / "calibration" / "clip_curve.json").read_text())
    assert set(curve["curve"]) == {"P", "I", "M"} and curve["public_samples_in_M"] == 1
    for points in curve["curve"].values():
        assert [p["calibration_length"] for p in points] == [8, 32]
        assert points[0]["clip_rate"] >= points[1]["clip_rate"]  # a longer calibration never clips more
    assert (run_dir / "optimize" / "calibration" / "clip_curve.png").stat().st_size > 0
    sets = {n: (run_dir / "datasets" / "calibration" / f"{n}.jsonl").read_text().splitlines() for n in "PIM"}
    assert all(len(v) == 4 for v in sets.values())
    test_ids = {json.loads(ln)["id"] for ln in (run_dir / "datasets/calibration/test.jsonl").read_text().splitlines()}
    assert test_ids and all(i.startswith("val-") for i in test_ids)  # tested on held-out episodes only

    res = run_cli("optimize", "quantize", run_dir, "--model", tiny, "--calibration", "M", "--scheme", "int8",
                  "--scheme", "fp8", "--agreement-calls", 4, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads((run_dir / "optimize" / "quantize.json").read_text())
    assert set(report["checkpoints"]) == {"int8-M", "fp8-M"}
    for entry in report["checkpoints"].values():
        assert 0.5 <= entry["token_agreement"] <= 1.0
    int8_dir = Path(report["checkpoints"]["int8-M"]["path"])
    config = json.loads((int8_dir / "config.json").read_text())
    assert config["quantization_config"]["quant_method"] == "compressed-tensors"
    assert "static_minmax" in (run_dir / "optimize" / "llmcompressor-recipe-int8-M.yaml").read_text()

    from agentdistill.serve.vllm_server import ServeConfig, VLLMServer

    profile = parse_profile(f"ngram:k=3+quantized={int8_dir}", tiny)
    assert profile.model == int8_dir and profile.speculative_config["method"] == "ngram"
    server = VLLMServer(ServeConfig(model=profile.model, port=free_port(), enforce_eager=True, max_model_len=2048,
                                    speculative_config=profile.speculative_config, startup_timeout_s=240,
                                    extra_args=["--per-request-spec-decode-metrics", "summary"]))
    with server:
        body = httpx.post(f"{server.url}/v1/chat/completions", timeout=60, json={
            "model": "student", "messages": [{"role": "user", "content": "vehicle stock number vehicle stock"}],
            "max_tokens": 24, "temperature": 0}).json()
        assert body["usage"]["completion_tokens"] > 0
        assert "speculative_decoding" in (body.get("metrics") or {}), body
        log = server.log_path.read_text(errors="replace")
    assert "W8A8Int8" in log or "Int8ScaledMM" in log, "vLLM did not pick an int8 W8A8 kernel"


# ------------------------------------------------------------------------------------------- profiles
def test_profiles_parse_to_vllm_speculative_configs(tiny: Path, tmp_path: Path):
    assert parse_profile("plain").speculative_config is None
    ngram = parse_profile("ngram:k=5,min=1")
    assert ngram.speculative_config == {"method": "ngram", "num_speculative_tokens": 5, "prompt_lookup_min": 1,
                                        "prompt_lookup_max": 5}
    sched = parse_profile("ngram:schedule=1-1:5;2-8:3;9-256:1").speculative_config
    assert sched["num_speculative_tokens_per_batch_size"] == [(1, 1, 5), (2, 8, 3), (9, 256, 1)]
    draft = parse_profile(f"draft:{tiny},k=2", tiny)
    assert draft.speculative_config == {"method": "draft_model", "num_speculative_tokens": 2, "model": str(tiny)}


def test_drafter_for_another_model_is_one_line_error(tiny: Path, tmp_path: Path):
    other = tmp_path / "other"
    other.mkdir()
    config = json.loads((tiny / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "vocab_size": config["vocab_size"] + 7}))
    with pytest.raises(UserError, match="made for another model: its vocab_size"):
        parse_profile(f"draft:{other}", tiny)
    with pytest.raises(UserError, match="not an EAGLE-3 head"):
        parse_profile(f"eagle3:{tiny}", tiny)
    res = run_cli("serve", tiny, "--profile", f"draft:{other}")
    assert_one_line_error(res, "made for another model")


@pytest.mark.parametrize("profile, needle", [("turbo", "unknown serving profile"), ("ngram:k=zero", "whole number"),
                                             ("ngram:depth=3", "unknown profile option"),
                                             ("plain+quantized=/nope", "does not exist")])
def test_bad_profiles_are_one_line_errors(profile: str, needle: str):
    with pytest.raises(UserError, match=needle):
        parse_profile(profile)


def test_quantize_without_calibration_and_calibrate_without_datasets_exit_2(tiny: Path, tmp_path: Path):
    assert_one_line_error(run_cli("optimize", "quantize", tmp_path, "--model", tiny), "optimize calibrate")
    assert_one_line_error(run_cli("optimize", "calibrate", tmp_path, "--model", tiny), "no SFT records")
    assert_one_line_error(run_cli("optimize", "quantize", tmp_path, "--scheme", "int4"), "int4")
