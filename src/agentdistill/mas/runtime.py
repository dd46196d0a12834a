"""The five-role MAS runtime: Understander -> Planner -> Evaluator -> Executor -> Explainer.

All roles call one backend and differ only by prompt. Every call is recorded in the trace format of
shared/DESIGN.md. Malformed model output never crashes a turn: it is recorded, counted and answered with a
safe fallback, as a production runtime would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agentdistill.domain.rules import Action, RuleContext, check_action, check_turn
from agentdistill.errors import UserError
from agentdistill.mas.constraints import check_constrained_roles, role_constraints
from agentdistill.mas.model_text import ModelTextError, understanding, verdict
from agentdistill.mas.plan import Plan, PlanError, halstead, next_step, parse_plan, terminal_calls
from agentdistill.mas.prompts import build_prompts, render_input, role_input
from agentdistill.types import Backend, Completion, ToolCall

ROLE_MAX_TOKENS = {"understander": 256, "planner": 512, "evaluator": 256, "executor": 256, "explainer": 512}


class TurnFailed(Exception):
    """An unexpected exception inside one turn, carrying the calls the turn made before it (for the trace)."""

    def __init__(self, calls: list[dict[str, Any]], cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}"[:300])
        self.calls, self.cause = calls, cause


@dataclass
class MASConfig:
    """Runtime knobs. The LLM evaluator runs only when the plan's Halstead metric exceeds the threshold."""

    halstead_metric: str = "volume"
    halstead_threshold: float = 150.0
    max_replans: int = 2
    max_executor_steps: int = 12
    history_turns: int = 6
    recent_actions: int = 8
    sampling: dict[str, Any] = field(default_factory=lambda: {"temperature": 0.0})
    prompt_style: str = "full"  # "compact" for a student trained on compact prompts (see mas/prompts.py)
    # Roles whose calls carry a vLLM `structured_outputs` constraint built from the domain (mas/constraints.py);
    # a backend that does not take it (the scripted teacher) ignores it, an endpoint that rejects it loses it.
    constrained_roles: tuple[str, ...] = ()
    # Bounded resources per call (docs/how-it-works.md): an answer is cut at its role's max_tokens (an endpoint's
    # request cap is lowered to it, never raised), and a tool result fed back to the Executor is cut to
    # max_tool_result_chars. The trace records each limit that fires in the call's "limits".
    max_tokens: dict[str, int] = field(default_factory=lambda: dict(ROLE_MAX_TOKENS))
    max_tool_result_chars: int = 8_000

    def __post_init__(self) -> None:
        self.constrained_roles = check_constrained_roles(self.constrained_roles)


@dataclass
class Session:
    """One conversation's memory: what was said, what the customer stated, what the tools did."""

    world: Any
    conversation: list[dict[str, str]] = field(default_factory=list)
    known_entities: dict[str, Any] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)
    turn: int = 0


@dataclass
class TurnResult:
    reply: str
    calls: list[dict[str, Any]]
    actions: list[Action]
    understanding: dict[str, Any]
    fallback: str | None = None  # why the safe fallback reply was used, if it was


def action_dict(a: Action) -> dict[str, Any]:
    return {"turn": a.turn, "name": a.name, "arguments": a.arguments, "result": a.result}


