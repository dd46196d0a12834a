"""Tests for the dealership's versioned policy: every rule check R1..R17 fires and stays quiet on hand-built
cases over a real seeded world (in-memory SQLite, real tool calls, no mocks)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest

from agentdistill.domain.dealership.policy import POLICY_PARAMS, policy_text, rules
from agentdistill.domain.dealership.world import DealershipWorld, slot_starts
from agentdistill.domain.rules import Action, RuleContext, check_action, check_turn

TODAY = dt.date(2026, 12, 1)  # DealershipWorld.generate's default "today" (a Tuesday)
WED = "2026-12-02"  # tomorrow, a weekday: every location is open
SUNDAY = "2026-12-06"  # LOC1 and LOC3 are closed, LOC2 opens 11:00-16:00


def day(offset: int) -> str:
    return (TODAY + dt.timedelta(days=offset)).isoformat()


# ------------------------------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def base() -> DealershipWorld:
    w = DealershipWorld.generate(0)
    assert w.today == TODAY.isoformat()
    return w


@pytest.fixture()
def world(base: DealershipWorld) -> DealershipWorld:
    return base.copy()


def customer_with(world: DealershipWorld, active: int, unique_name: bool = True) -> dict[str, Any]:
    """The first customer holding exactly `active` active bookings (and, by default, a name nobody else has)."""
    rows = world.query(
        "SELECT c.* FROM customers c WHERE (SELECT COUNT(*) FROM bookings b WHERE b.customer_id = c.customer_id "
        "AND b.status = 'active') = ? ORDER BY c.customer_id", (active,))
    for r in rows:
        same = world.query("SELECT COUNT(*) AS n FROM customers WHERE first_name = ? AND last_name = ?",
                           (r["first_name"], r["last_name"]))[0]["n"]
        if not unique_name or same == 1:
            return r
    raise AssertionError(f"no customer with {active} active bookings")


def vehicle(world: DealershipWorld, status: str = "available", location_id: str = "LOC1") -> dict[str, Any]:
    return world.query("SELECT * FROM vehicles WHERE status = ? AND location_id = ? ORDER BY stock_no LIMIT 1",
                       (status, location_id))[0]


def verify(world: DealershipWorld, c: dict[str, Any]) -> Action:
    """A real, successful identity verification of customer `c`."""
    res = world.call_tool("verify_customer_identity", {"email": c["email"], "phone_last4": c["phone"][-4:]})
    assert res["ok"] and res["result"]["verified"] and res["result"]["customer_id"] == c["customer_id"], res
    return Action("verify_customer_identity", {"email": c["email"], "phone_last4": c["phone"][-4:]}, result=res)


def call(world: DealershipWorld, name: str, **arguments: Any) -> Action:
    """Run a real tool and wrap the call with its result envelope."""
    res = world.call_tool(name, arguments)
    assert res["ok"], res
    return Action(name, arguments, result=res)


def ids(violations: list) -> set[str]:
    return {v.rule_id for v in violations}


def act_ctx(world: DealershipWorld, action: Action, *, version: str = "v1", history: list[Action] | None = None,
            entities: dict[str, Any] | None = None, intents: list[str] | None = None) -> RuleContext:
    return RuleContext(world, POLICY_PARAMS[version], history or [], intents or ["book_test_drive"],
                       entities or {}, action=action)


def turn_ctx(world: DealershipWorld, reply: str | None, *, turn_actions: list[Action] | None = None,
             history: list[Action] | None = None, intents: list[str] | None = None,
             version: str = "v1") -> RuleContext:
    return RuleContext(world, POLICY_PARAMS[version], history or [], intents or ["search_inventory"], {},
                       turn_actions=turn_actions or [], reply=reply)


def booking(world: DealershipWorld, c: dict[str, Any], stock_no: str, date: str = WED, time: str = "10:00",
            *, version: str = "v1", entities: dict[str, Any] | None = None, verified: bool = True) -> list:
    """Check a book_test_drive call for `c`, with the customer's entities matching the slot by default."""
    a = Action("book_test_drive", {"customer_id": c["customer_id"], "stock_no": stock_no, "start": f"{date}T{time}"})
    history = [verify(world, c)] if verified else []
    ents = {"stock_no": stock_no, "date": date, "time": time} if entities is None else entities
    return check_action(rules(version), act_ctx(world, a, version=version, history=history, entities=ents))


