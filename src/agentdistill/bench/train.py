"""Benchmark: SFT training tokens/s per configuration, side by side on the same model and records.

Every row is a real `train sft` trainer (TRL `SFTTrainer` + PEFT LoRA, built by `trainers.make_trainer`) run for
a few steps on the same records in one process, so the ratios compare configurations, not machines:
- `trl_today`: the path `train sft` took before this benchmark (full vocabulary, LoRA on every layer, fp32 on
  CPU, length-grouped batches);
- then one lever at a time on top: a vocabulary trimmed to the corpus (train/vocab_trim.py), LoRA on the top
  half of the layers with no autograd below, bf16 weights, padding-free batches.
The first step of each row is a warm-up and is not timed. Tokens are non-padding input tokens (TRL's count).
It also reports what the records cost in tokens (mean tokens a record) and each role view's token count
against its budget (mas/views.py). No timing asserts anywhere: the targets live in this JSON.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from agentdistill.bench.train_dtype import training_machine
from agentdistill.errors import UserError
from agentdistill.fileio import atomic_write_json, read_jsonl

# name -> (trimmed vocabulary, StageConfig overrides); each row adds one lever to the one before it
CONFIGS: dict[str, tuple[bool, dict[str, Any]]] = {
    "trl_today": (False, {}),
    "trim_vocab": (True, {}),
    "trim_vocab+top_half_layers": (True, {"lora_layers": "half"}),
    "trim_vocab+top_half_layers+bf16": (True, {"lora_layers": "half", "bf16": True}),
    "trim_vocab+top_half_layers+bf16+padding_free": (True, {"lora_layers": "half", "bf16": True,
                                                            "padding_free": True}),
    "trim_vocab+top_half_layers+padding_free": (True, {"lora_layers": "half", "padding_free": True}),
}


class StepClock:
    """A trainer callback keeping (time, tokens seen) at the end of every optimizer step."""

    def __init__(self) -> None:
        from transformers import TrainerCallback

        clock = self

        class _Callback(TrainerCallback):
            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                clock.marks.append((time.perf_counter(), state.num_input_tokens_seen))

        self.marks: list[tuple[float, int]] = []
        self.callback = _Callback()

    def tokens_per_s(self) -> float:
        (t0, n0), (t1, n1) = self.marks[0], self.marks[-1]
        return (n1 - n0) / max(t1 - t0, 1e-9)


def _row(name: str, model_dir: Path, records: Path, overrides: dict[str, Any], base: dict[str, Any],
         work: Path) -> dict[str, Any]:
    from agentdistill.train.trainers import StageConfig, decoder_layers, make_trainer

    over = dict(overrides)
    clock = StepClock()
    cfg = StageConfig(stage="sft", model_in=model_dir, out_dir=work / name, train_file=records,
                      show_progress=False, **base, **{k: v for k, v in over.items() if k != "lora_layers"})
    if over.get("lora_layers") == "half":
        from agentdistill.train.trainers import load_model

        n_layers = len(decoder_layers(load_model(model_dir)))
        cfg = cfg.model_copy(update={"lora_layers": max(1, n_layers // 2)})
    trainer = make_trainer(cfg, [clock.callback])
    trainer.train()
    trainable = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    return {"config": name, "tokens_per_s": round(clock.tokens_per_s(), 1), "timed_steps": len(clock.marks) - 1,
            "vocab": trainer.model.config.vocab_size, "lora_layers": cfg.lora_layers, "bf16": bool(cfg.bf16),
            "padding_free": cfg.padding_free, "trainable_parameters": trainable}


def record_tokens(tokenizer: Any, path: Path, limit: int = 400) -> dict[str, Any]:
    """Mean and max tokens a record (chat template applied) over the first `limit` records."""
    lengths = [len(tokenizer.apply_chat_template(r["messages"], tokenize=True, return_dict=True)["input_ids"])
               for r, _ in zip(read_jsonl(path), range(limit), strict=False)]
    if not lengths:
        raise UserError(f"records file {path} has no records")
    return {"file": str(path), "records_measured": len(lengths), "mean_tokens": round(statistics.mean(lengths), 1),
            "max_tokens": max(lengths)}


def view_tokens(tokenizer: Any, domain: Any) -> dict[str, Any]:
    from agentdistill.mas.prompts import ROLES
    from agentdistill.mas.views import VIEW_TOKEN_BUDGET, role_view

    counts = {role: len(tokenizer(role_view(domain, role), add_special_tokens=False)["input_ids"]) for role in ROLES}
    return {"budget_tokens": VIEW_TOKEN_BUDGET, "tokens_per_role": counts,
            "within_budget": all(n <= VIEW_TOKEN_BUDGET for n in counts.values())}


def bench_train(model_dir: Path, records: Path, out: Path = Path("benchmarks/results/train.json"),
                steps: int = 4, batch: int = 8, max_length: int = 1024, lora_r: int = 32,
                configs: list[str] | None = None, other_records: list[Path] | None = None,
                work: Path | None = None) -> dict[str, Any]:
    import tempfile

    from agentdistill.domain.registry import make_domain
    from agentdistill.train.trainers import load_tokenizer
    from agentdistill.train.vocab_trim import trim_checkpoint

    names = configs or list(CONFIGS)
    unknown = [n for n in names if n not in CONFIGS]
    if unknown:
        raise UserError(f"unknown benchmark config {unknown[0]!r}; choose from {', '.join(CONFIGS)}")
    if not Path(records).is_file():
        raise UserError(f"records file {records} not found")
    tokenizer = load_tokenizer(model_dir)
    base = {"max_steps": steps + 1, "per_device_train_batch_size": batch, "max_length": max_length,
            "lora_r": lora_r, "group_by_length": True, "logging_steps": 1000, "save_steps": 10_000}
    work = Path(work or tempfile.mkdtemp(prefix="bench-train-"))
    trimmed_dir = work / "trimmed"
    trim_stats = None
    rows = []
    for name in names:
        trimmed, overrides = CONFIGS[name]
        if trimmed and trim_stats is None:
            trim_stats = trim_checkpoint(model_dir, [records, *(other_records or [])], trimmed_dir)
        rows.append(_row(name, trimmed_dir if trimmed else model_dir, records, overrides, base, work))
        print(json.dumps(rows[-1]), flush=True)
    first = rows[0]["tokens_per_s"]
    for r in rows:
        r["speedup_vs_first"] = round(r["tokens_per_s"] / first, 2) if first else None
    result = {
        "benchmark": "train",
        "command": f"agentdistill bench train --model {model_dir} --records {records} --steps {steps} "
                   f"--batch {batch}",
        "what": "TRL SFTTrainer + PEFT LoRA tokens/s (non-padding input tokens) per configuration, same records",
        "machine": training_machine(),
        "model": str(model_dir), "steps": steps, "batch": batch, "lora_r": lora_r,
        "records": record_tokens(tokenizer, Path(records)),
        "other_records": [record_tokens(tokenizer, Path(p)) for p in other_records or []],
        "views": view_tokens(tokenizer, make_domain()),
        "vocab_trim": {k: v for k, v in (trim_stats or {}).items() if not isinstance(v, list | dict)},
        "rows": rows,
    }
    atomic_write_json(out, result)
    return result
