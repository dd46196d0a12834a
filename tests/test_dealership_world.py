"""Tests for the seeded dealership world and its 15 tools (real in-memory SQLite, no mocks)."""

from __future__ import annotations

import random
import re

import pytest

from agentdistill.domain.dealership.tools import TOOLS
from agentdistill.domain.dealership.world import DealershipWorld

VIN_RE = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")


@pytest.fixture(scope="module")
def base() -> DealershipWorld:
    return DealershipWorld.generate(seed=0)


@pytest.fixture()
def world(base: DealershipWorld) -> DealershipWorld:
    return base.copy()


def ok(res: dict) -> dict:
    assert res["ok"] is True, res
    return res["result"]


def err(res: dict, code: str) -> str:
    assert res["ok"] is False, res
    assert res["error"]["code"] == code, res
    assert isinstance(res["error"]["message"], str) and res["error"]["message"]
    return res["error"]["message"]


def a_customer(world: DealershipWorld) -> dict:
    return world.query("SELECT * FROM customers ORDER BY customer_id LIMIT 1")[0]


def an_available(world: DealershipWorld, location_id: str = "LOC1") -> dict:
    return world.query("SELECT * FROM vehicles WHERE status='available' AND location_id=? "
                       "ORDER BY stock_no LIMIT 1", (location_id,))[0]


# ------------------------------------------------------------------------------------------ generation


def test_determinism_by_seed():
    a, b, c = DealershipWorld.generate(7), DealershipWorld.generate(7), DealershipWorld.generate(8)
    assert a.dump_hash() == b.dump_hash()
    assert a.state_hash() == b.state_hash()
    assert a.dump_hash() != c.dump_hash()


def test_counts_and_shape(base: DealershipWorld):
    d = base.describe()
    assert d["tables"]["vehicles"] >= 300
    assert d["tables"]["locations"] == 3
    assert d["tables"]["customers"] == 200
    assert d["tables"]["escalations"] == 0
    assert 5 <= d["tables"]["financing_products"] <= 8
    assert len(d["vehicles_by_make"]) >= 8
    assert set(d["vehicles_by_status"]) == {"available", "reserved", "sold"}
    assert d["vehicles_by_status"]["available"] / d["tables"]["vehicles"] > 0.8
    per_cust = base.query("SELECT customer_id, COUNT(*) AS n FROM bookings WHERE status='active' "
                          "GROUP BY customer_id")
    assert sum(r["n"] == 2 for r in per_cust) >= 10
    assert sum(r["n"] == 1 for r in per_cust) >= 20
    # every catalogue model has >=2 available vehicles and a trade-in base value
    models = base.query("SELECT make, model, SUM(status='available') AS n FROM vehicles GROUP BY make, model")
    assert len(models) >= 25 and all(r["n"] >= 2 for r in models)
    assert base.query("SELECT COUNT(*) AS n FROM trade_in_base")[0]["n"] == len(models)
    # ambiguity: several (make, model, colour) combos with >=3 available matches
    multi = base.query("SELECT make, model, colour, COUNT(*) AS n FROM vehicles WHERE status='available' "
                       "GROUP BY make, model, colour HAVING n >= 3")
    assert len(multi) >= 5


def test_row_formats(base: DealershipWorld):
    for v in base.query("SELECT * FROM vehicles"):
        assert VIN_RE.match(v["vin"]), v["vin"]
        assert v["condition"] in ("new", "used", "certified")
        if v["condition"] == "new":
            assert v["year"] >= 2026 and v["mileage"] < 50
        else:
            assert 2016 <= v["year"] <= 2025 and v["mileage"] > 0
        assert v["price"] > 0
    for c in base.query("SELECT * FROM customers"):
        assert re.match(r"^\d{3}-\d{3}-\d{4}$", c["phone"])
        assert c["email"] == c["email"].lower() and c["email"].endswith("@example.com")
        assert 520 <= c["credit_score"] <= 830
    for b in base.query("SELECT * FROM bookings"):
        hours = base.location_hours(b["location_id"], b["start"][:10])
        assert hours is not None and hours[0] <= b["start"][11:] < hours[1]
        assert "2026-12-01" < b["start"] < "2026-12-16"
    loc1 = base.query("SELECT * FROM locations WHERE location_id='LOC1'")[0]
    assert loc1["name"] == "Downtown Motors"