# ------------------------------------------------------------------------------------------ baseline


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_clean_booking_has_no_violation(world: DealershipWorld, version: str):
    c, v = customer_with(world, 0), vehicle(world)
    assert booking(world, c, v["stock_no"], version=version) == []


def test_clean_reply_has_no_violation(world: DealershipWorld):
    v = vehicle(world)
    search = call(world, "search_inventory", make=v["make"], model=v["model"])
    reply = f"We have the {v['year']} {v['make']} {v['model']} (stock {v['stock_no']}) at ${v['price']:,}."
    assert check_turn(rules("v1"), turn_ctx(world, reply, turn_actions=[search])) == []


# ------------------------------------------------------------------------------------------ R1 identity


def test_r1_fires_without_verification(world: DealershipWorld):
    c, v = customer_with(world, 0), vehicle(world)
    assert ids(booking(world, c, v["stock_no"], verified=False)) == {"R1"}
    lst = Action("list_bookings", {"customer_id": c["customer_id"]})
    assert ids(check_action(rules("v1"), act_ctx(world, lst, intents=["list_bookings"]))) == {"R1"}


def test_r1_fires_after_failed_verification(world: DealershipWorld):
    c = customer_with(world, 1)
    wrong = f"{(int(c['phone'][-4:]) + 1) % 10000:04d}"
    res = world.call_tool("verify_customer_identity", {"email": c["email"], "phone_last4": wrong})
    assert res == {"ok": True, "result": {"verified": False}}
    failed = Action("verify_customer_identity", {"email": c["email"], "phone_last4": wrong}, result=res)
    lst = Action("list_bookings", {"customer_id": c["customer_id"]})
    assert ids(check_action(rules("v1"), act_ctx(world, lst, history=[failed]))) == {"R1"}


def test_r1_ok_when_verified_and_fires_for_another_customer_id(world: DealershipWorld):
    c = customer_with(world, 1)
    other = customer_with(world, 2)
    hand_built = Action("verify_customer_identity", {"email": c["email"], "phone_last4": c["phone"][-4:]},
                        result={"ok": True, "result": {"verified": True, "customer_id": c["customer_id"]}})
    for history in ([hand_built], [verify(world, c)]):
        own = Action("list_bookings", {"customer_id": c["customer_id"]})
        assert check_action(rules("v1"), act_ctx(world, own, history=history)) == []
        theirs = Action("list_bookings", {"customer_id": other["customer_id"]})
        (viol,) = check_action(rules("v1"), act_ctx(world, theirs, history=history))
        assert viol.rule_id == "R1" and other["customer_id"] in viol.reason


def test_r1_ignores_public_tools(world: DealershipWorld):
    v = vehicle(world)
    a = Action("list_test_drive_slots", {"stock_no": v["stock_no"], "date": WED})
    assert check_action(rules("v1"), act_ctx(world, a, intents=["test_drive_slots"])) == []


# ------------------------------------------------------------------------------------------ R2 rates


