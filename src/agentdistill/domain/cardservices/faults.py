"""Error injection for the card desk: the mistakes a strong but imperfect teacher makes, one mutator per kind
(the domain-independent ones come from domain/faultkit.py). Each returns a wrong output or None."""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import Any

from agentdistill.domain import faultkit
from agentdistill.domain.mutatorkit import drop_guard

FAULT_KINDS: dict[str, tuple[str, ...]] = {
    "understander": ("wrong_entity", "wrong_intent"),
    "planner": ("skipped_identity_check", "skipped_precondition", "wrong_tool_arguments", "missed_rule"),
    "evaluator": ("wrong_verdict",),
    "executor": ("wrong_tool_arguments",),
    "explainer": ("sloppy_reply", "missed_rule"),
}
RELATED_INTENTS = {"freeze_card": "report_lost_card", "unfreeze_card": "freeze_card",
                   "report_lost_card": "freeze_card", "replace_card": "report_lost_card",
                   "recent_transactions": "card_details", "dispute_transaction": "recent_transactions",
                   "dispute_status": "dispute_transaction", "limit_increase": "card_details",
                   "card_details": "list_cards", "list_cards": "card_details", "report_fraud": "complaint",
                   "complaint": "off_topic", "request_human": "greeting", "fees": "branch_info",
                   "branch_info": "fees", "travel_notice": "card_details"}
FACT_RE = re.compile(r"\$[\d,]+\.\d\d|\b\d+(?:\.\d+)?%|\bending \d{4}\b|\b(?:TX\d{5}|DP\d{4}|TN\d{4}|LR\d{4}|RP\d{4}|"
                     r"ESC\d{4})\b|\b\d{4}-\d\d-\d\d\b|\b\d\d:\d\d\b")
_IDS: tuple[faultkit.IdRule, ...] = (
    (r"TX\d{5}", lambda v, rng: f"TX{int(v[2:]) + rng.randint(1, 40)}"),
    (r"(DP|TN|LR|RP)\d{4}", lambda v, rng: f"{v[:2]}{int(v[2:]) + 1}"),
    (r"\d{5}", lambda v, rng: f"{(int(v) + rng.randint(1, 9)) % 100000:05d}"),
)
FREE = frozenset({"summary"})
PRECONDITIONS = ('if c["status"]', 'if c["kind"]', 'if c["credit_limit"]', 'if tx["status"]', 'if tx["date"]',
                 'if ds["open_count"]', 'if "TX')


def reply_facts(text: str) -> set[str]:
    """The checkable facts of a reply: amounts, percentages, cards, references and dates."""
    return set(FACT_RE.findall(text or ""))


def mutate_value(value: Any, rng: random.Random) -> Any:
    return faultkit.mutate_value(value, rng, _IDS)


def _planner(kind: str, out: str, rng: random.Random) -> str | None:
    lines = out.split("\n")
    if kind == "skipped_identity_check":
        kept = drop_guard(lines, 'if not v["verified"]:')
        return "\n".join(kept) if kept != lines else None
    if kind == "skipped_precondition":  # act without checking the card, the transaction or the open disputes
        guards = [ln for ln in lines if ln.startswith(PRECONDITIONS)]
        return "\n".join(drop_guard(lines, rng.choice(guards))) if guards else None
    if kind == "wrong_tool_arguments":
        return faultkit.wrong_plan_literal(out, rng, mutate_value, FREE)
    if kind == "missed_rule":  # no ticket, or a lost card replaced without being blocked first
        keep = [ln for ln in lines if "escalate_to_human(" not in ln and "report_lost_card(" not in ln]
        keep = [ln for ln in keep if ln != 'if c["status"] in ["active", "frozen"]:']
        return "\n".join(keep) if len(keep) < len(lines) and keep[-1].lstrip().startswith("reply(") else None
    return None


def _explainer(kind: str, out: str, rng: random.Random, inp: dict[str, Any]) -> str | None:
    if kind == "sloppy_reply":
        return faultkit.sloppy_reply(out, rng, reply_facts)
    if "Fee: $" in out:
        return re.sub(r" Fee: \$[\d,.]+, \w+ delivery in \d+ business days\.", "", out)
    return out + rng.choice([" We'll refund the charge right away.", " I can also waive the fee for you."])


def inject(role: str, kind: str, output: str, inp: dict[str, Any], rng: random.Random) -> str | None:
    """Return the faulty version of `output`, or None when `kind` does not apply here."""
    fn: dict[str, Callable[..., str | None]] = {
        "understander": lambda k, o, r: faultkit.wrong_understanding(k, o, r, RELATED_INTENTS, mutate_value),
        "planner": _planner, "evaluator": lambda k, o, r: faultkit.flipped_verdict(o)}
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
    return faultkit.mutate_call_arguments(arguments, rng, mutate_value, FREE)