def test_generate_and_copy_are_fast():
    import time

    t = time.perf_counter()
    w = DealershipWorld.generate(3)
    assert time.perf_counter() - t < 0.3
    t = time.perf_counter()
    for _ in range(20):
        w.copy()
    assert (time.perf_counter() - t) / 20 < 0.01


def test_helpers(base: DealershipWorld):
    assert base.today == "2026-12-01"
    assert base.weekday("2026-12-06") == "sunday"
    assert base.location_hours("LOC1", "2026-12-06") is None
    assert base.location_hours("LOC2", "2026-12-06") == ("11:00", "16:00")
    assert base.location_hours("LOC3", "2026-12-02") == ("08:00", "20:00")
    with pytest.raises(ValueError):
        base.query("DELETE FROM bookings")
    assert len(TOOLS) == 15
    assert {n for n, t in TOOLS.items() if t.mutates} == {
        "book_test_drive", "reschedule_test_drive", "cancel_test_drive", "escalate_to_human"}
    assert {n for n, t in TOOLS.items() if t.personal} == {
        "book_test_drive", "reschedule_test_drive", "cancel_test_drive", "list_bookings", "prequalify_financing"}
    for spec in TOOLS.values():
        s = spec.openai_schema()
        assert s["function"]["parameters"]["type"] == "object"
        assert len(spec.description) > 60


# ------------------------------------------------------------------------------------------ happy paths


def test_search_inventory(world: DealershipWorld):
    r = ok(world.call_tool("search_inventory", {"make": "toyota", "model": "CAMRY", "limit": 20}))
    assert r["count"] == len(r["vehicles"]) or len(r["vehicles"]) == 20
    prices = [(v["price"], v["stock_no"]) for v in r["vehicles"]]
    assert prices == sorted(prices)
    assert all(v["make"] == "Toyota" and v["status"] == "available" for v in r["vehicles"])
    r = ok(world.call_tool("search_inventory", {}))
    assert len(r["vehicles"]) == 5 and r["count"] == world.describe()["vehicles_by_status"]["available"]
    r = ok(world.call_tool("search_inventory", {"include_unavailable": True, "limit": 1}))
    assert r["count"] == 360
    r = ok(world.call_tool("search_inventory", {"body": "truck", "condition": "new", "min_year": 2026,
                                                 "max_price": 60000, "location_id": "LOC2"}))
    assert all(v["location_id"] == "LOC2" and v["condition"] == "new" and v["price"] <= 60000
               for v in r["vehicles"])
    assert ok(world.call_tool("search_inventory", {"make": "Ferrari"}))["count"] == 0


def test_get_vehicle_and_compare(world: DealershipWorld):
    v = ok(world.call_tool("get_vehicle", {"stock_no": "A1001"}))
    assert isinstance(v["features"], list) and len(v["vin"]) == 17 and v["location_name"]
    r = ok(world.call_tool("compare_vehicles", {"stock_nos": ["A1001", "A1002", "A1003"]}))
    vs = r["vehicles"]
    assert len(vs) == 3
    assert r["cheapest"] == min(vs, key=lambda x: x["price"])["stock_no"]
    assert r["lowest_mileage"] == min(vs, key=lambda x: x["mileage"])["stock_no"]
    assert max(x["year"] for x in vs) == next(x for x in vs if x["stock_no"] == r["newest"])["year"]
    err(world.call_tool("compare_vehicles", {"stock_nos": ["A1001", "Z9999"]}), "not_found")
    err(world.call_tool("compare_vehicles", {"stock_nos": ["A1001"]}), "invalid_arguments")
    err(world.call_tool("compare_vehicles", {"stock_nos": ["A1001", "A1001"]}), "invalid_arguments")
    err(world.call_tool("compare_vehicles", {"stock_nos": ["A1001", 5]}), "invalid_arguments")


