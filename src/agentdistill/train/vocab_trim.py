"""Trim a byte-level BPE checkpoint's vocabulary to the tokens a run's corpora use, so CPU training is faster.

SmolLM2-135M spends 49k x 576 parameters (a third of the model) on its embedding / LM head, and the LM head's
softmax over 49k rows dominates a CPU training step on short records. Our corpora use a few thousand of them.

The trimmed tokenizer keeps:
- the 256 byte-level symbols, so any other text still tokenizes (and round-trips), just in more pieces;
- every added / special token (`<|im_start|>`, `<|im_end|>`, `<|endoftext|>`, `<tool_call>`, ...);
- every token the corpora produce, plus its merge ancestors (token `ab` made by merge `a + b` keeps `a` and `b`,
  recursively, over every merge that produces a kept token).

Merges kept are those whose two parts and result are all kept, in the original rank order. Why the corpus then
tokenizes identically: BPE repeatedly applies the lowest-rank merge applicable to the current symbols. Every merge
applied on corpus text produces an intermediate that ends up inside a final token, so it is an ancestor of a kept
token and kept. The trimmed merges are a subset with the same relative order, so at every step the original's
choice is still available and still the lowest-rank applicable one: by induction both apply the same merges.

Ids are renumbered densely in the original order (new id i is old id `new_to_old[i]`); the embedding and LM head
keep exactly those rows, so a trimmed model computes the original's logits restricted to the kept tokens.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import torch
from tokenizers import pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from agentdistill.errors import UserError, first_line
from agentdistill.fileio import read_jsonl
from agentdistill.train.models import check_checkpoint_dir, load_checkpoint, write_dir_atomically

STATS_FILE = "vocab_trim.json"
ENCODE_BATCH = 256
CONFIG_ID_FIELDS = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")


# ------------------------------------------------------------------------------------------------ corpus texts
def corpus_texts(paths: list[Path], tokenizer: PreTrainedTokenizerBase) -> Iterator[str]:
    """Every string the trainers (and serving) will tokenize from these JSONL datasets.

    Chat records are rendered with the tokenizer's chat template, exactly as SFT/DPO render them; message contents
    are also yielded on their own, for anything that tokenizes them raw. CPT records yield context and text
    separately because `cpt_example` tokenizes them separately.
    """
    for path in _existing(paths):
        for record in read_jsonl(path):
            yield from record_texts(record, tokenizer)


def _existing(paths: Iterable[Path]) -> list[Path]:
    """All corpus files, or one UserError naming every missing one (checked before any slow work)."""
    paths = [Path(p) for p in paths]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise UserError(f"corpus file not found: {', '.join(missing)}")
    return paths


def record_texts(record: dict[str, Any], tokenizer: PreTrainedTokenizerBase) -> Iterator[str]:
    """The texts of one record: `messages` (SFT), `prompt`/`chosen`/`rejected`/`completion` (DPO), `text` (CPT)."""
    tools = record.get("tools") or None
    if isinstance(record.get("messages"), list):
        yield _render(tokenizer, record["messages"], tools)
        yield from _contents(record["messages"])
    if "prompt" in record:
        yield from _preference_texts(record, tokenizer, tools)
    for key in ("context", "text"):
        if isinstance(record.get(key), str) and record[key]:
            yield record[key]


def _preference_texts(record: dict[str, Any], tokenizer: PreTrainedTokenizerBase, tools: Any) -> Iterator[str]:
    """Prompt alone, prompt + each answer, and each answer as TRL cuts it off the rendered whole."""
    prompt = record["prompt"]
    answers = [record[k] for k in ("chosen", "rejected", "completion") if k in record]
    if isinstance(prompt, str):  # plain-text preference records
        yield prompt
        for answer in answers:
            if isinstance(answer, str):
                yield from (answer, prompt + answer)
        return
    if not isinstance(prompt, list) or not prompt:
        return
    head = _render(tokenizer, prompt, tools, add_generation_prompt=prompt[-1].get("role") in ("user", "tool"))
    yield head
    yield from _contents(prompt)
    for answer in answers:
        if isinstance(answer, list):
            whole = _render(tokenizer, prompt + answer, tools)
            cut = len(os.path.commonprefix([head, whole]))
            yield from (whole, whole[cut:])
            yield from _contents(answer)


def _render(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, Any]], tools: Any,
            add_generation_prompt: bool = False) -> str:
    try:
        return tokenizer.apply_chat_template(messages, tools=tools, tokenize=False,
                                             add_generation_prompt=add_generation_prompt)
    except Exception as exc:  # jinja raises many types for a record the template cannot render
        raise UserError(f"cannot render a corpus record with the chat template ({first_line(exc)})") from None


def _contents(messages: list[dict[str, Any]]) -> Iterator[str]:
    """Message contents and tool-call arguments as plain strings (system prompts, JSON inputs, outputs)."""
    for message in messages:
        if isinstance(message, dict) and isinstance(message.get("content"), str) and message["content"]:
            yield message["content"]
        for call in (message.get("tool_calls") or []) if isinstance(message, dict) else []:
            args = (call.get("function") or call).get("arguments") if isinstance(call, dict) else None
            if isinstance(args, str) and args:
                yield args


# ---------------------------------------------------------------------------------------------- kept token ids
def tokenizer_json(tokenizer: PreTrainedTokenizerBase) -> dict[str, Any]:
    """The fast tokenizer's full `tokenizer.json` as a dict; only a byte-level BPE can be trimmed safely."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise UserError("vocabulary trimming needs a fast tokenizer (tokenizer.json)")
    data = json.loads(backend.to_str())
    model = data.get("model") or {}
    if model.get("type") != "BPE":
        raise UserError(f"vocabulary trimming needs a BPE tokenizer, this one is {model.get('type')!r}")
    if not _has_byte_level(data.get("pre_tokenizer")):
        raise UserError("vocabulary trimming needs a byte-level BPE (ByteLevel pre-tokenizer): "
                        "without the byte alphabet, text outside the corpus would not tokenize")
    return data