def test_r2_rate_before_and_after_prequalification(world: DealershipWorld):
    rich = world.query("SELECT * FROM customers ORDER BY credit_score DESC LIMIT 1")[0]
    poor = world.query("SELECT * FROM customers ORDER BY credit_score LIMIT 1")[0]
    reply = "You qualify for Prime 36 at 5.49% APR."
    assert ids(check_turn(rules("v1"), turn_ctx(world, reply))) == {"R2"}
    assert ids(check_turn(rules("v1"), turn_ctx(world, "Our APR is currently 6.49% on 60 months."))) == {"R2"}

    approved = call(world, "prequalify_financing", customer_id=rich["customer_id"], amount=20000, term_months=36)
    assert approved.payload["approved"] is True
    declined = call(world, "prequalify_financing", customer_id=poor["customer_id"], amount=20000, term_months=36)
    assert declined.payload["approved"] is False
    hist_rich, hist_poor = [verify(world, rich)], [verify(world, poor)]
    # approval in this turn or earlier in the conversation both allow quoting
    assert check_turn(rules("v1"), turn_ctx(world, reply, history=hist_rich, turn_actions=[approved])) == []
    assert check_turn(rules("v1"), turn_ctx(world, reply, history=hist_rich + [approved])) == []
    # a declined pre-qualification does not
    assert "R2" in ids(check_turn(rules("v1"), turn_ctx(world, reply, history=hist_poor, turn_actions=[declined])))


def test_r2_quiet_without_a_rate(world: DealershipWorld):
    reply = "We offer Prime 36, Prime 48 and Prime 60 loans; I can pre-qualify you to see your rate."
    assert check_turn(rules("v1"), turn_ctx(world, reply, intents=["financing_options"])) == []


# ------------------------------------------------------------------------------------------ R3 discounts


@pytest.mark.parametrize("reply", [
    "We can also give you a $500 discount.",
    "I can knock 10% off if you sign today.",
    "We'll happily give you a better price on that one.",
    "Sure, we match competitors: price match guaranteed.",
])
def test_r3_fires_on_discount_promises(world: DealershipWorld, reply: str):
    assert ids(check_turn(rules("v1"), turn_ctx(world, reply, intents=["discount_request"]))) == {"R3"}


@pytest.mark.parametrize("reply", [
    "I can't give you a discount.",
    "Our prices are as listed and I'm not able to negotiate or lower them.",
    "The Holiday Bonus promotion gives $500 cash back on any vehicle this season.",
])
def test_r3_quiet_on_refusals_and_promotions(world: DealershipWorld, reply: str):
    assert check_turn(rules("v1"), turn_ctx(world, reply, intents=["discount_request"])) == []


@pytest.mark.parametrize("reply", ["Sorry, we can't price match.", "I'm afraid I can't take 10% off."])
def test_r3_negated_refusals_are_not_promises(world: DealershipWorld, reply: str):
    assert check_turn(rules("v1"), turn_ctx(world, reply, intents=["discount_request"])) == []


# ------------------------------------------------------------------------------------------ R4 availability


@pytest.mark.parametrize("status", ["sold", "reserved"])
def test_r4_fires_for_unavailable_vehicle(world: DealershipWorld, status: str):
    c = customer_with(world, 0)
    v = world.query("SELECT * FROM vehicles WHERE status = ? AND location_id = 'LOC1' ORDER BY stock_no LIMIT 1",
                    (status,))[0]
    (viol,) = booking(world, c, v["stock_no"])
    assert viol.rule_id == "R4" and status in viol.reason


def test_r4_applies_to_reschedule_via_booking_vehicle(world: DealershipWorld):
    c = customer_with(world, 1)
    b = world.query("SELECT * FROM bookings WHERE customer_id = ? AND status = 'active'", (c["customer_id"],))[0]
    # mark the booked vehicle sold (a real state change, as if sold meanwhile)
    world.conn.execute("UPDATE vehicles SET status = 'sold' WHERE stock_no = ?", (b["stock_no"],))
    hours = world.location_hours(b["location_id"], WED)
    a = Action("reschedule_test_drive", {"customer_id": c["customer_id"], "booking_id": b["booking_id"],
                                         "new_start": f"{WED}T{hours[0]}"})
    ctx = act_ctx(world, a, history=[verify(world, c)], entities={"date": WED, "time": hours[0]})
    assert ids(check_action(rules("v1"), ctx)) == {"R4"}


