"""Helpers for a domain's hard-negative mutators (data/mutators.py `Mutator`): reading a correct call (its single
tool call, its reply, its turn's tool results), writing a wrong one, and the mutators that look the same in
every domain (a required argument dropped, a guard removed from a plan)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from agentdistill.data.mutators import MutationInput, Output


def drop_guard(lines: list[str], head: str) -> list[str]:
    """Remove the line starting with `head` and the indented block under it."""
    out, skipping = [], False
    for ln in lines:
        if ln.startswith(head):
            skipping = True
            continue
        if skipping and ln.startswith("    "):
            continue
        skipping = False
        out.append(ln)
    return out


def reply_text(m: MutationInput) -> str | None:
    """The Explainer's reply, or None for a call that has none."""
    return m.text if m.text.strip() and m.text != "DONE" else None


def ok_results(m: MutationInput) -> dict[str, dict[str, Any]]:
    """tool name -> result payload of this turn's successful tool calls (an Explainer input)."""
    return {a.get("name", ""): ((a.get("result") or {}).get("result") or {}) for a in m.inp.get("tool_results") or []
            if (a.get("result") or {}).get("ok")}


def one_call(m: MutationInput) -> tuple[str, dict[str, Any], str] | None:
    """(name, arguments, id) of an Executor step with exactly one tool call."""
    if len(m.tool_calls) != 1:
        return None
    fn = m.tool_calls[0].get("function") or {}
    args = fn.get("arguments") or "{}"
    return fn.get("name", ""), (json.loads(args) if isinstance(args, str) else dict(args)), m.tool_calls[0].get("id", "")


def with_args(name: str, args: dict[str, Any], call_id: str) -> Output:
    return "", [{"id": call_id, "type": "function",
                 "function": {"name": name, "arguments": json.dumps(args, sort_keys=True)}}]


def shift(value: str, days: int = 0, hours: int = 0) -> str:
    """A 'YYYY-MM-DD' or 'YYYY-MM-DDTHH:MM' value moved by days and hours."""
    if "T" in value:
        t = dt.datetime.strptime(value, "%Y-%m-%dT%H:%M") + dt.timedelta(days=days, hours=hours)
        return t.strftime("%Y-%m-%dT%H:%M")
    return (dt.date.fromisoformat(value) + dt.timedelta(days=days)).isoformat()


def shift_first(m: MutationInput, keys: tuple[str, ...], steps: list[int], unit: str) -> Output | None:
    """The call's first date/time argument among `keys`, moved by a random step of `unit` (days or hours)."""
    got = one_call(m)
    key = next((k for k in keys if got and isinstance(got[1].get(k), str)), None)
    if not key:
        return None
    name, args, cid = got
    args[key] = shift(args[key], **{unit: m.rng.choice(steps)})
    return with_args(name, args, cid)


def missing_argument(m: MutationInput, free_text: frozenset[str] = frozenset({"summary"})) -> Output | None:
    """An Executor step with one (non-free-text) argument left out."""
    got = one_call(m)
    if not got:
        return None
    name, args, cid = got
    keys = sorted(k for k in args if k not in free_text)
    if not keys:
        return None
    del args[m.rng.choice(keys)]
    return with_args(name, args, cid)


def from_fault(inject: Callable[..., str | None], role: str, kind: str) -> Callable[[MutationInput], Output | None]:
    """A mutator that applies one of the domain's injected faults (`Reference.inject_fault`) to a correct output."""
    def mutate(m: MutationInput) -> Output | None:
        out = inject(role, kind, m.text, m.inp, m.rng)
        return (out, []) if out else None
    return mutate
