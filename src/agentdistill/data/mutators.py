"""Automatic hard negatives: turn a correct agent output into a plausible but wrong one.

A domain provides its mutators (`Domain.mutators()`, in the domain's own folder): one per business rule and
per tool-argument error type, each a small pure function of the correct call, registered with `registrar`.
A mutator returns None when it does not apply to that call (a planner mutator that needs a plan with a
particular tool, an explainer mutator that needs a particular kind of reply, ...). The DPO builder keeps an
output only if the judge rejects it (`gate.JudgeGate`), so a mutator that happens to produce something
acceptable costs a dropped pair, never a wrong label.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agentdistill.mas.prompts import parse_input

Output = tuple[str, list[dict[str, Any]]]  # (completion, OpenAI tool calls)


@dataclass
class MutationInput:
    """A correct call with what a mutator may read: its parsed input, its episode, the world, an rng."""

    call: dict[str, Any]
    episode: dict[str, Any] | None
    world: Any
    rng: random.Random
    policy_version: str = "v1"

    @property
    def inp(self) -> dict[str, Any]:
        msgs = self.call.get("messages") or []
        return parse_input(msgs[1].get("content", "")) if len(msgs) > 1 else {}

    @property
    def text(self) -> str:
        return self.call.get("completion") or ""

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        return self.call.get("tool_calls") or []


@dataclass(frozen=True)
class Mutator:
    name: str
    agent: str
    rule: str  # the policy rule it breaks, or the error type ("args", "understanding", "verdict")
    description: str
    fn: Callable[[MutationInput], Output | None]

    def __call__(self, m: MutationInput) -> Output | None:
        try:
            out = self.fn(m)
        except (KeyError, ValueError, TypeError, IndexError, json.JSONDecodeError):
            return None
        if out is None or (out[0] == m.text and out[1] == m.tool_calls):
            return None
        return out


def registrar(registry: dict[str, Mutator]) -> Callable[[str, str, str, str], Callable]:
    """A decorator factory that adds a domain's mutator functions to its `registry`."""
    def mutator(name: str, agent: str, rule: str, description: str) -> Callable:
        def register(fn: Callable[[MutationInput], Output | None]) -> Callable:
            registry[name] = Mutator(name, agent, rule, description, fn)
            return fn
        return register
    return mutator


def for_agent(mutators: dict[str, Mutator], agent: str) -> list[Mutator]:
    return [m for m in mutators.values() if m.agent == agent]
