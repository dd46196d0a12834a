"""One training stage (base, CPT, SFT, DPO) on TRL + PEFT; the output is a merged, servable HF checkpoint.

The recipe is the paper's (shared/reference/paper-digest.md section 3):
- base / cpt: `SFTTrainer` on documents. Context-aware CPT puts a context prefix before each document and leaves it
  out of the loss (`completion_only_loss`), so the noisy first-token gradients of a context-less document vanish;
  `context_aware=False` is the paper's plain-CPT baseline (the document alone).
- sft: `SFTTrainer` on `messages` with `assistant_only_loss` (the `{% generation %}` markers of train/chat.py) and
  LoRA: the paper found full fine-tuning overfits the prompt structure.
- dpo: `DPOTrainer` with LoRA; the reference is the same model with its adapter disabled (TRL's default with peft).
- every stage ends with a merge (LoRA folded in) and an atomic write of a plain checkpoint vLLM serves as is.

Defaults suit a tiny from-scratch model on CPU (lr 1e-3 full, 5e-4 LoRA: a 1M-parameter model barely moves at the
paper's 1e-5); the paper's GPU values are in configs/train/paper-*.yaml.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from transformers import TrainerCallback

from agentdistill.errors import UserError, first_line
from agentdistill.fileio import atomic_write_json, read_jsonl
from agentdistill.hardware import native_bf16
from agentdistill.train.callbacks import LOG_NAME, ProgressLogCallback, read_log

Stage = Literal["base", "cpt", "sft", "dpo"]
STAGES: tuple[str, ...] = ("base", "cpt", "sft", "dpo")
SUMMARY_NAME = "train_summary.json"
DOC_END = "<|endoftext|>"  # document separator of our tokenizers (train/chat.py's BOS)


class StageConfig(BaseModel):
    """Everything one stage needs; `None` fields are filled by `resolved()` from the stage's defaults."""

    model_config = ConfigDict(extra="forbid")

    stage: Stage
    model_in: Path
    out_dir: Path
    train_file: Path
    eval_file: Path | None = None
    method: Literal["full", "lora"] | None = None  # full for base/cpt, lora for sft/dpo
    context_aware: bool | None = None  # base/cpt: True = context prefix out of the loss; default True (cpt), False (base)
    lora_r: int = Field(16, ge=1)
    lora_alpha: int | None = Field(None, ge=1)  # default 2 * lora_r
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"
    # LoRA on the top N decoder layers only (None: all); CPU steps then skip the lower layers' backward
    lora_layers: int | None = Field(None, ge=1)
    no_grad_below_lora: bool = True  # run the layers below the lowest adapted one without autograd
    learning_rate: float | None = Field(None, gt=0)  # default 1e-3 full, 5e-4 lora
    lr_scheduler_type: str = "cosine"
    warmup_ratio: float = Field(0.0, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    num_train_epochs: float = Field(1.0, gt=0)
    max_steps: int = -1
    per_device_train_batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    max_length: int = Field(1024, ge=8)
    beta: float = Field(0.1, gt=0)
    sft_weight: float = Field(0.0, ge=0)  # DPO: weight of an added NLL loss on the chosen output (TRL loss_type "sft")
    seed: int = Field(0, ge=0)
    logging_steps: int = Field(5, ge=1)
    save_steps: int = Field(50, ge=1)
    save_total_limit: int = Field(2, ge=1)
    packing: bool = False
    padding_free: bool = False  # SFT: one row of concatenated records, no pad tokens (position_ids mark records)
    group_by_length: bool = False  # batch records of similar length: less padding on short, uneven chat records
    max_records: int | None = Field(None, ge=1)  # train on a seeded sample of this many records (CPU budgets)
    bf16: bool | None = None  # default: bf16 on a CUDA GPU that supports it, fp32 otherwise
    gradient_checkpointing: bool = False
    # also export a merged checkpoint at these optimizer steps (`snapshot_dir`): a budget curve from one run
    snapshot_steps: list[int] = Field(default_factory=list)
    show_progress: bool = True

    def resolved(self) -> StageConfig:
        lora = (self.method or ("full" if self.stage in ("base", "cpt") else "lora")) == "lora"
        return self.model_copy(update={
            "method": "lora" if lora else "full",
            "context_aware": self.context_aware if self.context_aware is not None else self.stage == "cpt",
            "lora_alpha": self.lora_alpha or 2 * self.lora_r,
            "learning_rate": self.learning_rate or (5e-4 if lora else 1e-3),
            "bf16": self.bf16 if self.bf16 is not None else native_bf16(),
        })

    def identity(self) -> dict[str, Any]:
        """What must match for a finished or interrupted run to count as the same run. Precision is left out:
        it follows the hardware (hardware.native_bf16), and a run resumed on another machine is the same run."""
        return json.loads(self.model_dump_json(exclude={"logging_steps", "save_steps", "save_total_limit",
                                                        "show_progress", "eval_file", "bf16"}))




def snapshot_dir(out_dir: Path, step: int) -> Path:
    """Where the merged checkpoint of `snapshot_steps` step `step` goes: beside the final one."""
    out_dir = Path(out_dir)
    return out_dir.parent / f"{out_dir.name}_step{step}"


class SnapshotCallback(TrainerCallback):
    """At each of `cfg.snapshot_steps`, merge the checkpoint the trainer just saved into a servable model."""

    def __init__(self, cfg: StageConfig, log_path: Path) -> None:
        self.cfg, self.log_path, self.t0 = cfg, log_path, time.perf_counter()

    def on_save(self, args: Any, state: Any, control: Any, processing_class: Any = None, **kw: Any) -> None:
        cfg, step = self.cfg, state.global_step
        out = snapshot_dir(cfg.out_dir, step)
        if step not in cfg.snapshot_steps or (out / SUMMARY_NAME).is_file() or not state.is_world_process_zero:
            return
        losses = [r["loss"] for r in read_log(self.log_path) if "loss" in r]
        summary = {"stage": cfg.stage, "snapshot_of": str(cfg.out_dir), "steps": step,
                   "records_seen": step * cfg.per_device_train_batch_size * cfg.gradient_accumulation_steps,
                   "tokens_seen": state.num_input_tokens_seen, "train_loss_last": losses[-1] if losses else None,
                   "wall_s": round(time.perf_counter() - self.t0, 2), "prompt_style": trained_prompt_style(cfg)}
        _export(cfg, Path(args.output_dir) / f"checkpoint-{step}", processing_class, summary, self.log_path, out)


def checkpoint_dir(out_dir: Path) -> Path:
    """Trainer checkpoints live beside the output (hidden), so out_dir only ever holds a finished model."""
    out_dir = Path(out_dir)
    return out_dir.parent / f".{out_dir.name}.checkpoints"


# ---------------------------------------------------------------------------------------------- inputs
def read_records(path: Path | None, what: str) -> list[dict[str, Any]]:
    if path is None or not Path(path).is_file():
        raise UserError(f"{what} dataset {path} not found")
    records = list(read_jsonl(path))
    if not records:
        raise UserError(f"dataset {path} has no records")
    return records


def load_tokenizer(model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    _check_model_dir(model_dir)
    try:
        return AutoTokenizer.from_pretrained(str(model_dir))
    except Exception as exc:  # noqa: BLE001 - any loader failure is a bad model dir for the user
        raise UserError(f"model dir {model_dir}: cannot load its tokenizer ({first_line(exc)})") from None


def load_model(model_dir: Path, dtype: Any = "auto") -> Any:
    from transformers import AutoModelForCausalLM

    _check_model_dir(model_dir)
    try:
        return AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=dtype)
    except Exception as exc:  # noqa: BLE001
        raise UserError(f"model dir {model_dir}: cannot load the model ({first_line(exc)})") from None


def _check_model_dir(model_dir: Path) -> None:
    if not (Path(model_dir) / "config.json").is_file():
        raise UserError(f"model dir {model_dir} not found or has no config.json")


# ----------------------------------------------------------------------------------- CPT tokenization
def doc_start_ids(tokenizer: Any) -> list[int]:
    """A start token before every document, so the first text token is predicted (and scored) too."""
    if tokenizer.bos_token_id is not None:
        return [tokenizer.bos_token_id]
    tid = tokenizer.convert_tokens_to_ids(DOC_END)
    return [tid] if tid is not None and tid != tokenizer.unk_token_id else []


def doc_end_ids(tokenizer: Any) -> list[int]:
    """Documents end with `<|endoftext|>` where the vocabulary has it (TRL would append the chat eos `<|im_end|>`)."""
    tid = tokenizer.convert_tokens_to_ids(DOC_END)
    if tid is not None and tid != tokenizer.unk_token_id:
        return [tid]
    return [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []


def cpt_example(tokenizer: Any, context: str, text: str, with_context: bool, max_length: int) -> dict[str, list[int]]:
    """`start + context + text + end` as ids, with completion_mask 1 on text + end only.

    Context and text are tokenized separately (no token straddles the boundary, unlike TRL's string
    prompt-completion path) and without the tokenizer's own special tokens, so the layout is the same for any
    tokenizer; per_position_loss uses this same function.
    """
    start = doc_start_ids(tokenizer)
    ctx = tokenizer(context, add_special_tokens=False)["input_ids"] if with_context and context else []
    ctx = ctx[-(max_length // 2):] if len(ctx) > max_length // 2 else ctx  # keep room for the document
    body = tokenizer(text, add_special_tokens=False)["input_ids"] + doc_end_ids(tokenizer)
    prefix = start + ctx
    ids = (prefix + body)[:max_length]
    mask = ([0] * len(prefix) + [1] * len(body))[:max_length]
    return {"input_ids": ids, "completion_mask": mask}


def _cpt_dataset(records: list[dict[str, Any]], tokenizer: Any, cfg: StageConfig, path: Path) -> Any:
    from datasets import Dataset

    rows = []
    for i, r in enumerate(records):
        if not isinstance(r.get("text"), str):
            raise UserError(f"dataset {path} record {i + 1} has no 'text' string (expected {{'context', 'text'}})")
        if r["text"]:
            rows.append(cpt_example(tokenizer, r.get("context") or "", r["text"], bool(cfg.context_aware),
                                    cfg.max_length))
    if not rows:
        raise UserError(f"dataset {path} has no records with text")
    return Dataset.from_list(rows)


def _sft_dataset(records: list[dict[str, Any]], path: Path) -> Any:
    from datasets import Dataset

    for i, r in enumerate(records):
        msgs = r.get("messages")
        if not isinstance(msgs, list) or not any(m.get("role") == "assistant" for m in msgs):
            raise UserError(f"dataset {path} record {i + 1} needs 'messages' with an assistant turn")
    return Dataset.from_list([{"messages": r["messages"]} for r in records])


def _dpo_dataset(records: list[dict[str, Any]], path: Path) -> Any:
    from datasets import Dataset

    for i, r in enumerate(records):
        if not all(isinstance(r.get(k), list) and r.get(k) for k in ("prompt", "chosen", "rejected")):
            raise UserError(f"dataset {path} record {i + 1} needs 'prompt', 'chosen' and 'rejected' message lists")
    return Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in records])


def build_dataset(cfg: StageConfig, path: Path, tokenizer: Any, what: str = "train") -> Any:
    records = read_records(path, what)
    if cfg.max_records and len(records) > cfg.max_records:
        import random

        records = random.Random(cfg.seed).sample(records, cfg.max_records)
    if cfg.stage in ("base", "cpt"):
        return _cpt_dataset(records, tokenizer, cfg, path)
    if cfg.stage == "sft":
        return _sft_dataset(records, path)
    return _dpo_dataset(records, path)


# --------------------------------------------------------------------------------------------- trainer
def _common_args(cfg: StageConfig, ckpt: Path, has_eval: bool) -> dict[str, Any]:
    import torch

    return {
        "output_dir": str(ckpt), "learning_rate": cfg.learning_rate, "lr_scheduler_type": cfg.lr_scheduler_type,
        "warmup_steps": cfg.warmup_ratio, "weight_decay": cfg.weight_decay, "num_train_epochs": cfg.num_train_epochs,
        "max_steps": cfg.max_steps, "per_device_train_batch_size": cfg.per_device_train_batch_size,
        "per_device_eval_batch_size": cfg.per_device_train_batch_size,
        "gradient_accumulation_steps": cfg.gradient_accumulation_steps, "max_length": cfg.max_length,
        "seed": cfg.seed, "logging_steps": cfg.logging_steps, "logging_first_step": True,
        "save_strategy": "steps", "save_steps": cfg.save_steps, "save_total_limit": cfg.save_total_limit,
        "eval_strategy": "steps" if has_eval else "no", "eval_steps": cfg.save_steps if has_eval else None,
        "bf16": bool(cfg.bf16), "use_cpu": not torch.cuda.is_available(),
        "gradient_checkpointing": cfg.gradient_checkpointing, "dataloader_num_workers": 0, "report_to": [],
        "include_num_input_tokens_seen": "non_padding", "disable_tqdm": True, "remove_unused_columns": True,
        "train_sampling_strategy": "group_by_length" if cfg.group_by_length else "random",
    }


def _peft_config(cfg: StageConfig, model: Any) -> Any:
    if cfg.method != "lora":
        return None
    from peft import LoraConfig

    layers = _lora_layer_ids(cfg, len(decoder_layers(model)))
    targets = cfg.target_modules
    if layers is not None and targets == "all-linear":  # PEFT takes a layer subset only with named modules
        targets = linear_module_names(model)
    return LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, task_type="CAUSAL_LM",
                      layers_to_transform=layers, layers_pattern="layers" if layers is not None else None)


def linear_module_names(model: Any) -> list[str]:
    """PEFT's "all-linear" spelled out: the names of every Linear inside the decoder layers (not the LM head)."""
    import torch

    return sorted({name.rsplit(".", 1)[-1] for name, module in decoder_layers(model).named_modules()
                   if isinstance(module, torch.nn.Linear)})


def _lora_layer_ids(cfg: StageConfig, n_layers: int) -> list[int] | None:
    if cfg.lora_layers is None or cfg.lora_layers >= n_layers:
        return None
    return list(range(n_layers - cfg.lora_layers, n_layers))


def decoder_layers(model: Any) -> Any:
    """The decoder's layer list (`model.model.layers` for Llama-style models)."""
    decoder = model.get_decoder() if hasattr(model, "get_decoder") else model.model
    layers = getattr(decoder, "layers", None)
    if layers is None:
        raise UserError(f"{type(model).__name__}: no decoder layer list found (lora_layers needs one)")
    return layers


def freeze_below_lora(cfg: StageConfig, model: Any) -> int:
    """Run the decoder layers below the lowest LoRA layer under `torch.no_grad`: they hold no trainable weight,
    so their activations need not be kept for a backward pass. Returns how many layers run so."""
    if cfg.method != "lora" or cfg.lora_layers is None or not cfg.no_grad_below_lora:
        return 0
    import torch

    layers = decoder_layers(model)
    ids = _lora_layer_ids(cfg, len(layers))
    below = ids[0] if ids else 0
    for layer in list(layers)[:below]:
        layer.forward = torch.no_grad()(layer.forward)
    return below


def _make_trainer(cfg: StageConfig, model: Any, tokenizer: Any, train_ds: Any, eval_ds: Any, ckpt: Path,
                  callbacks: list[Any]) -> Any:
    trainer = _new_trainer(cfg, model, tokenizer, train_ds, eval_ds, ckpt, callbacks)
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # disable_tqdm adds it; ProgressLogCallback prints a shorter line
    return trainer


def _new_trainer(cfg: StageConfig, model: Any, tokenizer: Any, train_ds: Any, eval_ds: Any, ckpt: Path,
                 callbacks: list[Any]) -> Any:
    common = _common_args(cfg, ckpt, eval_ds is not None)
    peft = _peft_config(cfg, model) if cfg.method == "lora" else None
    if cfg.stage == "dpo":
        from trl import DPOConfig, DPOTrainer

        losses = {"loss_type": ["sigmoid", "sft"], "loss_weights": [1.0, cfg.sft_weight]} if cfg.sft_weight else {}
        args = DPOConfig(**common, beta=cfg.beta, **losses)
        return DPOTrainer(model=model, ref_model=None, args=args, train_dataset=train_ds, eval_dataset=eval_ds,
                          processing_class=tokenizer, peft_config=peft, callbacks=callbacks)
    from trl import SFTConfig, SFTTrainer

    lm = cfg.stage in ("base", "cpt")
    if cfg.padding_free and not cfg.packing:  # TRL does not truncate padding-free rows (it refuses a max_length)
        common["max_length"] = None
    args = SFTConfig(**common, packing=cfg.packing, padding_free=cfg.padding_free,
                     completion_only_loss=True if lm else None, assistant_only_loss=not lm)
    return SFTTrainer(model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds, processing_class=tokenizer,
                      peft_config=peft, callbacks=callbacks)


def make_trainer(cfg: StageConfig, callbacks: list[Any] | None = None) -> Any:
    """The configured TRL trainer without training it (tests inspect its datasets and collator)."""
    cfg = cfg.resolved()
    if not cfg.show_progress:
        import datasets

        datasets.disable_progress_bars()
    tokenizer = load_tokenizer(cfg.model_in)
    _check_template(cfg, tokenizer)
    train_ds = build_dataset(cfg, cfg.train_file, tokenizer)
    eval_ds = build_dataset(cfg, cfg.eval_file, tokenizer, "eval") if cfg.eval_file else None
    model = load_model(cfg.model_in, _train_dtype(cfg))
    freeze_below_lora(cfg, model)
    trainer = _make_trainer(cfg, model, tokenizer, train_ds, eval_ds, checkpoint_dir(cfg.out_dir), callbacks or [])
    if len(trainer.train_dataset) == 0:
        raise UserError(f"dataset {cfg.train_file}: no record keeps a trainable token within max_length "
                        f"{cfg.max_length} (raise --max-length or use a tokenizer that compresses better)")
    return trainer


def _train_dtype(cfg: StageConfig) -> Any:
    """bf16 (`bf16: true`, the default on a CUDA GPU): LoRA loads the frozen base in bf16, full keeps fp32 masters.

    CPUs default to fp32: the tiny from-scratch presets gain little from bf16 autocast even where AMX makes bf16
    matmuls ~8x faster, since their steps are not matmul-bound (`agentdistill bench train-dtype` measures it)."""
    import torch

    return torch.bfloat16 if cfg.bf16 and cfg.method == "lora" else torch.float32


def _check_template(cfg: StageConfig, tokenizer: Any) -> None:
    if cfg.stage in ("sft", "dpo") and not tokenizer.chat_template:
        raise UserError(f"model dir {cfg.model_in} has no chat template (save the tokenizer with train/chat.py's)")
    if cfg.stage == "sft" and "generation" not in tokenizer.chat_template:
        raise UserError(f"model dir {cfg.model_in}: chat template lacks {{% generation %}} markers for assistant-only loss")


# -------------------------------------------------------------------------------------------- run
def train_stage(cfg: StageConfig, callbacks: list[Any] | None = None) -> dict[str, Any]:
    """Train one stage, merge, write `out_dir` atomically; resumes from checkpoints; a finished run is a no-op."""
    cfg = cfg.resolved()
    done = _finished(cfg)
    if done is not None:
        return done
    ckpt = checkpoint_dir(cfg.out_dir)
    progress = ProgressLogCallback(ckpt / LOG_NAME, show=cfg.show_progress)
    snapshots = [SnapshotCallback(cfg, ckpt / LOG_NAME)] if cfg.snapshot_steps else []
    trainer = make_trainer(cfg, [progress, *snapshots, *(callbacks or [])])  # validates model and data before touching disk
    _guard_checkpoints(cfg, ckpt)
    from transformers.trainer_utils import get_last_checkpoint

    resume = ckpt.is_dir() and get_last_checkpoint(str(ckpt)) is not None
    trainer.train(resume_from_checkpoint=True if resume else None)
    wall, tokens = progress.session_rate(trainer.state)
    eval_loss = trainer.evaluate()["eval_loss"] if trainer.eval_dataset is not None else None
    summary = _summary(cfg, trainer.state, progress.log_path, wall, tokens, eval_loss)
    staging = ckpt / "final"
    trainer.save_model(str(staging))  # gathers FSDP shards; an adapter for LoRA, the full model otherwise
    if trainer.accelerator.is_main_process:
        _export(cfg, staging, trainer.processing_class, summary, progress.log_path)
        shutil.rmtree(ckpt, ignore_errors=True)
    trainer.accelerator.wait_for_everyone()
    del trainer
    release_memory()
    return summary


def release_memory() -> None:
    """Hand a finished stage's model, optimizer and datasets back to the OS: the pipeline runs every stage in one
    process, and without this its RSS grew past 18 GiB of the machine's 24 by the evaluation (vLLM needs ~4)."""
    import ctypes
    import gc

    gc.collect()  # the Trainer holds reference cycles
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _same_run(stored: dict[str, Any] | None, cfg: StageConfig) -> bool:
    """A recorded identity matches; records written before precision left the identity still carry "bf16"."""
    return {k: v for k, v in (stored or {}).items() if k != "bf16"} == cfg.identity()


def _finished(cfg: StageConfig) -> dict[str, Any] | None:
    path = cfg.out_dir / SUMMARY_NAME
    if not path.is_file():
        if cfg.out_dir.exists() and any(cfg.out_dir.iterdir()):
            raise UserError(f"output dir {cfg.out_dir} exists and is not a finished training run; choose another --out")
        return None
    summary = json.loads(path.read_text())
    if not _same_run(summary.get("config"), cfg):
        raise UserError(f"output dir {cfg.out_dir} holds a model trained with another config; choose another --out")
    return summary


def _guard_checkpoints(cfg: StageConfig, ckpt: Path) -> None:
    """Resume only a run with the same settings; a different one must not silently continue old optimizer state."""
    marker = ckpt / "stage_config.json"
    if marker.is_file():
        if not _same_run(json.loads(marker.read_text()), cfg):
            raise UserError(f"{ckpt} holds checkpoints of a run with other settings; delete it or rerun with those")
        return
    ckpt.mkdir(parents=True, exist_ok=True)
    atomic_write_json(marker, cfg.identity())


def trained_prompt_style(cfg: StageConfig) -> str | None:
    """The system-prompt style of the chat records an SFT/DPO stage trained on (the evaluation must match it)."""
    from agentdistill.mas.prompts import style_of

    if cfg.stage not in ("sft", "dpo"):
        return None
    first = next(iter(read_jsonl(cfg.train_file)), {})
    messages = first.get("messages") or first.get("prompt") or []
    return style_of(messages) if messages and messages[0].get("role") == "system" else None


def _summary(cfg: StageConfig, state: Any, log_path: Path, wall: float, tokens: int,
             eval_loss: float | None) -> dict[str, Any]:
    losses = [r["loss"] for r in read_log(log_path) if "loss" in r and math.isfinite(r["loss"])]
    return {
        "stage": cfg.stage, "method": cfg.method, "context_aware": cfg.context_aware if cfg.stage in ("base", "cpt")
        else None, "steps": state.global_step, "train_loss_first": losses[0] if losses else None,
        "train_loss_last": losses[-1] if losses else None, "eval_loss": eval_loss,
        "tokens_seen": state.num_input_tokens_seen, "tokens_per_s": round(tokens / max(wall, 1e-9), 1),
        "wall_s": round(wall, 2), "out_dir": str(cfg.out_dir), "config": cfg.identity(),
        "prompt_style": trained_prompt_style(cfg),
    }


def _export(cfg: StageConfig, staging: Path, tokenizer: Any, summary: dict[str, Any], log_path: Path,
            out_dir: Path | None = None) -> None:
    """Merged plain checkpoint + tokenizer (with chat template) + summary, renamed into place in one step."""
    out_dir = Path(out_dir or cfg.out_dir)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{int(time.time())}"
    shutil.rmtree(tmp, ignore_errors=True)
    if cfg.method == "lora":
        from peft import PeftModel

        base = load_model(cfg.model_in, "auto")
        PeftModel.from_pretrained(base, str(staging)).merge_and_unload().save_pretrained(str(tmp))
    else:
        load_model(staging, "auto").save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    shutil.copy(log_path, tmp / LOG_NAME)
    atomic_write_json(tmp / SUMMARY_NAME, summary)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)


def load_stage_config(stage: str, overrides: dict[str, Any], config_file: Path | None = None) -> StageConfig:
    """YAML (e.g. configs/train/paper-sft.yaml) first, then the non-None CLI flags; one-line errors."""
    from agentdistill.config import build, load_yaml

    data: dict[str, Any] = load_yaml(config_file) if config_file else {}
    if data.get("stage", stage) != stage:
        raise UserError(f"config file {config_file} is for stage {data['stage']!r}, not {stage!r}")
    data["stage"] = stage
    data.update({k: v for k, v in overrides.items() if v is not None})
    return build(StageConfig, data)
