"""The mistakes of a strong but imperfect teacher that look the same in every domain: a slot value nudged to a
plausible wrong one, a related but wrong intent, a flipped verdict, a wrong literal in a plan, a reply that drops
a fact. A domain adds its own (skipped checks, invented items) and says how its ids are nudged.

Each injector takes the reference output and returns a wrong version, or None when it does not apply.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from collections.abc import Callable, Sequence
from typing import Any

IdRule = tuple[str, Callable[[str, random.Random], str]]  # (full-match regex, how a matching id is nudged)
ValueMutator = Callable[[Any, random.Random], Any]


def shift_time(value: str) -> str:
    h, m = value.split(":")
    return f"{(int(h) + 1) % 24:02d}:{m}"


def mutate_value(value: Any, rng: random.Random, ids: Sequence[IdRule] = ()) -> Any:
    """A plausible wrong value of the same kind (None when there is none): numbers off by ~10%, times an hour
    later, dates a day later, a domain id to another id of its kind, four digits to the next four."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + rng.choice([-1, 1]) * max(1, abs(value) // 10)
    if isinstance(value, str):
        if re.fullmatch(r"\d\d:\d\d", value):
            return shift_time(value)
        if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d", value):
            return f"{value[:11]}{shift_time(value[11:])}"
        if re.fullmatch(r"\d{4}-\d\d-\d\d", value):
            return (dt.date.fromisoformat(value) + dt.timedelta(days=1)).isoformat()
        for pattern, nudge in ids:
            if re.fullmatch(pattern, value):
                return nudge(value, rng)
        if re.fullmatch(r"\d{4}", value):
            return f"{(int(value) + 1) % 10000:04d}"
        return value + "s" if value else "x"
    if isinstance(value, list) and value:
        return value[:-1] or [mutate_value(value[0], rng, ids)]
    return None


def wrong_understanding(kind: str, out: str, rng: random.Random, related: dict[str, str],
                        mutate: ValueMutator) -> str | None:
    """Understander faults: "wrong_entity" (one entity value nudged) or else a related intent in place of one."""
    obj = json.loads(out)
    if kind == "wrong_entity":
        keys = [k for k, v in obj["entities"].items() if mutate(v, rng) not in (None, v)]
        if not keys:
            return None
        key = rng.choice(sorted(keys))
        obj["entities"][key] = mutate(obj["entities"][key], rng)
    else:
        swap = [i for i in obj["intents"] if i in related]
        if not swap:
            return None
        obj["intents"] = [related[i] if i == swap[0] else i for i in obj["intents"]]
    return json.dumps(obj, sort_keys=True)


def flipped_verdict(out: str) -> str:
    obj = json.loads(out)
    if obj["verdict"] == "approve":
        return json.dumps({"verdict": "reject", "feedback": "the plan may not follow the policy; double-check it"})
    return json.dumps({"verdict": "approve", "feedback": ""})


CALL_LINE = re.compile(r"^(\s*)(\w+ = )?(\w+)\((.*)\)$")


def wrong_plan_literal(out: str, rng: random.Random, mutate: ValueMutator, free_text: frozenset[str]) -> str | None:
    """A plan with one literal argument of one tool call nudged (free-text arguments only when nothing else)."""
    lines = out.split("\n")
    candidates = [(i, m) for i, ln in enumerate(lines) if (m := CALL_LINE.match(ln))
                  and m.group(3) not in ("reply", "ask") and re.search(r'=(?:"[^"]*"|\d+)', m.group(4))]
    if not candidates:
        return None
    i, _ = rng.choice(candidates)
    literals = list(re.finditer(r'(\w+)=("[^"]*"|\d+)', lines[i]))
    lit = rng.choice([m for m in literals if m.group(1) not in free_text] or literals)
    value = json.loads(lit.group(2))
    new = mutate(value, rng)
    if new in (None, value):
        return None
    lines[i] = lines[i][:lit.start(2)] + json.dumps(new) + lines[i][lit.end(2):]
    return "\n".join(lines)


def sloppy_reply(out: str, rng: random.Random, reply_facts: Callable[[str], set[str]]) -> str | None:
    """A reply with one fact-bearing sentence dropped."""
    parts = re.split(r"(?<=[.!?:])\s+|\n", out)
    with_facts = [p for p in parts if reply_facts(p)]
    if not with_facts:
        return None
    drop = rng.choice(with_facts)
    text = " ".join(p for p in parts if p is not drop).strip()
    return text if reply_facts(text) != reply_facts(out) else None


def mutate_call_arguments(arguments: dict[str, Any], rng: random.Random, mutate: ValueMutator,
                          free_text: frozenset[str]) -> dict[str, Any] | None:
    """Executor fault: one (non-free-text) argument changed to a plausible wrong value."""
    keys = [k for k, v in arguments.items() if k not in free_text and mutate(v, rng) not in (None, v)]
    if not keys:
        return None
    key = rng.choice(sorted(keys))
    return {**arguments, key: mutate(arguments[key], rng)}