def test_dealer_info(world: DealershipWorld):
    assert len(ok(world.call_tool("get_dealer_info", {}))["locations"]) == 3
    loc = ok(world.call_tool("get_dealer_info", {"location_id": "LOC2"}))["locations"][0]
    assert loc["hours"]["sunday"] == ["11:00", "16:00"]
    err(world.call_tool("get_dealer_info", {"location_id": "LOC9"}), "not_found")


def test_slots_respect_hours_and_bookings(world: DealershipWorld):
    v = an_available(world, "LOC1")
    assert ok(world.call_tool("list_test_drive_slots", {"stock_no": v["stock_no"], "date": "2026-12-06"}))[
        "slots"] == []
    weekday = ok(world.call_tool("list_test_drive_slots", {"stock_no": v["stock_no"], "date": "2026-12-07"}))
    slots = weekday["slots"]
    assert slots[0] == "09:00" and slots[-1] == "18:30" and len(slots) == 20
    assert weekday["location_id"] == "LOC1"
    sat = ok(world.call_tool("list_test_drive_slots", {"stock_no": v["stock_no"], "date": "2026-12-05"}))
    assert sat["slots"][-1] == "16:30"
    c = a_customer(world)
    ok(world.call_tool("book_test_drive", {"customer_id": c["customer_id"], "stock_no": v["stock_no"],
                                           "start": "2026-12-07T10:00"}))
    after = ok(world.call_tool("list_test_drive_slots", {"stock_no": v["stock_no"], "date": "2026-12-07"}))
    assert "10:00" not in after["slots"] and len(after["slots"]) == 19
    err(world.call_tool("list_test_drive_slots", {"stock_no": v["stock_no"], "date": "2026-02-30"}),
        "invalid_arguments")


def test_verify_identity(world: DealershipWorld):
    c = a_customer(world)
    r = ok(world.call_tool("verify_customer_identity",
                           {"email": c["email"].upper(), "phone_last4": c["phone"][-4:]}))
    assert r == {"verified": True, "customer_id": c["customer_id"], "first_name": c["first_name"]}
    wrong = "0000" if not c["phone"].endswith("0000") else "1111"
    assert ok(world.call_tool("verify_customer_identity",
                              {"email": c["email"], "phone_last4": wrong})) == {"verified": False}
    assert ok(world.call_tool("verify_customer_identity",
                              {"email": "nobody@example.com", "phone_last4": "1234"}))["verified"] is False
    err(world.call_tool("verify_customer_identity", {"email": c["email"], "phone_last4": "12a4"}),
        "invalid_arguments")


def test_booking_lifecycle(world: DealershipWorld):
    c = a_customer(world)
    cid = c["customer_id"]
    v = an_available(world, "LOC3")
    before = world.state_hash()
    b = ok(world.call_tool("book_test_drive", {"customer_id": cid, "stock_no": v["stock_no"],
                                               "start": "2026-12-03T11:00"}))
    n_pre = world.query("SELECT COUNT(*) AS n FROM bookings WHERE booking_id != ?", (b["booking_id"],))[0]["n"]
    assert b["booking_id"] == f"TD{1001 + n_pre}"
    assert b["status"] == "active" and b["location_id"] == "LOC3" and b["customer_id"] == cid
    assert world.state_hash() != before
    listed = ok(world.call_tool("list_bookings", {"customer_id": cid}))["bookings"]
    assert b["booking_id"] in [x["booking_id"] for x in listed]
    assert all({"make", "model", "year"} <= set(x) for x in listed)
    assert [x["start"] for x in listed] == sorted(x["start"] for x in listed)
    # another customer cannot take the same vehicle at the same start
    other = world.query("SELECT customer_id FROM customers WHERE customer_id != ? LIMIT 1", (cid,))[0]
    err(world.call_tool("book_test_drive", {"customer_id": other["customer_id"], "stock_no": v["stock_no"],
                                            "start": "2026-12-03T11:00"}), "slot_taken")
    # reschedule
    r = ok(world.call_tool("reschedule_test_drive", {"customer_id": cid, "booking_id": b["booking_id"],
                                                     "new_start": "2026-12-04T14:30"}))
    assert r["start"] == "2026-12-04T14:30" and r["booking_id"] == b["booking_id"]
    # someone else's booking looks like not_found, with the same wording as a missing one
    m1 = err(world.call_tool("cancel_test_drive", {"customer_id": other["customer_id"],
                                                   "booking_id": b["booking_id"]}), "not_found")
    m2 = err(world.call_tool("cancel_test_drive", {"customer_id": other["customer_id"], "booking_id": "TD9999"}),
             "not_found")
    assert m1.replace(b["booking_id"], "TD9999") == m2
    # cancel then invalid_state
    cc = ok(world.call_tool("cancel_test_drive", {"customer_id": cid, "booking_id": b["booking_id"]}))
    assert cc["status"] == "cancelled"
    err(world.call_tool("cancel_test_drive", {"customer_id": cid, "booking_id": b["booking_id"]}),
        "invalid_state")
    err(world.call_tool("reschedule_test_drive", {"customer_id": cid, "booking_id": b["booking_id"],
                                                  "new_start": "2026-12-05T10:00"}), "invalid_state")
    # slot is free again after cancelling
    ok(world.call_tool("book_test_drive", {"customer_id": other["customer_id"], "stock_no": v["stock_no"],
                                           "start": "2026-12-04T14:30"}))


