"""The dealership's hard-negative mutators (data/mutators.py machinery): one per business rule (R1..R16) and per
tool-argument error type, each turning a correct call into a plausible but wrong one."""

from __future__ import annotations

import datetime as dt
import json
import re

from agentdistill.data.mutators import MutationInput, Mutator, Output, registrar
from agentdistill.domain import mutatorkit
from agentdistill.domain.dealership import faults
from agentdistill.domain.dealership.policy import POLICY_PARAMS

MUTATORS: dict[str, Mutator] = {}
mutator = registrar(MUTATORS)


# ----------------------------------------------------------------------------------------- planner

_BOOK_RE = re.compile(
    r'book_test_drive\(customer_id=[^,]+, stock_no="([A-Z]\d{4})", start="(\d{4}-\d\d-\d\d)T(\d\d:\d\d)"\)')
_START_RE = re.compile(r'(new_start|start)="(\d{4}-\d\d-\d\d)T(\d\d:\d\d)"')


def _set_booking_time(plan: str, date: str | None = None, time: str | None = None) -> str:
    """Move a booking/reschedule plan (start, slot check and slot lookup date) to another date and/or time."""
    m = _START_RE.search(plan)
    if not m:
        return plan
    old_date, old_time = m.group(2), m.group(3)
    new_date, new_time = date or old_date, time or old_time
    plan = plan.replace(f"{old_date}T{old_time}", f"{new_date}T{new_time}")
    plan = plan.replace(f'date="{old_date}"', f'date="{new_date}"')
    return plan.replace(f'if "{old_time}" not in', f'if "{new_time}" not in')


@mutator("r1_skip_identity", "planner", "R1", "book/prequalify without verifying identity (customer id looked up)")
def _r1(m: MutationInput) -> Output | None:
    plan = m.text
    found = re.search(r'v = verify_customer_identity\(email="([^"]*)"', plan)
    if not found:
        return None
    rows = m.world.query("SELECT customer_id FROM customers WHERE email = ?", (found.group(1),))
    cid = rows[0]["customer_id"] if rows else ((m.episode or {}).get("scenario", {}).get("profile") or {}).get(
        "customer_id")
    if not cid:
        return None
    lines = [ln for ln in plan.split("\n") if not ln.startswith("v = verify_customer_identity(")]
    lines = mutatorkit.drop_guard(lines, 'if not v["verified"]:')
    return "\n".join(lines).replace('v["customer_id"]', json.dumps(cid)), []


@mutator("r4_unavailable_vehicle", "planner", "R4", "book a reserved or sold vehicle, without the status check")
def _r4(m: MutationInput) -> Output | None:
    plan = m.text
    b = _BOOK_RE.search(plan)
    if not b:
        return None
    stock = b.group(1)
    row = m.world.query("SELECT make, model, status FROM vehicles WHERE stock_no = ?", (stock,))
    if row and row[0]["status"] == "available":
        alts = m.world.query("SELECT stock_no FROM vehicles WHERE status != 'available' AND make = ? ORDER BY stock_no",
                             (row[0]["make"],)) or m.world.query(
            "SELECT stock_no FROM vehicles WHERE status != 'available' ORDER BY stock_no")
        plan = plan.replace(f'"{stock}"', f'"{m.rng.choice(alts)["stock_no"]}"')
    return "\n".join(mutatorkit.drop_guard(plan.split("\n"), 'if veh["status"] != "available":')), []


@mutator("r5_closing_time", "planner", "R5", "book at the location's closing time (last start is 30 min earlier)")
def _r5(m: MutationInput) -> Output | None:
    b = _BOOK_RE.search(m.text)
    if not b:
        return None
    loc = m.world.query("SELECT location_id FROM vehicles WHERE stock_no = ?", (b.group(1),))
    hours = m.world.location_hours(loc[0]["location_id"], b.group(2)) if loc else None
    if not hours or hours[1] == b.group(3):
        return None
    return _set_booking_time(m.text, time=hours[1]), []


@mutator("r5_no_slot_check", "planner", "R5", "book without checking that the time is a free slot")
def _r5b(m: MutationInput) -> Output | None:
    out = faults.inject("planner", "premature_booking", m.text, m.inp, m.rng)
    return (out, []) if out else None


