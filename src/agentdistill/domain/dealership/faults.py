"""Error injection: the mistakes a strong but imperfect teacher makes, one mutator per kind.

Each mutator takes the reference output of a role and returns a plausible wrong output, or None when the
kind does not apply to this call (the teacher then tries another kind or stays correct).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from agentdistill.domain import faultkit

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


_IDS: tuple[faultkit.IdRule, ...] = (
    (r"[A-Z]\d{4}", lambda v, rng: f"A{1001 + (int(v[1:]) - 1001 + rng.randint(1, 300)) % 360}"),
    (r"TD\d{4}", lambda v, rng: f"TD{int(v[2:]) + 1}"),
)
FREE = frozenset({"summary"})


def _mutate_value(value: Any, rng: random.Random) -> Any:
    return faultkit.mutate_value(value, rng, _IDS)


# ----------------------------------------------------------------------------------------- by role

def _understander(kind: str, out: str, rng: random.Random) -> str | None:
    return faultkit.wrong_understanding(kind, out, rng, RELATED_INTENTS, _mutate_value)


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
        return faultkit.wrong_plan_literal(out, rng, _mutate_value, FREE)
    if kind == "missed_rule":
        keep = [ln for ln in lines if "escalate_to_human(" not in ln]
        return "\n".join(keep) if len(keep) < len(lines) else None
    return None


def _evaluator(kind: str, out: str, rng: random.Random) -> str | None:
    return faultkit.flipped_verdict(out)


def _explainer(kind: str, out: str, rng: random.Random, inp: dict[str, Any]) -> str | None:
    if kind == "sloppy_reply":
        return faultkit.sloppy_reply(out, rng, reply_facts)
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
    return faultkit.mutate_call_arguments(arguments, rng, _mutate_value, FREE)
