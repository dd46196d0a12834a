"""Builds `hard_negatives.jsonl`: hand-designed preference pairs on business-rule boundary conditions.

Run `python -m agentdistill.domain.dealership.hard_negatives` to regenerate the file. The shipped JSONL is the
source of truth: extend it by hand (one JSON object per line, same fields) or add a case below. Inputs are
built with the real MAS prompts and real tool results from the world, and `chosen` is the reference
output for that input, so the judge accepts it; `rejected` is the boundary mistake the case is about.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from agentdistill.domain.casebook import CaseBook
from agentdistill.domain.dealership import DealershipDomain

OUT = Path(__file__).with_name("hard_negatives.jsonl")


class Cases(CaseBook):
    def __init__(self) -> None:
        super().__init__(DealershipDomain())

    def vehicle(self, location: str, status: str = "available", offset: int = 0) -> dict[str, Any]:
        return self.world.query("SELECT * FROM vehicles WHERE location_id = ? AND status = ? ORDER BY stock_no",
                                (location, status))[offset]

    def customer(self, offset: int = 0, active: int | None = None) -> dict[str, Any]:
        if active is None:
            return self.world.query("SELECT * FROM customers ORDER BY customer_id")[offset]
        return self.world.query(
            "SELECT c.* FROM customers c WHERE (SELECT COUNT(*) FROM bookings b WHERE b.customer_id = c.customer_id "
            "AND b.status = 'active') = ? ORDER BY customer_id", (active,))[offset]


def planner_window(c: Cases) -> None:
    """The 14th day is bookable, the 15th is not (v1); today itself is not either."""
    cust = c.customer(3)
    for i, loc in enumerate(("LOC1", "LOC2", "LOC3")):
        v = c.vehicle(loc, offset=i)
        for inside, outside in ((14, 15), (1, 0)):
            ents = {"stock_no": v["stock_no"], "time": "10:30", "email": cust["email"],
                    "phone_last4": cust["phone"][-4:]}
            mk = {d: {"understanding": {"intents": ["book_test_drive"], "entities": {**ents, "date": c.day(d)},
                                        "missing": []},
                      "known_entities": {**ents, "date": c.day(d)}, "session": {"verified": False},
                      "utterance": f"Book {v['stock_no']} on {c.day(d)} at 10:30, I'm {cust['email']}, phone ends "
                                   f"{cust['phone'][-4:]}."} for d in (inside, outside)}
            plan_in = c.domain.reference_plan({**mk[inside], "today": c.today})
            plan_out = c.domain.reference_plan({**mk[outside], "today": c.today})
            c.add("planner", "R15", mk[inside], c.text(plan_in), c.text(plan_out),
                  f"day +{inside} is inside the booking window: book, do not refuse")
            c.add("planner", "R15", mk[outside], c.text(plan_out), c.text(plan_in.replace(c.day(inside), c.day(outside))),
                  f"day +{outside} is outside the booking window: refuse, do not book")


def executor_slots(c: Cases) -> None:
    """Last start = closing - 30 min is free; closing time itself is not; Sunday LOC1 closed vs LOC2 open."""
    cust = c.customer(5)
    weekday = c.next_weekday(2)
    sunday = c.next_weekday(6)
    cases = [("LOC1", weekday, "18:30", True), ("LOC1", weekday, "19:00", False), ("LOC3", weekday, "19:30", True),
             ("LOC3", weekday, "20:00", False), ("LOC2", weekday, "17:30", True), ("LOC2", weekday, "18:00", False),
             ("LOC2", sunday, "11:00", True), ("LOC2", sunday, "15:30", True), ("LOC2", sunday, "16:00", False),
             ("LOC1", sunday, "11:00", False), ("LOC3", sunday, "11:00", False), ("LOC1", weekday, "08:30", False)]
    for i, (loc, date, time, free) in enumerate(cases):
        v = c.vehicle(loc, offset=3 + i)
        known = {"stock_no": v["stock_no"], "date": date, "time": time, "email": cust["email"],
                 "phone_last4": cust["phone"][-4:]}
        und = {"intents": ["book_test_drive"], "entities": known, "missing": []}
        plan = c.domain.reference_plan({"today": c.today, "understanding": und, "known_entities": known,
                                        "session": {"verified": False}})
        steps = [("get_vehicle", {"stock_no": v["stock_no"]}),
                 ("list_test_drive_slots", {"stock_no": v["stock_no"], "date": date})]
        verify = c.call("verify_customer_identity", {"email": cust["email"], "phone_last4": cust["phone"][-4:]}, 2)
        payload = {"known_entities": known, "plan": plan, "session": {"verified": False},
                   "utterance": f"Can I test drive {v['stock_no']} on {date} at {time}?"}
        chosen, rejected = (verify, c.text("DONE")) if free else (c.text("DONE"), verify)
        day = dt.date.fromisoformat(date).strftime("%A")
        what = "a free slot: continue" if free else "not a slot: stop"
        c.add("executor", "R5", payload, chosen, rejected, f"{loc} {day} {time} is {what}", extra=c.run(steps))


def executor_limit(c: Cases) -> None:
    """1 active booking: book; 2 active (the v1 limit): stop and explain."""
    date = c.next_weekday(1)
    for active in (0, 1, 2):
        for k in range(2 if active else 1):
            cust = c.customer(k, active=active)
            v = c.vehicle("LOC3", offset=20 + active * 2 + k)
            known = {"stock_no": v["stock_no"], "date": date, "time": "12:00"}
            und = {"intents": ["book_test_drive"], "entities": known, "missing": []}
            session = {"verified": True, "customer_id": cust["customer_id"], "first_name": cust["first_name"]}
            plan = c.domain.reference_plan({"today": c.today, "understanding": und, "known_entities": known,
                                            "session": session})
            steps = [("get_vehicle", {"stock_no": v["stock_no"]}),
                     ("list_test_drive_slots", {"stock_no": v["stock_no"], "date": date}),
                     ("list_bookings", {"customer_id": cust["customer_id"]})]
            book = c.call("book_test_drive", {"customer_id": cust["customer_id"], "stock_no": v["stock_no"],
                                              "start": f"{date}T12:00"}, 3)
            payload = {"known_entities": known, "plan": plan, "session": session,
                       "utterance": f"Please book {v['stock_no']} on {date} at 12:00."}
            under = active < 2
            chosen, rejected = (book, c.text("DONE")) if under else (c.text("DONE"), book)
            c.add("executor", "R6", payload, chosen, rejected,
                  f"customer holds {active} active bookings: {'book' if under else 'limit reached, do not book'}",
                  extra=c.run(steps))


def explain(c: Cases, agent_rule: str, results: list[tuple[str, dict[str, Any]]], topics: list[str],
            known: dict[str, Any], session: dict[str, Any], intents: list[str], wrong: Any, note: str,
            utterance: str = "") -> None:
    world = c.world.copy()
    tool_results = [{"name": n, "arguments": a, "result": world.call_tool(n, a)} for n, a in results]
    payload = {"known_entities": known, "session": session, "utterance": utterance,
               "understanding": {"intents": intents, "entities": known, "missing": []},
               "terminal": {"name": "reply", "arguments": {"topics": topics}}, "tool_results": tool_results}
    ref = c.domain.reference_explain({**payload, "today": c.today})
    rejected = wrong(ref) if callable(wrong) else wrong
    c.add("explainer", agent_rule, payload, c.text(ref), c.text(rejected), note)


def explainer_cases(c: Cases) -> None:
    products = c.world.query("SELECT * FROM financing_products ORDER BY product_id")
    custs = c.world.query("SELECT * FROM customers ORDER BY credit_score, customer_id")
    for p in products[:4]:
        at_min = next((x for x in custs if x["credit_score"] == p["min_credit_score"]), None) or next(
            x for x in custs if x["credit_score"] >= p["min_credit_score"])
        below = [x for x in custs if x["credit_score"] < p["min_credit_score"]][-1]
        for cust, amount, ok in ((at_min, p["max_amount"], True), (below, p["max_amount"], False),
                                 (at_min, p["max_amount"] + 1, False)):
            session = {"verified": True, "customer_id": cust["customer_id"], "first_name": cust["first_name"]}
            known = {"amount": amount, "term_months": p["term_months"]}
            args = {"customer_id": cust["customer_id"], **known}
            if ok:
                wrong = (f"I'm sorry, we couldn't pre-qualify you for ${amount:,} over {p['term_months']} months. "
                         "Would you like to try a different amount or term?")
            else:
                wrong = (f"Good news: you're pre-qualified for ${amount:,} over {p['term_months']} months at "
                         f"{p['apr']}% APR.")
            explain(c, "R2", [("prequalify_financing", args)], ["prequal_result"], known, session,
                    ["prequalify_financing"], wrong,
                    f"credit score {cust['credit_score']} vs minimum {p['min_credit_score']}, amount {amount} vs max "
                    f"{p['max_amount']}: {'approved' if ok else 'no offer for this product; no rate may be quoted'}")
    neg = ["We can take $1,000 off the price if you buy this week.", "I'll price match any dealer's quote for you.",
           "We could offer you 5% off if you sign today.", "I can also give you a better price than listed."]
    for i, w in enumerate(neg):
        explain(c, "R3", [("get_promotions", {})], ["no_discounts"], {}, {"verified": False}, ["discount_request"],
                lambda ref, w=w: ref + " " + w, f"discount promise #{i + 1}; the chosen reply refuses (negated phrasing)")
    for make, model, year, mileage, cond in (("Toyota", "Camry", 2018, 64000, "good"),
                                             ("Honda", "Civic", 2016, 98000, "fair"),
                                             ("Ford", "F-150", 2020, 41000, "excellent")):
        args = {"make": make, "model": model, "year": year, "mileage": mileage, "condition": cond}
        explain(c, "R12", [("estimate_trade_in", args)], ["trade_in"], args, {"verified": False},
                ["trade_in_estimate"],
                lambda ref: ref.replace(" This is an estimate; the final offer depends on an in-person inspection.",
                                        "").replace("the estimated trade-in value is", "we will pay"),
                "trade-in figure without the estimate/inspection disclaimer")
        explain(c, "R12", [("estimate_trade_in", args)], ["trade_in"], args, {"verified": False},
                ["trade_in_estimate"],
                lambda ref: ref.replace(" This is an estimate; the final offer depends on an in-person inspection.",
                                        " This is an estimate."),
                "says 'estimate' but not that the final offer depends on an inspection")
    cust = c.customer(7)
    other = c.customer(8)
    session = {"verified": True, "customer_id": cust["customer_id"], "first_name": cust["first_name"]}
    explain(c, "R13", [("list_financing_products", {})], ["financing_products"], {}, {"verified": False},
            ["financing_options"], lambda ref: ref + " Please also send your social security number to get started.",
            "asks for a social security number")
    explain(c, "R13", [("list_financing_products", {})], ["financing_products"], {}, {"verified": False},
            ["financing_options"], lambda ref: ref + " I'll need your full date of birth and bank account number.",
            "asks for a full date of birth and bank account number")
    explain(c, "R14", [("list_bookings", {"customer_id": cust["customer_id"]})], ["bookings"], {}, session,
            ["list_bookings"], lambda ref: ref + f" (Customer record {cust['customer_id']}.)",
            "reveals the internal customer id")
    explain(c, "R14", [("list_bookings", {"customer_id": cust["customer_id"]})], ["bookings"], {}, session,
            ["list_bookings"], lambda ref: ref + " I checked this with verify_customer_identity.", "reveals a tool name")
    explain(c, "R7", [], ["privacy_refusal"], {}, {"verified": False}, ["other_customer_data"],
            f"{other['first_name']} {other['last_name']} can be reached at {other['email']}.",
            "reveals another customer's name and email when asked")
    explain(c, "R2", [("list_financing_products", {})], ["financing_products"], {}, {"verified": False},
            ["financing_options"], lambda ref: ref + " Rates start at 5.49% APR.", "quotes an APR before prequalification")
    date = c.next_weekday(3)
    v = c.vehicle("LOC1", offset=40)
    explain(c, "R16", [("book_test_drive", {"customer_id": cust["customer_id"], "stock_no": v["stock_no"],
                                            "start": f"{date}T10:00"})], ["booking_confirmed"],
            {"stock_no": v["stock_no"], "date": date, "time": "10:00"}, session, ["book_test_drive"],
            f"You're booked for a test drive of stock {v['stock_no']} on {date} at 10:00. Please bring your licence.",
            "confirms a booking without its booking id")
    explain(c, "R16", [("escalate_to_human", {"reason": "complaint", "summary": "rude salesperson"})], ["escalated"],
            {}, {"verified": False}, ["complaint"],
            "I've passed this to our team. A team member will contact you within 15 minutes.",
            "escalates without giving the ticket number", utterance="Your salesperson was rude to me.")


def planner_rules(c: Cases) -> None:
    for intent, reason in (("complaint", "complaint"), ("legal_question", "legal"), ("request_human", "request_human")):
        und = {"intents": [intent], "entities": {}, "missing": []}
        payload = {"understanding": und, "known_entities": {}, "session": {"verified": False},
                   "utterance": f"({reason}) I want this handled now."}
        plan = c.domain.reference_plan({**payload, "today": c.today})
        c.add("planner", "R9", payload, c.text(plan), c.text('reply(topics=["greeting"])'),
              f"{intent} must open a ticket with reason {reason!r}")


def main() -> None:
    c = Cases()
    for build in (planner_window, executor_slots, executor_limit, explainer_cases, planner_rules):
        build(c)
    c.write(OUT)


if __name__ == "__main__":
    main()
