"""The judge: scores an episode by end state, policy compliance and required outputs (tau-bench style),
gives every agent call a verdict, and refines: for each wrong call it stores the corrected output y*.

y* comes from the scripted teacher's reference for the same input, or from an LLM judge endpoint.
"""

from __future__ import annotations

import json
from typing import Any

from agentdistill.backends.scripted import ScriptedTeacher
from agentdistill.domain.rules import Action, RuleContext, check_action, check_turn
from agentdistill.mas.model_text import ModelTextError, understanding, verdict
from agentdistill.mas.plan import PlanError, parse_plan
from agentdistill.types import Backend, ToolCall


def _norm_args(args: dict[str, Any], free_text: frozenset[str]) -> str:
    return json.dumps({k: v for k, v in args.items() if k not in free_text}, sort_keys=True, default=str)


class Judge:
    def __init__(self, domain: Any, policy_version: str | None = None, refiner: Backend | None = None):
        self.domain = domain
        self.policy_version = policy_version or domain.policy_version
        self.rules = domain.rules(self.policy_version)
        self.params = domain.policy_params(self.policy_version)
        # rules about the reply's wording alone: a reply breaking one makes the Explainer's call wrong
        self.reply_text_rules = {r.rule_id for r in self.rules if getattr(r, "reply_text", False)}
        self.reference = ScriptedTeacher(domain)
        self.refiner = refiner  # optional LLM judge endpoint for y*
        self._gold_hash: dict[str, str] = {}

    # -------------------------------------------------------------------------------------- episode
    def judge_episode(self, ep: dict[str, Any]) -> dict[str, Any]:
        """Fill in per-call verdicts (and y* where wrong) and the episode's judgement; returns the judgement."""
        scenario = ep["scenario"]
        gold_hash = self._gold(scenario)
        world = self.domain.new_world()
        history: list[Action] = []
        violations: list[dict[str, Any]] = []
        entities: dict[str, Any] = {}
        replay_mismatch = False
        reply_violations: dict[int, set[str]] = {}
        for turn in ep["turns"]:
            reading = turn.get("annotation") or turn.get("understanding") or {}
            entities = {**entities, **(reading.get("entities") or {})}
            intents = list(reading.get("intents") or [])
            turn_actions: list[Action] = []
            for a in turn["actions"]:
                action = Action(a["name"], a["arguments"], None, turn["turn"])
                ctx = RuleContext(world=world, params=self.params, history=history + turn_actions,
                                  intents=intents, entities=entities, action=action)
                violations += [dict(v.to_dict(), turn=turn["turn"]) for v in check_action(self.rules, ctx)]
                action.result = world.call_tool(a["name"], a["arguments"])
                replay_mismatch |= action.result != a["result"]
                turn_actions.append(action)
            ctx = RuleContext(world=world, params=self.params, history=history, intents=intents, entities=entities,
                              turn_actions=turn_actions, reply=turn["reply"])
            found = check_turn(self.rules, ctx)
            violations += [dict(v.to_dict(), turn=turn["turn"]) for v in found]
            reply_violations[turn["turn"]] = {v.rule_id for v in found if v.rule_id in self.reply_text_rules}
            history += turn_actions
        end_state = world.state_hash() == gold_hash
        replies = "\n".join(t["reply"] for t in ep["turns"]).lower()
        missing = [s for s in scenario["required_outputs"] if s.lower() not in replies]
        call_stats = self._judge_calls(ep, reply_violations)
        judgement = {
            "pass": end_state and not missing and not violations,
            "end_state": end_state,
            "missing_outputs": missing,
            "violations": violations,
            "replay_mismatch": replay_mismatch,
            **call_stats,
        }
        if ep.get("error"):  # the episode ended on an unexpected exception (simulate/episode.py): a failure
            judgement["pass"] = False
            judgement["error"] = ep["error"]["type"]
        ep["judgement"] = judgement
        return judgement

    def _gold(self, scenario: dict[str, Any]) -> str:
        key = scenario["scenario_id"]
        if key not in self._gold_hash:
            world = self.domain.new_world()
            for a in scenario["gold_actions"]:
                world.call_tool(a["name"], a["arguments"])
            self._gold_hash[key] = world.state_hash()
        return self._gold_hash[key]

    # ---------------------------------------------------------------------------------------- calls
    def _judge_calls(self, ep: dict[str, Any], reply_violations: dict[int, set[str]]) -> dict[str, Any]:
        oracle = {t["user"].strip(): t["annotation"] for t in ep["turns"] if t.get("annotation")}
        self.reference.set_oracle(oracle)
        by_agent: dict[str, list[int]] = {}
        injected = flagged = 0
        for call in ep["calls"]:
            verdict = self.judge_call(call, reply_violations.get(call["turn"], set()))
            call["verdict"] = verdict
            if not verdict["correct"]:
                call["refined"] = verdict.pop("refined")
            else:
                verdict.pop("refined", None)
                call.pop("refined", None)
            stats = by_agent.setdefault(call["agent"], [0, 0])
            stats[0] += 1
            stats[1] += 0 if verdict["correct"] else 1
            if call.get("injected"):
                injected += 1
                flagged += 0 if verdict["correct"] else 1
        return {"calls_by_agent": {k: {"total": v[0], "wrong": v[1]} for k, v in by_agent.items()},
                "calls_wrong": sum(v[1] for v in by_agent.values()), "injected": injected,
                "injected_flagged": flagged}

    def judge_call(self, call: dict[str, Any], reply_violations: set[str] = frozenset()) -> dict[str, Any]:
        """{correct, reason, refined} for one agent call, comparing it with the reference for the same input."""
        messages = call["messages"]
        _, ref_text, ref_calls = self.reference.reference(messages)
        agent, text = call["agent"], call.get("completion") or ""
        got_calls = [ToolCall.from_openai(tc) for tc in call.get("tool_calls") or []]
        correct, reason = self._compare(agent, text, got_calls, ref_text, ref_calls, messages)
        if call.get("malformed"):
            correct, reason = False, f"malformed output ({call['malformed']})"
        if agent == "explainer" and correct and reply_violations:
            correct, reason = False, f"reply breaks {', '.join(sorted(reply_violations))}"
        refined: dict[str, Any] = {"completion": ref_text}
        if agent == "executor":
            refined["tool_calls"] = [tc.to_openai() for tc in ref_calls]
        if not correct and self.refiner is not None:
            refined = self._llm_refine(call, reason) or refined
        return {"correct": correct, "reason": reason, "refined": refined}

    def _compare(self, agent: str, text: str, got_calls: list[ToolCall], ref_text: str,
                 ref_calls: list[ToolCall], messages: list[dict[str, Any]]) -> tuple[bool, str]:
        free = frozenset(self.domain.free_text_arguments)
        if agent == "understander":
            want = json.loads(ref_text)
            try:
                got = understanding(text)
            except ModelTextError as exc:
                return False, f"output is not an understanding: {exc}"
            if sorted(got["intents"]) != sorted(want["intents"]):
                return False, f"intents {got.get('intents')} != {want['intents']}"
            if _norm_args(got.get("entities") or {}, free) != _norm_args(want["entities"], free):
                return False, "entities differ from the reference"
            return True, ""
        if agent == "planner":
            try:
                got_plan = parse_plan(text, self.domain.tool_names())
            except PlanError as exc:
                return False, f"plan does not parse: {exc}"
            want_plan = parse_plan(ref_text, self.domain.tool_names())
            if self.domain.plan_signature(got_plan) != self.domain.plan_signature(want_plan):
                return False, "plan implies different calls than the reference"
            return True, ""
        if agent == "evaluator":
            want = json.loads(ref_text)
            try:
                got = verdict(text)
            except ModelTextError as exc:
                return False, f"output is not a verdict: {exc}"
            ok = got["verdict"] == want["verdict"]
            return ok, "" if ok else f"verdict {got['verdict']!r}, expected {want['verdict']!r}"
        if agent == "executor":
            if not ref_calls:
                ok = not got_calls and text.strip().upper() == "DONE"
                return ok, "" if ok else "did not answer DONE after the plan was complete"
            if not got_calls:
                return False, f"stopped before {ref_calls[0].name}"
            if len(got_calls) > 1:
                return False, "more than one tool call in one step"
            g, w = got_calls[0], ref_calls[0]
            if g.name != w.name or _norm_args(g.arguments, free) != _norm_args(w.arguments, free):
                return False, f"called {g.name}{_norm_args(g.arguments, free)}, expected {w.name}" \
                              f"{_norm_args(w.arguments, free)}"
            return True, ""
        if agent == "explainer":
            if not text.strip():
                return False, "empty reply"
            facts, want = self.domain.reply_facts(text), self.domain.reply_facts(ref_text)
            if lost := want - facts:
                return False, f"reply omits {sorted(lost)}"
            given = self.domain.reply_facts(" ".join(str(m.get("content") or "") for m in messages[1:]))
            if invented := facts - want - given:
                return False, f"reply states facts found nowhere in its input: {sorted(invented)}"
            return True, ""
        return False, f"unknown agent {agent!r}"

    def _llm_refine(self, call: dict[str, Any], reason: str) -> dict[str, Any] | None:
        """Ask an LLM judge for y*: the corrected output for the same input."""
        prompt = ("You are a strict reviewer of one agent call in a multi-agent customer assistant. The output "
                  f"below is wrong ({reason}). Rewrite it so that it follows the agent's instructions and the "
                  "policy exactly. Answer with the corrected output only, in the same format.")
        messages = [*call["messages"], {"role": "assistant", "content": call.get("completion") or ""},
                    {"role": "user", "content": prompt}]
        comp = self.refiner.complete(messages, temperature=0.0)
        if not comp.text.strip() and not comp.tool_calls:
            return None
        return {"completion": comp.text, "tool_calls": [tc.to_openai() for tc in comp.tool_calls],
                "source": getattr(self.refiner, "name", "llm")}
