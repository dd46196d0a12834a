"""Real tiny training runs of every stage (no mocks): loss goes down, masks hit the right tokens, resume works."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch
from cli_runner import run_cli

from agentdistill.errors import UserError
from agentdistill.train.chat import BOS, CHAT_TEMPLATE, IM_END, IM_START, PAD, TOOL_CALL_END, TOOL_CALL_START
from agentdistill.train.position_loss import per_position_loss
from agentdistill.train.trainers import StageConfig, checkpoint_dir, make_trainer, train_stage

TOPICS = {
    "warranty": "covers the engine and the gearbox for three years",
    "financing": "offers a loan at four percent for five years",
    "trade": "values the old car after an inspection by the staff",
    "service": "books an oil change on any weekday morning",
    "recall": "fixes the airbag at no cost for every owner",
    "delivery": "brings the new car to the home of the buyer",
}


# ------------------------------------------------------------------------------------------- data
def cpt_records(n: int, seed: int = 0) -> list[dict]:
    """The context names the topic and the document opens with it: only the context makes position 0 predictable."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        topic = rng.choice(list(TOPICS))
        text = f"{topic} policy: the dealer {TOPICS[topic]}. " * 2 + f"ask the desk about {topic} today."
        out.append({"context": f"section {topic}\n", "text": text, "source": "domain", "kind": "policy"})
    return out


def sft_records(n: int) -> list[dict]:
    out = []
    for i in range(n):
        topic = list(TOPICS)[i % len(TOPICS)]
        system = {"role": "system", "content": "You are the executor. Call tools, then say DONE."}
        user = {"role": "user", "content": f"task: look up {topic} for customer {i % 5}"}
        call = {"role": "assistant", "content": "", "tool_calls": [{"id": f"c{i}", "type": "function", "function": {
            "name": "lookup", "arguments": json.dumps({"customer": i % 5, "topic": topic}, sort_keys=True)}}]}
        tool = {"role": "tool", "tool_call_id": f"c{i}", "content": json.dumps({"ok": True, "topic": topic})}
        if i % 2:
            msgs = [system, user, call]
        else:
            msgs = [system, user, call, tool, {"role": "assistant", "content": "DONE"}]
        out.append({"messages": msgs, "agent": "executor", "episode_id": f"e{i}", "target_source": "teacher"})
    return out


def dpo_records(n: int) -> list[dict]:
    out = []
    for i in range(n):
        topic = list(TOPICS)[i % len(TOPICS)]
        prompt = [{"role": "system", "content": "Answer from policy."}, {"role": "user", "content": f"what about {topic}?"}]
        out.append({"prompt": prompt, "chosen": [{"role": "assistant", "content": f"the dealer {TOPICS[topic]}."}],
                    "rejected": [{"role": "assistant", "content": "no idea, sorry."}], "agent": "chat",
                    "source": "judge", "episode_id": f"e{i}"})
    return out


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


# ------------------------------------------------------------------------------------- checkpoint
def build_tiny_checkpoint(dest: Path) -> Path:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    corpus = [r["context"] + r["text"] for r in cpt_records(60)]
    corpus += [json.dumps(r["messages"]) for r in sft_records(12)] + [json.dumps(r) for r in dpo_records(6)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=[BOS, IM_START, IM_END, PAD],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer)
    tok.add_tokens([AddedToken(TOOL_CALL_START, special=False, normalized=False),
                    AddedToken(TOOL_CALL_END, special=False, normalized=False)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=IM_END, pad_token=PAD)
    fast.chat_template = CHAT_TEMPLATE
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(fast), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, intermediate_size=128, max_position_embeddings=512,
                         eos_token_id=fast.eos_token_id, pad_token_id=fast.pad_token_id, bos_token_id=None)
    LlamaForCausalLM(config).save_pretrained(dest)
    fast.save_pretrained(dest)
    return dest


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("train")
    data = root / "data"
    data.mkdir()
    return {
        "root": root, "model": build_tiny_checkpoint(root / "tiny"),
        "cpt": write_jsonl(data / "cpt.jsonl", cpt_records(48)),
        "cpt_val": write_jsonl(data / "cpt_val.jsonl", cpt_records(12, seed=1)),
        "sft": write_jsonl(data / "sft.jsonl", sft_records(24)),
        "dpo": write_jsonl(data / "dpo.jsonl", dpo_records(24)),
    }