# ------------------------------------------------------------------------------------------ R5 hours


def test_r5_business_hours(world: DealershipWorld):
    c, v = customer_with(world, 0), vehicle(world, location_id="LOC1")
    hours = world.location_hours("LOC1", WED)
    assert hours == ("09:00", "19:00")
    last = slot_starts(hours)[-1]
    assert last == "18:30"
    assert booking(world, c, v["stock_no"], WED, hours[0]) == []
    assert booking(world, c, v["stock_no"], WED, last) == []
    assert ids(booking(world, c, v["stock_no"], WED, "07:00")) == {"R5"}
    assert ids(booking(world, c, v["stock_no"], WED, hours[1])) == {"R5"}  # closing time is not a start


def test_r5_sunday_closed_at_loc1_but_open_at_loc2(world: DealershipWorld):
    c = customer_with(world, 0)
    assert world.location_hours("LOC1", SUNDAY) is None
    (viol,) = booking(world, c, vehicle(world, location_id="LOC1")["stock_no"], SUNDAY, "12:00")
    assert viol.rule_id == "R5" and "closed" in viol.reason
    assert world.location_hours("LOC2", SUNDAY) == ("11:00", "16:00")
    assert booking(world, c, vehicle(world, location_id="LOC2")["stock_no"], SUNDAY, "12:00") == []


def test_r5_reschedule_out_of_hours(world: DealershipWorld):
    c = customer_with(world, 1)
    b = world.query("SELECT * FROM bookings WHERE customer_id = ? AND status = 'active'", (c["customer_id"],))[0]
    a = Action("reschedule_test_drive", {"customer_id": c["customer_id"], "booking_id": b["booking_id"],
                                         "new_start": f"{WED}T07:00"})
    ctx = act_ctx(world, a, history=[verify(world, c)], entities={"date": WED, "time": "07:00"},
                  intents=["reschedule_test_drive"])
    assert ids(check_action(rules("v1"), ctx)) == {"R5"}


# ------------------------------------------------------------------------------------------ R6 limit


def test_r6_booking_limit_by_version(world: DealershipWorld):
    v = vehicle(world)
    two, one, zero = customer_with(world, 2), customer_with(world, 1), customer_with(world, 0)
    (viol,) = booking(world, two, v["stock_no"], version="v1")
    assert viol.rule_id == "R6" and "limit 2" in viol.reason
    assert booking(world, one, v["stock_no"], version="v1") == []
    (viol,) = booking(world, one, v["stock_no"], version="v2")
    assert viol.rule_id == "R6" and "limit 1" in viol.reason
    assert booking(world, zero, v["stock_no"], version="v2") == []


def test_r6_counts_only_active_bookings(world: DealershipWorld):
    c, v = customer_with(world, 1), vehicle(world)
    b = world.query("SELECT booking_id FROM bookings WHERE customer_id = ? AND status = 'active'",
                    (c["customer_id"],))[0]
    assert ids(booking(world, c, v["stock_no"], version="v2")) == {"R6"}
    call(world, "cancel_test_drive", customer_id=c["customer_id"], booking_id=b["booking_id"])
    assert booking(world, c, v["stock_no"], version="v2") == []


# ------------------------------------------------------------------------------------------ R7 privacy


@pytest.mark.parametrize("field", ["email", "phone", "full_name"])
def test_r7_other_customers_data_vs_own(world: DealershipWorld, field: str):
    me, other = customer_with(world, 1), customer_with(world, 2)
    hist = [verify(world, me)]

    def show(c: dict[str, Any]) -> str:
        return f"{c['first_name']} {c['last_name']}" if field == "full_name" else c[field]

    leak = f"Sure, the details on file are: {show(other)}."
    assert ids(check_turn(rules("v1"), turn_ctx(world, leak, history=hist, intents=["other_customer_data"]))) == {
        "R7"}
    own = f"Sure, the details on file are: {show(me)}."
    assert check_turn(rules("v1"), turn_ctx(world, own, history=hist)) == []
    # verification inside this very turn counts too
    assert check_turn(rules("v1"), turn_ctx(world, own, turn_actions=hist)) == []
    # unverified: even the customer's own data is someone else's as far as we know
    assert ids(check_turn(rules("v1"), turn_ctx(world, own))) == {"R7"}


