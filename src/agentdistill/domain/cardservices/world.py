"""A deterministic bank card-services world in SQLite, generated from a seed.

Customers hold debit and credit cards (each known to the customer by its last four digits, unique across the
bank), with 120 days of transactions, open and resolved disputes, travel notices, limit-increase requests,
replacement orders and escalation tickets; branches and the fee schedule are the public tables. Tools
(`tools.py`) act on it through `call_tool`; business policy is not enforced here, tools only guard integrity.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
from typing import Any

from agentdistill.domain.people import FIRST_NAMES, LAST_NAMES
from agentdistill.domain.sqlworld import SqliteWorld, connect
from agentdistill.domain.toolkit import Toolbox

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEK = {"monday": ["09:00", "17:00"], "tuesday": ["09:00", "17:00"], "wednesday": ["09:00", "17:00"],
         "thursday": ["09:00", "19:00"], "friday": ["09:00", "17:00"]}
BRANCHES = [
    ("BR1", "Capitol Square Branch", "200 Capitol Square, Springfield, IL 62701", "217-555-0101",
     {**_WEEK, "saturday": ["09:00", "13:00"], "sunday": None}),
    ("BR2", "Westfield Branch", "3100 Wabash Avenue, Springfield, IL 62704", "217-555-0122",
     {**_WEEK, "saturday": None, "sunday": None}),
    ("BR3", "Lakeside Branch", "75 Lake Shore Drive, Springfield, IL 62712", "217-555-0137",
     {**_WEEK, "saturday": ["10:00", "14:00"], "sunday": ["11:00", "15:00"]}),
]
PRODUCTS = {  # product -> (kind, network, annual fee)
    "Everyday Debit": ("debit", "Visa", 0),
    "Cashback Mastercard": ("credit", "Mastercard", 0),
    "Platinum Visa": ("credit", "Visa", 95),
}
FEES = [
    ("FEE1", "Standard card replacement", 0.0, "usd", "delivered in 7 business days"),
    ("FEE2", "Express card replacement", 25.0, "usd", "delivered in 2 business days"),
    ("FEE3", "Foreign transaction fee", 3.0, "percent", "of each purchase made in a foreign currency"),
    ("FEE4", "Late payment fee", 35.0, "usd", "when a credit card's minimum payment is late"),
    ("FEE5", "Cash advance fee", 5.0, "percent", "of the amount, at least $10"),
    ("FEE6", "Platinum Visa annual fee", 95.0, "usd", "charged once a year"),
]
DELIVERY = {"standard": ("FEE1", 7), "express": ("FEE2", 2)}  # delivery -> (fee id, business days)
MERCHANTS = (  # name, category, lowest, highest amount
    ("Bluebird Cafe", "dining", 4, 28), ("FreshMart Grocery", "groceries", 12, 180), ("Metro Fuel", "fuel", 25, 90),
    ("PageTurner Books", "shopping", 8, 60), ("CityRail Transit", "travel", 3, 45), ("Northwind Air", "travel", 120, 640),
    ("StreamBox", "subscriptions", 9, 20), ("Corner Pharmacy", "health", 6, 75), ("HomeBase Hardware", "home", 15, 260),
    ("Luna Pizza", "dining", 14, 55), ("Sunrise Hotel", "travel", 90, 420), ("GadgetHub Online", "shopping", 25, 900),
    ("Green Leaf Market", "groceries", 9, 120), ("Harbor Cinema", "entertainment", 11, 48),
    ("Peak Fitness Club", "subscriptions", 29, 59), ("QuickRide Taxi", "travel", 8, 60),
    ("Maple Street Diner", "dining", 10, 45), ("Brightside Utilities", "utilities", 40, 210),
    ("Stellar Mobile", "utilities", 35, 95), ("Trailhead Outfitters", "shopping", 30, 350),
)
COUNTRIES = ("Canada", "Mexico", "France", "Italy", "Spain", "Japan", "Germany", "Portugal", "Ireland", "Brazil",
             "Thailand", "Greece", "Iceland", "Australia")
DISPUTE_REASONS = ("unrecognised", "duplicate", "not_received", "wrong_amount")

SCHEMA = """
CREATE TABLE customers(customer_id TEXT PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT UNIQUE,
    phone TEXT, dob TEXT UNIQUE, zip TEXT, credit_score INTEGER, income INTEGER);
CREATE TABLE cards(last4 TEXT PRIMARY KEY, customer_id TEXT, kind TEXT, product TEXT, network TEXT, status TEXT,
    credit_limit INTEGER, balance REAL, expiry TEXT, blocked_reason TEXT);
CREATE TABLE transactions(txn_id TEXT PRIMARY KEY, last4 TEXT, customer_id TEXT, date TEXT, merchant TEXT,
    category TEXT, amount REAL, status TEXT);
