"""SFT records in which the Evaluator rejects a wrong plan.

The teacher's plans are almost always right, so nearly every evaluator call in the traces approves. A student
trained only on those learns to approve everything, including its own wrong plans (measured: Evaluator score
0% in the MAS, every miss an approval of a plan the reference rejects). For an approved plan, this module
applies the planner mutators (a plausible but wrong plan: a skipped check, a wrong argument, ...) and labels
the result with the domain's reference evaluator, the same verdict the judge expects. Only rejections are
kept, so a mutator that happens to produce an acceptable plan never becomes a wrong label.
"""

from __future__ import annotations

import json
import random
from typing import Any

from agentdistill.data.mutators import MutationInput, for_agent
from agentdistill.mas.plan import PlanError, halstead, parse_plan
from agentdistill.mas.prompts import parse_input, render_input


class EvaluatorRejects:
    """`records(call, episode)`: up to `per_call` (messages, target) chats for one approving evaluator call."""

    def __init__(self, domain: Any, seed: int, per_call: int = 1):
        self.domain, self.seed, self.per_call = domain, seed, per_call
        self.world = domain.new_world()  # planner mutators read only the world's static tables
        self.mutators = for_agent(domain.mutators(), "planner")

    def records(self, call: dict[str, Any], episode: dict[str, Any]) -> list[list[dict[str, Any]]]:
        if call.get("agent") != "evaluator" or len(call.get("messages") or []) < 2:
            return []
        inp = parse_input(call["messages"][1].get("content") or "")
        if not inp.get("plan") or self.domain.reference_evaluate(inp).get("verdict") != "approve":
            return []
        rng = random.Random(f"{self.seed}:{episode['episode_id']}:{call.get('call_index')}:reject")
        as_planner = {**call, "agent": "planner", "completion": inp["plan"], "tool_calls": []}
        out: list[list[dict[str, Any]]] = []
        for mutator in rng.sample(self.mutators, len(self.mutators)):
            mutated = mutator(MutationInput(as_planner, episode, self.world, rng, self.domain.policy_version))
            if mutated is None:
                continue
            try:
                plan = parse_plan(mutated[0], self.domain.tool_names())
            except PlanError:
                continue
            wrong = {**inp, "plan": plan.source, "halstead": halstead(plan).__dict__}
            verdict = self.domain.reference_evaluate(wrong)
            if verdict.get("verdict") != "reject":
                continue
            out.append([call["messages"][0], {"role": "user", "content": render_input(wrong)},
                        {"role": "assistant", "content": json.dumps(verdict, sort_keys=True)}])
            if len(out) >= self.per_call:
                break
        return out