def test_reschedule_slot_taken_and_not_found(world: DealershipWorld):
    pre = world.query("SELECT * FROM bookings WHERE status='active' ORDER BY booking_id LIMIT 1")[0]
    c = a_customer(world)
    mine = ok(world.call_tool("book_test_drive", {"customer_id": c["customer_id"], "stock_no": pre["stock_no"],
                                                  "start": "2026-12-20T12:00"}))
    err(world.call_tool("reschedule_test_drive", {"customer_id": c["customer_id"],
                                                  "booking_id": mine["booking_id"],
                                                  "new_start": pre["start"]}), "slot_taken")
    err(world.call_tool("book_test_drive", {"customer_id": "C0000", "stock_no": "A1001",
                                            "start": "2026-12-20T12:00"}), "not_found")
    err(world.call_tool("book_test_drive", {"customer_id": c["customer_id"], "stock_no": "B1",
                                            "start": "2026-12-20T12:00"}), "not_found")
    err(world.call_tool("list_bookings", {"customer_id": "C0000"}), "not_found")


def test_trade_in(world: DealershipWorld):
    args = {"make": "Honda", "model": "Civic", "year": 2020, "mileage": 60000, "condition": "good"}
    r = ok(world.call_tool("estimate_trade_in", args))
    assert r["currency"] == "USD" and 0 < r["estimate_low"] < r["estimate_high"]
    assert r["estimate_low"] % 50 == 0 and r["estimate_high"] % 50 == 0
    assert r == ok(world.call_tool("estimate_trade_in", dict(args, make="honda", model="civic")))
    poor = ok(world.call_tool("estimate_trade_in", dict(args, condition="poor")))
    older = ok(world.call_tool("estimate_trade_in", dict(args, year=2016)))
    higher_miles = ok(world.call_tool("estimate_trade_in", dict(args, mileage=150000)))
    for worse in (poor, older, higher_miles):
        assert worse["estimate_high"] < r["estimate_high"]
    err(world.call_tool("estimate_trade_in", dict(args, make="Lada")), "not_found")
    err(world.call_tool("estimate_trade_in", dict(args, condition="mint")), "invalid_arguments")
    err(world.call_tool("estimate_trade_in", dict(args, year="2020")), "invalid_arguments")


