"""`agentdistill train drafter` and `optimize check-drafter`: a small draft model distilled from the student, and
the alarm that says when it stopped matching the traffic.

The draft model is the student cut to its first N decoder layers, keeping its embeddings, final norm, head and
tokenizer (vLLM's `draft_model` method needs the target's vocabulary), then fully fine-tuned by our TRL SFT stage
on one data variant (optimize/drafter_data.py). Next to the weights, `drafter.json` records what it was trained on
and its replayed acceptance (optimize/acceptance.py) on held-out calls of the same run: the value the drift alarm
compares later traffic against. `--kind eagle3` trains an EAGLE-3 head on the student's hidden states instead
(optimize/eagle3.py), from the same data variants, with the same manifest and alarm.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from agentdistill.errors import UserError
from agentdistill.fileio import atomic_write_json
from agentdistill.optimize.acceptance import replay
from agentdistill.optimize.drafter_data import SOURCES, agent_calls, drafter_records, model_tag, regenerate, student_answers
from agentdistill.paths import RunPaths

# each drafter kind and the serving-profile method that loads it (serve/profiles.py)
PROFILE_METHODS = {"draft-model": "draft", "eagle3": "eagle3"}
KINDS = tuple(PROFILE_METHODS)
MANIFEST = "drafter.json"


def truncate_student(student: Path, out_dir: Path, layers: int) -> Path:
    """The student's first `layers` decoder layers with its embeddings, final norm, head and tokenizer."""
    from agentdistill.train.models import load_checkpoint, save_checkpoint

    if (out_dir / "config.json").is_file():
        return out_dir
    model, tokenizer = load_checkpoint(student)
    total = model.config.num_hidden_layers
    if not 1 <= layers < total:
        raise UserError(f"--layers must be between 1 and {total - 1} (the student has {total} layers)")
    model.model.layers = model.model.layers[:layers]
    model.config.num_hidden_layers = layers
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = model.config.layer_types[:layers]
    return save_checkpoint(model, tokenizer, out_dir)


def drafter_dir(run_dir: Path, kind: str, source: str, layers: int) -> Path:
    return RunPaths(run_dir).models / f"drafter-{kind}-{source}-L{layers}"


def train_drafter(run_dir: Path, *, kind: str = "draft-model", source: str = "synthetic", layers: int = 2,
                  student: Path | None = None, samples: int = 600, val_samples: int = 48, replay_calls: int = 400,
                  k: int = 3,
                  epochs: float = 2.0, learning_rate: float = 5e-4, batch: int = 8, out: Path | None = None,
                  seed: int = 0, show_progress: bool = True, serve: dict[str, Any] | None = None) -> dict[str, Any]:
    """Train one drafter and write DIR/drafter.json; a finished drafter with the same settings is a no-op.
    `serve`: ServeConfig fields for the vLLM session that has the student answer the calls."""
    from agentdistill.data.jsonl import write_jsonl
    from agentdistill.train.models import check_checkpoint_dir
    from agentdistill.train.trainers import StageConfig, release_memory, train_stage

    run_dir = Path(run_dir)
    if kind not in KINDS:
        raise UserError(f"unknown drafter kind {kind!r}: use {', '.join(KINDS)}")
    if source not in SOURCES:
        raise UserError(f"unknown drafter data {source!r}: use {', '.join(SOURCES)}")
    student = Path(student) if student else RunPaths(run_dir).model("dpo")
    check_checkpoint_dir(student)
    out = Path(out) if out else drafter_dir(run_dir, kind, source, layers)
    t0 = time.monotonic()
    # held-out calls answered by the student come along in the same vLLM session: the acceptance baseline
    answered = student_answers(run_dir, student, {"val": val_samples,
                                                  **({"train": samples} if source != "external" else {})}, seed,
                               **(serve or {}))
    records = drafter_records(source, answered.get("train", []), samples, seed)
    data_file = RunPaths(run_dir).datasets / "drafter" / f"{out.name}.jsonl"
    write_jsonl(data_file, records)
    if kind == "eagle3":
        from agentdistill.optimize.eagle3 import train_head

        summary = train_head(student, records, out, layers=layers, k=k, epochs=epochs, learning_rate=learning_rate,
                             seed=seed, show_progress=show_progress)
    else:
        base = truncate_student(student, RunPaths(run_dir).models / f"drafter-base-L{layers}-{model_tag(student)}",
                                layers)
        summary = train_stage(StageConfig(
            stage="sft", method="full", model_in=base, out_dir=out, train_file=data_file,
            learning_rate=learning_rate, num_train_epochs=epochs, per_device_train_batch_size=batch,
            group_by_length=True, max_length=2048, seed=seed, save_steps=50, show_progress=show_progress))
    release_memory()
    # recorded answers cost one drafter forward each: replay many, so a later check is not read through noise
    held_out = agent_calls(RunPaths(run_dir).dataset("sft", "val"), replay_calls, seed)
    manifest = {
        "kind": kind, "data": source, "layers": layers, "k": k, "student": str(student),
        "student_tag": model_tag(student), "run": str(run_dir), "records": len(records),
        "train_loss_first": summary.get("train_loss_first"), "train_loss_last": summary.get("train_loss_last"),
        "train_seconds": summary.get("wall_s"), "tokens_per_s": summary.get("tokens_per_s"),
        "baseline": {"recorded": replay_dir(out, held_out, k, kind, student),
                     "student": replay_dir(out, answered["val"], k, kind, student)},
        "seconds": round(time.monotonic() - t0, 1),
    }
    atomic_write_json(out / MANIFEST, manifest)
    return {"drafter": str(out), **manifest}