def _has_byte_level(pre: Any) -> bool:
    if not isinstance(pre, dict):
        return False
    return pre.get("type") == "ByteLevel" or any(_has_byte_level(p) for p in pre.get("pretokenizers") or [])


def merge_pairs(model: dict[str, Any]) -> list[tuple[str, str]]:
    """Merges as (left, right) pairs, from either serialisation (`"a b"` strings or `["a", "b"]` lists)."""
    return [tuple(m.split(" ", 1)) if isinstance(m, str) else (m[0], m[1]) for m in model.get("merges") or []]


def merge_result(model: dict[str, Any], left: str, right: str) -> str:
    """The token a merge produces (the right part loses a continuing-subword prefix, as in `tokenizers`)."""
    prefix = model.get("continuing_subword_prefix") or ""
    return left + (right[len(prefix):] if prefix else right)


def corpus_token_ids(tokenizer: PreTrainedTokenizerBase, texts: Iterable[str]) -> tuple[set[int], int]:
    """Distinct ids and total token count of the texts, tokenized without added special tokens like cpt_example."""
    backend = tokenizer.backend_tokenizer
    seen: set[int] = set()
    total = 0
    batch: list[str] = []

    def flush() -> None:
        nonlocal total
        for enc in backend.encode_batch(batch, add_special_tokens=False):
            seen.update(enc.ids)
            total += len(enc.ids)
        batch.clear()

    for text in texts:
        batch.append(text)
        if len(batch) >= ENCODE_BATCH:
            flush()
    flush()
    return seen, total


def always_kept_ids(tokenizer: PreTrainedTokenizerBase, data: dict[str, Any]) -> set[int]:
    """Byte alphabet, added tokens, the named special tokens and unk: needed whatever the corpus."""
    vocab: dict[str, int] = data["model"]["vocab"]
    ids = {vocab[ch] for ch in pre_tokenizers.ByteLevel.alphabet() if ch in vocab}
    ids.update(t["id"] for t in data.get("added_tokens") or [])
    ids.update(i for i in tokenizer.all_special_ids if i is not None)
    unk = data["model"].get("unk_token")
    if unk in vocab:
        ids.add(vocab[unk])
    return ids


def with_ancestors(data: dict[str, Any], ids: set[int]) -> set[int]:
    """Close the set under merge ancestry: for every merge producing a kept token, keep both parts."""
    model = data["model"]
    vocab: dict[str, int] = model["vocab"]
    parts: dict[str, list[tuple[str, str]]] = {}
    for left, right in merge_pairs(model):
        parts.setdefault(merge_result(model, left, right), []).append((left, right))
    id_to_token = {i: t for t, i in vocab.items()}
    kept = set(ids)
    todo = [id_to_token[i] for i in ids if i in id_to_token]
    while todo:
        for pair in parts.get(todo.pop(), ()):
            for token in pair:
                if token in vocab and vocab[token] not in kept:
                    kept.add(vocab[token])
                    todo.append(token)
    return kept


