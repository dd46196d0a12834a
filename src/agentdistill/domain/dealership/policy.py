"""The dealership's versioned business policy: the text the roles read and one deterministic check per rule.

v2 changes rules 6 and 15 and adds rule 17, for the later "business rules changed" experiments.
"""

from __future__ import annotations

import datetime as dt
import re
from importlib import resources
from typing import Any

from agentdistill.domain import rulekit
from agentdistill.domain.rules import Action, Rule, RuleContext

POLICY_PARAMS: dict[str, dict[str, Any]] = {
    "v1": {"max_active_bookings": 2, "booking_horizon_days": 14, "sunday_test_drives": True},
    "v2": {"max_active_bookings": 1, "booking_horizon_days": 7, "sunday_test_drives": False},
}
_V2_EXTRA = "17. **No Sunday test drives.** Test drives are not offered on Sundays at any location.\n"

PERSONAL_TOOLS = {"book_test_drive", "reschedule_test_drive", "cancel_test_drive", "list_bookings",
                  "prequalify_financing"}
BOOKING_TOOLS = {"book_test_drive", "reschedule_test_drive"}
REFERENCE_TOOLS = {"book_test_drive": "booking_id", "reschedule_test_drive": "booking_id",
                   "cancel_test_drive": "booking_id", "escalate_to_human": "ticket_id"}
ESCALATION_INTENTS = {"complaint": "complaint", "legal_question": "legal", "request_human": "request_human"}
REPLY_TEXT_RULES = {"R2", "R3", "R7", "R12", "R13", "R14"}  # rules an explainer alone can break

RATE_RE = re.compile(r"\b\d{1,2}(?:\.\d+)?\s?%\s*(?:apr|interest|rate)|\bapr\b[^.]{0,30}\d{1,2}(?:\.\d+)?\s?%", re.I)
DISCOUNT_RE = re.compile(
    r"\b(?:i|we)(?:'ll| will| can| could| would)(?:\s+also|\s+\w+ly)?\s+(?:give|offer|get|knock|take|do|match)\b"
    r"[^.]{0,40}?(?:discount|\boff\b|lower price|better price|price match|special price)"
    r"|\b\d+\s?%\s+off\b|\bprice match\b",
    re.I,
)
SENSITIVE_RE = re.compile(
    r"social security|\bssn\b|full card number|card number|bank account number|password|full date of birth",
    re.I,
)
INTERNAL_RE = re.compile(r"\bC\d{4}\b|credit score (?:is|of)\s*\d|system prompt|my instructions|\bverify_customer_"
                         r"identity\b|\bbook_test_drive\b|\bsearch_inventory\b", re.I)
STOCK_RE = re.compile(r"\b[A-Z]\d{4}\b")
MONEY_RE = re.compile(r"\$\s?\d[\d,]*")
REFUSAL_RE = re.compile(r"\b(?:I can only help|I'm only able to help|I can help with)\b", re.I)


def policy_text(version: str) -> str:
    params = POLICY_PARAMS[version]
    template = resources.files("agentdistill.domain.dealership").joinpath("policy.md").read_text()
    return template.format(
        version=version,
        max_active_bookings=params["max_active_bookings"],
        booking_horizon_days=params["booking_horizon_days"],
        extra_rules=_V2_EXTRA if not params["sunday_test_drives"] else "",
    )


# --- helpers over the history ---------------------------------------------------------------------------

def verified_customer(history: list[Action]) -> str | None:
    """The customer id of the last successful identity verification, if any."""
    return rulekit.verified_id(history, "verify_customer_identity")


def _prequalified(actions: list[Action]) -> bool:
    return any(a.name == "prequalify_financing" and a.ok and a.payload.get("approved") for a in actions)


def _booking_vehicle(ctx: RuleContext, action: Action) -> str | None:
    if action.name == "book_test_drive":
        return action.arguments.get("stock_no")
    rows = ctx.world.query("SELECT stock_no FROM bookings WHERE booking_id = ?", (action.arguments.get("booking_id"),))
    return rows[0]["stock_no"] if rows else None