def cfg(work: dict[str, Path], stage: str, data: str, out: str, **kw) -> StageConfig:
    base = {"stage": stage, "model_in": work["model"], "out_dir": work["root"] / out, "train_file": work[data],
            "max_steps": 30, "logging_steps": 5, "save_steps": 20, "max_length": 256, "show_progress": False,
            "per_device_train_batch_size": 2}
    return StageConfig(**{**base, **kw})


def assert_trained(summary: dict, out: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert summary["train_loss_last"] < summary["train_loss_first"], summary
    assert summary["tokens_per_s"] > 0 and summary["tokens_seen"] > 0
    assert not list(out.glob("adapter_*")), "merged checkpoint must not need adapter files"
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.config.num_hidden_layers == 2
    assert AutoTokenizer.from_pretrained(out).chat_template == CHAT_TEMPLATE
    assert (out / "train_log.jsonl").is_file() and json.loads((out / "train_summary.json").read_text())["steps"]
    assert not checkpoint_dir(out).exists()


# ------------------------------------------------------------------------------------------- tests
def test_base_and_context_aware_cpt(work: dict[str, Path]) -> None:
    base = train_stage(cfg(work, "base", "cpt", "base", max_steps=20))
    assert base["context_aware"] is False
    assert_trained(base, work["root"] / "base")
    c = cfg(work, "cpt", "cpt", "cpt", max_steps=40, per_device_train_batch_size=4, eval_file=work["cpt_val"])
    summary = train_stage(c)
    assert summary["context_aware"] is True and summary["eval_loss"] is not None
    assert_trained(summary, work["root"] / "cpt")
    assert train_stage(c) == summary  # finished: a rerun is a no-op
    with pytest.raises(UserError, match="another config"):
        train_stage(cfg(work, "cpt", "cpt", "cpt", max_steps=41, per_device_train_batch_size=4))

    records = cpt_records(16, seed=2)
    with_ctx = per_position_loss(work["root"] / "cpt", records, max_positions=24, with_context=True)
    without = per_position_loss(work["root"] / "cpt", records, max_positions=24, with_context=False)
    assert len(with_ctx) == 24 and all(math.isfinite(x) for x in with_ctx + without)
    assert with_ctx[0] < without[0]


def test_plain_cpt(work: dict[str, Path]) -> None:
    summary = train_stage(cfg(work, "cpt", "cpt", "cpt_plain", context_aware=False, max_steps=20))
    assert summary["context_aware"] is False
    assert_trained(summary, work["root"] / "cpt_plain")


def test_cpt_masks_cover_exactly_the_document(work: dict[str, Path]) -> None:
    for aware in (True, False):
        trainer = make_trainer(cfg(work, "cpt", "cpt", "mask_cpt", context_aware=aware))
        tok = trainer.processing_class
        batch = trainer.data_collator([trainer.train_dataset[0]])
        ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
        rec = cpt_records(48)[0]
        start = [tok.convert_tokens_to_ids(BOS)]
        ctx = tok(rec["context"], add_special_tokens=False)["input_ids"] if aware else []
        body = tok(rec["text"], add_special_tokens=False)["input_ids"] + [tok.convert_tokens_to_ids(BOS)]
        assert ids == start + ctx + body
        assert labels == [-100] * (len(start) + len(ctx)) + body


def test_sft_assistant_only_mask(work: dict[str, Path]) -> None:
    trainer = make_trainer(cfg(work, "sft", "sft", "mask_sft"))
    tok = trainer.processing_class
    record = sft_records(24)[0]  # call, tool result, DONE: two assistant spans
    batch = trainer.data_collator([trainer.train_dataset[0]])
    ids, labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    assert tok.decode(ids) == tok.apply_chat_template(record["messages"], tokenize=False)
    trained = tok.decode([t for t, lab in zip(ids, labels, strict=True) if lab != -100])
    call = record["messages"][2]["tool_calls"][0]["function"]
    expected = (f'{TOOL_CALL_START}{{"name": "lookup", "arguments": {call["arguments"]}}}{TOOL_CALL_END}{IM_END}'
                f"DONE{IM_END}")
    assert trained == expected
    # every trained position is inside an assistant turn, and each span ends on <|im_end|>
    im_end = tok.convert_tokens_to_ids(IM_END)
    assert sum(1 for t, lab in zip(ids, labels, strict=True) if lab == im_end) == 2


def test_sft_and_dpo_lora(work: dict[str, Path]) -> None:
    sft = train_stage(cfg(work, "sft", "sft", "sft"))
    assert sft["method"] == "lora"
    assert_trained(sft, work["root"] / "sft")
    dpo = train_stage(StageConfig(stage="dpo", model_in=work["root"] / "sft", out_dir=work["root"] / "dpo",
                                  train_file=work["dpo"], max_steps=20, logging_steps=5, save_steps=50,
                                  max_length=256, per_device_train_batch_size=2, show_progress=False))
    assert dpo["method"] == "lora"
    assert_trained(dpo, work["root"] / "dpo")
    # DPO + an NLL term on the chosen output (TRL loss_type ["sigmoid", "sft"]): it starts above the pure
    # DPO loss at the reference (ln 2), by the chosen outputs' NLL, and still goes down
    both = train_stage(StageConfig(stage="dpo", model_in=work["root"] / "sft", out_dir=work["root"] / "dpo_sft",
                                   train_file=work["dpo"], max_steps=20, logging_steps=5, save_steps=50, max_length=256,
                                   per_device_train_batch_size=2, sft_weight=1.0, show_progress=False))
    assert both["train_loss_first"] > dpo["train_loss_first"] + 0.1
    assert_trained(both, work["root"] / "dpo_sft")


class Interrupt:
    """A callback that aborts the run right after the checkpoint at `step` is written (a Ctrl-C in the wild)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def __getattr__(self, name: str):  # every other TrainerCallback hook is a no-op
        if name.startswith("on_"):
            return lambda *a, **k: None
        raise AttributeError(name)

    def on_save(self, args, state, control, **kw) -> None:
        if state.global_step == self.step:
            raise KeyboardInterrupt


def test_resume_after_interrupt(work: dict[str, Path]) -> None:
    c = cfg(work, "base", "cpt", "resumed", max_steps=16, save_steps=8, logging_steps=1)
    with pytest.raises(KeyboardInterrupt):
        train_stage(c, callbacks=[Interrupt(8)])
    ckpt = checkpoint_dir(c.out_dir)
    assert (ckpt / "checkpoint-8").is_dir() and not c.out_dir.exists()
    summary = train_stage(c)
    assert summary["steps"] == 16
    steps = [r["step"] for r in map(json.loads, (c.out_dir / "train_log.jsonl").read_text().splitlines())
             if "loss" in r]
    assert steps == sorted(set(steps)) and steps[-1] == 16 and 8 in steps and 9 in steps


def test_bad_inputs(work: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not found"):
        train_stage(cfg(work, "sft", "sft", "x", train_file=tmp_path / "missing.jsonl"))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(UserError, match=f"dataset {empty} has no records"):
        train_stage(cfg(work, "sft", "sft", "x", train_file=empty))
    with pytest.raises(UserError, match="model dir"):
        train_stage(cfg(work, "sft", "sft", "x", model_in=tmp_path / "nomodel"))
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    with pytest.raises(UserError, match="model dir"):
        train_stage(cfg(work, "sft", "sft", "x", model_in=broken))


def test_lora_on_top_layers_only_with_no_autograd_below(work: dict[str, Path]) -> None:
    """lora_layers=1 on the 2-layer model: adapters only in the top layer, the bottom layer runs without
    autograd (no grad_fn on its output), training still lowers the loss and the merge changes only the top layer."""
    from transformers import AutoModelForCausalLM

    c = cfg(work, "sft", "sft", "sft_top1", lora_layers=1, snapshot_steps=[20])
    trainer = make_trainer(c)
    names = [n for n, p in trainer.model.named_parameters() if p.requires_grad]
    assert names and all(".layers.1." in n for n in names), names
    seen = {}
    layers = trainer.model.get_base_model().model.layers
    hooks = [layer.register_forward_hook(lambda m, a, out, i=i: seen.__setitem__(i, out)) for i, layer in
             enumerate(layers)]
    batch = trainer.data_collator([trainer.train_dataset[0]])
    trainer.model.train()
    trainer.model(**{k: v for k, v in batch.items() if k in ("input_ids", "attention_mask")})
    for h in hooks:
        h.remove()
    out = [o[0] if isinstance(o, tuple) else o for o in (seen[0], seen[1])]
    assert out[0].grad_fn is None and out[1].grad_fn is not None

    summary = train_stage(c)
    assert_trained(summary, work["root"] / "sft_top1")
    base = AutoModelForCausalLM.from_pretrained(work["model"]).state_dict()
    merged = AutoModelForCausalLM.from_pretrained(work["root"] / "sft_top1").state_dict()
    changed = {k for k in base if not torch.equal(base[k], merged[k])}
    assert changed and all(".layers.1." in k for k in changed), changed
    # the snapshot at step 20 (a budget-curve point) is a merged, loadable checkpoint between base and final
    from agentdistill.train.trainers import snapshot_dir

    snap = snapshot_dir(work["root"] / "sft_top1", 20)
    meta = json.loads((snap / "train_summary.json").read_text())
    assert meta["steps"] == 20 and meta["records_seen"] == 40 and meta["tokens_seen"] > 0
    mid = AutoModelForCausalLM.from_pretrained(snap).state_dict()
    assert any(not torch.equal(mid[k], merged[k]) for k in changed)
    assert any(not torch.equal(mid[k], base[k]) for k in changed)


def test_bench_train_writes_one_row_per_configuration(work: dict[str, Path], tmp_path: Path) -> None:
    """`agentdistill bench train` on the tiny model: every configuration trains the same records, the trimmed
    ones on a smaller vocabulary, top-half LoRA with fewer trainable weights; machine flags are recorded."""
    out = tmp_path / "train.json"
    result = run_cli("bench", "train", "--model", work["model"], "--records", work["sft"], "--steps", "1",
                     "--batch", "2", "--config", "trl_today", "--config", "trim_vocab",
                     "--config", "trim_vocab+top_half_layers", "--out", out, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    data = json.loads(out.read_text())
    rows = {r["config"]: r for r in data["rows"]}
    assert list(rows) == ["trl_today", "trim_vocab", "trim_vocab+top_half_layers"]
    assert all(r["tokens_per_s"] > 0 and r["timed_steps"] == 1 for r in rows.values())
    assert rows["trim_vocab"]["vocab"] < rows["trl_today"]["vocab"]
    assert rows["trim_vocab+top_half_layers"]["trainable_parameters"] < rows["trim_vocab"]["trainable_parameters"]
    assert {"amx_bf16", "avx512_bf16", "cpus"} <= set(data["machine"]) and data["records"]["mean_tokens"] > 20
    assert set(data["views"]["tokens_per_role"]) == {"understander", "planner", "evaluator", "executor", "explainer"}
    bad = run_cli("bench", "train", "--model", work["model"], "--records", work["sft"], "--config", "warp_speed",
                  "--out", out)
    assert bad.returncode == 2 and "unknown benchmark config" in bad.stderr + bad.stdout


def test_precision_follows_the_hardware_and_is_not_part_of_a_runs_identity(tmp_path, monkeypatch):
    """bf16 is emulated (~90x slower matmuls) on CPUs without bf16 units: fp32 there; a run trained in bf16 on
    another machine still counts as the same run when resumed here."""
    from agentdistill import hardware
    from agentdistill.train.trainers import _same_run

    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "fma"})
    assert not hardware.native_bf16() or torch.cuda.is_available()
    monkeypatch.setattr(hardware, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    assert hardware.native_bf16()
    cfg = StageConfig(stage="sft", model_in=tmp_path / "in", out_dir=tmp_path / "out", train_file=tmp_path / "t",
                      bf16=True)
    assert "bf16" not in cfg.identity()
    assert _same_run({**cfg.identity(), "bf16": False}, cfg)
    assert not _same_run({**cfg.identity(), "lora_r": cfg.lora_r + 1}, cfg)
