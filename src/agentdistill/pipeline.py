"""`agentdistill run`: every stage chained on the embedded default, sized by one preset knob.

simulate -> verify (inline) -> datasets -> tokenizer -> base (pretrain on public text) -> block expansion ->
CPT (context-aware) -> SFT (LoRA) -> DPO (LoRA) -> serve each checkpoint with vLLM -> eval -> comparison.
Every stage skips itself when its output exists, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from agentdistill.config import SimulateConfig, save_yaml
from agentdistill.errors import UserError
from agentdistill.fileio import atomic_write_json, ensure_writable_dir, read_jsonl
from agentdistill.paths import RunPaths

console = Console(stderr=True)


@dataclass(frozen=True)
class Preset:
    """One knob: how big every stage is. Steps are optimizer steps of batch `batch`."""

    episodes: int
    heldout: int  # held-out conversations per evaluated model
    stress: int  # stress scenarios per evaluated model (120 = the whole suite)
    model: str
    vocab: int
    expand_every: int  # LLaMA-Pro block expansion before CPT (0 = none)
    base_steps: int
    cpt_steps: int
    sft_steps: int
    dpo_steps: int
    batch: int
    lora_r: int
    eval_models: tuple[str, ...]  # which checkpoints are served and evaluated (see Pipeline.eval_names)
    ablation: bool  # also SFT+DPO without CPT, evaluated wherever their CPT'd twins are
    sft_method: str = "full"  # "full" for from-scratch tiny presets, "lora" for a pretrained base (see sft_method())
    sft_batch: int = 16  # SFT records are short with compact prompts (~70 tokens), so SFT batches are wider
    eval_workers: int = 8
    tokenizer: str = "line"  # train/tokenizer.py TOKENIZER_KINDS: "line" (short records) or "word" (copy-friendly)
    prompt_style: str = "compact"  # the student's role prompts and inputs (mas/prompts.py)


PRESETS: dict[str, Preset] = {
    "smoke": Preset(episodes=40, heldout=2, stress=1, model="nano", vocab=4096, expand_every=2, base_steps=6,
                    cpt_steps=6, sft_steps=12, dpo_steps=4, batch=2, lora_r=16, eval_models=("dpo",), ablation=False),
    "default": Preset(episodes=1000, heldout=35, stress=24, model="nano", vocab=8192, expand_every=2, base_steps=40,
                      cpt_steps=60, sft_steps=1800, dpo_steps=60, batch=4, lora_r=64,
                      eval_models=("base", "cpt", "sft", "dpo"), ablation=False),
    "quality": Preset(episodes=7172, heldout=140, stress=120, model="micro", vocab=8192, expand_every=3,
                      base_steps=400, cpt_steps=400, sft_steps=4000, dpo_steps=600, batch=4, lora_r=128,
                      eval_models=("base", "cpt", "sft", "dpo"), ablation=True),
}


class Pipeline:
    def __init__(self, preset: str, root: Path, workers: int = 2, show_progress: bool = True, ablation: bool = False):
        if preset not in PRESETS:
            raise UserError(f"unknown preset {preset!r}; allowed: {', '.join(PRESETS)}")
        self.name, self.p = preset, replace(PRESETS[preset], ablation=True) if ablation else PRESETS[preset]
        self.paths = RunPaths(ensure_writable_dir(root))
        self.workers, self.show = workers, show_progress
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------------------------------ helpers
    def _timed(self, stage: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        console.print(f"[bold]== {stage}[/bold]")
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        self.timings[stage] = round(time.perf_counter() - t0, 1)
        return out

    def _train(self, stage: str, model_in: Path, out: str, data: str, steps: int, **extra: Any) -> dict[str, Any]:
        from agentdistill.train.trainers import StageConfig, train_stage

        split = "train"
        sft = stage == "sft"
        batch = self.p.sft_batch if sft else self.p.batch
        cfg = StageConfig(stage=stage, model_in=model_in, out_dir=self.paths.model(out),
                          train_file=self.paths.dataset(data, split), max_steps=steps, group_by_length=sft,
                          per_device_train_batch_size=batch, max_records=steps * batch,
                          save_steps=max(10, steps // 4), logging_steps=max(1, steps // 20),
                          max_length=1024 if stage in ("base", "cpt") else 2048, show_progress=self.show, **extra)
        return train_stage(cfg)

    # ------------------------------------------------------------------------------------------- stages
    def simulate(self) -> dict[str, Any]:
        from agentdistill.simulate.runner import simulate

        cfg = SimulateConfig(episodes=self.p.episodes, workers=self.workers, suite="train")
        return simulate(cfg, self.paths.root, show_progress=self.show)

    def datasets(self) -> dict[str, Any]:
        from agentdistill.data.build import build_datasets

        stats = self.paths.datasets / "stats.json"
        if stats.exists():
            return json.loads(stats.read_text())
        return build_datasets(self.paths.root, show_progress=self.show, prompt_style=self.p.prompt_style)

    def tokenizer(self, out: Path | None = None, vocab: int | None = None, kind: str | None = None) -> Path:
        from agentdistill.train.tokenizer import train_tokenizer

        out = out or self.paths.model("tokenizer")
        if (out / "tokenizer.json").exists():
            return out
        rng = random.Random(0)
        if not self.paths.dataset("sft").exists():
            raise UserError(f"no SFT dataset in {self.paths.datasets} (run 'agentdistill datasets {self.paths.root}')")
        sft = list(read_jsonl(self.paths.dataset("sft")))
        sample = rng.sample(sft, min(len(sft), 3000))

        def texts() -> Any:
            for rec in sample:
                for m in rec["messages"]:
                    yield m.get("content") or ""
                    for tc in m.get("tool_calls") or []:
                        yield json.dumps(tc["function"])
            for rec in read_jsonl(self.paths.dataset("cpt")):
                yield rec["context"]
                yield rec["text"]

        train_tokenizer(texts(), out, vocab_size=vocab or self.p.vocab, kind=kind or self.p.tokenizer)
        return out

    def public_only(self) -> Path:
        """The base model's pretraining text: the public part of the CPT mix (our stand-in for a pretrained base)."""
        from agentdistill.data.jsonl import write_jsonl

        out = self.paths.dataset("base")
        if not out.exists():
            write_jsonl(out, [r for r in read_jsonl(self.paths.dataset("cpt")) if r["source"] == "public"])
        return out

    def init_model(self, tokenizer_dir: Path) -> Path:
        from agentdistill.train.models import build_model, save_checkpoint
        from agentdistill.train.tokenizer import load_tokenizer

        out = self.paths.model("init")
        if not (out / "config.json").exists():
            tok = load_tokenizer(tokenizer_dir)
            save_checkpoint(build_model(self.p.model, tok, seed=0), tok, out)
        return out

    def expand(self, base: Path) -> Path:
        """Stage 0 of the paper: insert zero-initialised blocks (identity) before CPT."""
        from agentdistill.train.models import expand_blocks, load_checkpoint, save_checkpoint

        if not self.p.expand_every:
            return base
        out = self.paths.model("base_expanded")
        if not (out / "config.json").exists():
            model, tok = load_checkpoint(base)
            save_checkpoint(expand_blocks(model, self.p.expand_every), tok, out)
        return out

    def figure5(self, base: Path) -> dict[str, Any]:
        """Per-position loss of plain vs context-aware CPT (the paper's Figure 5), measured on held-out docs."""
        from agentdistill.train.position_loss import per_position_loss

        out = self.paths.eval / "cpt_position_loss.json"
        if out.exists():
            return json.loads(out.read_text())
        plain = self._train("cpt", base, "cpt_plain", "cpt", self.p.cpt_steps, context_aware=False)
        docs = [r for r in read_jsonl(self.paths.dataset("cpt", "val")) if r["source"] == "domain"][:40]
        result = {
            "records": len(docs),
            "plain_cpt": {"without_context": per_position_loss(self.paths.model("cpt_plain"), docs, 48, False)},
            "context_aware_cpt": {
                "with_context": per_position_loss(self.paths.model("cpt"), docs, 48, True),
                "without_context": per_position_loss(self.paths.model("cpt"), docs, 48, False),
            },
            "plain_summary": plain,
        }
        atomic_write_json(out, result)
        from agentdistill.evaluate.plots import plot_position_loss

        plot_position_loss(result, out.with_suffix(".png"))
        return result

    def evaluate(self, names: list[str]) -> dict[str, Any]:
        from agentdistill.evaluate.compare import comparison
        from agentdistill.evaluate.run_eval import evaluate_model

        results = {}
        style = self.prompt_style()
        jobs = [("teacher", "scripted")] + [(n, str(self.paths.model(n))) for n in names]
        for name, model in jobs:
            done = self.paths.eval / name / "summary.json"
            if done.exists():
                results[name] = json.loads(done.read_text())
                continue
            heldout, stress = self.p.heldout, self.p.stress
            if name in ("base", "cpt"):  # never trained on the chat format: a sample shows it, and perplexity matters
                heldout, stress = min(heldout, 2), min(stress, 1)
            results[name] = self._timed(f"eval {name}", evaluate_model, model, self.paths.root, name,
                                        heldout_episodes=heldout, stress_episodes=stress,
                                        workers=self.p.eval_workers, show_progress=self.show,
                                        prompt_style=None if name == "teacher" else style)
        return {"models": results, "comparison": comparison(self.paths.eval)}

    def eval_names(self) -> list[str]:
        """The preset's evaluated checkpoints, plus the no-CPT twins of its SFT and DPO ones when the ablation runs
        (CPT+SFT+DPO vs SFT+DPO)."""
        twins = [f"{m}_nocpt" for m in self.p.eval_models if self.p.ablation and m in ("sft", "dpo")]
        return [*self.p.eval_models, *twins]

    def prompt_style(self) -> str:
        """The role-prompt style the run's datasets (hence its students) use; the teacher always reads full prompts."""
        stats = self.paths.datasets / "stats.json"
        return json.loads(stats.read_text())["settings"].get("prompt_style", "full") if stats.exists() else "full"

    def sft_method(self) -> dict[str, Any]:
        """SFT of a from-scratch tiny preset is a full fine-tune; LoRA is for pretrained bases (the paper's case).

        Measured here: LoRA (all-linear, r=64) on the CPT'd nano model left the SFT loss at 8.4 after 180 steps
        (from 9.1): with embeddings and output head frozen, a base that never saw the chat tokens cannot learn
        to emit them. `agentdistill train sft` keeps LoRA as its default.
        """
        if self.p.sft_method == "full":
            return {"method": "full", "learning_rate": 1e-3}
        return {"method": "lora", "lora_r": self.p.lora_r}

    def dpo_settings(self) -> dict[str, Any]:
        """LoRA DPO with an NLL term on the chosen output and a low learning rate.

        Measured on the default run's SFT student (35 held-out conversations, 60 steps): plain DPO at 5e-4 broke
        the output format (malformed 10% -> 40%, pass 11.4% -> 0%); with the NLL term (weight 1) at 1e-4,
        malformed 19%, pass 8.6%, policy violations 14.3% -> 11.4%.
        """
        return {"lora_r": max(8, self.p.lora_r // 2), "learning_rate": 1e-4, "sft_weight": 1.0}

    # ------------------------------------------------------------------------------------------ the run
    def run(self) -> dict[str, Any]:
        save_yaml(self.paths.root / "config.yaml", {"preset": self.name, **asdict(self.p)})
        train = self._timed("simulate", self.simulate)
        stats = self._timed("datasets", self.datasets)
        tok = self._timed("tokenizer", self.tokenizer)
        init = self._timed("init model", self.init_model, tok)
        self.public_only()
        base = self._timed("base (pretrain on public text)", self._train, "base", init, "base", "base",
                           self.p.base_steps, context_aware=False)
        expanded = self._timed("block expansion", self.expand, self.paths.model("base"))
        training = {"base": base}
        training["cpt"] = self._timed("cpt", self._train, "cpt", expanded, "cpt", "cpt", self.p.cpt_steps)
        training["sft"] = self._timed("sft", self._train, "sft", self.paths.model("cpt"), "sft", "sft",
                                      self.p.sft_steps, **self.sft_method())
        training["dpo"] = self._timed("dpo", self._train, "dpo", self.paths.model("sft"), "dpo", "dpo",
                                      self.p.dpo_steps, **self.dpo_settings())
        if self.p.ablation:
            training["sft_nocpt"] = self._timed("sft (no CPT)", self._train, "sft", expanded, "sft_nocpt", "sft",
                                                self.p.sft_steps, **self.sft_method())
            training["dpo_nocpt"] = self._timed("dpo (no CPT)", self._train, "dpo", self.paths.model("sft_nocpt"),
                                                "dpo_nocpt", "dpo", self.p.dpo_steps, **self.dpo_settings())
        figure5 = self._timed("figure 5 (per-position loss)", self.figure5, expanded)
        evaluation = self.evaluate(self.eval_names())
        result = {"run_dir": str(self.paths.root), "preset": self.name, "train": train, "datasets": stats,
                  "training": training, "figure5": figure5, **evaluation, "timings_s": self.timings}
        atomic_write_json(self.paths.root / "run_summary.json",
                          {k: v for k, v in result.items() if k not in ("train", "datasets")})
        return result


def run_pipeline(preset: str, out: str | Path | None = None, workers: int = 2,
                 show_progress: bool = True, ablation: bool = False) -> dict[str, Any]:
    return Pipeline(preset, Path(out or Path("runs") / preset), workers, show_progress, ablation).run()