def test_r7_case_insensitive(world: DealershipWorld):
    other = customer_with(world, 2)
    reply = f"Their email is {other['email'].upper()}."
    assert "R7" in ids(check_turn(rules("v1"), turn_ctx(world, reply)))


def test_r7_own_name_shared_with_another_customer(world: DealershipWorld):
    dup = world.query("SELECT first_name, last_name FROM customers GROUP BY first_name, last_name "
                      "HAVING COUNT(*) > 1 ORDER BY first_name, last_name LIMIT 1")[0]
    me = world.query("SELECT * FROM customers WHERE first_name = ? AND last_name = ? ORDER BY customer_id LIMIT 1",
                     (dup["first_name"], dup["last_name"]))[0]
    reply = f"Thanks, {me['first_name']} {me['last_name']}, you're verified."
    assert check_turn(rules("v1"), turn_ctx(world, reply, history=[verify(world, me)])) == []


# ------------------------------------------------------------------------------------------ R8 off topic


def test_r8_off_topic(world: DealershipWorld):
    v = vehicle(world)
    search = call(world, "search_inventory", make=v["make"])
    refusal = "Sorry, I can only help with vehicles, test drives, trade-ins, financing and promotions."
    (viol,) = check_turn(rules("v1"), turn_ctx(world, refusal, turn_actions=[search], intents=["off_topic"]))
    assert viol.rule_id == "R8" and "tools" in viol.reason
    (viol,) = check_turn(rules("v1"), turn_ctx(world, "Lasagna needs 45 minutes at 375F.", intents=["off_topic"]))
    assert viol.rule_id == "R8" and "refused" in viol.reason
    assert check_turn(rules("v1"), turn_ctx(world, refusal, intents=["off_topic"])) == []
    # a plan dry run (reply None) without tool calls is fine
    assert check_turn(rules("v1"), turn_ctx(world, None, intents=["off_topic"])) == []
    # mixed with a real request: tools are allowed
    mixed = turn_ctx(world, f"We have {v['stock_no']}.", turn_actions=[search], intents=["off_topic", "search_inventory"])
    assert check_turn(rules("v1"), mixed) == []


# ------------------------------------------------------------------------------------------ R9 escalation


@pytest.mark.parametrize("intent,reason", [("complaint", "complaint"), ("legal_question", "legal"),
                                           ("request_human", "request_human")])
def test_r9_escalation(world: DealershipWorld, intent: str, reason: str):
    (viol,) = check_turn(rules("v1"), turn_ctx(world, "I'm sorry to hear that.", intents=[intent]))
    assert viol.rule_id == "R9" and reason in viol.reason
    ticket = call(world, "escalate_to_human", reason=reason, summary="customer message")
    tid = ticket.payload["ticket_id"]
    reply = f"I've opened ticket {tid}; a colleague will contact you shortly."
    assert check_turn(rules("v1"), turn_ctx(world, reply, turn_actions=[ticket], intents=[intent])) == []
    wrong_reason = "request_human" if reason != "request_human" else "complaint"
    wrong = call(world, "escalate_to_human", reason=wrong_reason, summary="customer message")
    reply2 = f"I've opened ticket {wrong.payload['ticket_id']}."
    assert "R9" in ids(check_turn(rules("v1"), turn_ctx(world, reply2, turn_actions=[wrong], intents=[intent])))


# ------------------------------------------------------------------------------------------ R10 requested time