@mutator("r6_skip_booking_limit", "planner", "R6", "book without checking the customer's active bookings")
def _r6(m: MutationInput) -> Output | None:
    if "bk = list_bookings(" not in m.text or "book_test_drive(" not in m.text:
        return None
    lines = [ln for ln in m.text.split("\n") if not ln.startswith("bk = list_bookings(")]
    return "\n".join(mutatorkit.drop_guard(lines, 'if len(bk["bookings"])')), []


@mutator("r8_tools_for_off_topic", "planner", "R8", "answer an off-topic request with an inventory search")
def _r8(m: MutationInput) -> Output | None:
    if m.text.strip() != 'reply(topics=["off_topic"])':
        return None
    return 's = search_inventory()\nreply(topics=["search_results"])', []


@mutator("r9_no_escalation", "planner", "R9", "reply to a complaint/legal question/request for a person without a ticket")
def _r9(m: MutationInput) -> Output | None:
    out = faults.inject("planner", "missed_rule", m.text, m.inp, m.rng)
    return (out.replace('"escalated"', '"greeting"'), []) if out else None


@mutator("r10_other_time", "planner", "R10", "book a different time than the customer asked for")
def _r10(m: MutationInput) -> Output | None:
    s = _START_RE.search(m.text)
    if not s or "reply(topics=[\"outside_window\"])" in m.text:
        return None
    h, mm = map(int, s.group(3).split(":"))
    other = f"{h - 1:02d}:{mm:02d}" if h >= 12 else f"{h + 1:02d}:{mm:02d}"
    return _set_booking_time(m.text, time=other), []


@mutator("r11_invented_vehicle", "planner", "R11", "act on a stock number that does not exist")
def _r11(m: MutationInput) -> Output | None:
    out = faults.inject("planner", "hallucinated_vehicle", m.text, m.inp, m.rng)
    return (out, []) if out else None


@mutator("r15_outside_window", "planner", "R15", "book one day past the booking window")
def _r15(m: MutationInput) -> Output | None:
    s = _START_RE.search(m.text)
    today = m.inp.get("today")
    if not s or not today:
        return None
    horizon = POLICY_PARAMS[m.policy_version]["booking_horizon_days"]
    late = dt.date.fromisoformat(today) + dt.timedelta(days=horizon + 1)
    return _set_booking_time(m.text, date=late.isoformat()), []


# --------------------------------------------------------------------------------------- explainer

_reply, _results = mutatorkit.reply_text, mutatorkit.ok_results


@mutator("r2_rate_before_prequal", "explainer", "R2", "quote an APR before the customer is pre-qualified")
def _r2(m: MutationInput) -> Output | None:
    if not _reply(m) or "prequalify_financing" in _results(m):
        return None
    rate = m.rng.choice(["3.9", "4.5", "2.9", "5.25"])
    return m.text + f" Our financing rates start at just {rate}% APR.", []


@mutator("r3_promise_discount", "explainer", "R3", "promise a discount")
def _r3(m: MutationInput) -> Output | None:
    if not _reply(m):
        return None
    amount = m.rng.choice([750, 1200, 900, 1750])
    return m.text + f"\n\nGood news as well: I can give you a ${amount:,} discount off the listed price.", []


@mutator("r7_other_customer_data", "explainer", "R7", "reveal another customer's name and email")
def _r7(m: MutationInput) -> Output | None:
    if not _reply(m):
        return None
    me = ((m.episode or {}).get("scenario", {}).get("profile") or {}).get("customer_id")
    others = m.world.query("SELECT first_name, last_name, email FROM customers WHERE customer_id != ? ORDER BY "
                           "customer_id", (me or "",))
    o = m.rng.choice(others)
    return m.text + f" By the way, {o['first_name']} {o['last_name']} ({o['email']}) asked about the same thing.", []


@mutator("r12_no_estimate_disclaimer", "explainer", "R12", "give a trade-in figure as a firm offer")
def _r12(m: MutationInput) -> Output | None:
    if "estimate_trade_in" not in _results(m) or "inspection" not in m.text:
        return None
    text = m.text.replace(" This is an estimate; the final offer depends on an in-person inspection.", "")
    text = text.replace("the estimated trade-in value is", "we will pay you")
    return (text + " That is a firm offer."), []


@mutator("r13_ask_sensitive", "explainer", "R13", "ask for a social security number")
def _r13(m: MutationInput) -> Output | None:
    if not _reply(m):
        return None
    ask = m.rng.choice(["To speed things up, please send me your social security number.",
                        "Could you also share your full card number so I can hold this for you?"])
    return m.text + " " + ask, []


