"""EAGLE-3 heads for the student, in the `speculators` format vLLM serves (`--profile eagle3:DIR`).

speculators (0.9) owns the model class, its training loss (the verifier's distribution over several
test-time-training steps) and the on-disk format; its trainer wants an accelerator, so transformers' `Trainer`
drives the same class here. The head reads the student's hidden states at three layers: they are computed on
the fly by the frozen student in the same forward (transformers, `output_hidden_states`), so nothing the size of
a corpus of hidden states is ever stored. Layer ids follow vLLM's meaning: id L is the residual stream after L
decoder layers (HF `hidden_states[L]`, except that HF normalizes the last one, so the last is taken before the
final norm).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from agentdistill.optimize.acceptance import continuation_ids, replay_runs


def head_layer_ids(num_layers: int) -> list[int]:
    """EAGLE-3's default (low, middle, high: 2, n/2, n-3); spread over [0, n] for verifiers too shallow for it."""
    ids = [2, num_layers // 2, num_layers - 3]
    if len(set(ids)) == 3 and min(ids) >= 0:
        return ids
    return sorted({0, num_layers // 2, num_layers})


def build_head(student: Path, *, layers: int = 1, k: int = 3) -> torch.nn.Module:
    """A fresh head for `student`: its embeddings and head copied in, `layers` decoder layers of the student's shape."""
    from speculators.models.eagle3 import Eagle3DraftModel
    from speculators.train.cli import create_transformer_layer_config
    from transformers import AutoConfig

    verifier = AutoConfig.from_pretrained(student)
    layer_config = create_transformer_layer_config(
        verifier_name_or_path=str(student), num_layers=layers, draft_arch="llama", hidden_act=None,
        sliding_window=None, full_attention_indices=list(range(layers)), mrope_full_head_hack=False)
    head = Eagle3DraftModel.from_training_args(
        verifier_config=layer_config, verifier_name_or_path=str(student), draft_vocab_size=verifier.vocab_size,
        norm_before_residual=True, ttt_steps=k, target_layer_ids=head_layer_ids(verifier.num_hidden_layers),
        draft_attn_impl="sdpa")
    if torch.isnan(head.lm_head.weight).any():  # a tied-embedding student stores no lm_head.weight
        head.lm_head.weight.data.copy_(head.embed_tokens.weight.data)
        head.verifier_lm_head.weight.data.copy_(head.embed_tokens.weight.data)
    return head.float()


class HeadWithVerifier(torch.nn.Module):
    """The trainable head beside the frozen student: `Trainer` sees one module whose forward returns the loss."""

    def __init__(self, head: torch.nn.Module, verifier: torch.nn.Module, ttt_steps: int):
        super().__init__()
        self.head = head
        self.verifier = verifier.eval().requires_grad_(False)
        self.ttt_steps = ttt_steps
        from speculators.losses import resolve_loss_config

        # speculators' default loss kernel is Triton (GPU); its eager twin is the same KL to the verifier
        self.loss_config = resolve_loss_config("kl_div", implementation="eager")

    def forward(self, input_ids: torch.Tensor, loss_mask: torch.Tensor, **_: Any) -> dict[str, torch.Tensor]:
        features, last = verifier_states(self.verifier, input_ids, self.head.target_layer_ids)
        _, loss, _ = self.head(**shifted_inputs(input_ids, features), loss_mask=loss_mask[:, 1:].bool(),
                               verifier_last_hidden_states=last[:, 1:], ttt_steps=self.ttt_steps,
                               loss_config=self.loss_config)
        return {"loss": loss}


def shifted_inputs(input_ids: torch.Tensor, features: torch.Tensor) -> dict[str, torch.Tensor]:
    """The head's inputs in speculators' alignment (models/eagle3/data.py shift_batch): token t+1 beside the state
    after token t, one document, positions from 1."""
    return {"hidden_states": features[:, :-1], "input_ids": input_ids[:, 1:],
            "document_ids": torch.zeros_like(input_ids[:, 1:]),
            "position_ids": torch.arange(1, input_ids.shape[1]).unsqueeze(0)}


def verifier_states(verifier: torch.nn.Module, input_ids: torch.Tensor,
                    layer_ids: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(the concatenated states at `layer_ids`, the last state before the final norm), in float32, no autograd."""
    captured: dict[str, torch.Tensor] = {}
    hook = verifier.model.norm.register_forward_hook(lambda _m, args, _o: captured.__setitem__("last", args[0]))
    try:
        with torch.no_grad():
            out = verifier(input_ids=input_ids, output_hidden_states=True)
    finally:
        hook.remove()
    states = [*out.hidden_states[:-1], captured["last"]]
    return torch.cat([states[i] for i in layer_ids], dim=-1).float(), captured["last"].float()


class HeadRecords(torch.utils.data.Dataset):
    """Chat records as (input ids, loss mask on the answer): one record per step, so no padding is needed."""

    def __init__(self, tokenizer: Any, records: Sequence[dict[str, Any]], max_length: int = 2048):
        self.items = []
        for record in records:
            prompt, cont = continuation_ids(tokenizer, record["messages"])
            ids = torch.cat([prompt, cont])[:max_length]
            mask = torch.zeros_like(ids)
            mask[prompt.shape[0]:] = 1
            if mask.sum() > 1:
                self.items.append({"input_ids": ids, "loss_mask": mask})

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.items[i]


def collate_one(batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    (item,) = batch
    return {key: value.unsqueeze(0) for key, value in item.items()}


def train_head(student: Path, records: Sequence[dict[str, Any]], out: Path, *, layers: int = 1, k: int = 3,
               epochs: float = 2.0, learning_rate: float = 5e-4, seed: int = 0, save_steps: int = 100,
               show_progress: bool = True) -> dict[str, Any]:
    """Train a head on `records` with transformers' Trainer (resumable from its checkpoints) and save it in the
    speculators format; returns losses, tokens/s and wall time."""
    import time

    from transformers import Trainer, TrainingArguments, set_seed
    from transformers.trainer_utils import get_last_checkpoint

    from agentdistill.train.models import load_checkpoint

    set_seed(seed)
    verifier, tokenizer = load_checkpoint(student)
    head = build_head(student, layers=layers, k=k)
    data = HeadRecords(tokenizer, records)
    work = out.parent / f".{out.name}.trainer"
    args = TrainingArguments(
        output_dir=str(work), num_train_epochs=epochs, per_device_train_batch_size=1, learning_rate=learning_rate,
        lr_scheduler_type="cosine", warmup_steps=min(20, len(data) // 10), logging_steps=10, save_steps=save_steps,
        save_total_limit=1, report_to=[], seed=seed, use_cpu=True,
        disable_tqdm=not show_progress, remove_unused_columns=False, dataloader_num_workers=0)
    trainer = Trainer(model=HeadWithVerifier(head, verifier.float(), k), args=args, train_dataset=data,
                      data_collator=collate_one)
    t0 = time.monotonic()
    trainer.train(resume_from_checkpoint=get_last_checkpoint(str(work)) if work.is_dir() else None)
    wall = time.monotonic() - t0
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    head.save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    tokens = sum(int(item["input_ids"].numel()) for item in data.items) * epochs
    return {"train_loss_first": losses[0] if losses else None, "train_loss_last": losses[-1] if losses else None,
            "wall_s": round(wall, 1), "tokens_per_s": round(tokens / wall, 1) if wall else None, "records": len(data)}


def load_head(drafter: Path) -> torch.nn.Module:
    from speculators.models.eagle3 import Eagle3DraftModel, Eagle3SpeculatorConfig

    config = Eagle3SpeculatorConfig.from_pretrained(str(drafter))
    config.transformer_layer_config._attn_implementation = "sdpa"  # a saved config forgets it: flex needs a GPU here
    return Eagle3DraftModel.from_pretrained(str(drafter), config=config).float().eval()


def replay_head(head: torch.nn.Module, verifier: torch.nn.Module, tokenizer: Any, records: Sequence[dict[str, Any]],
                k: int, max_new_tokens: int = 256) -> dict[str, Any]:
    """The head's chain acceptance on each record's last message: one teacher-forced forward of k steps.

    Drafting token t of the answer reads the state after token t-2 and the embedding of token t-1 (vLLM's EAGLE
    step), and step j of that draft predicts token t+j. While the chain is right, the fed-back tokens equal the
    recorded ones, so teacher forcing gives exactly the run of accepted tokens a served chain would have.
    """
    verifier = verifier.float().eval()

    def runs(prompt: torch.Tensor, cont: torch.Tensor) -> list[int]:
        ids = torch.cat([prompt, cont]).unsqueeze(0)
        features, _ = verifier_states(verifier, ids, head.target_layer_ids)
        drafts = head(**shifted_inputs(ids, features), ttt_steps=k)
        out = [0] * cont.numel()
        for t in range(1, cont.numel()):
            i = prompt.shape[0] + t - 2  # the head position whose step 0 predicts answer token t
            while out[t] < k and t + out[t] < cont.numel() and int(drafts[out[t]][0, i]) == int(cont[t + out[t]]):
                out[t] += 1
        return out

    return replay_runs(runs, tokenizer, records, k, max_new_tokens)
