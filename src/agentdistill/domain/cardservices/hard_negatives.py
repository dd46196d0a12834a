"""Builds `hard_negatives.jsonl`: hand-designed preference pairs on the card desk's rule boundaries.

Run `python -m agentdistill.domain.cardservices.hard_negatives` to regenerate the file; the shipped JSONL is the
source of truth (extend it by hand, same fields). Inputs are the real role prompts with real tool results
(domain/casebook.py); `chosen` is the reference output, `rejected` the boundary mistake (v1 parameters).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from agentdistill.domain.casebook import CaseBook

from . import CardServicesDomain
from .policy import POLICY_PARAMS

OUT = Path(__file__).with_name("hard_negatives.jsonl")
V1 = POLICY_PARAMS["v1"]


class Cases(CaseBook):
    def __init__(self) -> None:
        super().__init__(CardServicesDomain())

    def one(self, sql: str, params: tuple = ()) -> dict[str, Any]:
        return self.world.query(sql, params)[0]

    def session(self, customer_id: str) -> dict[str, Any]:
        first = self.one("SELECT first_name FROM customers WHERE customer_id = ?", (customer_id,))["first_name"]
        return {"verified": True, "customer_id": customer_id, "first_name": first}

    def plan(self, intents: list[str], known: dict[str, Any], session: dict[str, Any]) -> str:
        und = {"intents": intents, "entities": known, "missing": []}
        return self.domain.reference_plan({"today": self.today, "understanding": und, "known_entities": known,
                                           "session": session})

    def step(self, rule: str, intents: list[str], known: dict[str, Any], customer_id: str,
             done: list[tuple[str, dict[str, Any]]], go: tuple[str, dict[str, Any]], proceed: bool, note: str) -> None:
        """An Executor case: after `done`, the plan either makes the call `go` (proceed) or is complete (DONE)."""
        session = self.session(customer_id)
        payload = {"known_entities": known, "plan": self.plan(intents, known, session), "session": session,
                   "utterance": f"({intents[0].replace('_', ' ')})"}
        call = self.call(go[0], {"customer_id": customer_id, **go[1]}, len(done))
        chosen, rejected = (call, self.text("DONE")) if proceed else (self.text("DONE"), call)
        steps = [(n, {"customer_id": customer_id, **a}) for n, a in done]
        self.add("executor", rule, payload, chosen, rejected, note, extra=self.run(steps))


def _txn_aged(c: Cases, days: int, open_disputes: int | None = None) -> dict[str, Any]:
    date = (dt.date.fromisoformat(c.today) - dt.timedelta(days=days)).isoformat()
    extra = "" if open_disputes is None else (" AND (SELECT COUNT(*) FROM disputes d WHERE d.customer_id = "
                                              f"t.customer_id AND d.status = 'open') = {open_disputes}")
    return c.one("SELECT * FROM transactions t WHERE status = 'posted' AND date = ? AND NOT EXISTS (SELECT 1 FROM "
                 f"disputes d WHERE d.txn_id = t.txn_id){extra} ORDER BY txn_id", (date,))


def dispute_window(c: Cases) -> None:
    """A transaction exactly at the window is disputable, one day older is not; pending never is."""
    window = V1["dispute_window_days"]
    cases = [(window, True), (window + 1, False), (window - 20, True), (window + 30, False)]
    for days, ok in cases:
        t = _txn_aged(c, days, open_disputes=0)
        known = {"txn_id": t["txn_id"], "dispute_reason": "unrecognised"}
        c.step("R3", ["dispute_transaction"], known, t["customer_id"], [("get_transaction", {"txn_id": t["txn_id"]})],
               ("list_disputes", {}), ok, f"transaction {days} days old, window {window}: "
               + ("go on" if ok else "outside the window, stop"))
    for t in c.world.query("SELECT * FROM transactions WHERE status = 'pending' ORDER BY txn_id LIMIT 3"):
        known = {"txn_id": t["txn_id"], "dispute_reason": "wrong_amount"}
        c.step("R4", ["dispute_transaction"], known, t["customer_id"], [("get_transaction", {"txn_id": t["txn_id"]})],
               ("list_disputes", {}), False, "pending transaction: it cannot be disputed yet")


def dispute_limit(c: Cases) -> None:
    """No or one open dispute: open it; three open (the v1 limit): stop."""
    for n in (0, 1, 3):
        t = c.one("SELECT * FROM transactions t WHERE status = 'posted' AND date >= ? AND NOT EXISTS (SELECT 1 FROM "
                  "disputes d WHERE d.txn_id = t.txn_id) AND (SELECT COUNT(*) FROM disputes d WHERE d.customer_id = "
                  "t.customer_id AND d.status = 'open') = ? ORDER BY txn_id", (c.day(-30), n))
        known = {"txn_id": t["txn_id"], "dispute_reason": "duplicate"}
        ok = n < V1["max_open_disputes"]
        c.step("R5", ["dispute_transaction"], known, t["customer_id"],
               [("get_transaction", {"txn_id": t["txn_id"]}), ("list_disputes", {})],
               ("open_dispute", {"txn_id": t["txn_id"], "reason": "duplicate"}), ok,
               f"{n} open disputes, limit {V1['max_open_disputes']}: " + ("open it" if ok else "at the limit, stop"))


def limit_checks(c: Cases) -> None:
    """Active credit card below the new limit: request; frozen card, or a limit already as high: stop."""
    rows = [("active", 1000, True, "R9", "an increase on an active credit card"),
            ("active", 0, False, "R9", "the new limit equals the current one: not an increase"),
            ("active", -500, False, "R9", "the new limit is below the current one"),
            ("frozen", 1000, False, "R8", "the card is frozen: no limit increase")]
    for i, (status, delta, ok, rule, note) in enumerate(rows):
        card = c.world.query("SELECT * FROM cards WHERE kind = 'credit' AND status = ? AND credit_limit <= 12000 "
                             "ORDER BY last4", (status,))[i]
        new = card["credit_limit"] + delta
        known = {"card_last4": card["last4"], "new_limit": new}
        c.step(rule, ["limit_increase"], known, card["customer_id"], [("get_card", {"card_last4": card["last4"]})],
               ("request_limit_increase", {"card_last4": card["last4"], "new_limit": new}), ok, note)


def planner_bounds(c: Cases) -> None:
    """Travel notices at and past the length limit; a requested limit at and past the cap."""
    cust = c.one("SELECT * FROM customers ORDER BY customer_id")
    session = c.session(cust["customer_id"])
    longest = V1["max_travel_days"]
    bounds = [(1, longest, 1, longest + 1), (0, longest, 0, longest + 1), (0, longest, -1, longest), (3, 12, -1, 12),
              (5, 20, -2, 20)]

    def trip(depart: int, days: int) -> dict[str, Any]:
        return {"country": "Japan", "depart_date": c.day(depart), "return_date": c.day(depart + days)}

    def payload(known: dict[str, Any]) -> dict[str, Any]:
        return {"understanding": {"intents": ["travel_notice"], "entities": known, "missing": []},
                "known_entities": known, "session": session, "utterance": "Please set a travel notice."}

    inside: set[tuple[int, int]] = set()
    for depart, days, bad_depart, bad_days in bounds:
        good, bad = trip(depart, days), trip(bad_depart, bad_days)
        set_good = c.plan(["travel_notice"], good, session)
        set_bad = set_good.replace(good["depart_date"], bad["depart_date"]).replace(good["return_date"],
                                                                                    bad["return_date"])
        refuse = c.plan(["travel_notice"], bad, session)
        if (depart, days) not in inside:
            inside.add((depart, days))
            c.add("planner", "R10", payload(good), c.text(set_good), c.text(refuse),
                  f"a trip of {days} days from day {depart} is inside the travel-notice window: set it, do not refuse")
        c.add("planner", "R10", payload(bad), c.text(refuse), c.text(set_bad),
              f"a trip of {bad_days} days from day {bad_depart} is outside the travel-notice window: refuse")
    card = c.one("SELECT * FROM cards WHERE kind = 'credit' AND status = 'active' ORDER BY last4")
    session = c.session(card["customer_id"])
    cap = V1["max_credit_limit"]
    for new, ok in ((cap, True), (cap + 1, False), (cap + 5000, False)):
        known = {"card_last4": card["last4"], "new_limit": new}
        other = {**known, "new_limit": cap + 1 if ok else cap}
        payload = {"understanding": {"intents": ["limit_increase"], "entities": known, "missing": []},
                   "known_entities": known, "session": session, "utterance": f"Raise my limit to ${new:,}."}
        wrong = c.plan(["limit_increase"], other, session).replace(str(other["new_limit"]), str(new))
        c.add("planner", "R9", payload, c.text(c.plan(["limit_increase"], known, session)), c.text(wrong),
              f"${new:,} vs the cap ${cap:,}: " + ("request it" if ok else "above the cap, refuse"))
    for intent, reason in (("report_fraud", "fraud"), ("complaint", "complaint"), ("request_human", "request_human")):
        und = {"intents": [intent], "entities": {}, "missing": []}
        payload = {"understanding": und, "known_entities": {}, "session": {"verified": False},
                   "utterance": f"({reason}) I want this handled now."}
        plan = c.domain.reference_plan({**payload, "today": c.today})
        c.add("planner", "R15", payload, c.text(plan), c.text('reply(topics=["greeting"])'),
              f"{intent} must open a ticket with reason {reason!r}")


def explain(c: Cases, rule: str, calls: list[tuple[str, dict[str, Any]]], topics: list[str], session: dict[str, Any],
            intents: list[str], wrong: Any, note: str) -> None:
    world = c.world.copy()
    results = [{"name": n, "arguments": a, "result": world.call_tool(n, a)} for n, a in calls]
    payload = {"known_entities": {}, "session": session, "utterance": "",
               "understanding": {"intents": intents, "entities": {}, "missing": []},
               "terminal": {"name": "reply", "arguments": {"topics": topics}}, "tool_results": results}
    ref = c.domain.reference_explain({**payload, "today": c.today})
    c.add("explainer", rule, payload, c.text(ref), c.text(wrong(ref) if callable(wrong) else wrong), note)


def explainer_cases(c: Cases) -> None:
    card = c.one("SELECT * FROM cards WHERE status = 'active' ORDER BY last4")
    cid = card["customer_id"]
    session = c.session(cid)
    other = c.one("SELECT * FROM customers WHERE customer_id != ? ORDER BY customer_id", (cid,))
    for delivery in ("standard", "express"):
        calls = [("report_lost_card", {"customer_id": cid, "card_last4": card["last4"], "reason": "lost"}),
                 ("replace_card", {"customer_id": cid, "card_last4": card["last4"], "reason": "lost",
                                   "delivery": delivery})]
        explain(c, "R11", calls, ["blocked", "replacement"], session, ["report_lost_card", "replace_card"],
                lambda ref: ref.split(" Fee: ")[0] + " The card ending in the old digits no longer works.",
                f"{delivery} replacement without its fee and delivery time")
    for promise in ("We'll refund the charge right away.", "I can waive the late fee for you this time.",
                    "You'll get your money back within a day."):
        explain(c, "R12", [], ["no_refund_promises"], {"verified": False}, ["refund_demand"],
                lambda ref, p=promise: ref + " " + p, "refund promise; the chosen reply refuses (negated phrasing)")
    explain(c, "R16", [("get_fee_schedule", {})], ["fees"], {"verified": False}, ["fees"],
            lambda ref: ref + " To look up your card, please send me the full card number and the CVV.",
            "asks for the full card number and the CVV")
    explain(c, "R16", [("list_cards", {"customer_id": cid})], ["cards"], session, ["list_cards"],
            lambda ref: ref + " Please confirm your PIN so I can unlock them.", "asks for a PIN")
    explain(c, "R17", [("list_cards", {"customer_id": cid})], ["cards"], session, ["list_cards"],
            lambda ref: ref + f" (Customer record {cid}.)", "reveals the internal customer id")
    explain(c, "R17", [("get_card", {"customer_id": cid, "card_last4": card["last4"]})], ["card_details"], session,
            ["card_details"], lambda ref: ref + " I looked this up with get_card.", "reveals a tool name")
    explain(c, "R13", [], ["privacy_refusal"], {"verified": False}, ["other_customer_data"],
            f"{other['first_name']} {other['last_name']} can be reached at {other['email']}.",
            "reveals another customer's name and email when asked")
    txn = _txn_aged(c, 10, open_disputes=0)
    explain(c, "R18", [("open_dispute", {"customer_id": txn["customer_id"], "txn_id": txn["txn_id"],
                                         "reason": "unrecognised"})], ["dispute_opened"],
            c.session(txn["customer_id"]), ["dispute_transaction"],
            f"I've opened a dispute for transaction {txn['txn_id']}. We'll let you know.",
            "confirms a dispute without its dispute id")
    explain(c, "R18", [("escalate_to_human", {"reason": "fraud", "summary": "charges I did not make"})],
            ["escalated"], {"verified": False}, ["report_fraud"],
            "I've passed this to our fraud team. They will contact you shortly.", "escalates without the ticket number")


def build() -> Cases:
    c = Cases()
    for step in (dispute_window, dispute_limit, limit_checks, planner_bounds, explainer_cases):
        step(c)
    return c


def main() -> None:
    build().write(OUT)


if __name__ == "__main__":
    main()
