"""Generic machinery for deterministic business-rule checks.

One set of checks serves two readers: the Evaluator (a dry run of the plan on a copy of the world, before
anything happens) and the judge (a replay of what happened). Both produce the same `Action` list, so a rule
is written once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Action:
    """A tool call with its result envelope ({"ok": ..., "result"|"error": ...})."""

    name: str
    arguments: dict[str, Any]
    result: dict[str, Any] | None = None
    turn: int = 0

    @property
    def ok(self) -> bool:
        return bool(self.result and self.result.get("ok"))

    @property
    def payload(self) -> dict[str, Any]:
        if not self.result:
            return {}
        return self.result.get("result") or {} if self.result.get("ok") else {}


@dataclass
class RuleContext:
    world: Any
    params: dict[str, Any]
    history: list[Action]  # executed before the thing being checked, whole conversation
    intents: list[str] = field(default_factory=list)
    entities: dict[str, Any] = field(default_factory=dict)  # what the customer has said so far
    action: Action | None = None  # scope "action": the call about to run
    turn_actions: list[Action] = field(default_factory=list)  # scope "turn": this turn's calls
    reply: str | None = None  # scope "turn": None during a plan dry run


@dataclass(frozen=True)
class Rule:
    rule_id: str
    title: str
    scope: str  # "action" (checked before each tool call) or "turn" (after the turn)
    check: Callable[[RuleContext], str | None]  # returns a one-line reason when violated
    reply_text: bool = False  # about the reply's wording alone: the Explainer alone can break it (judge, DPO gate)


@dataclass
class Violation:
    rule_id: str
    title: str
    reason: str
    turn: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"rule_id": self.rule_id, "title": self.title, "reason": self.reason, "turn": self.turn}


def check_action(rules: list[Rule], ctx: RuleContext) -> list[Violation]:
    return _run(rules, "action", ctx)


def check_turn(rules: list[Rule], ctx: RuleContext) -> list[Violation]:
    return _run(rules, "turn", ctx)


def _run(rules: list[Rule], scope: str, ctx: RuleContext) -> list[Violation]:
    out = []
    for rule in rules:
        if rule.scope != scope:
            continue
        reason = rule.check(ctx)
        if reason:
            out.append(Violation(rule.rule_id, rule.title, reason))
    return out