def test_financing(world: DealershipWorld):
    prods = ok(world.call_tool("list_financing_products", {}))["products"]
    assert len(prods) >= 5 and all("apr" not in p for p in prods)
    assert {p["term_months"] for p in prods} == {36, 48, 60, 72}
    hi = world.query("SELECT customer_id FROM customers WHERE credit_score >= 760 LIMIT 1")[0]["customer_id"]
    lo = world.query("SELECT customer_id FROM customers WHERE credit_score < 600 LIMIT 1")[0]["customer_id"]
    r = ok(world.call_tool("prequalify_financing", {"customer_id": hi, "amount": 30000, "term_months": 60}))
    assert r["approved"] and r["offers"]
    off = r["offers"][0]
    rate = off["apr"] / 1200
    expected = round(30000 * rate / (1 - (1 + rate) ** -60), 2)
    assert off["monthly_payment"] == expected and off["term_months"] == 60
    r = ok(world.call_tool("prequalify_financing", {"customer_id": lo, "amount": 30000, "term_months": 60}))
    assert r == {"approved": False, "amount": 30000, "offers": []}
    err(world.call_tool("prequalify_financing", {"customer_id": hi, "amount": 30000, "term_months": 50}),
        "invalid_arguments")
    err(world.call_tool("prequalify_financing", {"customer_id": hi, "amount": 500, "term_months": 60}),
        "invalid_arguments")


def test_promotions(world: DealershipWorld):
    allp = ok(world.call_tool("get_promotions", {}))["promotions"]
    assert allp and all(p["start_date"] <= world.today <= p["end_date"] for p in allp)
    n_total = world.query("SELECT COUNT(*) AS n FROM promotions")[0]["n"]
    assert len(allp) < n_total  # some expired / not yet started
    toyota = ok(world.call_tool("get_promotions", {"make": "Toyota", "model": "RAV4", "condition": "new"}))
    assert any(p["model"] == "RAV4" for p in toyota["promotions"])
    assert all(p["make"] in (None, "Toyota") for p in toyota["promotions"])
    ford = ok(world.call_tool("get_promotions", {"make": "Ford", "model": "F-150"}))["promotions"]
    assert all(p["model"] != "F-150" for p in ford)  # the F-150 promotion has expired


def test_escalation_and_hash_ignores_summary(base: DealershipWorld):
    a, b = base.copy(), base.copy()
    ra = ok(a.call_tool("escalate_to_human", {"reason": "complaint", "summary": "Car was dirty."}))
    rb = ok(b.call_tool("escalate_to_human", {"reason": "complaint", "summary": "Totally different text."}))
    assert ra == rb == {"ticket_id": "ESC1001", "reason": "complaint", "eta_minutes": 15}
    assert a.state_hash() == b.state_hash() != base.state_hash()
    r2 = ok(a.call_tool("escalate_to_human", {"reason": "legal", "summary": "x", "customer_id": "C1001"}))
    assert r2["ticket_id"] == "ESC1002"
    assert a.state_hash() != b.state_hash()
    err(a.call_tool("escalate_to_human", {"reason": "complaint", "summary": ""}), "invalid_arguments")
    err(a.call_tool("escalate_to_human", {"reason": "complaint", "summary": "x" * 501}), "invalid_arguments")
    err(a.call_tool("escalate_to_human", {"reason": "angry", "summary": "x"}), "invalid_arguments")
    err(a.call_tool("escalate_to_human", {"reason": "other", "summary": "x", "customer_id": "C0"}), "not_found")


# ------------------------------------------------------------------------------------------ copies and hashes


def test_copy_independence(base: DealershipWorld):
    h0, d0 = base.state_hash(), base.dump_hash()
    w = base.copy()
    c = a_customer(w)
    ok(w.call_tool("book_test_drive", {"customer_id": c["customer_id"], "stock_no": "A1001",
                                       "start": "2026-12-10T12:00"}))
    assert w.state_hash() != h0
    assert base.state_hash() == h0 and base.dump_hash() == d0
    assert base.copy().state_hash() == h0


