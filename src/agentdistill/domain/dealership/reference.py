"""The dealership's reference behaviour for every LLM role: what a perfect teacher writes.

The scripted teacher (backends/scripted.py) calls these functions on the same JSON inputs an LLM role gets,
so its outputs are valid training targets, and the judge re-runs them to produce the corrected output y*.
The Understander reads the customer's words through an oracle (the simulator's gold reading of each
scripted utterance); for free text it falls back to a small keyword reader.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any

from agentdistill.domain import planning
from agentdistill.domain.dealership.policy import POLICY_PARAMS
from agentdistill.domain.phrasing import WEEKDAY
from agentdistill.domain.planning import PlanBuilder
from agentdistill.mas.plan import Ref

IDENTITY_SLOTS = ("email", "phone_last4")
PERSONAL_INTENTS = {"book_test_drive", "reschedule_test_drive", "cancel_test_drive", "list_bookings",
                    "prequalify_financing"}
INTENT_SLOTS: dict[str, tuple[str, ...]] = {
    "greeting": (), "goodbye": (), "search_inventory": (), "vehicle_details": ("stock_no",),
    "compare_vehicles": ("stock_nos",), "dealer_info": (), "test_drive_slots": ("stock_no", "date"),
    "book_test_drive": ("stock_no", "date", "time"), "reschedule_test_drive": ("booking_id", "date", "time"),
    "cancel_test_drive": ("booking_id",), "list_bookings": (),
    "trade_in_estimate": ("make", "model", "year", "mileage", "condition"), "financing_options": (),
    "prequalify_financing": ("amount", "term_months"), "promotions": (), "complaint": (),
    "legal_question": (), "request_human": (), "discount_request": (), "other_customer_data": (),
    "prompt_injection": (), "off_topic": (),
}
SEARCH_FILTERS = ("make", "model", "body", "condition", "min_year", "max_price", "colour", "location_id")
SLOT_PHRASES = {
    "stock_no": "the stock number of the vehicle", "stock_nos": "the stock numbers to compare",
    "date": "the date you'd like", "time": "the time you'd like", "booking_id": "your booking id",
    "make": "the make", "model": "the model", "year": "the year", "mileage": "the mileage",
    "condition": "its condition (excellent, good, fair or poor)", "amount": "the amount to finance",
    "term_months": "the loan term (36, 48, 60 or 72 months)",
    "email": "the email address on file", "phone_last4": "the last four digits of your phone number",
}
ESCALATION_REASONS = {"complaint": "complaint", "legal_question": "legal", "request_human": "request_human"}
FALLBACK_REPLY = "I'm sorry, something went wrong on my side. Could you rephrase or try again?"


# --------------------------------------------------------------------------------------------- session

def session_facts(history: list[dict[str, Any]]) -> dict[str, Any]:
    """What the conversation has established so far, from executed tool calls (name/arguments/result)."""
    facts: dict[str, Any] = {"verified": False}
    for a in history:
        res = a.get("result") or {}
        if a.get("name") == "verify_customer_identity" and res.get("ok"):
            payload = res.get("result") or {}
            if payload.get("verified"):
                facts = {"verified": True, "customer_id": payload.get("customer_id"),
                         "first_name": payload.get("first_name")}
        if a.get("name") in ("book_test_drive", "reschedule_test_drive") and res.get("ok"):
            facts["last_booking_id"] = (res.get("result") or {}).get("booking_id")
    return facts


# ----------------------------------------------------------------------------------------- understander

def understand(inp: dict[str, Any], oracle: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return planning.understand(inp, oracle, keyword_reading, INTENT_SLOTS, PERSONAL_INTENTS, IDENTITY_SLOTS,
                               "off_topic", satisfied=_booking_known)


def _booking_known(slot: str, session: dict[str, Any]) -> bool:
    """A reschedule right after a booking needs no booking id: the session holds the one just made."""
    return slot == "booking_id" and bool(session.get("last_booking_id"))


_KEYWORDS = [
    ("complaint", r"complain|terrible|unacceptable|angry|worst"), ("legal_question", r"lawyer|legal|sue\b|lemon law"),
    ("request_human", r"\bhuman\b|real person|manager|agent\b"), ("cancel_test_drive", r"\bcancel"),
    ("reschedule_test_drive", r"reschedul|move (?:my|the) (?:test drive|booking)"),
    ("book_test_drive", r"\bbook\b|schedule|test[- ]?drive"), ("list_bookings", r"my bookings|my appointments"),
    ("trade_in_estimate", r"trade[- ]?in|trade my"), ("prequalify_financing", r"pre-?qualif"),
    ("financing_options", r"financ|loan|lease"), ("promotions", r"promo|deal|offer|incentive"),
    ("discount_request", r"discount|lower (?:the )?price|best price|negotiat"),
    ("dealer_info", r"hours|open|address|located|location|directions"),
    ("compare_vehicles", r"compare|versus|\bvs\b"), ("greeting", r"^\s*(?:hi|hello|hey)\b"),
    ("goodbye", r"\b(?:bye|thanks?|thank you)\b"), ("search_inventory", r"looking for|do you have|any\b|search"),
]


def keyword_reading(text: str) -> dict[str, Any]:
    """A crude reader for utterances the oracle has never seen (LLM user simulator)."""
    low = text.lower()
    intents = [name for name, pat in _KEYWORDS if re.search(pat, low)][:2] or ["off_topic"]
    entities: dict[str, Any] = {}
    stocks = re.findall(r"\b[A-Z]\d{4}\b", text)
    if len(stocks) == 1:
        entities["stock_no"] = stocks[0]
    elif stocks:
        entities["stock_nos"] = stocks
    if m := re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", text):
        entities["email"] = m.group(0).lower()
    if m := re.search(r"(?:ends? (?:in|with)|last (?:four|4)[^\d]{0,20})(\d{4})", low):
        entities["phone_last4"] = m.group(1)
    if m := re.search(r"\b(20\d\d-\d\d-\d\d)\b", text):
        entities["date"] = m.group(1)
    if m := re.search(r"\b([01]?\d|2[0-3]):([0-5]\d)\b", text):
        entities["time"] = f"{int(m.group(1)):02d}:{m.group(2)}"
    if m := re.search(r"\bTD\d{4}\b", text):
        entities["booking_id"] = m.group(0)
    return {"intents": intents, "entities": entities}


# -------------------------------------------------------------------------------------------- planner

def _in_window(date: str, today: str, params: dict[str, Any]) -> bool:
    try:
        d = dt.date.fromisoformat(date)
    except ValueError:
        return False
    days = (d - dt.date.fromisoformat(today)).days
    if not params["sunday_test_drives"] and d.weekday() == 6:
        return False
    return 1 <= days <= params["booking_horizon_days"]


def plan(inp: dict[str, Any], policy_version: str) -> str:
    """The policy-compliant plan for this turn, as restricted-Python source."""
    params = POLICY_PARAMS[policy_version]
    und = inp.get("understanding") or {}
    intents: list[str] = list(und.get("intents") or [])
    known: dict[str, Any] = {**(inp.get("known_entities") or {}), **(und.get("entities") or {})}
    said = und.get("entities") or {}  # this turn's words: searches use only these, never stale filters
    session = inp.get("session") or {}
    today = inp.get("today", "")
    p = PlanBuilder()
    topics: list[str] = []

    def customer(p: PlanBuilder) -> Any:
        """Customer id: from an earlier verification, or a verify call guarded by an early reply."""
        if session.get("verified"):
            return session.get("customer_id")
        p.call("verify_customer_identity", "v", email=known.get("email"), phone_last4=known.get("phone_last4"))
        p.raw('if not v["verified"]:')
        p.call("reply", indent=1, topics=["identity_failed"])
        return Ref('v["customer_id"]')

    def needs(*slots: str) -> list[str]:
        return [s for s in slots if known.get(s) in (None, "", [])]

    for intent in intents:
        personal = intent in PERSONAL_INTENTS
        missing = needs(*INTENT_SLOTS.get(intent, ()))
        if intent == "reschedule_test_drive" and "booking_id" in missing and session.get("last_booking_id"):
            known["booking_id"] = session["last_booking_id"]
            missing.remove("booking_id")
        if intent == "book_test_drive" and missing == ["time"]:
            intent, missing = "test_drive_slots", []
        if intent in ("book_test_drive", "reschedule_test_drive") and not missing and not _in_window(
            known["date"], today, params
        ):
            p.call("reply", topics=["outside_window"])
            return p.source()
        if personal and not session.get("verified"):
            missing += needs(*IDENTITY_SLOTS)
        if missing:
            p.call("ask", missing=missing, topics=["identity_needed" if set(missing) <= set(IDENTITY_SLOTS)
                                                   else "ask_missing"])
            return p.source()
        if intent in ("greeting", "goodbye", "off_topic", "other_customer_data", "prompt_injection"):
            topics.append({"other_customer_data": "privacy_refusal",
                           "prompt_injection": "injection_refusal"}.get(intent, intent))
        elif intent == "search_inventory":
            filters = {k: said[k] for k in SEARCH_FILTERS if k in said}
            p.call("search_inventory", "s", **filters)
            topics.append("search_results")
        elif intent == "vehicle_details" and "stock_no" in said:
            p.call("get_vehicle", "d", stock_no=known["stock_no"])
            topics.append("vehicle_details")
        elif intent == "vehicle_details":
            filters = {k: said[k] for k in SEARCH_FILTERS if k in said}
            p.call("search_inventory", "s", **filters)
            topics.append("clarify_vehicle")
        elif intent == "compare_vehicles":
            p.call("compare_vehicles", "c", stock_nos=list(known["stock_nos"]))
            topics.append("comparison")
        elif intent == "dealer_info":
            args = {"location_id": said["location_id"]} if "location_id" in said else {}
            p.call("get_dealer_info", "i", **args)
            topics.append("dealer_info")
        elif intent == "test_drive_slots":
            p.call("list_test_drive_slots", "sl", stock_no=known["stock_no"], date=known["date"])
            topics.append("slots")
        elif intent == "book_test_drive":
            stock, date, time = known["stock_no"], known["date"], known["time"]
            p.call("get_vehicle", "veh", stock_no=stock)
            p.raw('if veh["status"] != "available":')
            p.call("search_inventory", "alt", indent=1, make=Ref('veh["make"]'), model=Ref('veh["model"]'))
            p.call("reply", indent=1, topics=["vehicle_unavailable"])
            p.call("list_test_drive_slots", "sl", stock_no=stock, date=date)
            p.raw(f'if {json.dumps(time)} not in sl["slots"]:')
            p.call("reply", indent=1, topics=["time_unavailable"])
            cid = customer(p)
            p.call("list_bookings", "bk", customer_id=cid)
            p.raw(f'if len(bk["bookings"]) >= {params["max_active_bookings"]}:')
            p.call("reply", indent=1, topics=["booking_limit"])
            p.call("book_test_drive", "b", customer_id=cid, stock_no=stock, start=f"{date}T{time}")
            topics.append("booking_confirmed")
        elif intent == "reschedule_test_drive":
            cid = customer(p)
            p.call("reschedule_test_drive", "r", customer_id=cid, booking_id=known["booking_id"],
                   new_start=f"{known['date']}T{known['time']}")
            topics.append("rescheduled")
        elif intent == "cancel_test_drive":
            cid = customer(p)
            p.call("cancel_test_drive", "x", customer_id=cid, booking_id=known["booking_id"])
            topics.append("cancelled")
        elif intent == "list_bookings":
            cid = customer(p)
            p.call("list_bookings", "bk", customer_id=cid)
            topics.append("bookings")
        elif intent == "trade_in_estimate":
            p.call("estimate_trade_in", "e", make=known["make"], model=known["model"], year=known["year"],
                   mileage=known["mileage"], condition=known["condition"])
            topics.append("trade_in")
        elif intent == "financing_options":
            p.call("list_financing_products", "f")
            topics.append("financing_products")
        elif intent == "prequalify_financing":
            cid = customer(p)
            p.call("prequalify_financing", "q", customer_id=cid, amount=known["amount"],
                   term_months=known["term_months"])
            topics.append("prequal_result")
        elif intent == "promotions":
            p.call("get_promotions", "pr", **{k: said[k] for k in ("make", "model") if k in said})
            topics.append("promotions")
        elif intent == "discount_request":
            p.call("get_promotions", "pr", **{k: said[k] for k in ("make", "model") if k in said})
            topics.append("no_discounts")
        elif intent in ESCALATION_REASONS:
            args: dict[str, Any] = {"reason": ESCALATION_REASONS[intent],
                                    "summary": (inp.get("utterance") or intent)[:200]}
            if session.get("verified"):
                args["customer_id"] = session.get("customer_id")
            p.call("escalate_to_human", "t", **args)
            topics.append("escalated")
    p.call("reply", topics=topics or ["off_topic"])
    return p.source()


# ------------------------------------------------------------------------------------------ evaluator

def evaluate(inp: dict[str, Any], policy_version: str) -> dict[str, Any]:
    """Approve the plan iff it implies the same calls as the reference plan for the same context."""
    from agentdistill.domain.dealership.tools import TOOLS

    return planning.evaluate_by_reference(inp, plan(inp, policy_version), frozenset(TOOLS), FREE_TEXT_ARGS)


FREE_TEXT_ARGS = frozenset({"summary"})


def plan_signature(plan_obj: Any) -> list[tuple]:
    """What makes two plans equivalent: the calls they imply (free text ignored) and their terminals."""
    return planning.plan_signature(plan_obj, FREE_TEXT_ARGS)


# ------------------------------------------------------------------------------------------ explainer

def money(x: Any) -> str:
    return f"${int(round(float(x))):,}"


def when(start: str) -> str:
    d = dt.datetime.strptime(start, "%Y-%m-%dT%H:%M")
    return f"{WEEKDAY[d.weekday()]} {d:%Y-%m-%d} at {d:%H:%M}"


def _vehicle_line(v: dict[str, Any]) -> str:
    return (f"- {v.get('stock_no')}: {v.get('year')} {v.get('make')} {v.get('model')} {v.get('trim')}, "
            f"{v.get('colour')}, {v.get('condition')}, {money(v.get('price', 0))}, "
            f"{int(v.get('mileage') or 0):,} miles")


def _hours_text(hours: dict[str, Any]) -> str:
    parts = []
    for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"):
        h = hours.get(day)
        parts.append(f"{day.capitalize()} {h[0]}-{h[1]}" if h else f"{day.capitalize()} closed")
    return ", ".join(parts)


def explain(inp: dict[str, Any], policy_version: str) -> str:
    """The customer-facing reply from the plan's terminal step and this turn's tool results."""
    params = POLICY_PARAMS[policy_version]
    terminal = inp.get("terminal") or {}
    args = terminal.get("arguments") or {}
    topics: list[str] = list(args.get("topics") or [])
    results: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    for a in inp.get("tool_results") or []:
        res = a.get("result") or {}
        if res.get("ok"):
            results[a.get("name", "")] = res.get("result") or {}
        else:
            errors.append((res.get("error") or {}).get("message", "unknown error"))
    known = inp.get("known_entities") or {}
    session = inp.get("session") or {}
    if terminal.get("name") == "ask":
        missing = [SLOT_PHRASES.get(m, m.replace("_", " ")) for m in args.get("missing") or []]
        if "identity_needed" in topics:
            return ("To do that I first need to verify your identity. Please share the email address on file "
                    "and the last four digits of your phone number.")
        return f"To help with that, could you tell me {' and '.join(missing)}?"
    parts = [_topic_text(t, results, known, session, params, inp.get("today", "")) for t in topics]
    if errors and not any(parts):
        parts.append("I'm sorry, I couldn't complete that: " + customer_safe(errors[0]))
    return "\n\n".join(p for p in parts if p) or FALLBACK_REPLY


_CUSTOMER_ID = r"'?\bC\d{4}\b'?"


def customer_safe(message: str) -> str:
    """A tool's error message as the customer may read it: tools name internal customer ids ("No booking
    'TD1044' found for customer 'C1128'"), which policy rule 14 keeps from the customer."""
    message = re.sub(rf" found for customer {_CUSTOMER_ID}", " found among your bookings", message)
    message = re.sub(rf"No customer with id {_CUSTOMER_ID}", "No matching customer record", message)
    return re.sub(_CUSTOMER_ID, "(internal id)", message)


