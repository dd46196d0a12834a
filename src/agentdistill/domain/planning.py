"""Reference-behaviour plumbing every scripted domain shares: the Understander's oracle reading with missing
slots, a plan-source builder, the plan signature the judge compares, and an Evaluator that approves exactly the
plans equivalent to the reference plan.

What a domain writes itself is the business: which intents need which slots, and the plan and reply per intent.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from agentdistill.mas.plan import PlanError, implied_calls, parse_plan, render_call, terminal_calls


def understand(inp: dict[str, Any], oracle: dict[str, dict[str, Any]], read: Callable[[str], dict[str, Any]],
               intent_slots: Mapping[str, tuple[str, ...]], personal_intents: set[str] | frozenset[str],
               identity_slots: tuple[str, ...], fallback_intent: str,
               satisfied: Callable[[str, dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    """The Understander's answer: the oracle's gold reading of the utterance (or `read` for free text), with the
    intents' slots not yet known, and the identity slots for a personal intent before verification, as missing.
    `satisfied(slot, session)` says a slot the session already settles (e.g. the booking just made)."""
    utterance = inp.get("utterance", "")
    gold = oracle.get(utterance.strip())
    reading = dict(gold) if gold is not None else read(utterance)
    intents = list(reading.get("intents") or [fallback_intent])
    entities = dict(reading.get("entities") or {})
    known = {**(inp.get("known_entities") or {}), **entities}
    session = inp.get("session") or {}
    verified = bool(session.get("verified"))
    missing: list[str] = []
    for intent in intents:
        for slot in intent_slots.get(intent, ()):
            if satisfied is not None and satisfied(slot, session):
                continue
            if slot not in known and slot not in missing:
                missing.append(slot)
        if intent in personal_intents and not verified:
            missing += [s for s in identity_slots if s not in known and s not in missing]
    return {"intents": intents, "entities": entities, "missing": missing}


class PlanBuilder:
    """Builds plan source line by line."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def call(self, name: str, target: str | None = None, indent: int = 0, **args: Any) -> None:
        self.lines.append("    " * indent + render_call(name, args, target))

    def raw(self, line: str, indent: int = 0) -> None:
        self.lines.append("    " * indent + line)

    def source(self) -> str:
        return "\n".join(self.lines)


def plan_signature(plan_obj: Any, free_text: frozenset[str]) -> list[tuple]:
    """What makes two plans equivalent: the calls they imply (free-text arguments ignored) and their terminals."""
    def norm(args: dict[str, Any]) -> str:
        return json.dumps({k: repr(v) for k, v in args.items() if k not in free_text}, sort_keys=True)

    return [(c.name, norm(c.arguments), c.conditional) for c in implied_calls(plan_obj)] + [
        (t.name, norm(t.arguments)) for t in terminal_calls(plan_obj)
    ]


def evaluate_by_reference(inp: dict[str, Any], reference: str, tool_names: frozenset[str],
                          free_text: frozenset[str]) -> dict[str, Any]:
    """Approve the plan in `inp` iff it implies the same calls as `reference`, the reference plan for the same
    context; a rejection names the expected calls and reply topics (the replanning feedback)."""
    try:
        got = parse_plan(inp.get("plan", ""), tool_names)
        want = parse_plan(reference, tool_names)
    except PlanError as exc:
        return {"verdict": "reject", "feedback": f"the plan does not parse: {exc}"}
    if plan_signature(got, free_text) == plan_signature(want, free_text):
        return {"verdict": "approve", "feedback": ""}
    want_calls = ", ".join(c.name for c in implied_calls(want)) or "no tool calls"
    terminal = terminal_calls(want)[-1].arguments.get("topics") if terminal_calls(want) else None
    return {"verdict": "reject",
            "feedback": f"the plan does not follow the policy for this request; expected calls: {want_calls}; "
                        f"final reply topics: {terminal}"}