def test_same_calls_same_ids_and_hash(base: DealershipWorld):
    calls = [
        ("book_test_drive", {"customer_id": "C1005", "stock_no": "A1010", "start": "2026-12-08T10:00"}),
        ("book_test_drive", {"customer_id": "C1006", "stock_no": "A1011", "start": "2026-12-08T10:30"}),
        ("cancel_test_drive", {"customer_id": "C1005", "booking_id": None}),
        ("escalate_to_human", {"reason": "request_human", "summary": "wants a person"}),
    ]
    results = []
    for w in (base.copy(), base.copy()):
        out = []
        for name, args in calls:
            args = dict(args)
            if args.get("booking_id", 1) is None:
                args["booking_id"] = out[0]["booking_id"]
            out.append(ok(w.call_tool(name, args)))
        results.append((out, w.state_hash()))
    assert results[0] == results[1]
    assert results[0][1] != base.state_hash()


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("name,args", [
    ("get_vehicle", {}),  # missing required
    ("get_vehicle", {"stock_no": "A1001", "colour": "red"}),  # unknown key
    ("get_vehicle", {"stock_no": 1001}),  # wrong type
    ("search_inventory", {"limit": "5"}),  # integer given as string
    ("search_inventory", {"limit": 5.0}),  # float is not an integer
    ("search_inventory", {"limit": 0}),  # below minimum
    ("search_inventory", {"limit": 21}),  # above maximum
    ("search_inventory", {"condition": "broken"}),  # bad enum
    ("search_inventory", {"include_unavailable": "yes"}),  # not a boolean
    ("search_inventory", {"min_year": True}),  # bool is not an integer
    ("list_test_drive_slots", {"stock_no": "A1001", "date": "12/07/2026"}),  # bad date
    ("list_test_drive_slots", {"stock_no": "A1001", "date": "2026-13-01"}),  # impossible date
    ("book_test_drive", {"customer_id": "C1001", "stock_no": "A1001", "start": "2026-12-07 10:00"}),
    ("book_test_drive", {"customer_id": "C1001", "stock_no": "A1001", "start": "2026-12-07T10:00:00"}),
    ("book_test_drive", {"customer_id": "C1001", "stock_no": "A1001", "start": "2026-12-07T25:00"}),
    ("list_financing_products", {"x": 1}),
])
def test_invalid_arguments(world: DealershipWorld, name: str, args: dict):
    h = world.state_hash()
    err(world.call_tool(name, args), "invalid_arguments")
    assert world.state_hash() == h


def test_argument_container_errors(world: DealershipWorld):
    err(world.call_tool("no_such_tool", {}), "unknown_tool")
    err(world.call_tool("get_vehicle", ["A1001"]), "invalid_arguments")
    err(world.call_tool("get_vehicle", "{not json"), "invalid_arguments")
    assert ok(world.call_tool("get_vehicle", '{"stock_no": "A1001"}'))["stock_no"] == "A1001"
    assert ok(world.call_tool("get_dealer_info", None))["locations"]
    # null for an optional argument counts as omitted
    assert ok(world.call_tool("search_inventory", {"make": None}))["count"] > 0


JUNK = [None, True, False, 0, -1, 7, 10**12, 3.5, "", " ", "x", "A1001", "C1001", "TD1001", "LOC1",
        "2026-12-07", "2026-12-07T10:00", "2026-02-30", "toyota", "new", "complaint", "1234", 60, 36,
        [], ["A1001", "A1002"], ["A1001", None], [1, 2], {}, {"a": 1}, "x" * 600, "'; DROP TABLE vehicles;--"]


def test_fuzz_never_raises(base: DealershipWorld):
    rng = random.Random(1234)
    w = base.copy()
    for name, spec in TOOLS.items():
        props = list(spec.parameters["properties"])
        for _ in range(200):
            keys = rng.sample(props, rng.randint(0, len(props))) if props else []
            if rng.random() < 0.2:
                keys.append(rng.choice(["foo", "stock", "", "customerId"]))
            args = {k: rng.choice(JUNK) for k in keys}
            res = w.call_tool(name, args)
            assert isinstance(res, dict) and isinstance(res["ok"], bool), (name, args, res)
            if not res["ok"]:
                assert res["error"]["code"] != "internal_error", (name, args, res)
                assert set(res["error"]) == {"code", "message"}
    for junk in JUNK:
        res = w.call_tool(junk if isinstance(junk, str) else "get_vehicle", junk)
        assert isinstance(res, dict) and isinstance(res["ok"], bool)
    assert w.describe()["tables"]["vehicles"] == 360