def _start(action: Action) -> str | None:
    return action.arguments.get("start") or action.arguments.get("new_start")


def _parse_start(value: Any) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(str(value), "%Y-%m-%dT%H:%M")
    except ValueError:
        return None


# --- the checks -------------------------------------------------------------------------------------------

r1_identity = rulekit.identity_first(PERSONAL_TOOLS, "verify_customer_identity")


def r2_no_rate(ctx: RuleContext) -> str | None:
    if ctx.reply and RATE_RE.search(ctx.reply) and not _prequalified(ctx.history + ctx.turn_actions):
        return "reply quotes an interest rate before the customer was pre-qualified"
    return None


NEGATION_RE = re.compile(r"can't|cannot|can not|don't|do not|won't|not able|unable|never", re.I)


r3_no_discount = rulekit.no_unnegated(DISCOUNT_RE, NEGATION_RE, "reply promises a discount or price negotiation")


def r4_available(ctx: RuleContext) -> str | None:
    a = ctx.action
    if a is None or a.name not in BOOKING_TOOLS:
        return None
    stock = _booking_vehicle(ctx, a)
    rows = ctx.world.query("SELECT status FROM vehicles WHERE stock_no = ?", (stock,))
    if rows and rows[0]["status"] != "available":
        return f"test drive booked on vehicle {stock}, which is {rows[0]['status']}"
    return None


def r5_hours(ctx: RuleContext) -> str | None:
    a = ctx.action
    if a is None or a.name not in BOOKING_TOOLS:
        return None
    start = _parse_start(_start(a))
    stock = _booking_vehicle(ctx, a)
    rows = ctx.world.query("SELECT location_id FROM vehicles WHERE stock_no = ?", (stock,))
    if start is None or not rows:
        return None  # malformed input is the tool's business; it will refuse
    hours = ctx.world.location_hours(rows[0]["location_id"], start.date().isoformat())
    if hours is None:
        return f"test drive at {start:%Y-%m-%d %H:%M} falls on a day the location is closed"
    hhmm = start.strftime("%H:%M")
    last = (dt.datetime.strptime(hours[1], "%H:%M") - dt.timedelta(minutes=30)).strftime("%H:%M")
    if not (hours[0] <= hhmm <= last):
        return f"test drive at {hhmm} is outside business hours {hours[0]}-{hours[1]}"
    return None


def r6_limit(ctx: RuleContext) -> str | None:
    a = ctx.action
    if a is None or a.name != "book_test_drive":
        return None
    rows = ctx.world.query(
        "SELECT COUNT(*) AS n FROM bookings WHERE customer_id = ? AND status = 'active'",
        (a.arguments.get("customer_id"),),
    )
    limit = ctx.params["max_active_bookings"]
    if rows and rows[0]["n"] >= limit:
        return f"customer already holds {rows[0]['n']} active bookings (limit {limit})"
    return None


def _customer_rows(world: Any) -> tuple[tuple[str, str, str, str], ...]:
    return tuple(
        (r["customer_id"], r["email"], r["phone"], f"{r['first_name']} {r['last_name']}")
        for r in world.query("SELECT customer_id, email, phone, first_name, last_name FROM customers ORDER BY 1")
    )


r7_privacy = rulekit.no_other_customers_data(_customer_rows, "verify_customer_identity")
r8_off_topic = rulekit.off_topic_refused("off_topic", REFUSAL_RE)
r9_escalate = rulekit.escalated(ESCALATION_INTENTS, "escalate_to_human")


def r10_requested_time(ctx: RuleContext) -> str | None:
    a = ctx.action
    if a is None or a.name not in BOOKING_TOOLS:
        return None
    date, time = ctx.entities.get("date"), ctx.entities.get("time")
    if not (date and time) or _start(a) != f"{date}T{time}":
        return f"booked {_start(a)!r} but the customer asked for {date!r} at {time!r}"
    return None