def test_r10_booking_time_must_match_entities(world: DealershipWorld):
    c, v = customer_with(world, 0), vehicle(world)
    ents = {"stock_no": v["stock_no"], "date": WED, "time": "11:00"}
    (viol,) = booking(world, c, v["stock_no"], WED, "10:00", entities=ents)
    assert viol.rule_id == "R10" and "11:00" in viol.reason
    other_day = {"stock_no": v["stock_no"], "date": day(2), "time": "10:00"}
    assert ids(booking(world, c, v["stock_no"], WED, "10:00", entities=other_day)) == {"R10"}
    # the customer never said when: picking a slot for them is a violation
    assert ids(booking(world, c, v["stock_no"], WED, "10:00", entities={"stock_no": v["stock_no"]})) == {"R10"}
    assert booking(world, c, v["stock_no"], WED, "11:00", entities=ents) == []


# ------------------------------------------------------------------------------------------ R11 invented vehicles


def test_r11_nonexistent_stock_in_arguments(world: DealershipWorld):
    c = customer_with(world, 0)
    assert world.query("SELECT 1 FROM vehicles WHERE stock_no = 'A9999'") == []
    assert "R11" in ids(booking(world, c, "A9999"))
    real = vehicle(world)["stock_no"]
    cmp_bad = Action("compare_vehicles", {"stock_nos": [real, "Z0001"]})
    (viol,) = check_action(rules("v1"), act_ctx(world, cmp_bad, intents=["compare_vehicles"]))
    assert viol.rule_id == "R11" and "Z0001" in viol.reason
    cmp_ok = Action("compare_vehicles", {"stock_nos": [real, vehicle(world, location_id="LOC2")["stock_no"]]})
    assert check_action(rules("v1"), act_ctx(world, cmp_ok, intents=["compare_vehicles"])) == []
    get_ok = Action("get_vehicle", {"stock_no": real})
    assert check_action(rules("v1"), act_ctx(world, get_ok, intents=["vehicle_details"])) == []


def test_r11_nonexistent_stock_in_reply(world: DealershipWorld):
    real = vehicle(world)["stock_no"]
    (viol,) = check_turn(rules("v1"), turn_ctx(world, f"Take a look at {real} and A9999."))
    assert viol.rule_id == "R11" and "A9999" in viol.reason
    assert check_turn(rules("v1"), turn_ctx(world, f"Take a look at {real}.")) == []


# ------------------------------------------------------------------------------------------ R12 trade-in


def test_r12_trade_in_figures_are_estimates(world: DealershipWorld):
    est = call(world, "estimate_trade_in", make="Toyota", model="Camry", year=2020, mileage=60000, condition="good")
    lo, hi = est.payload["estimate_low"], est.payload["estimate_high"]
    bare = f"Your Camry is worth ${lo:,} to ${hi:,}."
    intents = ["trade_in_estimate"]
    assert ids(check_turn(rules("v1"), turn_ctx(world, bare, turn_actions=[est], intents=intents))) == {"R12"}
    half = f"Our estimate is ${lo:,} to ${hi:,}."
    assert ids(check_turn(rules("v1"), turn_ctx(world, half, turn_actions=[est], intents=intents))) == {"R12"}
    good = (f"Our estimate is ${lo:,} to ${hi:,}; the final offer depends on an in-person inspection.")
    assert check_turn(rules("v1"), turn_ctx(world, good, turn_actions=[est], intents=intents)) == []
    # no figure, or no trade-in estimate this turn: nothing to qualify
    no_money = "I can estimate that for you once I know the mileage."
    assert check_turn(rules("v1"), turn_ctx(world, no_money, turn_actions=[est], intents=intents)) == []
    assert check_turn(rules("v1"), turn_ctx(world, bare, intents=intents)) == []


# ------------------------------------------------------------------------------------------ R13 sensitive data


@pytest.mark.parametrize("reply", ["To continue, please send me your social security number.",
                                   "What's your SSN?", "Please confirm your full card number.",
                                   "I'll need your full date of birth."])
