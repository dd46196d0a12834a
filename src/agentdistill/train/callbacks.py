"""Progress and loss logging for TRL trainers: one live line for people, one JSONL row per log for plots.

The Trainer's own tqdm bar shows steps but not tokens/s, and its `log_history` lives inside checkpoints, so a
resumed run would need checkpoint archaeology to plot a loss curve; `train_log.jsonl` is the plain record instead.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

LOG_NAME = "train_log.jsonl"


def read_log(path: Path) -> list[dict[str, Any]]:
    """Rows of a train_log.jsonl; a torn last line (killed writer) is skipped."""
    rows: list[dict[str, Any]] = []
    if not path.exists():
        return rows
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


class ProgressLogCallback(TrainerCallback):
    """Prints `step/total loss tok/s` and appends {step, loss, tokens_seen, tokens_per_s, ...} to a JSONL log.

    On resume the log is cut back to the checkpoint's step, so steps replayed after an interrupt appear once.
    Tokens/s is measured between consecutive logs from `state.num_input_tokens_seen` (non-padding tokens).
    """

    def __init__(self, log_path: Path, show: bool = True) -> None:
        self.log_path = Path(log_path)
        self.show = show
        self.console = Console(stderr=True)
        self.session_start = 0.0
        self.session_tokens_start = 0
        self._last_time = 0.0
        self._last_tokens = 0

    # ------------------------------------------------------------------ hooks
    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any) -> None:
        if state.is_world_process_zero:
            kept = [r for r in read_log(self.log_path) if r.get("step", 0) <= state.global_step]
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log_path.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
        self.session_start = self._last_time = time.perf_counter()
        self.session_tokens_start = self._last_tokens = state.num_input_tokens_seen

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kw: Any) -> None:
        if not logs or not state.is_world_process_zero:
            return
        now, tokens = time.perf_counter(), state.num_input_tokens_seen
        rate = (tokens - self._last_tokens) / max(now - self._last_time, 1e-9)
        self._last_time, self._last_tokens = now, tokens
        row: dict[str, Any] = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4),
                               "tokens_seen": tokens, "tokens_per_s": round(rate, 1)}
        for key in ("loss", "eval_loss", "learning_rate", "grad_norm", "rewards/accuracies", "rewards/margins"):
            if key in logs:
                row[key] = float(logs[key])
        if "loss" not in row and "eval_loss" not in row:
            return  # the end-of-training summary log (train_loss, train_runtime): not a point on the curve
        with self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
        if self.show:
            loss = f"loss {row['loss']:.4f}" if "loss" in row else f"eval_loss {row['eval_loss']:.4f}"
            self.console.print(f"step {state.global_step}/{state.max_steps}  {loss}  {rate:,.0f} tok/s", highlight=False)

    # --------------------------------------------------------------- summary
    def session_rate(self, state: TrainerState) -> tuple[float, int]:
        """(wall seconds, tokens) of this process's session only: a resumed run reports its own speed."""
        return time.perf_counter() - self.session_start, state.num_input_tokens_seen - self.session_tokens_start
