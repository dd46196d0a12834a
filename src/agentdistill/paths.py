"""Where each stage reads and writes inside a run directory (shared/DESIGN.md's layout).

runs/<name>/
  config.yaml            resolved config of the whole run
  simulate.yaml          the simulation's settings (resume guard)
  traces/                episodes-NNN.jsonl + prompts.json (simulate, verify)
  datasets/
    cpt/{train,val}.jsonl   {"context", "text", "source": domain|public, "kind"}; context is left out of the loss
    sft/{train,val}.jsonl   {"messages": [... system, user, (assistant tool_calls, tool)*, assistant target],
                             "agent", "episode_id", "target_source": teacher|refined}
                             executor targets: {"role": "assistant", "content": "", "tool_calls": [{"id", "type":
                             "function", "function": {"name", "arguments": <JSON string, sort_keys>}}]} or "DONE"
    dpo/{train,val}.jsonl   {"prompt": [messages], "chosen": [assistant msg], "rejected": [assistant msg],
                             "agent", "source": judge|mutator:<name>|curated, "episode_id"}
    ppl/{domain,public}.jsonl  {"text"} held-out perplexity sets
    stats.json
  models/
    tokenizer/           tokenizer.json + tokenizer_config.json with the chat template (train/chat.py)
    base/ cpt/ sft/ dpo/ HF checkpoints (config.json, model.safetensors, tokenizer files); merged, no adapters
    sft_nocpt/ dpo_nocpt/  the SFT+DPO-only ablation
  eval/                  one JSON per measurement
  report/
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def traces(self) -> Path:
        return self.root / "traces"

    @property
    def datasets(self) -> Path:
        return self.root / "datasets"

    def dataset(self, kind: str, split: str = "train") -> Path:
        return self.datasets / kind / f"{split}.jsonl"

    @property
    def models(self) -> Path:
        return self.root / "models"

    def model(self, stage: str) -> Path:
        return self.models / stage

    @property
    def eval(self) -> Path:
        return self.root / "eval"
