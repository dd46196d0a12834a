"""The scripted teacher: a correct reference implementation of every role, plus configurable error injection.

It reads the same messages an LLM would (role from the system prompt, input JSON from the user message)
and writes exactly the text, JSON, plan or tool call an LLM would, so its outputs are training targets.
Injection is a pure function of the input and the seed, so a run is reproducible.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from agentdistill.errors import UserError
from agentdistill.mas.plan import PlanError, next_step, parse_plan
from agentdistill.mas.prompts import parse_input, role_of
from agentdistill.types import Completion, ToolCall, approx_tokens


@dataclass
class FaultConfig:
    """How often and how the teacher errs. `rate` is per agent call; `mix` weights fault kinds (default equal)."""

    rate: float = 0.0
    mix: dict[str, float] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise UserError(f"error rate must be between 0 and 1, got {self.rate}")
        if any(w < 0 for w in self.mix.values()):
            raise UserError("error mix weights must be >= 0")


def executed_calls(messages: list[dict[str, Any]]) -> list[tuple[str, dict, dict]]:
    """(name, arguments, result) of the tool calls already made in an executor conversation."""
    results = {m.get("tool_call_id"): m.get("content") for m in messages if m.get("role") == "tool"}
    done = []
    for m in messages:
        for tc in m.get("tool_calls") or []:
            call = ToolCall.from_openai(tc)
            raw = results.get(call.id)
            try:
                result = json.loads(raw) if raw else {}
            except json.JSONDecodeError:
                result = {}
            done.append((call.name, call.arguments, result))
    return done


class ScriptedTeacher:
    """Backend whose answers come from the domain's reference behaviour (see module docstring)."""

    def __init__(self, domain: Any, faults: FaultConfig | None = None, name: str = "scripted"):
        self.domain = domain
        self.faults = faults or FaultConfig()
        self.name = name
        self.oracle: dict[str, dict[str, Any]] = {}
        known = {k for kinds in domain.fault_kinds.values() for k in kinds}
        unknown = set(self.faults.mix) - known
        if unknown:
            raise UserError(f"unknown fault kind(s) {sorted(unknown)}; allowed: {sorted(known)}")

    def set_oracle(self, oracle: dict[str, dict[str, Any]]) -> None:
        """Gold readings of the scripted user's utterances, keyed by text (the Understander's oracle)."""
        self.oracle = oracle

    # ---------------------------------------------------------------------------------------------
    def reference(self, messages: list[dict[str, Any]]) -> tuple[str, str, list[ToolCall]]:
        """(role, text, tool_calls) of the correct answer to these messages."""
        role = role_of(messages[0].get("content", "")) if messages else None
        inp = parse_input(messages[1].get("content", "")) if len(messages) > 1 else {}
        if role == "understander":
            return role, json.dumps(self.domain.reference_understand(inp, self.oracle), sort_keys=True), []
        if role == "planner":
            return role, self.domain.reference_plan(inp), []
        if role == "evaluator":
            return role, json.dumps(self.domain.reference_evaluate(inp), sort_keys=True), []
        if role == "executor":
            try:
                step = next_step(parse_plan(inp.get("plan", ""), self.domain.tool_names()),
                                 executed_calls(messages[2:]))
            except PlanError:
                return role, "DONE", []
            if step.kind == "terminal":
                return role, "DONE", []
            n = sum(len(m.get("tool_calls") or []) for m in messages)
            return role, "", [ToolCall(step.name, step.arguments, f"call_{n}")]
        if role == "explainer":
            return role, self.domain.reference_explain(inp), []
        raise UserError(f"scripted teacher cannot tell which role this prompt is for ({role!r})")

    def _rng(self, messages: list[dict[str, Any]]) -> random.Random:
        digest = hashlib.sha256(json.dumps(messages[1:], sort_keys=True, default=str).encode()).hexdigest()
        return random.Random(f"{self.faults.seed}:{digest}")

    def _inject(self, role: str, text: str, calls: list[ToolCall], messages: list[dict[str, Any]]):
        rng = self._rng(messages)
        if self.faults.rate <= 0 or rng.random() >= self.faults.rate:
            return text, calls, None
        mix = self.faults.mix
        weights = {k: (mix.get(k, 0.0) if mix else 1.0) for k in self.domain.fault_kinds.get(role, ())}
        # weighted random order: try the likeliest kind first, fall back to the others when it does not apply
        kinds = sorted((k for k, w in weights.items() if w > 0), key=lambda k: -weights[k] * rng.random())
        inp = parse_input(messages[1].get("content", ""))
        for kind in kinds:
            if role == "executor":
                if not calls:
                    return text, calls, None
                args = self.domain.mutate_tool_call(calls[0].arguments, rng)
                if args is not None:
                    return text, [ToolCall(calls[0].name, args, calls[0].id)], kind
                continue
            wrong = self.domain.inject_fault(role, kind, text, inp, rng)
            if wrong is not None and wrong != text:
                return wrong, calls, kind
        return text, calls, None

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                 **sampling: Any) -> Completion:
        t0 = time.perf_counter()
        role, text, calls = self.reference(messages)
        text, calls, injected = self._inject(role, text, calls, messages)
        out_tokens = approx_tokens(text) + sum(approx_tokens(json.dumps(c.arguments)) + 2 for c in calls)
        return Completion(
            text=text, tool_calls=calls,
            tokens_in=sum(approx_tokens(str(m.get("content") or "")) for m in messages), tokens_out=out_tokens,
            latency_s=time.perf_counter() - t0, model=self.name,
            meta={"injected": injected, "role": role},
        )
