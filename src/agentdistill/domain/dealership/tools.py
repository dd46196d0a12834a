"""The 15 dealership tools: OpenAI JSON schemas and the implementations (validation: domain/toolkit.py).

Each implementation is `fn(world, **validated_args) -> dict` and signals failure by raising `ToolFailure`
(domain/toolkit.py), which `DealershipWorld.call_tool` turns into `{"ok": False, "error": {...}}`. Tools enforce
data integrity only (existence, formats, no double-booking of one vehicle at one start); business policy lives
elsewhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from agentdistill.domain.base import ToolSpec
from agentdistill.domain.toolkit import Toolbox, ToolFailure, bad, integer, obj, show, string

from .world import BODY_TYPES, slot_starts

_bad, _show, _obj, _s, _i = bad, show, obj, string, integer


STOCK_NO = _s("Dealer stock number of the vehicle, e.g. 'A1042'.", minLength=1, maxLength=20)
CUSTOMER_ID = _s("Customer id returned by verify_customer_identity, e.g. 'C1007'.", minLength=1, maxLength=20)
BOOKING_ID = _s("Test-drive booking id, e.g. 'TD1012'.", minLength=1, maxLength=20)
START = _s("Local start time at the dealership, format 'YYYY-MM-DDTHH:MM' (24-hour clock, no seconds).",
           format="date-time")

VEHICLE_LIST_COLS = ("stock_no", "year", "make", "model", "trim", "colour", "condition", "price", "mileage",
                     "location_id", "status")


def _vehicle(world: Any, stock_no: str) -> dict[str, Any]:
    row = world.conn.execute(
        "SELECT v.*, l.name AS location_name FROM vehicles v JOIN locations l USING(location_id) "
        "WHERE v.stock_no = ?", (stock_no,)).fetchone()
    if row is None:
        raise ToolFailure("not_found", f"No vehicle with stock number {_show(stock_no)}.")
    row["features"] = json.loads(row["features"])
    return row


def _customer(world: Any, customer_id: str) -> dict[str, Any]:
    row = world.conn.execute("SELECT * FROM customers WHERE customer_id = ?", (customer_id,)).fetchone()
    if row is None:
        raise ToolFailure("not_found", f"No customer with id {_show(customer_id)}.")
    return row


def _own_booking(world: Any, customer_id: str, booking_id: str) -> dict[str, Any]:
    _customer(world, customer_id)
    row = world.conn.execute("SELECT * FROM bookings WHERE booking_id = ? AND customer_id = ?",
                             (booking_id, customer_id)).fetchone()
    if row is None:
        raise ToolFailure("not_found", f"No booking {_show(booking_id)} found for customer {_show(customer_id)}.")
    if row["status"] != "active":
        raise ToolFailure("invalid_state", f"Booking {row['booking_id']} is already {row['status']}.")
    return row


def _check_free(world: Any, stock_no: str, start: str, exclude: str | None = None) -> None:
    row = world.conn.execute(
        "SELECT booking_id FROM bookings WHERE stock_no = ? AND start = ? AND status = 'active' "
        "AND booking_id != ?", (stock_no, start, exclude or "")).fetchone()
    if row is not None:
        raise ToolFailure("slot_taken", f"Vehicle {stock_no} is already booked for a test drive at {start}.")


def _booking_out(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in ("booking_id", "customer_id", "stock_no", "location_id", "start", "status")}


def _round50(x: float) -> int:
    return int(x / 50.0 + 0.5) * 50


# ------------------------------------------------------------------------------------------- tools


def search_inventory(world: Any, make: str | None = None, model: str | None = None, body: str | None = None,
                     condition: str | None = None, min_year: int | None = None, max_price: int | None = None,
                     colour: str | None = None, location_id: str | None = None,
                     include_unavailable: bool = False, limit: int = 5) -> dict[str, Any]:
    where, params = [], []
    for col, val in (("make", make), ("model", model), ("body", body), ("condition", condition),
                     ("colour", colour), ("location_id", location_id)):
        if val is not None:
            where.append(f"LOWER({col}) = LOWER(?)")
            params.append(val.strip())
    if location_id is not None and not world.conn.execute(
            "SELECT 1 FROM locations WHERE LOWER(location_id) = LOWER(?)", (location_id.strip(),)).fetchone():
        raise ToolFailure("not_found", f"No dealership location {_show(location_id)}.")
    if min_year is not None:
        where.append("year >= ?")
        params.append(min_year)
    if max_price is not None:
        where.append("price <= ?")
        params.append(max_price)
    if not include_unavailable:
        where.append("status = 'available'")
    clause = ("WHERE " + " AND ".join(where)) if where else ""
    count = world.conn.execute(f"SELECT COUNT(*) AS n FROM vehicles {clause}", params).fetchone()["n"]
    rows = world.conn.execute(
        f"SELECT {', '.join(VEHICLE_LIST_COLS)} FROM vehicles {clause} ORDER BY price, stock_no LIMIT ?",
        (*params, limit)).fetchall()
    return {"count": count, "vehicles": rows}


def get_vehicle(world: Any, stock_no: str) -> dict[str, Any]:
    return _vehicle(world, stock_no)


def compare_vehicles(world: Any, stock_nos: list[str]) -> dict[str, Any]:
    vs = [_vehicle(world, s) for s in stock_nos]
    if len({v["stock_no"] for v in vs}) != len(vs):
        raise _bad("Argument 'stock_nos' must list distinct vehicles.")
    return {
        "vehicles": vs,
        "cheapest": min(vs, key=lambda v: (v["price"], v["stock_no"]))["stock_no"],
        "lowest_mileage": min(vs, key=lambda v: (v["mileage"], v["stock_no"]))["stock_no"],
        "newest": min(vs, key=lambda v: (-v["year"], v["mileage"], v["stock_no"]))["stock_no"],
    }


def get_dealer_info(world: Any, location_id: str | None = None) -> dict[str, Any]:
    sql, params = "SELECT * FROM locations", ()
    if location_id is not None:
        sql, params = sql + " WHERE location_id = ?", (location_id,)
    rows = world.conn.execute(sql + " ORDER BY location_id", params).fetchall()
    if not rows:
        raise ToolFailure("not_found", f"No dealership location {_show(location_id)}.")
    for r in rows:
        r["hours"] = json.loads(r["hours"])
    return {"locations": rows}


def list_test_drive_slots(world: Any, stock_no: str, date: str) -> dict[str, Any]:
    v = _vehicle(world, stock_no)
    booked = {r["start"][11:] for r in world.conn.execute(
        "SELECT start FROM bookings WHERE stock_no = ? AND status = 'active' AND start LIKE ?",
        (v["stock_no"], date + "T%"))}
    slots = [s for s in slot_starts(world.location_hours(v["location_id"], date)) if s not in booked]
    return {"stock_no": v["stock_no"], "location_id": v["location_id"], "date": date, "slots": slots}


def verify_customer_identity(world: Any, email: str, phone_last4: str) -> dict[str, Any]:
    row = world.conn.execute("SELECT customer_id, first_name, phone FROM customers WHERE email = ?",
                             (email.strip().lower(),)).fetchone()
    if row is None or not row["phone"].endswith(phone_last4):
        return {"verified": False}
    return {"verified": True, "customer_id": row["customer_id"], "first_name": row["first_name"]}


def book_test_drive(world: Any, customer_id: str, stock_no: str, start: str) -> dict[str, Any]:
    c = _customer(world, customer_id)
    v = _vehicle(world, stock_no)
    _check_free(world, v["stock_no"], start)
    booking_id = world.next_id("bookings", "booking_id", "TD")
    row = {"booking_id": booking_id, "customer_id": c["customer_id"], "stock_no": v["stock_no"],
           "location_id": v["location_id"], "start": start, "status": "active"}
    world.conn.execute("INSERT INTO bookings VALUES (?,?,?,?,?,30,?)",
                       (booking_id, row["customer_id"], row["stock_no"], row["location_id"], start, "active"))
    world.conn.commit()
    return row


def reschedule_test_drive(world: Any, customer_id: str, booking_id: str, new_start: str) -> dict[str, Any]:
    b = _own_booking(world, customer_id, booking_id)
    _check_free(world, b["stock_no"], new_start, exclude=b["booking_id"])
    world.conn.execute("UPDATE bookings SET start = ? WHERE booking_id = ?", (new_start, b["booking_id"]))
    world.conn.commit()
    b["start"] = new_start
    return _booking_out(b)


def cancel_test_drive(world: Any, customer_id: str, booking_id: str) -> dict[str, Any]:
    b = _own_booking(world, customer_id, booking_id)
    world.conn.execute("UPDATE bookings SET status = 'cancelled' WHERE booking_id = ?", (b["booking_id"],))
    world.conn.commit()
    b["status"] = "cancelled"
    return _booking_out(b)


def list_bookings(world: Any, customer_id: str) -> dict[str, Any]:
    c = _customer(world, customer_id)
    rows = world.conn.execute(
        "SELECT b.booking_id, b.customer_id, b.stock_no, b.location_id, b.start, b.duration_min, b.status, "
        "v.make, v.model, v.year FROM bookings b JOIN vehicles v USING(stock_no) "
        "WHERE b.customer_id = ? AND b.status = 'active' ORDER BY b.start, b.booking_id",
        (c["customer_id"],)).fetchall()
    return {"bookings": rows}


CONDITION_MULT = {"excellent": 1.08, "good": 1.0, "fair": 0.88, "poor": 0.72}


def estimate_trade_in(world: Any, make: str, model: str, year: int, mileage: int,
                      condition: str) -> dict[str, Any]:
    row = world.conn.execute(
        "SELECT make, model, base_value FROM trade_in_base WHERE LOWER(make) = LOWER(?) AND LOWER(model) = LOWER(?)",
        (make.strip(), model.strip())).fetchone()
    if row is None:
        raise ToolFailure("not_found", f"No trade-in data for {make} {model}.")
    this_year = int(world.today[:4])
    if year > this_year + 1:
        raise _bad(f"Argument 'year' cannot be later than {this_year + 1}, got {year}.")
    age = max(0, this_year - year)
    mid = row["base_value"] * 0.88 ** age
    expected = max(age, 1) * 12000
    mid -= (mileage - expected) * 0.05
    mid = max(mid * CONDITION_MULT[condition], 300.0)
    return {"make": row["make"], "model": row["model"], "estimate_low": _round50(0.92 * mid),
            "estimate_high": _round50(1.08 * mid), "currency": "USD"}


def list_financing_products(world: Any) -> dict[str, Any]:
    return {"products": world.conn.execute(
        "SELECT product_id, name, term_months, max_amount, min_down_pct FROM financing_products "
        "ORDER BY term_months, product_id").fetchall()}


def prequalify_financing(world: Any, customer_id: str, amount: int, term_months: int) -> dict[str, Any]:
    c = _customer(world, customer_id)
    offers = []
    for p in world.conn.execute(
            "SELECT * FROM financing_products WHERE term_months = ? AND min_credit_score <= ? AND max_amount >= ? "
            "ORDER BY apr, product_id", (term_months, c["credit_score"], amount)):
        r = p["apr"] / 100.0 / 12.0
        pay = amount / term_months if r == 0 else amount * r / (1.0 - (1.0 + r) ** -term_months)
        offers.append({"product_id": p["product_id"], "name": p["name"], "term_months": p["term_months"],
                       "apr": p["apr"], "monthly_payment": round(pay, 2)})
    return {"approved": bool(offers), "amount": amount, "offers": offers}


def get_promotions(world: Any, make: str | None = None, model: str | None = None,
                   condition: str | None = None) -> dict[str, Any]:
    where, params = ["start_date <= ?", "end_date >= ?"], [world.today, world.today]
    for col, val in (("make", make), ("model", model), ("condition", condition)):
        if val is not None:
            where.append(f"({col} IS NULL OR LOWER({col}) = LOWER(?))")
            params.append(val.strip())
    rows = world.conn.execute(
        f"SELECT * FROM promotions WHERE {' AND '.join(where)} ORDER BY promo_id", params).fetchall()
    return {"promotions": rows}


def escalate_to_human(world: Any, reason: str, summary: str, customer_id: str | None = None) -> dict[str, Any]:
    if customer_id is not None:
        customer_id = _customer(world, customer_id)["customer_id"]
    if not summary.strip():
        raise _bad("Argument 'summary' must not be blank.")
    ticket_id = world.next_id("escalations", "ticket_id", "ESC")
    world.conn.execute("INSERT INTO escalations VALUES (?,?,?,?)", (ticket_id, customer_id, reason, summary))
    world.conn.commit()
    return {"ticket_id": ticket_id, "reason": reason, "eta_minutes": 15}


# ------------------------------------------------------------------------------------------- specs

_SPECS: list[tuple[ToolSpec, Callable[..., dict[str, Any]]]] = [
    (ToolSpec(
        "search_inventory",
        "Search the dealership's vehicle inventory. All filters are optional and combine with AND; text "
        "filters match case-insensitively and exactly (e.g. model 'CR-V', colour 'White'). By default only "
        "vehicles with status 'available' are returned; set include_unavailable to also see reserved and sold "
        "ones. Results are sorted by price (lowest first), then stock number. Returns the total number of "
        "matches as 'count' and at most 'limit' vehicles (stock_no, year, make, model, trim, colour, "
        "condition, price in USD, mileage, location_id, status).",
        _obj({
            "make": _s("Manufacturer, e.g. 'Toyota', 'Honda', 'Ford'."),
            "model": _s("Model name, e.g. 'Camry', 'CR-V', 'F-150'."),
            "body": _s("Body style.", enum=list(BODY_TYPES)),
            "condition": _s("'new', 'used' or 'certified' (certified pre-owned).",
                            enum=["new", "used", "certified"]),
            "min_year": _i("Oldest model year to include.", minimum=1990, maximum=2100),
            "max_price": _i("Highest price in whole US dollars.", minimum=0),
            "colour": _s("Exterior colour, e.g. 'White', 'Black', 'Blue'."),
            "location_id": _s("Only vehicles at this dealership location ('LOC1', 'LOC2' or 'LOC3')."),
            "include_unavailable": {"type": "boolean", "default": False,
                                    "description": "Also return reserved and sold vehicles."},
            "limit": _i("Maximum number of vehicles to return (1-20).", minimum=1, maximum=20, default=5),
        })), search_inventory),
    (ToolSpec(
        "get_vehicle",
        "Get the full record of one vehicle by stock number: VIN, make, model, year, trim, body, condition, "
        "price, mileage, colour, list of features, status (available, reserved or sold), location_id and "
        "location_name.",
        _obj({"stock_no": STOCK_NO}, ["stock_no"])), get_vehicle),
    (ToolSpec(
        "compare_vehicles",
        "Compare 2 to 4 vehicles side by side. Returns each vehicle's full record plus the stock numbers of "
        "the cheapest, the one with the lowest mileage, and the newest (latest model year). Fails with "
        "not_found if any stock number does not exist.",
        _obj({"stock_nos": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 4,
                            "uniqueItems": True, "description": "2 to 4 distinct stock numbers."}},
             ["stock_nos"])), compare_vehicles),
    (ToolSpec(
        "get_dealer_info",
        "Get dealership locations with name, city, address, phone and weekly opening hours (per weekday a "
        "[open, close] pair in 24-hour 'HH:MM', or null when closed). Omit location_id to list all locations.",
        _obj({"location_id": _s("Location id: 'LOC1', 'LOC2' or 'LOC3'.")})), get_dealer_info),
    (ToolSpec(
        "list_test_drive_slots",
        "List the free 30-minute test-drive start times ('HH:MM') for one vehicle on one date, at the location "
        "where the vehicle is kept. Slots start every 30 minutes from opening until 30 minutes before closing; "
        "times already booked for this vehicle are left out. An empty list means the location is closed or "
        "fully booked that day.",
        _obj({"stock_no": STOCK_NO,
              "date": _s("Date 'YYYY-MM-DD'.", format="date")}, ["stock_no", "date"])), list_test_drive_slots),
    (ToolSpec(
        "verify_customer_identity",
        "Verify a customer's identity from the email address on file and the last 4 digits of their phone "
        "number. Returns verified=true with customer_id and first_name on a match, otherwise verified=false. "
        "A verified customer_id is required by the booking, booking-management and financing tools.",
        _obj({"email": _s("Customer's email address.", minLength=3, maxLength=254),
              "phone_last4": _s("Last 4 digits of the customer's phone number.", pattern=r"^[0-9]{4}$")},
             ["email", "phone_last4"])), verify_customer_identity),
    (ToolSpec(
        "book_test_drive",
        "Book a 30-minute test drive of a vehicle for a verified customer, at the vehicle's location. Fails "
        "with slot_taken if the vehicle already has an active booking at that start time. Returns the booking "
        "with its booking_id.",
        _obj({"customer_id": CUSTOMER_ID, "stock_no": STOCK_NO, "start": START},
             ["customer_id", "stock_no", "start"]), mutates=True, personal=True), book_test_drive),
    (ToolSpec(
        "reschedule_test_drive",
        "Move one of the customer's active test-drive bookings to a new start time (same vehicle and "
        "location). Fails with not_found if the booking does not exist for this customer, invalid_state if it "
        "was cancelled, slot_taken if the vehicle is already booked at the new time.",
        _obj({"customer_id": CUSTOMER_ID, "booking_id": BOOKING_ID, "new_start": START},
             ["customer_id", "booking_id", "new_start"]), mutates=True, personal=True), reschedule_test_drive),
    (ToolSpec(
        "cancel_test_drive",
        "Cancel one of the customer's active test-drive bookings. Fails with not_found if the booking does "
        "not exist for this customer and invalid_state if it is already cancelled.",
        _obj({"customer_id": CUSTOMER_ID, "booking_id": BOOKING_ID}, ["customer_id", "booking_id"]),
        mutates=True, personal=True), cancel_test_drive),
    (ToolSpec(
        "list_bookings",
        "List a customer's active (not cancelled) test-drive bookings, sorted by start time, each with the "
        "vehicle's make, model and year.",
        _obj({"customer_id": CUSTOMER_ID}, ["customer_id"]), personal=True), list_bookings),
    (ToolSpec(
        "estimate_trade_in",
        "Estimate the trade-in value range (USD) of the customer's current car from make, model, model year, "
        "odometer mileage and overall condition. The estimate is indicative, not a binding offer; it needs an "
        "in-person appraisal. Fails with not_found for makes/models without trade-in data.",
        _obj({"make": _s("Manufacturer of the trade-in car."),
              "model": _s("Model of the trade-in car."),
              "year": _i("Model year.", minimum=1980, maximum=2100),
              "mileage": _i("Odometer reading in miles.", minimum=0, maximum=1000000),
              "condition": _s("Overall condition.", enum=list(CONDITION_MULT))},
             ["make", "model", "year", "mileage", "condition"])), estimate_trade_in),
    (ToolSpec(
        "list_financing_products",
        "List the dealership's auto-loan products: product_id, name, term in months, maximum loan amount and "
        "minimum down payment (fraction of the price). Rates depend on the customer's credit and are only "
        "quoted by prequalify_financing.",
        _obj({})), list_financing_products),
    (ToolSpec(
        "prequalify_financing",
        "Soft-check whether a verified customer prequalifies for a loan of the given amount and term. Returns "
        "approved and, if approved, the matching offers with APR (percent) and estimated monthly payment. "
        "This is a prequalification, not a final credit decision.",
        _obj({"customer_id": CUSTOMER_ID,
              "amount": _i("Loan amount in whole US dollars (1000-200000).", minimum=1000, maximum=200000),
              "term_months": {"type": "integer", "enum": [36, 48, 60, 72], "description": "Loan term in months."}},
             ["customer_id", "amount", "term_months"]), personal=True), prequalify_financing),
    (ToolSpec(
        "get_promotions",
        "List promotions active today, optionally filtered by make, model and vehicle condition. A promotion "
        "without a make/model/condition applies to all. kind is cash_back (amount in USD), apr_reduction "
        "(amount in percentage points) or service (amount = value in USD).",
        _obj({"make": _s("Manufacturer, e.g. 'Toyota'."),
              "model": _s("Model name, e.g. 'RAV4'."),
              "condition": _s("Vehicle condition.", enum=["new", "used", "certified"])})), get_promotions),
    (ToolSpec(
        "escalate_to_human",
        "Hand the conversation to a human staff member: for complaints, legal matters, an explicit request to "
        "speak to a person, or anything the assistant cannot handle. Include a short summary of the issue. "
        "Returns a ticket id and the expected wait in minutes.",
        _obj({"reason": _s("Why the conversation is escalated.",
                           enum=["complaint", "legal", "request_human", "other"]),
              "summary": _s("One or two sentences summarising the customer's issue.", minLength=1, maxLength=500),
              "customer_id": _s("Customer id, if the customer has been verified.", maxLength=20)},
             ["reason", "summary"]), mutates=True), escalate_to_human),
]

TOOLBOX = Toolbox(_SPECS)
TOOLS: dict[str, ToolSpec] = TOOLBOX.specs
IMPLS: dict[str, Callable[..., dict[str, Any]]] = TOOLBOX.impls
run_tool = TOOLBOX.run
