"""DPO preference pairs in TRL's conversational format, from three sources.

- judge: every call the judge marked wrong -> chosen = y*, rejected = the teacher's output;
- mutator:<name>: a correct call made wrong on purpose (`Domain.mutators()`), kept only if the judge rejects it;
  a captured call (the user's own MAS, no domain of ours) is mutated from its tool schemas instead
  (data/schema_mutators.py: wrong argument, skipped tool, unsupported claim), wrong by construction;
- curated: hand-written boundary cases the domain ships (`Domain.hard_negatives_path()`) or a user's file.

Judge pairs are few when the teacher is good, so the mutators supply most of the rule-breaking negatives.
Each correct call yields at most one mutator pair, from the applicable mutator used least so far, so rare
rules (a rarely needed tool, off-topic requests) are not crowded out by the common ones.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from agentdistill.capture.records import SOURCE as CAPTURED
from agentdistill.data.gate import JudgeGate
from agentdistill.data.messages import (
    assistant_message,
    canonical_messages,
    record_key,
    refined_message,
    teacher_message,
)
from agentdistill.data.mutators import MutationInput, Mutator
from agentdistill.data.schema_mutators import SCHEMA_MUTATORS
from agentdistill.data.splits import split_of


def pair(prompt: list[dict[str, Any]], chosen: dict[str, Any], rejected: dict[str, Any], agent: str, source: str,
         episode_id: str, rule: str | None = None) -> dict[str, Any]:
    return {"prompt": prompt, "chosen": [chosen], "rejected": [rejected], "agent": agent, "source": source,
            "episode_id": episode_id, "rule": rule}


class DpoBuilder:
    def __init__(self, domain: Any, val_fraction: float, seed: int, mutator_cap: int = 400,
                 mutators: list[Mutator] | None = None,
                 restyle: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None):
        """`restyle`: as in `SftBuilder`, applied to each pair's prompt after the judge gate, before dedup.
        `domain` None: a captured run, whose calls only the schema mutators apply to."""
        self.restyle = restyle
        self.domain, self.val_fraction, self.seed, self.cap = domain, val_fraction, seed, mutator_cap
        self.gate = JudgeGate(domain) if domain is not None else None
        self.mutators = mutators if mutators is not None else \
            (list(domain.mutators().values()) if domain is not None else [])
        self.schema_mutators = list(SCHEMA_MUTATORS.values())
        self.splits: dict[str, list[dict[str, Any]]] = {"train": [], "val": []}
        self._seen: set[bytes] = set()
        self.counts: dict[str, Counter] = {k: Counter() for k in ("agent", "source", "scenario_type")}
        self.made: Counter = Counter()  # mutator outputs produced
        self.dropped: Counter = Counter()  # ... that the judge accepted (not negatives after all)
        self.duplicates = 0
        self.identical = 0  # judge pairs whose y* equals the teacher's output (nothing to prefer)

    def _add(self, rec: dict[str, Any], split: str, scenario_type: str) -> None:
        if self.restyle is not None:
            rec = {**rec, "prompt": self.restyle(rec["prompt"])}
        key = hashlib.sha256(record_key(rec["prompt"], rec["chosen"], rec["rejected"]).encode()).digest()
        if key in self._seen:
            self.duplicates += 1
            return
        self._seen.add(key)
        self.splits[split].append(rec)
        self.counts["agent"][rec["agent"]] += 1
        self.counts["source"][rec["source"]] += 1
        self.counts["scenario_type"][scenario_type] += 1

    def add_episode(self, ep: dict[str, Any]) -> None:
        split = split_of(ep["episode_id"], self.val_fraction, self.seed)
        stype = ep["scenario"].get("scenario_type", "unknown")
        for call in ep["calls"]:
            prompt = canonical_messages(call["messages"])
            if (call.get("verdict") or {}).get("correct") is False:
                if call.get("refined"):
                    chosen, rejected = refined_message(call), teacher_message(call)
                    if chosen == rejected:
                        self.identical += 1
                    else:
                        self._add(pair(prompt, chosen, rejected, call["agent"], "judge", ep["episode_id"]), split,
                                  stype)
                continue
            captured = ep.get("source") == CAPTURED  # the domain's mutators and judge know only its own MAS
            if captured or self.gate is not None:
                self._mutate(ep, call, prompt, split, stype, captured)

    def _mutate(self, ep: dict[str, Any], call: dict[str, Any], prompt: list[dict[str, Any]], split: str,
                stype: str, captured: bool) -> None:
        """At most one pair per call, from the applicable mutator used least so far. A domain mutation is kept only
        if the judge rejects it; a captured call's schema mutation (the user's MAS has no reference of ours) is
        wrong by construction, kept unless it equals the call."""
        rng = random.Random(f"{self.seed}:{ep['episode_id']}:{call.get('call_index')}")
        pool = self.schema_mutators if captured else [m for m in self.mutators if m.agent == call["agent"]]
        candidates = [m for m in pool if self.made[m.name] < self.cap]
        candidates.sort(key=lambda m: (self.made[m.name], rng.random()))
        for m in candidates:
            given = (MutationInput(call, ep, None, rng) if captured else
                     MutationInput(call, ep, self.gate.world, rng, self.gate.judge.policy_version))
            out = m(given)
            if out is None:
                continue
            self.made[m.name] += 1
            rejected = assistant_message(call["agent"], out[0], out[1])
            if captured:
                if rejected == teacher_message(call):
                    continue
            elif not self.gate.rejects(call, out[0], out[1], ep):
                self.dropped[m.name] += 1
                continue
            self._add(pair(prompt, teacher_message(call), rejected, call["agent"], f"mutator:{m.name}",
                           ep["episode_id"], m.rule), split, stype)
            return

    def add_curated(self, cases: list[dict[str, Any]]) -> None:
        for case in cases:
            rec = pair(case["prompt"], case["chosen"][0], case["rejected"][0], case["agent"], "curated",
                       f"curated:{case['id']}", case["rule"])
            self._add(rec, split_of(rec["episode_id"], self.val_fraction, self.seed), "curated")

    @property
    def stats(self) -> dict[str, Any]:
        return {"records": {k: len(v) for k, v in self.splits.items()},
                **{f"by_{k}": dict(sorted(c.items())) for k, c in self.counts.items()},
                "duplicates_removed": self.duplicates, "judge_pairs_identical": self.identical,
                "mutator_outputs": dict(sorted(self.made.items())),
                "mutator_dropped_judge_accepted": dict(sorted(self.dropped.items()))}
