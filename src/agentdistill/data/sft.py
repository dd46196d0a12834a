"""SFT records: one chat per agent call, the target being what the role should have answered.

A multi-step role's call whose record is a prefix of the role's next record (an Executor step, which the
turn's next step carries as earlier messages) is folded into that later record: the chat template marks every
assistant message for the loss, so one record per turn trains every step once instead of repeating the shared
prefix per step (`fold_steps`). A step whose target was corrected by the judge differs from what its successor
carries, so it keeps its own record.

The target is the judge's corrected output y* when the teacher's call was judged wrong, else the teacher's
own output, so the student never imitates a mistake. Every call becomes a record (or a counted duplicate):
nothing is skipped silently.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from typing import Any

from agentdistill.data.messages import canonical_messages, record_key, refined_message, teacher_message
from agentdistill.data.splits import split_of


def sft_target(call: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(assistant message, "refined" | "teacher")."""
    verdict = call.get("verdict") or {}
    if verdict.get("correct") is False and call.get("refined"):
        return refined_message(call), "refined"
    return teacher_message(call), "teacher"


class SftBuilder:
    """Feed episodes in order; read `.splits` and `.stats` at the end."""

    def __init__(self, val_fraction: float, seed: int, rejects: Any | None = None,
                 restyle: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
                 fold_steps: bool = True):
        """`rejects`: an `EvaluatorRejects`, adding evaluator records that reject mutated plans.
        `restyle`: rewrites a record's messages into the student's prompt style before deduplication, so calls
        that differ only in what the style leaves out become one record."""
        self.val_fraction, self.seed, self.rejects, self.restyle = val_fraction, seed, rejects, restyle
        self.fold_steps = fold_steps
        self.folded = 0
        self.splits: dict[str, list[dict[str, Any]]] = {"train": [], "val": []}
        self._seen: set[bytes] = set()
        self.counts: dict[str, Counter] = {k: Counter() for k in ("split", "agent", "target_source", "scenario_type")}
        self.duplicates = 0
        self.wrong_without_refined = 0

    def add_episode(self, ep: dict[str, Any]) -> None:
        split = split_of(ep["episode_id"], self.val_fraction, self.seed)
        scenario_type = ep["scenario"].get("scenario_type", "unknown")
        records = []
        for call in ep["calls"]:
            if (call.get("verdict") or {}).get("correct") is False and not call.get("refined"):
                self.wrong_without_refined += 1  # judged wrong but no y*: the teacher output is kept as-is
            target, source = sft_target(call)
            messages = [*canonical_messages(call["messages"]), target]
            records.append((self.restyle(messages) if self.restyle is not None else messages, call, source))
        folded = self._folded(records) if self.fold_steps else set()
        for i, (messages, call, source) in enumerate(records):
            if i in folded:
                self.folded += 1
            else:
                self._add(messages, call["agent"], ep, split, source, scenario_type, restyled=True)
            if self.rejects is not None and source == "teacher":
                for messages in self.rejects.records(call, ep):
                    self._add(messages, "evaluator", ep, split, "evaluator_reject", scenario_type)

    @staticmethod
    def _folded(records: list[tuple[list[dict[str, Any]], dict[str, Any], str]]) -> set[int]:
        """Indexes of records that the same role's next record in the episode starts with."""
        folded: set[int] = set()
        last_of: dict[str, int] = {}
        for i, (messages, call, _) in enumerate(records):
            prev = last_of.get(call["agent"])
            if prev is not None:
                earlier = records[prev][0]
                if len(earlier) < len(messages) and messages[:len(earlier)] == earlier:
                    folded.add(prev)
            last_of[call["agent"]] = i
        return folded

    def _add(self, messages: list[dict[str, Any]], agent: str, ep: dict[str, Any], split: str, source: str,
             scenario_type: str, restyled: bool = False) -> None:
        if self.restyle is not None and not restyled:
            messages = self.restyle(messages)
        key = hashlib.sha256(record_key(messages).encode()).digest()
        if key in self._seen:
            self.duplicates += 1
            return
        self._seen.add(key)
        self.splits[split].append({"messages": messages, "agent": agent, "episode_id": ep["episode_id"],
                                   "target_source": source})
        for name, value in (("split", split), ("agent", agent), ("target_source", source),
                            ("scenario_type", scenario_type)):
            self.counts[name][value] += 1

    @property
    def stats(self) -> dict[str, Any]:
        return {"records": {k: len(v) for k, v in self.splits.items()},
                **{f"by_{k}": dict(sorted(c.items())) for k, c in self.counts.items() if k != "split"},
                "duplicates_removed": self.duplicates, "steps_folded": self.folded,
                "wrong_without_refined": self.wrong_without_refined}
