"""Serving profiles: each stage-two optimization as vLLM options, so a benchmark can stack them one at a time.

A profile is a name plus what it changes in `ServeConfig`: the speculative config vLLM takes as JSON, and
which checkpoint is served (a W8A8 checkpoint is just another model directory; vLLM reads its
`quantization_config`). Written as `NAME[:key=value,...]`:
  plain                              the student as trained
  ngram[:k=4,min=2,max=4]            prompt-lookup speculation (training-free)
  suffix[:k=8]                       SuffixDecoding (training-free; needs arctic-inference)
  eagle3:DIR[,k=3]                   a trained EAGLE-3 head in the speculators format
  draft:DIR[,k=3]                    a small draft model sharing the student's vocabulary
  and any of them with `+quantized=DIR` to serve a W8A8 checkpoint instead of the bf16 one, and
  `schedule=1-1:5;2-8:3;9-256:1` for vLLM's draft length by batch size.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agentdistill.errors import UserError

METHODS = {"ngram": "ngram", "suffix": "suffix", "eagle3": "eagle3", "draft": "draft_model"}
DEFAULT_K = {"ngram": 4, "suffix": 8, "eagle3": 3, "draft": 3}


@dataclass(frozen=True)
class ServingProfile:
    """What one profile changes in the served configuration."""

    name: str
    speculative_config: dict[str, Any] | None = None
    model: Path | None = None  # a quantized checkpoint served instead of the bf16 student
    options: dict[str, str] = field(default_factory=dict)

    @property
    def method(self) -> str:
        return self.name.split(":")[0].split("+")[0]


def parse_schedule(text: str) -> list[tuple[int, int, int]]:
    """`1-1:5;2-8:3` -> [(1, 1, 5), (2, 8, 3)]: vLLM's num_speculative_tokens_per_batch_size."""
    out = []
    for part in filter(None, text.split(";")):
        try:
            span, k = part.split(":")
            lo, hi = span.split("-")
            out.append((int(lo), int(hi), int(k)))
        except ValueError:
            raise UserError(f"bad draft-length schedule {part!r}: write batch ranges as LO-HI:K;LO-HI:K") from None
    return out


def _options(text: str) -> tuple[str | None, dict[str, str]]:
    """`DIR,k=3` or `k=3,min=2` -> (DIR or None, {"k": "3", ...})."""
    path, opts = None, {}
    for item in filter(None, text.split(",")):
        if "=" in item:
            key, value = item.split("=", 1)
            opts[key.strip()] = value.strip()
        elif path is None:
            path = item.strip()
        else:
            raise UserError(f"bad profile option {item!r}: use key=value")
    return path, opts


def _int(opts: dict[str, str], key: str, default: int) -> int:
    try:
        value = int(opts.get(key, default))
    except ValueError:
        raise UserError(f"profile option {key}={opts[key]!r} is not a whole number") from None
    if value < 1:
        raise UserError(f"profile option {key} must be at least 1")
    return value


def check_drafter(drafter: Path, method: str, target: Path | None) -> None:
    """One line for a drafter that is missing, of the wrong kind, or made for another model (vocabulary, width)."""
    config_path = drafter / "config.json"
    if not config_path.is_file():
        raise UserError(f"drafter {drafter} is not a checkpoint: no config.json")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserError(f"drafter {drafter} has a corrupt config.json ({exc})") from None
    is_speculators = "speculators_model_type" in config
    if method == "eagle3" and not is_speculators:
        raise UserError(f"{drafter} is not an EAGLE-3 head in the speculators format (no speculators_model_type)")
    if method == "draft" and is_speculators:
        raise UserError(f"{drafter} is an EAGLE-3 head: serve it as eagle3:{drafter}")
    if target is None or not (target / "config.json").is_file():
        return
    target_config = json.loads((target / "config.json").read_text(encoding="utf-8"))
    inner = config.get("transformer_layer_config", config)
    for key in ("vocab_size", "hidden_size") if method == "eagle3" else ("vocab_size",):
        mine, theirs = inner.get(key), target_config.get(key)
        if mine is not None and theirs is not None and mine != theirs:
            raise UserError(f"drafter {drafter} was made for another model: its {key} is {mine}, the served "
                            f"model's is {theirs}")


def parse_profile(text: str, target: Path | None = None) -> ServingProfile:
    """Parse one profile string (module docstring); checks drafters and quantized checkpoints on disk."""
    text = text.strip()
    head, _, quantized = text.partition("+quantized=")
    method, _, rest = head.partition(":")
    model = None
    if quantized:
        model = Path(quantized)
        if not (model / "config.json").is_file():
            raise UserError(f"quantized checkpoint {model} does not exist (agentdistill optimize quantize RUN)")
        if "quantization_config" not in json.loads((model / "config.json").read_text(encoding="utf-8")):
            raise UserError(f"{model} is not a quantized checkpoint: its config.json has no quantization_config")
    if method == "plain":
        return ServingProfile(text, None, model)
    if method not in METHODS:
        raise UserError(f"unknown serving profile {method!r}: use plain, {', '.join(METHODS)}")
    path, opts = _options(rest)
    k = _int(opts, "k", DEFAULT_K[method])
    spec: dict[str, Any] = {"method": METHODS[method], "num_speculative_tokens": k}
    if method == "ngram":
        spec["prompt_lookup_min"] = _int(opts, "min", 2)
        spec["prompt_lookup_max"] = _int(opts, "max", k)
    if method == "suffix" and importlib.util.find_spec("arctic_inference") is None:
        raise UserError("suffix decoding needs arctic-inference: bash scripts/install.sh suffix")
    if method in ("eagle3", "draft"):
        if not path:
            raise UserError(f"{method} needs a drafter directory: {method}:DIR")
        check_drafter(Path(path), method, model or target)
        spec["model"] = str(Path(path))
    elif path:
        raise UserError(f"{method} takes no directory (got {path!r})")
    if "schedule" in opts:
        spec["num_speculative_tokens_per_batch_size"] = parse_schedule(opts["schedule"])
    unknown = set(opts) - {"k", "min", "max", "schedule"}
    if unknown:
        raise UserError(f"unknown profile option(s) {', '.join(sorted(unknown))}: use k, min, max, schedule")
    return ServingProfile(text, spec, model, opts)