@mutator("r14_internal_details", "explainer", "R14", "mention the internal customer id")
def _r14(m: MutationInput) -> Output | None:
    if not _reply(m):
        return None
    cid = (m.inp.get("session") or {}).get("customer_id") or (
        (m.episode or {}).get("scenario", {}).get("profile") or {}).get("customer_id") or "C1001"
    return m.text + f" (Internal note: customer record {cid}.)", []


@mutator("r16_omit_reference", "explainer", "R16", "confirm a booking/cancellation/escalation without its reference")
def _r16(m: MutationInput) -> Output | None:
    refs = [str(r.get(k)) for name, r in _results(m).items() for k in ("booking_id", "ticket_id")
            if name in ("book_test_drive", "reschedule_test_drive", "cancel_test_drive", "escalate_to_human") and r.get(k)]
    refs = [r for r in refs if r in m.text]
    if not refs:
        return None
    text = m.text
    for ref in refs:
        text = re.sub(rf"\s*(?:test drive |booking |ticket )?{re.escape(ref)}", " it", text)
    return text.replace("Test drive it:", "It's confirmed:").replace(" it it", " it"), []


# ---------------------------------------------------------------------------------------- executor

_one_call, _with_args, _shift_first = mutatorkit.one_call, mutatorkit.with_args, mutatorkit.shift_first


@mutator("exec_wrong_stock_number", "executor", "args", "a different, existing stock number")
def _e_stock(m: MutationInput) -> Output | None:
    got = _one_call(m)
    if not got or not isinstance(got[1].get("stock_no"), str):
        return None
    name, args, cid = got
    stocks = [r["stock_no"] for r in m.world.query("SELECT stock_no FROM vehicles ORDER BY stock_no")]
    args["stock_no"] = m.rng.choice([s for s in stocks if s != args["stock_no"]])
    return _with_args(name, args, cid)


@mutator("exec_wrong_date", "executor", "args", "the date moved by a day")
def _e_date(m: MutationInput) -> Output | None:
    return _shift_first(m, ("date", "start", "new_start"), [1, -1, 7], "days")


@mutator("exec_wrong_time", "executor", "args", "the start time moved by an hour")
def _e_time(m: MutationInput) -> Output | None:
    return _shift_first(m, ("start", "new_start"), [1, -1, 2], "hours")


@mutator("exec_wrong_customer_id", "executor", "args", "another customer's id")
def _e_customer(m: MutationInput) -> Output | None:
    got = _one_call(m)
    if not got or not isinstance(got[1].get("customer_id"), str):
        return None
    name, args, cid = got
    n = int(args["customer_id"][1:]) if re.fullmatch(r"C\d{4}", args["customer_id"]) else 1100
    args["customer_id"] = f"C{1001 + (n - 1001 + m.rng.randint(1, 198)) % 200}"
    return _with_args(name, args, cid)


@mutator("exec_wrong_amount_or_term", "executor", "args", "a different loan amount or term")
def _e_amount(m: MutationInput) -> Output | None:
    got = _one_call(m)
    if not got or not ({"amount", "term_months"} & set(got[1])):
        return None
    name, args, cid = got
    if "term_months" in args and (m.rng.random() < 0.5 or "amount" not in args):
        args["term_months"] = m.rng.choice([t for t in (36, 48, 60, 72) if t != args["term_months"]])
    else:
        args["amount"] = int(args["amount"]) + m.rng.choice([-5000, 5000, 10000])
    return _with_args(name, args, cid)


mutator("exec_missing_argument", "executor", "args", "a required argument left out")(mutatorkit.missing_argument)


# --------------------------------------------------------------------------- understander, evaluator

mutator("understander_wrong_entity", "understander", "understanding", "one entity value changed")(
    mutatorkit.from_fault(faults.inject, "understander", "wrong_entity"))
mutator("understander_wrong_intent", "understander", "understanding", "a related but wrong intent")(
    mutatorkit.from_fault(faults.inject, "understander", "wrong_intent"))
mutator("evaluator_flipped_verdict", "evaluator", "verdict", "approve a bad plan or reject a good one")(
    mutatorkit.from_fault(faults.inject, "evaluator", "wrong_verdict"))
