"""The judge as a gate for synthetic negatives: would the judge call this output wrong?

`Judge.judge_call` compares an output with the reference for the same input. For the Explainer the judge
also counts policy violations of the reply, which it computes from the whole turn (its tool calls, what the
customer asked); `judge_episode` passes them in. Here the same turn-level checks run on the candidate reply
so that a reply that only breaks a text rule (no facts changed, e.g. asking for a social security number)
is rejected exactly as the judge would reject it inside an episode.
"""

from __future__ import annotations

from typing import Any

from agentdistill.domain.rules import Action, RuleContext, check_turn
from agentdistill.judge.judge import Judge


class JudgeGate:
    def __init__(self, domain: Any):
        self.domain = domain
        self.judge = Judge(domain)
        self.world = domain.new_world()  # turn-scope rules read only the world's static tables

    def _turn_context(self, episode: dict[str, Any], turn_no: int) -> tuple[list[Action], list[Action], list[str],
                                                                             dict[str, Any]]:
        history: list[Action] = []
        entities: dict[str, Any] = {}
        for turn in episode.get("turns") or []:
            reading = turn.get("annotation") or turn.get("understanding") or {}
            entities = {**entities, **(reading.get("entities") or {})}
            actions = [Action(a["name"], a["arguments"], a.get("result"), turn["turn"]) for a in turn["actions"]]
            if turn["turn"] == turn_no:
                return history, actions, list(reading.get("intents") or []), entities
            history += actions
        return history, [], [], entities

    def reply_violations(self, episode: dict[str, Any] | None, call: dict[str, Any], reply: str) -> set[str]:
        """The reply-text rules (`Rule.reply_text`) this reply breaks in its turn."""
        if episode is None or call.get("agent") != "explainer":
            return set()
        history, actions, intents, entities = self._turn_context(episode, call.get("turn", -1))
        ctx = RuleContext(world=self.world, params=self.judge.params, history=history, intents=intents,
                          entities=entities, turn_actions=actions, reply=reply)
        return {v.rule_id for v in check_turn(self.judge.rules, ctx) if v.rule_id in self.judge.reply_text_rules}

    def verdict(self, call: dict[str, Any], completion: str, tool_calls: list[dict[str, Any]] | None,
                episode: dict[str, Any] | None = None) -> dict[str, Any]:
        """The judge's verdict on `call` answered with this output instead of the recorded one."""
        if episode is not None:
            oracle = {t["user"].strip(): t["annotation"] for t in episode.get("turns") or [] if t.get("annotation")}
            self.judge.reference.set_oracle(oracle)
        candidate = {**call, "completion": completion, "tool_calls": tool_calls or [], "malformed": None}
        return self.judge.judge_call(candidate, self.reply_violations(episode, call, completion))

    def rejects(self, call: dict[str, Any], completion: str, tool_calls: list[dict[str, Any]] | None,
                episode: dict[str, Any] | None = None) -> bool:
        return not self.verdict(call, completion, tool_calls, episode)["correct"]


def episode_from_input(call: dict[str, Any]) -> dict[str, Any]:
    """A one-turn episode rebuilt from an Explainer input (its understanding and tool results), so a
    hand-written reply can be checked against the turn-level rules without a recorded conversation."""
    from agentdistill.mas.prompts import parse_input

    msgs = call.get("messages") or []
    inp = parse_input(msgs[1].get("content", "")) if len(msgs) > 1 else {}
    actions = [{"name": a.get("name"), "arguments": a.get("arguments") or {}, "result": a.get("result")}
               for a in inp.get("tool_results") or []]
    return {"turns": [{"turn": call.get("turn", 0), "user": inp.get("utterance", ""),
                       "annotation": inp.get("understanding") or {}, "actions": actions, "reply": ""}]}