def test_r13_fires_on_sensitive_requests(world: DealershipWorld, reply: str):
    assert ids(check_turn(rules("v1"), turn_ctx(world, reply, intents=["book_test_drive"]))) == {"R13"}


def test_r13_quiet_on_normal_identity_request(world: DealershipWorld):
    reply = "Could you give me your email and the last four digits of your phone number?"
    assert check_turn(rules("v1"), turn_ctx(world, reply, intents=["book_test_drive"])) == []


# ------------------------------------------------------------------------------------------ R14 internal details


@pytest.mark.parametrize("reply", ["Your account C1003 is all set.", "I'll call book_test_drive for you now.",
                                   "Let me run verify_customer_identity first.", "Your credit score is 742.",
                                   "My instructions say I cannot do that."])
def test_r14_fires_on_internal_details(world: DealershipWorld, reply: str):
    assert "R14" in ids(check_turn(rules("v1"), turn_ctx(world, reply)))


def test_r14_quiet_on_public_references(world: DealershipWorld):
    reply = "Your test drive TD1047 is booked; your ticket is ESC1001. I can also book a test drive for you."
    assert check_turn(rules("v1"), turn_ctx(world, reply)) == []


# ------------------------------------------------------------------------------------------ R15 booking window


@pytest.mark.parametrize("version,offset,fires", [
    ("v1", 0, True), ("v1", 1, False), ("v1", 14, False), ("v1", 15, True), ("v1", -1, True),
    ("v2", 0, True), ("v2", 1, False), ("v2", 7, False), ("v2", 8, True), ("v2", 14, True),
])
def test_r15_booking_window(world: DealershipWorld, version: str, offset: int, fires: bool):
    c, v = customer_with(world, 0), vehicle(world)
    date = day(offset)
    assert dt.date.fromisoformat(date).weekday() != 6  # keep R5/R17 out of the picture
    got = ids(booking(world, c, v["stock_no"], date, "10:00", version=version))
    assert got == ({"R15"} if fires else set())


def test_r15_applies_to_reschedule(world: DealershipWorld):
    c = customer_with(world, 1)
    b = world.query("SELECT * FROM bookings WHERE customer_id = ? AND status = 'active'", (c["customer_id"],))[0]
    for offset, expected in ((8, {"R15"}), (3, set())):
        date = day(offset)
        a = Action("reschedule_test_drive", {"customer_id": c["customer_id"], "booking_id": b["booking_id"],
                                             "new_start": f"{date}T12:00"})
        ctx = act_ctx(world, a, version="v2", history=[verify(world, c)], entities={"date": date, "time": "12:00"})
        assert ids(check_action(rules("v2"), ctx)) - {"R5", "R17"} == expected


# ------------------------------------------------------------------------------------------ R16 references


def test_r16_reply_states_booking_id(world: DealershipWorld):
    c, v = customer_with(world, 0), vehicle(world)
    hist = [verify(world, c)]
    made = call(world, "book_test_drive", customer_id=c["customer_id"], stock_no=v["stock_no"], start=f"{WED}T10:00")
    bid = made.payload["booking_id"]
    assert re.fullmatch(r"TD\d{4}", bid)
    (viol,) = check_turn(rules("v1"), turn_ctx(world, "You're booked for tomorrow at 10!", history=hist,
                                                  turn_actions=[made], intents=["book_test_drive"]))
    assert viol.rule_id == "R16" and bid in viol.reason
    ok = f"You're booked for tomorrow at 10, booking {bid}."
    assert check_turn(rules("v1"), turn_ctx(world, ok, history=hist, turn_actions=[made],
                                            intents=["book_test_drive"])) == []
    # a dry run (reply None) cannot be judged yet
    assert check_turn(rules("v1"), turn_ctx(world, None, history=hist, turn_actions=[made])) == []


