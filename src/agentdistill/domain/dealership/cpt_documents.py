"""The dealership's knowledge base for continued pre-training: inventory, locations, financing, promotions
and FAQs, said in prose from the world tables and the policy parameters (data/cpt_domain.py adds the policy
and tool documents every domain gets)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from agentdistill.data.cpt_domain import cpt_doc
from agentdistill.data.splits import hash_unit

KB = "dealership knowledge base"
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

VEHICLE_TEMPLATES = (
    "Stock {stock_no} is a {condition} {year} {make} {model} {trim} in {colour}, listed at {price} with {mileage} "
    "miles. It is a {body} and comes with {features}. You can see it at {location}. Status: {status}.",
    "{location} has a {colour} {year} {make} {model} ({trim} trim, {condition}) under stock number {stock_no}. "
    "Price: {price}. Odometer: {mileage} miles. Equipment includes {features}. Current status: {status}.",
    "The {year} {make} {model} {trim} with stock number {stock_no} is a {condition} {body} painted {colour}. "
    "It costs {price}, has {mileage} miles on it and offers {features}. Location: {location}; it is {status}.",
    "Looking for a {body}? Stock {stock_no}: {year} {make} {model} {trim}, {colour}, {condition}, {mileage} "
    "miles, {price}. Features: {features}. Parked at {location} and currently {status}.",
)


def _money(x: Any) -> str:
    return f"${int(round(float(x))):,}"


def _hours_text(hours: dict[str, Any]) -> str:
    return "; ".join(f"{d.capitalize()} {h[0]}-{h[1]}" if h else f"{d.capitalize()} closed"
                     for d in DAYS for h in [hours.get(d)])


def vehicle_docs(world: Any, locations: dict[str, str], seed: int) -> Iterator[dict[str, Any]]:
    for v in world.query("SELECT * FROM vehicles ORDER BY stock_no"):
        template = VEHICLE_TEMPLATES[int(hash_unit(v["stock_no"], seed) * len(VEHICLE_TEMPLATES))]
        features = json.loads(v["features"])
        text = template.format(**{**v, "price": _money(v["price"]), "mileage": f"{v['mileage']:,}",
                                  "features": ", ".join(features[:-1]) + f" and {features[-1]}",
                                  "location": locations[v["location_id"]]})
        yield cpt_doc(f"vehicle:{v['stock_no']}", "vehicle", f"{KB} | vehicle listing | {v['make']} {v['model']}", text,
                   "holdout_pool")


def location_docs(world: Any) -> Iterator[dict[str, Any]]:
    for r in world.query("SELECT * FROM locations ORDER BY location_id"):
        hours = json.loads(r["hours"])
        sunday = "open on Sundays" if hours.get("sunday") else "closed on Sundays"
        text = (f"{r['name']} ({r['location_id']}) is at {r['address']}, phone {r['phone']}. Opening hours: "
                f"{_hours_text(hours)}. It is {sunday}. Test drives last 30 minutes, so the last one starts 30 "
                "minutes before closing.")
        yield cpt_doc(f"location:{r['location_id']}", "location", f"{KB} | location | {r['name']}", text, "always_train")


def financing_docs(world: Any) -> Iterator[dict[str, Any]]:
    for p in world.query("SELECT * FROM financing_products ORDER BY product_id"):
        down = f"a minimum down payment of {p['min_down_pct']:.0%}" if p["min_down_pct"] else "no minimum down payment"
        text = (f"{p['name']} ({p['product_id']}) is a {p['term_months']}-month auto loan for customers with a credit "
                f"score of at least {p['min_credit_score']}, for amounts up to {_money(p['max_amount'])}, with {down}. "
                "Rates are quoted only after pre-qualification.")
        yield cpt_doc(f"financing:{p['product_id']}", "financing", f"{KB} | financing product | {p['name']}", text,
                   "always_train")


def promotion_docs(world: Any) -> Iterator[dict[str, Any]]:
    for p in world.query("SELECT * FROM promotions ORDER BY promo_id"):
        scope = " ".join(x for x in (p["condition"], p["make"], p["model"]) if x) or "any vehicle"
        text = (f"Promotion {p['title']} ({p['promo_id']}): {p['description']} Applies to {scope}. Valid from "
                f"{p['start_date']} to {p['end_date']}. Only published promotions may be mentioned; no other "
                "discounts are offered.")
        yield cpt_doc(f"promotion:{p['promo_id']}", "promotion", f"{KB} | promotion | {p['title']}", text, "always_train")


def faq_docs(domain: Any, world: Any) -> Iterator[dict[str, Any]]:
    """Questions customers ask, answered from the policy and the tables (v1 parameters)."""
    params = domain.policy_params("v1")
    locs = world.query("SELECT * FROM locations ORDER BY location_id")
    faqs: list[tuple[str, str]] = [
        ("How do I book a test drive?", "Tell us the stock number, the date and the time you want. We verify your "
         "identity with the email address on file and the last four digits of your phone number, check that the "
         "vehicle is available and the time is a free slot, and then confirm the booking with its booking id."),
        ("How far ahead can I book a test drive?", f"From tomorrow up to {params['booking_horizon_days']} days ahead."),
        ("How many test drives can I book?", f"Up to {params['max_active_bookings']} active test-drive bookings at a "
         "time. At the limit we can reschedule or cancel one of them for you."),
        ("Can you give me a discount?", "Prices are as listed and we do not negotiate or match prices. We can tell "
         "you about the current published promotions."),
        ("What interest rate will I get?", "Rates depend on your credit; we quote them only after pre-qualifying you, "
         "which needs a quick identity check, the amount and the loan term."),
        ("Is the trade-in value final?", "No. A trade-in value is an estimate; the final offer depends on an "
         "in-person inspection."),
        ("Can I test drive a reserved or sold car?", "No, only vehicles whose status is available. We can suggest "
         "similar available vehicles."),
        ("Do you need my social security number?", "No. We never ask for a social security number, full card or bank "
         "account numbers, passwords or a full date of birth."),
        ("Can you tell me who else booked this car?", "No. We never share another customer's data."),
        ("Can I talk to a person?", "Yes. We open a ticket for our team and give you the ticket number; someone will "
         "contact you shortly."),
        ("Can you pick a time for me?", "We book only the date and time you choose; we can list the free slots."),
        ("Which loan terms do you offer?", "36, 48, 60 and 72 months."),
    ]
    for loc in locs:
        hours = json.loads(loc["hours"])
        faqs.append((f"When is {loc['name']} open?", f"{loc['name']} ({loc['address']}) is open {_hours_text(hours)}."))
        sunday = hours.get("sunday")
        faqs.append((f"Can I test drive on a Sunday at {loc['name']}?",
                     f"Yes, between {sunday[0]} and {sunday[1]}, with the last test drive starting 30 minutes before "
                     "closing (under policy v2 there are no Sunday test drives)." if sunday else
                     f"No, {loc['name']} is closed on Sundays."))
    for r in world.query("SELECT make, model, COUNT(*) AS n, MIN(price) AS lo, MAX(price) AS hi FROM vehicles "
                         "WHERE status = 'available' GROUP BY make, model ORDER BY make, model"):
        faqs.append((f"Do you have any {r['make']} {r['model']} in stock?",
                     f"Yes, {r['n']} available, priced from {_money(r['lo'])} to {_money(r['hi'])}."))
    for r in world.query("SELECT * FROM financing_products ORDER BY product_id"):
        faqs.append((f"What credit score do I need for {r['name']}?",
                     f"At least {r['min_credit_score']}, for up to {_money(r['max_amount'])} over {r['term_months']} "
                     "months."))
    for q, a in faqs:
        yield cpt_doc(f"faq:{q}", "faq", f"{KB} | FAQ | {q}", f"Q: {q}\nA: {a}", "holdout_pool")


def documents(domain: Any, seed: int) -> list[dict[str, Any]]:
    world = domain.base_world
    locations = {r["location_id"]: r["name"] for r in world.query("SELECT location_id, name FROM locations")}
    return [*vehicle_docs(world, locations, seed), *location_docs(world), *financing_docs(world),
            *promotion_docs(world), *faq_docs(domain, world)]