CREATE INDEX transactions_card ON transactions(last4, date);
CREATE TABLE disputes(dispute_id TEXT PRIMARY KEY, customer_id TEXT, txn_id TEXT, reason TEXT, status TEXT,
    opened TEXT, amount REAL);
CREATE TABLE travel_notices(notice_id TEXT PRIMARY KEY, customer_id TEXT, country TEXT, depart TEXT, back TEXT);
CREATE TABLE limit_requests(request_id TEXT PRIMARY KEY, customer_id TEXT, last4 TEXT, old_limit INTEGER,
    requested INTEGER, status TEXT);
CREATE TABLE replacements(order_id TEXT PRIMARY KEY, customer_id TEXT, old_last4 TEXT, new_last4 TEXT, reason TEXT,
    delivery TEXT, fee REAL, eta_days INTEGER);
CREATE TABLE branches(branch_id TEXT PRIMARY KEY, name TEXT, address TEXT, phone TEXT, hours TEXT);
CREATE TABLE fees(fee_id TEXT PRIMARY KEY, name TEXT, amount REAL, unit TEXT, note TEXT);
CREATE TABLE escalations(ticket_id TEXT PRIMARY KEY, customer_id TEXT, reason TEXT, summary TEXT);
"""
TABLES = ("customers", "cards", "transactions", "disputes", "travel_notices", "limit_requests", "replacements",
          "branches", "fees", "escalations")
N_CUSTOMERS = 200


class CardWorld(SqliteWorld):
    """In-memory SQLite card desk. Build with `generate(seed)`, fork per conversation with `copy()`."""

    @classmethod
    def generate(cls, seed: int = 0, today: str = "2026-12-01") -> CardWorld:
        rng = random.Random(seed)
        day = dt.date.fromisoformat(today)
        conn = connect()
        conn.executescript(SCHEMA)
        conn.executemany("INSERT INTO branches VALUES (?,?,?,?,?)", [(*b[:4], json.dumps(b[4])) for b in BRANCHES])
        conn.executemany("INSERT INTO fees VALUES (?,?,?,?,?)", FEES)
        customers = _customers(rng)
        conn.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?,?,?,?)", customers)
        cards = _cards(rng, customers)
        conn.executemany("INSERT INTO cards VALUES (?,?,?,?,?,?,?,?,?,?)", cards)
        txns = _transactions(rng, day, cards)
        conn.executemany("INSERT INTO transactions VALUES (?,?,?,?,?,?,?,?)", txns)
        conn.executemany("INSERT INTO disputes VALUES (?,?,?,?,?,?,?)", _disputes(rng, day, customers, txns))
        conn.executemany("INSERT INTO travel_notices VALUES (?,?,?,?,?)", _travel(rng, day, customers))
        conn.commit()
        return cls(conn, today, seed)

    # ------------------------------------------------------------------------------------------ world API

    def toolbox(self) -> Toolbox:
        from .tools import TOOLBOX

        return TOOLBOX

    def state_hash(self) -> str:
        def rows(sql: str) -> list[list[Any]]:
            return sorted([list(r.values()) for r in self.conn.execute(sql)], key=json.dumps)

        parts = {
            "cards": rows("SELECT last4, customer_id, status, credit_limit FROM cards"),
            "disputes": rows("SELECT dispute_id, customer_id, txn_id, reason, status FROM disputes"),
            "travel_notices": rows("SELECT customer_id, country, depart, back FROM travel_notices"),
            "limit_requests": rows("SELECT customer_id, last4, requested, status FROM limit_requests"),
            "replacements": rows("SELECT customer_id, old_last4, new_last4, reason, delivery FROM replacements"),
            "escalations": rows("SELECT customer_id, reason FROM escalations"),
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        def group(sql: str) -> dict[str, int]:
            return {r["k"]: r["n"] for r in self.conn.execute(sql)}

        return {
            "today": self.today, "seed": self.seed,
            "tables": {t: self.count(t) for t in TABLES},
            "cards_by_kind": group("SELECT kind AS k, COUNT(*) AS n FROM cards GROUP BY kind ORDER BY kind"),
            "cards_by_status": group("SELECT status AS k, COUNT(*) AS n FROM cards GROUP BY status ORDER BY status"),
            "open_disputes": self.conn.execute("SELECT COUNT(*) AS n FROM disputes WHERE status = 'open'")
            .fetchone()["n"],
        }

    def days_ago(self, date: str) -> int:
        return (dt.date.fromisoformat(self.today) - dt.date.fromisoformat(date)).days

    def unused_last4(self, start: str) -> str:
        """The first last-four not held by any card, counting on from a hash of `start` (deterministic)."""
        n = int(hashlib.sha256(start.encode()).hexdigest(), 16) % 10000
        taken = {r["last4"] for r in self.conn.execute("SELECT last4 FROM cards")}
        while f"{n:04d}" in taken:
            n = (n + 1) % 10000
        return f"{n:04d}"


# ---------------------------------------------------------------------------------------------- generation

def _customers(rng: random.Random) -> list[tuple]:
    rows, emails, dobs = [], set(), set()
    for n in range(N_CUSTOMERS):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{first}.{last}{rng.randint(1, 99)}@example.net".lower()
        while email in emails:
            email = f"{first}.{last}{rng.randint(1, 999)}@example.net".lower()
        emails.add(email)
        dob = dt.date(1948, 1, 1) + dt.timedelta(days=rng.randint(0, 55 * 365))
        while dob in dobs:
            dob += dt.timedelta(days=1)
        dobs.add(dob)
        phone = f"{rng.randint(201, 989)}-{rng.randint(200, 999)}-{rng.randint(0, 9999):04d}"
        rows.append((f"CU{1001 + n}", first, last, email, phone, dob.isoformat(), f"{rng.randint(62701, 62799)}",
                     rng.randint(540, 840), rng.randrange(28_000, 190_000, 1000)))
    return rows


def _cards(rng: random.Random, customers: list[tuple]) -> list[tuple]:
    """One debit card each, a credit card for most, a second for some; a few frozen or blocked as history."""
    taken: set[str] = set()

    def last4() -> str:
        while (x := f"{rng.randint(0, 9999):04d}") in taken:
            pass
        taken.add(x)
        return x

    rows = []
    for c in customers:
        products = ["Everyday Debit"]
        if rng.random() < 0.75:
            products.append(rng.choice(["Cashback Mastercard", "Platinum Visa"]))
            if rng.random() < 0.15:
                products.append("Cashback Mastercard" if products[-1] == "Platinum Visa" else "Platinum Visa")
        for product in products:
            kind, network, _ = PRODUCTS[product]
            r = rng.random()
            status = "frozen" if r < 0.12 else "blocked" if r < 0.15 else "active"
            limit = rng.randrange(1000, 12_001, 500) if kind == "credit" else None
            balance = round(rng.uniform(0, 0.6) * limit, 2) if limit else round(rng.uniform(40, 6500), 2)
            expiry = f"{rng.randint(2027, 2030)}-{rng.randint(1, 12):02d}"
            rows.append((last4(), c[0], kind, product, network, status, limit, balance, expiry,
                         "lost" if status == "blocked" else None))
    return rows


def _transactions(rng: random.Random, today: dt.date, cards: list[tuple]) -> list[tuple]:
    raw = []
    for card in cards:
        for _ in range(rng.randint(6, 14)):
            name, category, lo, hi = rng.choice(MERCHANTS)
            date = today - dt.timedelta(days=rng.randint(3, 115))
            raw.append((card[0], card[1], date.isoformat(), name, category, round(rng.uniform(lo, hi), 2), "posted"))
        if card[5] != "blocked":
            for _ in range(rng.choice((0, 1, 1, 2))):
                name, category, lo, hi = rng.choice(MERCHANTS)
                date = today - dt.timedelta(days=rng.randint(0, 2))
                raw.append((card[0], card[1], date.isoformat(), name, category, round(rng.uniform(lo, hi), 2),
                            "pending"))
    raw.sort(key=lambda t: (t[2], t[0], t[3], t[5]))
    return [(f"TX{10001 + i}", *t) for i, t in enumerate(raw)]


def _disputes(rng: random.Random, today: dt.date, customers: list[tuple], txns: list[tuple]) -> list[tuple]:
    """40 customers with one open dispute, 8 with three (at the v1 limit), 15 with a resolved one."""
    by_customer: dict[str, list[tuple]] = {}
    for t in txns:
        if t[7] == "posted":
            by_customer.setdefault(t[2], []).append(t)
    ids = sorted(by_customer)
    chosen = rng.sample(ids, 63)
    plan = [(c, "open", 1) for c in chosen[:40]] + [(c, "open", 3) for c in chosen[40:48]]
    plan += [(c, "resolved", 1) for c in chosen[48:]]
    rows = []
    for cid, status, n in plan:
        for t in rng.sample(by_customer[cid], n):
            opened = min(today - dt.timedelta(days=1), dt.date.fromisoformat(t[3]) + dt.timedelta(days=rng.randint(1, 9)))
            rows.append((cid, t[0], rng.choice(DISPUTE_REASONS), status, opened.isoformat(), t[6]))
    rows.sort(key=lambda r: (r[4], r[1]))
    return [(f"DP{1001 + i}", *r) for i, r in enumerate(rows)]


def _travel(rng: random.Random, today: dt.date, customers: list[tuple]) -> list[tuple]:
    rows = []
    for i, c in enumerate(rng.sample(customers, 20)):
        depart = today + dt.timedelta(days=rng.randint(-40, 30))
        back = depart + dt.timedelta(days=rng.randint(3, 25))
        rows.append((f"TN{1001 + i}", c[0], rng.choice(COUNTRIES), depart.isoformat(), back.isoformat()))
    return rows
