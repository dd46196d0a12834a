"""Error injection: the mistakes a strong but imperfect teacher makes, one mutator per kind.

Each mutator takes the reference output of a role and returns a plausible wrong output, or None when the
kind does not apply to this call (the teacher then tries another kind or stays correct).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from collections.abc import Callable
from typing import Any

FAULT_KINDS: dict[str, tuple[str, ...]] = {
    "understander": ("wrong_entity", "wrong_intent"),
    "planner": ("skipped_identity_check", "hallucinated_vehicle", "premature_booking", "wrong_tool_arguments",
                "missed_rule"),
    "evaluator": ("wrong_verdict",),
    "executor": ("wrong_tool_arguments",),
    "explainer": ("sloppy_reply", "missed_rule"),
}
RELATED_INTENTS = {"search_inventory": "vehicle_details", "vehicle_details": "search_inventory",
                   "book_test_drive": "test_drive_slots", "test_drive_slots": "book_test_drive",
                   "reschedule_test_drive": "book_test_drive", "cancel_test_drive": "list_bookings",
                   "complaint": "off_topic", "legal_question": "off_topic", "request_human": "greeting",
                   "prequalify_financing": "financing_options", "financing_options": "promotions",
                   "trade_in_estimate": "financing_options", "dealer_info": "search_inventory"}
FACT_RE = re.compile(r"\$[\d,]+(?:\.\d\d)?|\b\d{1,2}(?:\.\d+)?% APR|\b[A-Z]\d{4}\b|\bTD\d{4}\b|\bESC\d{4}\b|"
                     r"\b\d\d:\d\d\b|\b\d{4}-\d\d-\d\d\b")


def reply_facts(text: str) -> set[str]:
    """The checkable facts of a reply: amounts, rates, stock numbers, references, times and dates."""
    return set(FACT_RE.findall(text or ""))


def _shift_time(value: str) -> str:
    h, m = value.split(":")
    return f"{(int(h) + 1) % 24:02d}:{m}"


def _mutate_value(value: Any, rng: random.Random) -> Any:
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + rng.choice([-1, 1]) * max(1, abs(value) // 10)
    if isinstance(value, str):
        if re.fullmatch(r"\d\d:\d\d", value):
            return _shift_time(value)
        if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d", value):
            return f"{value[:11]}{_shift_time(value[11:])}"
        if re.fullmatch(r"\d{4}-\d\d-\d\d", value):
            return (dt.date.fromisoformat(value) + dt.timedelta(days=1)).isoformat()
        if re.fullmatch(r"[A-Z]\d{4}", value):
            return f"A{1001 + (int(value[1:]) - 1001 + rng.randint(1, 300)) % 360}"
        if re.fullmatch(r"TD\d{4}", value):
            return f"TD{int(value[2:]) + 1}"
        if re.fullmatch(r"\d{4}", value):
            return f"{(int(value) + 1) % 10000:04d}"
        return value + "s" if value else "x"
    if isinstance(value, list) and value:
        return value[:-1] or [_mutate_value(value[0], rng)]
    return None


# ----------------------------------------------------------------------------------------- by role

def _understander(kind: str, out: str, rng: random.Random) -> str | None:
    obj = json.loads(out)
    if kind == "wrong_entity":
        keys = [k for k, v in obj["entities"].items() if _mutate_value(v, rng) not in (None, v)]
        if not keys:
            return None
        key = rng.choice(sorted(keys))
        obj["entities"][key] = _mutate_value(obj["entities"][key], rng)
    else:
        swap = [i for i in obj["intents"] if i in RELATED_INTENTS]
        if not swap:
            return None
        obj["intents"] = [RELATED_INTENTS[i] if i == swap[0] else i for i in obj["intents"]]
    return json.dumps(obj, sort_keys=True)


_CALL_LINE = re.compile(r"^(\s*)(\w+ = )?(\w+)\((.*)\)$")


def _planner(kind: str, out: str, rng: random.Random) -> str | None:
    lines = out.split("\n")
    if kind == "skipped_identity_check":
        for i, line in enumerate(lines):
            if line.startswith('if not v["verified"]:'):
                return "\n".join(lines[:i] + lines[i + 2:])
        return None
    if kind == "hallucinated_vehicle":
        stocks = sorted(set(re.findall(r'"([A-Z]\d{4})"', out)))
        if not stocks:
            return None
        fake = f"A{rng.randint(9001, 9999)}"
        return out.replace(f'"{stocks[0]}"', f'"{fake}"')
    if kind == "premature_booking":  # book without first checking that the time is free
        if "book_test_drive(" not in out or "list_test_drive_slots(" not in out:
            return None
        kept, skip_reply = [], False
        for ln in lines:
            if ln.startswith("sl = list_test_drive_slots"):
                continue
            if ln.startswith('if "') and 'sl["slots"]' in ln:
                skip_reply = True
                continue
            if skip_reply:
                skip_reply = False
                continue
            kept.append(ln)
        return "\n".join(kept)
    if kind == "wrong_tool_arguments":
        candidates = [(i, m) for i, ln in enumerate(lines) if (m := _CALL_LINE.match(ln))
                      and m.group(3) not in ("reply", "ask") and re.search(r'=(?:"[^"]*"|\d+)', m.group(4))]
        if not candidates:
            return None
        i, _ = rng.choice(candidates)
        literals = list(re.finditer(r'(\w+)=("[^"]*"|\d+)', lines[i]))
        lit = rng.choice([m for m in literals if m.group(1) != "summary"] or literals)
        value = json.loads(lit.group(2))
        new = _mutate_value(value, rng)
        if new in (None, value):
            return None
        lines[i] = lines[i][:lit.start(2)] + json.dumps(new) + lines[i][lit.end(2):]
        return "\n".join(lines)
    if kind == "missed_rule":
        keep = [ln for ln in lines if "escalate_to_human(" not in ln]
        return "\n".join(keep) if len(keep) < len(lines) else None
    return None


def _evaluator(kind: str, out: str, rng: random.Random) -> str | None:
    obj = json.loads(out)
    if obj["verdict"] == "approve":
        return json.dumps({"verdict": "reject", "feedback": "the plan may not follow the policy; double-check it"})
    return json.dumps({"verdict": "approve", "feedback": ""})


def _explainer(kind: str, out: str, rng: random.Random, inp: dict[str, Any]) -> str | None:
    if kind == "sloppy_reply":
        parts = re.split(r"(?<=[.!?:])\s+|\n", out)
        with_facts = [p for p in parts if reply_facts(p)]
        if not with_facts:
            return None
        drop = rng.choice(with_facts)
        text = " ".join(p for p in parts if p is not drop).strip()
        return text if reply_facts(text) != reply_facts(out) else None
    prequalified = any(a.get("name") == "prequalify_financing" for a in inp.get("tool_results") or [])
    if prequalified:
        return out + " If you buy this week I can give you a $500 discount on top."
    return out + rng.choice([" Our rates start at 3.9% APR.", " We can also give you a $500 discount if you buy today."])


def inject(role: str, kind: str, output: str, inp: dict[str, Any], rng: random.Random) -> str | None:
    """Return the faulty version of `output`, or None when `kind` does not apply here."""
    fn: dict[str, Callable[..., str | None]] = {"understander": _understander, "planner": _planner,
                                                "evaluator": _evaluator}
    try:
        if role == "explainer":
            return _explainer(kind, output, rng, inp)
        if role in fn:
            return fn[role](kind, output, rng)
    except (ValueError, KeyError, TypeError):
        return None
    return None


def mutate_tool_call(arguments: dict[str, Any], rng: random.Random) -> dict[str, Any] | None:
    """Executor fault: one argument changed to a plausible wrong value."""
    keys = [k for k, v in arguments.items() if k != "summary" and _mutate_value(v, rng) not in (None, v)]
    if not keys:
        return None
    key = rng.choice(sorted(keys))
    return {**arguments, key: _mutate_value(arguments[key], rng)}