def r11_no_invented_vehicles(ctx: RuleContext) -> str | None:
    stocks: list[str] = []
    if ctx.action is not None:
        args = ctx.action.arguments
        stocks = [args["stock_no"]] if isinstance(args.get("stock_no"), str) else []
        stocks += [s for s in args.get("stock_nos") or [] if isinstance(s, str)]
    elif ctx.reply:
        stocks = STOCK_RE.findall(ctx.reply)
    for stock in stocks:
        if not ctx.world.query("SELECT 1 FROM vehicles WHERE stock_no = ?", (stock,)):
            return f"stock number {stock} does not exist"
    return None


def r12_trade_in_estimate(ctx: RuleContext) -> str | None:
    if not ctx.reply or not any(a.name == "estimate_trade_in" and a.ok for a in ctx.turn_actions):
        return None
    low = ctx.reply.lower()
    if MONEY_RE.search(ctx.reply) and not ("estimate" in low and "inspection" in low):
        return "trade-in figure given without saying it is an estimate subject to inspection"
    return None


r13_sensitive = rulekit.reply_must_not_match(SENSITIVE_RE, "reply asks for or mentions sensitive data")
r14_internal = rulekit.reply_must_not_match(
    INTERNAL_RE, "reply reveals internal ids, credit scores, instructions or tool names")


def r15_window(ctx: RuleContext) -> str | None:
    a = ctx.action
    if a is None or a.name not in BOOKING_TOOLS:
        return None
    start = _parse_start(_start(a))
    if start is None:
        return None
    today = dt.date.fromisoformat(ctx.world.today)
    days = (start.date() - today).days
    if not 1 <= days <= ctx.params["booking_horizon_days"]:
        return f"test drive on {start.date()} is outside the booking window (1-{ctx.params['booking_horizon_days']} days)"
    return None


r16_reference = rulekit.references_stated(REFERENCE_TOOLS)


def r17_no_sunday(ctx: RuleContext) -> str | None:
    a = ctx.action
    if ctx.params["sunday_test_drives"] or a is None or a.name not in BOOKING_TOOLS:
        return None
    start = _parse_start(_start(a))
    if start is not None and start.weekday() == 6:
        return "test drive booked on a Sunday"
    return None


_ALL = [
    ("R1", "Identity first", "action", r1_identity),
    ("R2", "No rates before pre-qualification", "turn", r2_no_rate),
    ("R3", "No discounts or negotiation", "turn", r3_no_discount),
    ("R4", "Only available vehicles", "action", r4_available),
    ("R5", "Business hours", "action", r5_hours),
    ("R6", "Booking limit", "action", r6_limit),
    ("R7", "Privacy", "turn", r7_privacy),
    ("R8", "Stay on topic", "turn", r8_off_topic),
    ("R9", "Escalate complaints, legal questions, requests for a person", "turn", r9_escalate),
    ("R10", "The customer chooses the time", "action", r10_requested_time),
    ("R11", "No invented vehicles (tool arguments)", "action", r11_no_invented_vehicles),
    ("R11", "No invented vehicles (replies)", "turn", r11_no_invented_vehicles),
    ("R12", "Trade-in figures are estimates", "turn", r12_trade_in_estimate),
    ("R13", "No sensitive data requests", "turn", r13_sensitive),
    ("R14", "No internal details", "turn", r14_internal),
    ("R15", "Booking window", "action", r15_window),
    ("R16", "Confirm what you did", "turn", r16_reference),
    ("R17", "No Sunday test drives", "action", r17_no_sunday),
]


def rules(version: str) -> list[Rule]:
    params = POLICY_PARAMS[version]
    return [
        Rule(rid, title, scope, check, reply_text=rid in REPLY_TEXT_RULES)
        for rid, title, scope, check in _ALL
        if rid != "R17" or not params["sunday_test_drives"]
    ]
