"""`agentdistill optimize calibrate`: P/I/M calibration sets, their static ranges, and the clip-rate curve.

Writes, under the run directory:
  datasets/calibration/{P,I,M,test}.jsonl   the sets (messages or text; rendered per checkpoint)
  optimize/calibration/ranges.json          per-layer [min, max] of each set at the longest calibration length
  optimize/calibration/clip_curve.json/.png clip rate on long held-out in-domain prompts vs calibration length
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from agentdistill.data.calibration import SETS, build_calibration_sets
from agentdistill.data.jsonl import write_jsonl
from agentdistill.errors import UserError
from agentdistill.fileio import atomic_write_json, read_jsonl
from agentdistill.optimize.activations import clip_counts, prefix_ranges
from agentdistill.paths import RunPaths

LENGTHS = (32, 64, 128, 256, 512, 1024, 2048)  # the paper's Figure 4 x-axis


def render(sample: dict[str, Any], tokenizer: Any) -> str:
    """An in-domain sample is its calls rendered back to back with the student's chat template; public is text."""
    if "calls" in sample:
        return "".join(tokenizer.apply_chat_template(messages, tokenize=False) for messages in sample["calls"])
    return str(sample["text"])


def token_samples(samples: Sequence[dict[str, Any]], tokenizer: Any, length: int) -> list[torch.Tensor]:
    """Each sample cut or filled to `length` tokens; a short one continues with the next samples of its set (EOS
    between), so every calibration length sees the same number of full-length samples."""
    encoded = [tokenizer(render(s, tokenizer), add_special_tokens=False)["input_ids"] for s in samples]
    sep = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    out = []
    for i in range(len(encoded)):
        ids: list[int] = []
        j = i
        while len(ids) < length and j < i + len(encoded):
            ids += encoded[j % len(encoded)] + sep
            j += 1
        out.append(torch.tensor(ids[:length], dtype=torch.long))
    return out


def calibration_paths(run_dir: Path) -> dict[str, Path]:
    root = RunPaths(run_dir)
    return {name: root.datasets / "calibration" / f"{name}.jsonl" for name in (*SETS, "test")}


def ensure_sets(run_dir: Path, samples: int, test_samples: int, seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """Build the sets once (resume: existing files of the right sizes are read back, not rebuilt)."""
    paths = calibration_paths(run_dir)
    sizes = {"P": samples, "I": samples, "M": samples, "test": test_samples}
    if all(p.is_file() for p in paths.values()):
        sets = {name: list(read_jsonl(p)) for name, p in paths.items()}
        if all(len(sets[n]) == sizes[n] for n in sizes):
            return sets
    root = RunPaths(run_dir)
    sets = build_calibration_sets(root.dataset("sft", "train"), root.dataset("sft", "val"), samples, test_samples,
                                  seed)
    for name, records in sets.items():
        write_jsonl(paths[name], records)
    return sets


def load_student(model_dir: Path, dtype: torch.dtype) -> tuple[torch.nn.Module, Any]:
    from agentdistill.train.models import load_checkpoint

    model, tokenizer = load_checkpoint(model_dir)
    return model.to(dtype).eval(), tokenizer


def calibrate(run_dir: Path, model_dir: Path | None = None, *, samples: int = 32, test_samples: int = 8,
              lengths: Sequence[int] = LENGTHS, test_length: int = 2048, dtype: str = "bfloat16",
              seed: int = 0) -> dict[str, Any]:
    """Ranges of P, I and M at every calibration length, and their clip rates on held-out long in-domain prompts."""
    run_dir = Path(run_dir)
    model_dir = Path(model_dir) if model_dir else RunPaths(run_dir).model("dpo")
    if not lengths or min(lengths) < 1:
        raise UserError("calibration lengths must be positive token counts")
    if test_length < 1:
        raise UserError("--test-length must be at least 1 token")
    torch_dtype = {"bfloat16": torch.bfloat16, "float32": torch.float32}.get(dtype)
    if torch_dtype is None:
        raise UserError(f"dtype must be bfloat16 or float32, not {dtype!r}")
    t0 = time.monotonic()
    sets = ensure_sets(run_dir, samples, test_samples, seed)
    model, tokenizer = load_student(model_dir, torch_dtype)
    longest = max(lengths)
    ranges = {name: prefix_ranges(model, token_samples(sets[name], tokenizer, longest), lengths) for name in SETS}
    test = token_samples(sets["test"], tokenizer, test_length)
    configs = {f"{name}@{n}": ranges[name][n] for name in SETS for n in lengths}
    counts = clip_counts(model, test, configs)
    curve = {name: [{"calibration_length": n, **counts[f"{name}@{n}"]} for n in sorted(lengths)] for name in SETS}
    out_dir = run_dir / "optimize" / "calibration"
    result = {
        "model": str(model_dir), "dtype": dtype, "samples_per_set": samples, "test_samples": len(test),
        "test_length": test_length, "lengths": sorted(lengths),
        "public_samples_in_M": sum(s["source"] == "public" for s in sets["M"]),
        "curve": curve,
        "at_longest": {name: curve[name][-1]["clip_rate"] for name in SETS},
        "seconds": round(time.monotonic() - t0, 1),
    }
    atomic_write_json(out_dir / "ranges.json", {"model": str(model_dir), "calibration_length": longest,
                                                "samples_per_set": samples,
                                                "ranges": {name: ranges[name][longest] for name in SETS}})
    atomic_write_json(out_dir / "clip_curve.json", result)
    plot_clip_curve(result, out_dir / "clip_curve.png")
    return result


def load_ranges(run_dir: Path, calibration: str) -> dict[str, Any]:
    """The per-layer ranges `calibrate` wrote for one set; one line when it has not run or the set is unknown."""
    path = Path(run_dir) / "optimize" / "calibration" / "ranges.json"
    if not path.is_file():
        raise UserError(f"no calibration at {path}: run 'agentdistill optimize calibrate {run_dir}' first")
    import json

    data = json.loads(path.read_text(encoding="utf-8"))
    if calibration not in data.get("ranges", {}):
        raise UserError(f"calibration set {calibration!r} is not in {path} (has: {', '.join(data.get('ranges', {}))})")
    return data


def plot_clip_curve(result: dict[str, Any], out: Path) -> Path:
    """The paper's Figure 4 on our data: clip rate vs calibration length, log-log, one line per set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from agentdistill.evaluate.plots import save_figure

    fig, ax = plt.subplots(figsize=(6.5, 4))
    labels = {"P": "P (public)", "I": "I (in-domain)", "M": "M (mixed)"}
    for name, points in result["curve"].items():
        xs = [p["calibration_length"] for p in points if p["clip_rate"] > 0]
        ys = [100 * p["clip_rate"] for p in points if p["clip_rate"] > 0]
        ax.plot(xs, ys, marker="o", label=labels.get(name, name))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("calibration sequence length (tokens)")
    ax.set_ylabel("test activations clipped (%)")
    ax.set_title(f"Clip rate on {result['test_samples']} held-out in-domain prompts of {result['test_length']} tokens")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return save_figure(fig, out)