def replay_dir(drafter: Path, records: list[dict[str, Any]], k: int, kind: str, student: Path) -> dict[str, Any]:
    """Replayed acceptance of a drafter directory; a head also needs the student whose states it reads."""
    from agentdistill.train.models import load_checkpoint

    if kind == "eagle3":
        from agentdistill.optimize.eagle3 import load_head, replay_head

        verifier, tokenizer = load_checkpoint(student)
        return replay_head(load_head(drafter), verifier, tokenizer, records, k)
    model, tokenizer = load_checkpoint(drafter)
    return replay(model, tokenizer, records, k)


def read_manifest(drafter: Path) -> dict[str, Any]:
    path = Path(drafter) / MANIFEST
    if not path.is_file():
        raise UserError(f"{drafter} is not a drafter trained by 'agentdistill train drafter' (no {MANIFEST})")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserError(f"{path} is corrupt ({exc})") from None


def check_drafter(drafter: Path, traces: Path, *, target: Path | None = None, calls: int = 400,
                  tolerance: float = 0.1, seed: int = 0, out: Path | None = None,
                  serve: dict[str, Any] | None = None) -> dict[str, Any]:
    """Replay `traces`' held-out calls through the drafter; the alarm fires when MGL fell more than `tolerance`
    (a share) below the value recorded at training time.

    Without `target` the calls' recorded answers are replayed (what the served model said) and compared with the
    recorded baseline; with `target` (a quantized or fine-tuned student) its own greedy answers are, compared with
    the student's own at training time.
    """
    from agentdistill.serve.profiles import check_drafter as check_compatible

    drafter, traces = Path(drafter), Path(traces)
    manifest = read_manifest(drafter)
    if not 0 < tolerance < 1:
        raise UserError("--tolerance is a share between 0 and 1 (0.1: alarm below 90% of the recorded MGL)")
    kind = str(manifest.get("kind", "draft-model"))
    if target is not None:
        check_compatible(drafter, PROFILE_METHODS.get(kind, "draft"), Path(target))
    k = int(manifest["k"])
    records = agent_calls(RunPaths(traces).dataset("sft", "val"), calls, seed)
    if target is not None:
        records = regenerate(records, Path(target), **(serve or {}))
    # a head reads the served model's states: the target's when one is named, else the student it was trained on
    now = replay_dir(drafter, records, k, kind, Path(target) if target is not None else Path(manifest["student"]))
    reference = manifest["baseline"]["student" if target is not None else "recorded"]
    base_mgl, now_mgl = reference["mean_acceptance_length"], now["mean_acceptance_length"]
    ratio = round(now_mgl / base_mgl, 3) if base_mgl and now_mgl else None
    result = {"drafter": str(drafter), "traces": str(traces), "target": str(target) if target else None,
              "compared_with": "student answers" if target is not None else "recorded answers",
              "recorded_mgl": base_mgl, "mgl": now_mgl, "mgl_interval_95": now.get("interval_95"), "ratio": ratio,
              "accepted_per_draft_ratio": round((now_mgl - 1) / (base_mgl - 1), 3)
              if base_mgl and now_mgl and base_mgl > 1 else None, "tolerance": tolerance,
              "alarm": ratio is not None and ratio < 1 - tolerance, "now": now, "recorded": reference}
    atomic_write_json(out or traces / "optimize" / f"check-{drafter.name}.json", result)
    return result