def kept_token_ids(tokenizer: PreTrainedTokenizerBase, texts: Iterable[str]) -> list[int]:
    """Sorted old ids to keep so that `texts` tokenize identically and any other text still tokenizes."""
    data = tokenizer_json(tokenizer)
    used, _ = corpus_token_ids(tokenizer, texts)
    return sorted(with_ancestors(data, used | always_kept_ids(tokenizer, data)))


# ------------------------------------------------------------------------------------------ trimmed tokenizer
def trimmed_tokenizer_json(data: dict[str, Any], new_id: dict[int, int]) -> dict[str, Any]:
    """`tokenizer.json` with only the kept tokens and merges, every token id inside it renumbered."""
    data = json.loads(json.dumps(data))  # deep copy
    model = data["model"]
    kept_tokens = {t for t, i in model["vocab"].items() if i in new_id}
    model["vocab"] = {t: new_id[i] for t, i in model["vocab"].items() if i in new_id}
    pairs = merge_pairs(model)
    strings = bool(model.get("merges")) and isinstance(model["merges"][0], str)
    model["merges"] = [f"{a} {b}" if strings else [a, b] for a, b in pairs
                       if a in kept_tokens and b in kept_tokens and merge_result(model, a, b) in kept_tokens]
    data["added_tokens"] = [{**t, "id": new_id[t["id"]]} for t in data.get("added_tokens") or [] if t["id"] in new_id]
    data["post_processor"] = _remap_processor(data.get("post_processor"), new_id)
    if isinstance(data.get("padding"), dict) and data["padding"].get("pad_id") is not None:
        data["padding"]["pad_id"] = _remap(data["padding"]["pad_id"], new_id, "padding pad_id")
    return data


def _remap_processor(proc: Any, new_id: dict[int, int]) -> Any:
    """Token ids inside post-processors: TemplateProcessing special tokens, Bert/Roberta cls/sep, Sequence."""
    if not isinstance(proc, dict):
        return proc
    proc = dict(proc)
    if proc.get("type") == "Sequence":
        proc["processors"] = [_remap_processor(p, new_id) for p in proc.get("processors") or []]
    for spec in (proc.get("special_tokens") or {}).values():
        spec["ids"] = [_remap(i, new_id, f"post-processor token {spec.get('id')}") for i in spec.get("ids") or []]
    for key in ("cls", "sep"):
        if isinstance(proc.get(key), list) and len(proc[key]) == 2:
            proc[key] = [proc[key][0], _remap(proc[key][1], new_id, f"post-processor {key}")]
    return proc


def _remap(old: int, new_id: dict[int, int], what: str) -> int:
    if old not in new_id:
        raise UserError(f"{what} id {old} is not a token of the tokenizer, so it cannot be kept")
    return new_id[old]


def _remap_config_ids(config: Any, new_id: dict[int, int], what: str) -> None:
    """bos/eos/pad (eos may be a list) of a model or generation config, in new ids."""
    for field in CONFIG_ID_FIELDS:
        value = getattr(config, field, None)
        if isinstance(value, list):
            setattr(config, field, [_remap(v, new_id, f"{what} {field}") for v in value])
        elif value is not None:
            setattr(config, field, _remap(value, new_id, f"{what} {field}"))


def _config_token_ids(model: torch.nn.Module, data: dict[str, Any]) -> set[int]:
    """Token ids the model and generation configs name, kept even if no text uses them; each must be a token."""
    ids: set[int] = set()
    for config in (model.config, getattr(model, "generation_config", None)):
        for field in CONFIG_ID_FIELDS:
            value = getattr(config, field, None) if config is not None else None
            ids.update(v for v in (value if isinstance(value, list) else [value]) if isinstance(v, int))
    tokens = set(data["model"]["vocab"].values()) | {t["id"] for t in data.get("added_tokens") or []}
    unknown = sorted(ids - tokens)
    if unknown:
        raise UserError(f"the model config names token ids {unknown} that the tokenizer does not have")
    return ids


def _patch_tokenizer_files(folder: Path, trimmed: dict[str, Any], new_id: dict[int, int]) -> None:
    """Overwrite the saved tokenizer.json; renumber `added_tokens_decoder` if this transformers writes one."""
    (folder / "tokenizer.json").write_text(json.dumps(trimmed, ensure_ascii=False), encoding="utf-8")
    config_path = folder / "tokenizer_config.json"
    if config_path.is_file():
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if isinstance(config.get("added_tokens_decoder"), dict):
            config["added_tokens_decoder"] = {str(new_id[int(k)]): v for k, v in config["added_tokens_decoder"].items()
                                              if int(k) in new_id}
            config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")