class MAS:
    def __init__(self, domain: Any, backend: Backend, config: MASConfig | None = None,
                 policy_version: str | None = None):
        self.domain, self.backend = domain, backend
        self.config = config or MASConfig()
        self.policy_version = policy_version or domain.policy_version
        self.prompts = build_prompts(domain, self.policy_version, self.config.prompt_style)
        self.rules = domain.rules(self.policy_version)
        self.params = domain.policy_params(self.policy_version)
        self.tool_names = domain.tool_names()
        self.tool_schemas = [t.openai_schema() for t in domain.tools()]
        self.constraints = role_constraints(domain, self.config.constrained_roles)

    def new_session(self, world: Any | None = None) -> Session:
        return Session(world=world if world is not None else self.domain.new_world())

    # ------------------------------------------------------------------------------------------ calls
    def _call(self, session: Session, role: str, payload: dict[str, Any], calls: list[dict[str, Any]],
              extra: list[dict[str, Any]] | None = None, tools: bool = False, attempt: int = 0) -> Completion:
        sent = role_input(role, payload, self.config.prompt_style)
        messages = [{"role": "system", "content": self.prompts.system[role]},
                    {"role": "user", "content": render_input(sent)}] + (extra or [])
        sampling = dict(self.config.sampling)
        cap = self.config.max_tokens.get(role)
        if cap is not None and "max_tokens" in sampling:  # only endpoints are sent max_tokens (scripted: none)
            sampling["max_tokens"] = min(int(sampling["max_tokens"]), cap)
        if role in self.constraints:
            sampling["structured_outputs"] = self.constraints[role]
        comp = self.backend.complete(messages, tools=self.tool_schemas if tools else None, **sampling)
        record = {
            "turn": session.turn, "agent": role, "call_index": len(calls), "attempt": attempt,
            "messages": messages, "completion": comp.text,
            "latency_s": round(comp.latency_s, 6), "tokens_in": comp.tokens_in, "tokens_out": comp.tokens_out,
            "malformed": None, "injected": comp.meta.get("injected"),
        }
        limits = [*comp.meta.get("limits", []), *(["max_tokens"] if comp.meta.get("finish_reason") == "length" else [])]
        if limits:
            record["limits"] = limits
        if tools:
            record["tools"] = self.tool_schemas
            record["tool_calls"] = [tc.to_openai() for tc in comp.tool_calls]
        calls.append(record)
        return comp

    def _session_view(self, session: Session) -> dict[str, Any]:
        return self.domain.session_facts([action_dict(a) for a in session.actions])

    def _base_payload(self, session: Session, utterance: str) -> dict[str, Any]:
        return {
            "today": self.domain.today,
            "utterance": utterance,
            "history": session.conversation[-2 * self.config.history_turns:],
            "known_entities": session.known_entities,
            "session": self._session_view(session),
        }

    # --------------------------------------------------------------------------------------- the turn
    def run_turn(self, session: Session, utterance: str) -> TurnResult:
        """One user turn through the five roles. Model text cannot crash it (mas/model_text.py); any other
        exception comes out as TurnFailed with the calls made so far, so the episode can record them."""
        session.turn += 1
        calls: list[dict[str, Any]] = []
        try:
            return self._run_turn(session, utterance, calls)
        except (UserError, TurnFailed):
            raise  # an endpoint that went away stops the run; it is not this turn's fault
        except Exception as exc:
            raise TurnFailed(calls, exc) from exc

    def _run_turn(self, session: Session, utterance: str, calls: list[dict[str, Any]]) -> TurnResult:
        base = self._base_payload(session, utterance)
        turn_actions: list[Action] = []

        # 1. Understander
        comp = self._call(session, "understander", base, calls)
        try:
            und = understanding(comp.text)
        except ModelTextError as exc:
            calls[-1]["malformed"] = "invalid_json"
            calls[-1]["parse_error"] = exc.kind
            return self._finish(session, utterance, calls, turn_actions, {}, fallback="understander_malformed")
        known = {**session.known_entities, **und["entities"]}

        # 2-3. Planner and Evaluator, with bounded replanning
        plan_obj, feedback, previous = None, None, None
        for attempt in range(self.config.max_replans + 1):
            payload = {**base, "understanding": und, "known_entities": known}
            if feedback:
                payload.update(feedback=feedback, previous_plan=previous)
            comp = self._call(session, "planner", payload, calls, attempt=attempt)
            previous = comp.text
            try:
                candidate = parse_plan(comp.text, self.tool_names)
            except PlanError as exc:
                calls[-1]["malformed"] = "plan_parse_error"
                feedback = f"the plan does not parse: {exc}"
                continue
            violations = self._dry_run(session, candidate, und, known)
            metrics = halstead(candidate)
            calls[-1]["halstead"] = metrics.__dict__
            if violations:
                feedback = "rule check failed: " + "; ".join(f"{v.rule_id} {v.reason}" for v in violations)
                calls[-1]["rule_violations"] = [v.to_dict() for v in violations]
                continue
            if getattr(metrics, self.config.halstead_metric) <= self.config.halstead_threshold:
                plan_obj = candidate
                break
            ev = self._call(session, "evaluator", {**payload, "plan": candidate.source,
                                                    "halstead": metrics.__dict__}, calls, attempt=attempt)
            try:
                decision = verdict(ev.text)
            except ModelTextError as exc:
                calls[-1]["malformed"] = "invalid_json"
                calls[-1]["parse_error"] = exc.kind
                plan_obj = candidate  # the deterministic check passed; do not loop on a broken evaluator
                break
            if decision["verdict"] == "approve":
                plan_obj = candidate
                break
            feedback = decision["feedback"] or "rejected by the evaluator"
        if plan_obj is None:
            return self._finish(session, utterance, calls, turn_actions, und, fallback="replanning_exhausted")

        # 4. Executor, one tool call at a time
        session.known_entities = known
        exec_payload = {**base, "known_entities": known, "plan": plan_obj.source}
        extra: list[dict[str, Any]] = []
        for step in range(self.config.max_executor_steps + 1):
            comp = self._call(session, "executor", exec_payload, calls, extra=list(extra), tools=True)
            if not comp.tool_calls:
                if comp.text.strip().upper() != "DONE":
                    calls[-1]["malformed"] = "no_tool_call_or_done"
                break
            if len(comp.tool_calls) > 1:
                calls[-1]["malformed"] = "multiple_tool_calls"
            if step == self.config.max_executor_steps:
                calls[-1]["malformed"] = "executor_step_limit"
                break
            tc = comp.tool_calls[0]
            tc = ToolCall(tc.name, tc.arguments, tc.id or f"call_{session.turn}_{step}")
            if tc.name not in self.tool_names:
                calls[-1]["malformed"] = "unknown_tool"  # still executed: the tool layer answers with an error
            result = session.world.call_tool(tc.name, tc.arguments)
            action = Action(tc.name, tc.arguments, result, session.turn)
            turn_actions.append(action)
            session.actions.append(action)
            extra += [{"role": "assistant", "content": "", "tool_calls": [tc.to_openai()]},
                      {"role": "tool", "tool_call_id": tc.id, "content": self._tool_content(result, calls[-1])}]

        # 5. Explainer
        terminal = self._terminal(plan_obj, turn_actions)
        payload = {**base, "known_entities": known, "understanding": und, "terminal": terminal,
                   "tool_results": [action_dict(a) for a in turn_actions], "session": self._session_view(session)}
        comp = self._call(session, "explainer", payload, calls)
        reply = comp.text.strip()
        if not reply:
            calls[-1]["malformed"] = "empty_reply"
            return self._finish(session, utterance, calls, turn_actions, und, fallback="empty_reply")
        return self._finish(session, utterance, calls, turn_actions, und, reply=reply)

    def _tool_content(self, result: Any, record: dict[str, Any]) -> str:
        """A tool result as the Executor is shown it: JSON, cut to max_tool_result_chars (recorded when cut)."""
        text = json.dumps(result, sort_keys=True, default=str)
        cap = self.config.max_tool_result_chars
        if len(text) <= cap:
            return text
        record.setdefault("limits", []).append("tool_result_truncated")
        return text[:cap] + f"... [truncated {len(text) - cap} characters]"

    def _terminal(self, plan_obj: Plan, actions: list[Action]) -> dict[str, Any]:
        done = [(a.name, a.arguments, a.result or {}) for a in actions]
        try:
            step = next_step(plan_obj, done)
            if step.kind == "terminal":
                return {"name": step.name, "arguments": step.arguments}
        except PlanError:
            pass
        last = terminal_calls(plan_obj)[-1]  # executor diverged from the plan: fall back to its last terminal
        return {"name": last.name, "arguments": {k: v for k, v in last.arguments.items() if not hasattr(v, "expr")}}

    def _dry_run(self, session: Session, plan_obj: Plan, und: dict[str, Any], known: dict[str, Any]) -> list:
        """The deterministic rule check: run the plan on a copy of the world and check each step."""
        sandbox = session.world.copy()
        done: list[tuple[str, dict, dict]] = []
        planned: list[Action] = []
        violations = []
        for _ in range(self.config.max_executor_steps + 1):
            try:
                step = next_step(plan_obj, done)
            except PlanError:
                break
            if step.kind == "terminal":
                break
            action = Action(step.name, step.arguments, None, session.turn)
            ctx = RuleContext(world=sandbox, params=self.params, history=session.actions + planned,
                              intents=und["intents"], entities=known, action=action)
            violations += check_action(self.rules, ctx)
            action.result = sandbox.call_tool(step.name, step.arguments)
            planned.append(action)
            done.append((step.name, step.arguments, action.result))
        ctx = RuleContext(world=sandbox, params=self.params, history=session.actions, intents=und["intents"],
                          entities=known, turn_actions=planned, reply=None)
        return violations + check_turn(self.rules, ctx)

    def _finish(self, session: Session, utterance: str, calls: list[dict[str, Any]], actions: list[Action],
                und: dict[str, Any], reply: str | None = None, fallback: str | None = None) -> TurnResult:
        reply = reply if reply is not None else self.domain.fallback_reply
        session.conversation += [{"role": "user", "content": utterance}, {"role": "assistant", "content": reply}]
        return TurnResult(reply=reply, calls=calls, actions=actions, understanding=und, fallback=fallback)
