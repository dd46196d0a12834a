"""The card desk's reference Understander, Planner and Evaluator: what a perfect teacher writes.

The scripted teacher calls these on the same JSON inputs an LLM role gets, so its outputs are training targets,
and the judge re-runs them for the corrected output y*. Plans check every precondition the policy names with a
tool before acting (card status, transaction status and date, open disputes), so the rule check of the plan's
dry run and the judge's replay agree with the plan.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from agentdistill.domain import planning
from agentdistill.domain.planning import PlanBuilder
from agentdistill.mas.plan import Ref

from .policy import ESCALATION_INTENTS, POLICY_PARAMS, VERIFY
from .tools import TOOLS

IDENTITY_SLOTS = ("dob", "zip")
INTENT_SLOTS: dict[str, tuple[str, ...]] = {
    "greeting": (), "goodbye": (), "list_cards": (), "card_details": ("card_last4",),
    "freeze_card": ("card_last4",), "unfreeze_card": ("card_last4",),
    "report_lost_card": ("card_last4", "card_problem"), "replace_card": ("card_last4", "card_problem"),
    "recent_transactions": ("card_last4",), "dispute_transaction": ("txn_id", "dispute_reason"),
    "dispute_status": ("dispute_id",), "travel_notice": ("country", "depart_date", "return_date"),
    "limit_increase": ("card_last4", "new_limit"), "branch_info": (), "fees": (), "report_fraud": (),
    "complaint": (), "request_human": (), "refund_demand": (), "other_customer_data": (), "prompt_injection": (),
    "off_topic": (),
}
PERSONAL_INTENTS = frozenset({"list_cards", "card_details", "freeze_card", "unfreeze_card", "report_lost_card",
                              "replace_card", "recent_transactions", "dispute_transaction", "dispute_status",
                              "travel_notice", "limit_increase"})
FREE_TEXT_ARGS = frozenset({"summary"})
TOOL_NAMES = frozenset(TOOLS)
REFUSALS = {"other_customer_data": "privacy_refusal", "prompt_injection": "injection_refusal"}


def session_facts(history: list[dict[str, Any]]) -> dict[str, Any]:
    """What the conversation has established: the verified customer, from executed tool calls."""
    facts: dict[str, Any] = {"verified": False}
    for a in history:
        res = a.get("result") or {}
        payload = res.get("result") or {}
        if a.get("name") == VERIFY and res.get("ok") and payload.get("verified"):
            facts = {"verified": True, "customer_id": payload.get("customer_id"), "first_name": payload.get("first_name")}
    return facts


# ----------------------------------------------------------------------------------------- understander

def understand(inp: dict[str, Any], oracle: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return planning.understand(inp, oracle, keyword_reading, INTENT_SLOTS, PERSONAL_INTENTS, IDENTITY_SLOTS,
                               "off_topic")


_KEYWORDS = [
    ("report_fraud", r"fraud|didn't make|did not make|someone (?:is )?using"),
    ("complaint", r"complain|terrible|unacceptable|worst"), ("request_human", r"\bhuman\b|real person|manager"),
    ("unfreeze_card", r"unfreeze|unlock|found (?:it|my card)"), ("freeze_card", r"\bfreeze|\block\b"),
    ("report_lost_card", r"\blost\b|stolen"), ("replace_card", r"replace|new card|damaged|broken"),
    ("dispute_status", r"status of (?:my )?dispute|DP\d{4}"), ("dispute_transaction", r"dispute|don't recogni"),
    ("recent_transactions", r"transactions|charges|statement"), ("travel_notice", r"travel|abroad|trip"),
    ("limit_increase", r"limit"), ("list_cards", r"my cards|which cards"), ("fees", r"\bfees?\b|charge for"),
    ("branch_info", r"branch|hours|open|address"), ("refund_demand", r"refund|money back|waive"),
    ("greeting", r"^\s*(?:hi|hello|hey)\b"), ("goodbye", r"\b(?:bye|thanks?|thank you)\b"),
]


def keyword_reading(text: str) -> dict[str, Any]:
    """A crude reader for utterances the oracle has never seen (LLM user simulator)."""
    low = text.lower()
    intents = [name for name, pat in _KEYWORDS if re.search(pat, low)][:2] or ["off_topic"]
    entities: dict[str, Any] = {}
    if m := re.search(r"(?:ending|ends|last (?:four|4)(?: digits)?)[^\d]{0,12}(\d{4})\b", low):
        entities["card_last4"] = m.group(1)
    if m := re.search(r"\bTX\d{5}\b", text):
        entities["txn_id"] = m.group(0)
    if m := re.search(r"\bDP\d{4}\b", text):
        entities["dispute_id"] = m.group(0)
    if m := re.search(r"\b(19\d\d-\d\d-\d\d)\b", text):
        entities["dob"] = m.group(1)
    if m := re.search(r"\bzip(?: code)?(?: is)?\s*(\d{5})\b", low):
        entities["zip"] = m.group(1)
    for word in ("lost", "stolen", "damaged"):
        if word in low:
            entities["card_problem"] = word
    return {"intents": intents, "entities": entities}


# -------------------------------------------------------------------------------------------- planner

def cutoff(today: str, params: dict[str, Any]) -> str:
    """The oldest transaction date that can still be disputed."""
    return (dt.date.fromisoformat(today) - dt.timedelta(days=params["dispute_window_days"])).isoformat()


def travel_ok(known: dict[str, Any], today: str, params: dict[str, Any]) -> bool:
    try:
        depart, back = dt.date.fromisoformat(known["depart_date"]), dt.date.fromisoformat(known["return_date"])
    except (ValueError, TypeError):
        return False
    return dt.date.fromisoformat(today) <= depart <= back and (back - depart).days <= params["max_travel_days"]


def _above(value: Any, cap: int) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > cap


def plan(inp: dict[str, Any], policy_version: str) -> str:
    """The policy-compliant plan for this turn, as restricted-Python source."""
    params = POLICY_PARAMS[policy_version]
    und = inp.get("understanding") or {}
    intents: list[str] = list(und.get("intents") or [])
    known: dict[str, Any] = {**(inp.get("known_entities") or {}), **(und.get("entities") or {})}
    said = und.get("entities") or {}
    session = inp.get("session") or {}
    today = inp.get("today", "")
    p = PlanBuilder()
    topics: list[str] = []
    cid: Any = session.get("customer_id")

    def customer() -> Any:
        """Customer id: from an earlier verification, or a verify call guarded by an early reply (once a plan)."""
        nonlocal cid
        if session.get("verified") or isinstance(cid, Ref):
            return cid
        p.call(VERIFY, "v", dob=known.get("dob"), zip=known.get("zip"))
        p.raw('if not v["verified"]:')
        p.call("reply", indent=1, topics=["identity_failed"])
        cid = Ref('v["customer_id"]')
        return cid

    blocked = False  # a report_lost_card call earlier in this plan
    for intent in intents:
        missing = [s for s in INTENT_SLOTS.get(intent, ()) if known.get(s) in (None, "", [])]
        if intent in PERSONAL_INTENTS and not session.get("verified"):
            missing += [s for s in IDENTITY_SLOTS if known.get(s) in (None, "")]
        if missing:
            p.call("ask", missing=missing, topics=["identity_needed" if set(missing) <= set(IDENTITY_SLOTS)
                                                   else "ask_missing"])
            return p.source()
        card = known.get("card_last4")
        if intent in ("greeting", "goodbye", "off_topic", "other_customer_data", "prompt_injection"):
            topics.append(REFUSALS.get(intent, intent))
        elif intent == "refund_demand":
            topics.append("no_refund_promises")
        elif intent == "travel_notice" and not travel_ok(known, today, params):
            p.call("reply", topics=["travel_window"])
            return p.source()
        elif intent == "limit_increase" and _above(known["new_limit"], params["max_credit_limit"]):
            p.call("reply", topics=["limit_cap"])
            return p.source()
        elif (intent == "replace_card" and known["card_problem"] == "damaged" and known.get("delivery") == "express"
              and not params["express_for_damaged"]):
            p.call("reply", topics=["express_lost_only"])
            return p.source()
        elif intent == "list_cards":
            p.call("list_cards", "cards", customer_id=customer())
            topics.append("cards")
        elif intent == "card_details":
            p.call("get_card", "c", customer_id=customer(), card_last4=card)
            topics.append("card_details")
        elif intent in ("freeze_card", "unfreeze_card"):
            need = "active" if intent == "freeze_card" else "frozen"
            p.call("get_card", "c", customer_id=customer(), card_last4=card)
            p.raw(f'if c["status"] != "{need}":')
            p.call("reply", indent=1, topics=[f"not_{need}"])
            p.call(intent, "f", customer_id=cid, card_last4=card)
            topics.append("frozen" if intent == "freeze_card" else "unfrozen")
        elif intent == "report_lost_card":
            p.call("report_lost_card", "b", customer_id=customer(), card_last4=card, reason=known["card_problem"])
            blocked = True
            topics.append("blocked")
        elif intent == "replace_card":
            problem = known["card_problem"]
            cid = customer()
            if problem in ("lost", "stolen") and not blocked:
                p.call("get_card", "c", customer_id=cid, card_last4=card)
                p.raw('if c["status"] in ["active", "frozen"]:')
                p.call("report_lost_card", "b", indent=1, customer_id=cid, card_last4=card, reason=problem)
            args = {"delivery": known["delivery"]} if known.get("delivery") in ("standard", "express") else {}
            p.call("replace_card", "r", customer_id=cid, card_last4=card, reason=problem, **args)
            topics.append("replacement")
        elif intent == "recent_transactions":
            p.call("list_transactions", "t", customer_id=customer(), card_last4=card)
            topics.append("transactions")
        elif intent == "dispute_transaction":
            txn = known["txn_id"]
            p.call("get_transaction", "tx", customer_id=customer(), txn_id=txn)
            p.raw('if tx["status"] != "posted":')
            p.call("reply", indent=1, topics=["dispute_not_posted"])
            p.raw(f'if tx["date"] < "{cutoff(today, params)}":')
            p.call("reply", indent=1, topics=["dispute_too_old"])
            p.call("list_disputes", "ds", customer_id=cid)
            p.raw(f'if "{txn}" in ds["open_txn_ids"]:')
            p.call("reply", indent=1, topics=["already_disputed"])
            p.raw(f'if ds["open_count"] >= {params["max_open_disputes"]}:')
            p.call("reply", indent=1, topics=["dispute_limit"])
            p.call("open_dispute", "d", customer_id=cid, txn_id=txn, reason=known["dispute_reason"])
            topics.append("dispute_opened")
        elif intent == "dispute_status":
            p.call("get_dispute", "d", customer_id=customer(), dispute_id=known["dispute_id"])
            topics.append("dispute_status")
        elif intent == "travel_notice":
            p.call("set_travel_notice", "n", customer_id=customer(), country=known["country"],
                   depart_date=known["depart_date"], return_date=known["return_date"])
            topics.append("travel_set")
        elif intent == "limit_increase":
            new = known["new_limit"]
            p.call("get_card", "c", customer_id=customer(), card_last4=card)
            p.raw('if c["kind"] != "credit":')
            p.call("reply", indent=1, topics=["not_credit"])
            p.raw('if c["status"] != "active":')
            p.call("reply", indent=1, topics=["limit_card_inactive"])
            p.raw(f'if c["credit_limit"] >= {new}:')
            p.call("reply", indent=1, topics=["not_an_increase"])
            p.call("request_limit_increase", "lr", customer_id=cid, card_last4=card, new_limit=new)
            topics.append("limit_result")
        elif intent == "branch_info":
            p.call("get_branch_info", "br", **({"branch_id": said["branch_id"]} if "branch_id" in said else {}))
            topics.append("branch_info")
        elif intent == "fees":
            p.call("get_fee_schedule", "fs")
            topics.append("fees")
        elif intent in ESCALATION_INTENTS:
            args: dict[str, Any] = {"reason": ESCALATION_INTENTS[intent],
                                    "summary": (inp.get("utterance") or intent)[:200]}
            if session.get("verified"):
                args["customer_id"] = session.get("customer_id")
            p.call("escalate_to_human", "t", **args)
            topics.append("escalated")
    p.call("reply", topics=topics or ["off_topic"])
    return p.source()


def evaluate(inp: dict[str, Any], policy_version: str) -> dict[str, Any]:
    """Approve the plan iff it implies the same calls as the reference plan for the same context."""
    return planning.evaluate_by_reference(inp, plan(inp, policy_version), TOOL_NAMES, FREE_TEXT_ARGS)


def plan_signature(plan_obj: Any) -> list[tuple]:
    return planning.plan_signature(plan_obj, FREE_TEXT_ARGS)