# ----------------------------------------------------------------------------------------------- trimmed model
def trim_model(model: torch.nn.Module, kept: list[int], new_id: dict[int, int]) -> torch.nn.Module:
    """Keep only the kept rows of the input embedding and LM head (tied or not); fix vocab size and token ids."""
    emb = model.get_input_embeddings()
    head = model.get_output_embeddings()
    rows = emb.weight.shape[0]
    if kept[-1] >= rows:
        raise UserError(f"the tokenizer has token id {kept[-1]} but the model only {rows} embedding rows")
    tied = head is not None and head.weight.data_ptr() == emb.weight.data_ptr()
    index = torch.tensor(kept, dtype=torch.long)
    with torch.no_grad():
        emb.weight = torch.nn.Parameter(emb.weight[index].clone())
        emb.num_embeddings = len(kept)
        if getattr(emb, "padding_idx", None) is not None:
            emb.padding_idx = new_id.get(emb.padding_idx)
        if head is not None:
            head.weight = emb.weight if tied else torch.nn.Parameter(head.weight[index].clone())
            if getattr(head, "bias", None) is not None:
                head.bias = torch.nn.Parameter(head.bias[index].clone())
            head.out_features = len(kept)
    model.config.get_text_config().vocab_size = len(kept)
    model.config.vocab_size = len(kept)
    _remap_config_ids(model.config, new_id, "config")
    if getattr(model, "generation_config", None) is not None:
        _remap_config_ids(model.generation_config, new_id, "generation_config")
    return model


# ------------------------------------------------------------------------------------------------------ output
def _check_model_dir(model_dir: Path) -> None:
    check_checkpoint_dir(model_dir)
    if not (model_dir / "tokenizer.json").is_file():
        raise UserError(f"vocabulary trimming needs a fast tokenizer: {model_dir} has no tokenizer.json")


def trim_checkpoint(model_dir: Path, corpus_files: list[Path], out_dir: Path,
                    extra_texts: Iterable[str] = ()) -> dict[str, Any]:
    """Write a copy of `model_dir` whose vocabulary holds only what the corpora (and `extra_texts`) need.

    The output is an ordinary HF checkpoint (plain architecture, tokenizer.json, chat template kept) plus
    `vocab_trim.json`: these stats and `new_to_old`, the old id of every new id. Returns the stats.
    """
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    _check_model_dir(model_dir)
    corpus_files = _existing(corpus_files)
    model, tokenizer = load_checkpoint(model_dir)
    data = tokenizer_json(tokenizer)
    texts = itertools.chain(corpus_texts(corpus_files, tokenizer), extra_texts)
    used, total = corpus_token_ids(tokenizer, texts)
    forced = always_kept_ids(tokenizer, data) | _config_token_ids(model, data)
    kept = sorted(with_ancestors(data, used | forced))
    new_id = {old: new for new, old in enumerate(kept)}
    original_rows = model.get_input_embeddings().weight.shape[0]
    trim_model(model, kept, new_id)
    trimmed = trimmed_tokenizer_json(data, new_id)
    stats = {
        "model_dir": str(model_dir),
        "corpus_files": [str(p) for p in corpus_files],
        "corpus_tokens": total,
        "corpus_distinct_tokens": len(used),
        "original_vocab_size": len(tokenizer),
        "original_embedding_rows": original_rows,
        "kept_vocab_size": len(kept),
        "original_merges": len(data["model"].get("merges") or []),
        "kept_merges": len(trimmed["model"]["merges"]),
    }

    def write(folder: Path) -> None:
        model.save_pretrained(folder, safe_serialization=True)
        tokenizer.save_pretrained(folder)
        _patch_tokenizer_files(folder, trimmed, new_id)
        _check_trimmed_tokenizer(folder, len(kept))
        (folder / STATS_FILE).write_text(json.dumps({**stats, "new_to_old": kept}, indent=1) + "\n",
                                         encoding="utf-8")

    write_dir_atomically(out_dir, write)
    return stats


def _check_trimmed_tokenizer(folder: Path, size: int) -> None:
    """Reload what was written: a tokenizer that fails to load or has the wrong size must not be swapped in."""
    try:
        loaded = AutoTokenizer.from_pretrained(folder)
    except Exception as exc:
        raise UserError(f"the trimmed tokenizer does not load ({first_line(exc)})") from None
    if len(loaded) != size:
        raise UserError(f"the trimmed tokenizer has {len(loaded)} tokens, expected {size}")


def load_trim_stats(checkpoint: Path) -> dict[str, Any] | None:
    """The `vocab_trim.json` of a trimmed checkpoint (None for an untrimmed one), e.g. for a benchmark report."""
    path = Path(checkpoint) / STATS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