def _topic_text(topic: str, r: dict[str, dict[str, Any]], known: dict[str, Any], session: dict[str, Any],
                params: dict[str, Any], today: str) -> str:
    name = session.get("first_name")
    if topic == "greeting":
        hello = f"Hello {name}!" if name else "Hello!"
        return (f"{hello} I'm the virtual assistant for Downtown Motors, Northside Auto and Airport Road Cars. "
                "I can help you find a vehicle, book a test drive, estimate a trade-in, explore financing or "
                "check our promotions. What can I do for you?")
    if topic == "goodbye":
        return "Thanks for chatting with us. Have a great day!"
    if topic in ("search_results", "clarify_vehicle"):
        s = r.get("search_inventory") or {}
        vehicles = s.get("vehicles") or []
        if not vehicles:
            return "I couldn't find any vehicles matching that. Would you like to widen the search?"
        lines = "\n".join(_vehicle_line(v) for v in vehicles)
        if topic == "clarify_vehicle":
            return (f"I found {s.get('count')} vehicles matching that description:\n{lines}\n"
                    "Which one do you mean? You can tell me its stock number.")
        return f"I found {s.get('count')} matching vehicles. Here are the top {len(vehicles)}:\n{lines}"
    if topic == "vehicle_details":
        v = r.get("get_vehicle") or {}
        if not v:
            return "I couldn't find that vehicle. Could you check the stock number?"
        features = ", ".join(v.get("features") or []) or "none listed"
        return (f"The {v.get('year')} {v.get('make')} {v.get('model')} {v.get('trim')} (stock {v.get('stock_no')}) "
                f"is {v.get('colour')}, {v.get('condition')}, with {int(v.get('mileage') or 0):,} miles, priced at "
                f"{money(v.get('price', 0))}. Features: {features}. It is at {v.get('location_name', v.get('location_id'))} "
                f"and its status is {v.get('status')}.")
    if topic == "comparison":
        c = r.get("compare_vehicles") or {}
        lines = "\n".join(_vehicle_line(v) for v in c.get("vehicles") or [])
        return (f"Here is the comparison:\n{lines}\nThe cheapest is {c.get('cheapest')}, the lowest mileage is "
                f"{c.get('lowest_mileage')} and the newest is {c.get('newest')}.")
    if topic == "dealer_info":
        locs = (r.get("get_dealer_info") or {}).get("locations") or []
        return "\n".join(f"{loc['name']}, {loc['address']} ({loc['phone']}). Hours: {_hours_text(loc['hours'])}."
                         for loc in locs)
    if topic == "slots":
        s = r.get("list_test_drive_slots") or {}
        slots = s.get("slots") or []
        if not slots:
            return (f"There are no free test-drive times for stock {s.get('stock_no')} on {s.get('date')}; the "
                    "location is closed or fully booked that day. Would another date work?")
        return (f"Available test-drive times for stock {s.get('stock_no')} on {s.get('date')}: {', '.join(slots)}. "
                "Which time works for you?")
    if topic == "booking_confirmed":
        b = r.get("book_test_drive") or {}
        if not b:
            return ""
        loc = (r.get("get_vehicle") or {}).get("location_name", b.get("location_id"))
        return (f"You're booked! Test drive {b.get('booking_id')}: stock {b.get('stock_no')} on {when(b['start'])} "
                f"at {loc}. Please bring your driver's licence.")
    if topic == "vehicle_unavailable":
        v = r.get("get_vehicle") or {}
        alts = [a for a in (r.get("search_inventory") or {}).get("vehicles") or [] if a.get("status") == "available"]
        alt_text = ("\nSimilar available vehicles:\n" + "\n".join(_vehicle_line(a) for a in alts)) if alts else ""
        return f"Sorry, stock {v.get('stock_no')} is {v.get('status')} and can't be test-driven.{alt_text}"
    if topic == "time_unavailable":
        s = r.get("list_test_drive_slots") or {}
        free = ", ".join(s.get("slots") or []) or "none"
        return (f"{known.get('time')} on {s.get('date')} isn't available for stock {s.get('stock_no')}. "
                f"Free times that day: {free}. Which one would you like?")
    if topic == "identity_failed":
        return ("I couldn't verify your identity with those details. Please check the email address and the last "
                "four digits of your phone number.")
    if topic == "booking_limit":
        bookings = (r.get("list_bookings") or {}).get("bookings") or []
        ids = ", ".join(b.get("booking_id") for b in bookings)
        return (f"You already have {len(bookings)} active test-drive bookings ({ids}), which is our limit of "
                f"{params['max_active_bookings']}. I can reschedule or cancel one of them for you.")
    if topic == "outside_window":
        first = dt.date.fromisoformat(today) + dt.timedelta(days=1)
        last = dt.date.fromisoformat(today) + dt.timedelta(days=params["booking_horizon_days"])
        sunday = "" if params["sunday_test_drives"] else " Test drives are not offered on Sundays."
        return (f"We can book test drives from tomorrow up to {params['booking_horizon_days']} days ahead "
                f"({first} to {last}).{sunday} Which date in that window works for you?")
    if topic == "rescheduled":
        b = r.get("reschedule_test_drive") or {}
        return f"Done: booking {b.get('booking_id')} is moved to {when(b['start'])}." if b else ""
    if topic == "cancelled":
        b = r.get("cancel_test_drive") or {}
        return f"Booking {b.get('booking_id')} is cancelled." if b else ""
    if topic == "bookings":
        bookings = (r.get("list_bookings") or {}).get("bookings") or []
        if not bookings:
            return "You have no active test-drive bookings."
        lines = "\n".join(f"- {b['booking_id']}: {b.get('year')} {b.get('make')} {b.get('model')} "
                          f"(stock {b['stock_no']}) on {when(b['start'])}" for b in bookings)
        return f"You have {len(bookings)} active test-drive booking(s):\n{lines}"
    if topic == "trade_in":
        e = r.get("estimate_trade_in") or {}
        if not e:
            return ""
        return (f"For a {known.get('year')} {known.get('make')} {known.get('model')} with "
                f"{int(known.get('mileage') or 0):,} miles in {known.get('condition')} condition, the estimated "
                f"trade-in value is {money(e['estimate_low'])} to {money(e['estimate_high'])}. This is an estimate; "
                "the final offer depends on an in-person inspection.")
    if topic == "financing_products":
        products = (r.get("list_financing_products") or {}).get("products") or []
        lines = "\n".join(f"- {p['name']}: {p['term_months']} months, up to {money(p['max_amount'])}"
                          for p in products)
        return (f"We offer these financing products:\n{lines}\nTo see your rates I can pre-qualify you; that "
                "needs a quick identity check.")
    if topic == "prequal_result":
        q = r.get("prequalify_financing") or {}
        if not q:
            return ""
        if not q.get("approved"):
            return (f"I'm sorry, we couldn't pre-qualify you for {money(known.get('amount', 0))} over "
                    f"{known.get('term_months')} months. Would you like to try a different amount or term?")
        lines = "\n".join(f"- {o['name']}: {o['apr']}% APR, ${o['monthly_payment']:,.2f} per month"
                          for o in q.get("offers") or [])
        return (f"Good news: you're pre-qualified for {money(known.get('amount', 0))} over "
                f"{known.get('term_months')} months:\n{lines}")
    if topic in ("promotions", "no_discounts"):
        promos = (r.get("get_promotions") or {}).get("promotions") or []
        lines = "\n".join(f"- {p['title']}: {p['description']}" for p in promos)
        listing = f"Current promotions:\n{lines}" if promos else "There are no current promotions for that."
        if topic == "no_discounts":
            return f"Our prices are as listed and I'm not able to negotiate or lower them. {listing}"
        return listing
    if topic == "escalated":
        t = r.get("escalate_to_human") or {}
        return (f"I've passed this to our team: ticket {t.get('ticket_id')}. A team member will contact you within "
                f"{t.get('eta_minutes', 15)} minutes.") if t else ""
    if topic == "privacy_refusal":
        return ("I'm sorry, I can't share information about other customers. I can help with your own bookings "
                "once you're verified.")
    if topic == "injection_refusal":
        return ("I can't change how I work or our policies. I can help with vehicles, test drives, trade-ins, "
                "financing and promotions.")
    if topic == "off_topic":
        return ("I'm sorry, I can only help with vehicles, test drives, trade-ins, financing, promotions and our "
                "locations. Is there anything like that I can do for you?")
    return ""