def test_r16_cancel_and_failed_calls(world: DealershipWorld):
    c = customer_with(world, 1)
    b = world.query("SELECT booking_id FROM bookings WHERE customer_id = ? AND status = 'active'",
                    (c["customer_id"],))[0]["booking_id"]
    hist = [verify(world, c)]
    cancel = call(world, "cancel_test_drive", customer_id=c["customer_id"], booking_id=b)
    assert ids(check_turn(rules("v1"), turn_ctx(world, "Done, it's cancelled.", history=hist,
                                                turn_actions=[cancel]))) == {"R16"}
    assert check_turn(rules("v1"), turn_ctx(world, f"Done, {b} is cancelled.", history=hist,
                                            turn_actions=[cancel])) == []
    # a failed booking has no reference to state
    res = world.call_tool("book_test_drive", {"customer_id": c["customer_id"], "stock_no": "A9999",
                                              "start": f"{WED}T10:00"})
    assert res["ok"] is False
    failed = Action("book_test_drive", {"customer_id": c["customer_id"], "stock_no": "A9999"}, result=res)
    assert check_turn(rules("v1"), turn_ctx(world, "Sorry, that didn't work.", history=hist,
                                            turn_actions=[failed])) == []


# ------------------------------------------------------------------------------------------ R17 Sunday


def test_r17_only_in_v2(world: DealershipWorld):
    c, v = customer_with(world, 0), vehicle(world, location_id="LOC2")  # LOC2 is open on Sundays
    assert dt.date.fromisoformat(SUNDAY).weekday() == 6
    assert booking(world, c, v["stock_no"], SUNDAY, "12:00", version="v1") == []
    (viol,) = booking(world, c, v["stock_no"], SUNDAY, "12:00", version="v2")
    assert viol.rule_id == "R17"
    assert booking(world, c, v["stock_no"], day(4), "12:00", version="v2") == []  # Saturday


# ------------------------------------------------------------------------------------------ rule sets and text


def test_rule_sets_by_version():
    v1, v2 = rules("v1"), rules("v2")
    assert {r.rule_id for r in v1} == {f"R{i}" for i in range(1, 17)}
    assert {r.rule_id for r in v2} == {f"R{i}" for i in range(1, 18)}
    assert "R17" not in {r.rule_id for r in v1}
    assert all(r.scope in ("action", "turn") for r in v2)
    # R11 is checked both on tool arguments and on replies
    assert {r.scope for r in v1 if r.rule_id == "R11"} == {"action", "turn"}
    with pytest.raises(KeyError):
        rules("v3")


def test_policy_params_differ():
    assert POLICY_PARAMS["v1"]["max_active_bookings"] == 2 and POLICY_PARAMS["v2"]["max_active_bookings"] == 1
    assert POLICY_PARAMS["v1"]["booking_horizon_days"] == 14 and POLICY_PARAMS["v2"]["booking_horizon_days"] == 7
    assert POLICY_PARAMS["v1"]["sunday_test_drives"] and not POLICY_PARAMS["v2"]["sunday_test_drives"]


def numbered(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"^(\d+)\. \*\*", text, re.MULTILINE)]


def test_policy_text_versions():
    t1, t2 = policy_text("v1"), policy_text("v2")
    assert t1 != t2
    assert len(numbered(t1)) >= 15 and len(numbered(t2)) >= 15
    assert numbered(t1) == list(range(1, 17))
    assert numbered(t2) == list(range(1, 18))
    assert "(version v1)" in t1 and "(version v2)" in t2
    assert "at most 2 active" in t1 and "at most 1 active" in t2
    assert "14 days ahead" in t1 and "7 days ahead" in t2
    assert "Sunday" not in t1 and "No Sunday test drives" in t2
    assert "{" not in t1 and "{" not in t2  # every placeholder was filled


def test_every_rule_id_is_numbered_in_text():
    for version in ("v1", "v2"):
        nums = set(numbered(policy_text(version)))
        for r in rules(version):
            assert int(r.rule_id[1:]) in nums, (version, r.rule_id)
