"""A deterministic automotive-dealership world in SQLite, generated from a seed.

The world holds inventory, customers, test-drive bookings, financing products, promotions, trade-in base
values and escalation tickets. Tools (see `tools.py`) act on it through `DealershipWorld.call_tool`, which
validates arguments against each tool's JSON schema and never raises. Business policy is not enforced
here: tools only guard data integrity.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import random
import sqlite3
from typing import Any

from agentdistill.domain.people import FIRST_NAMES, LAST_NAMES
from agentdistill.domain.sqlworld import SqliteWorld, connect
from agentdistill.domain.toolkit import Toolbox

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# ---------------------------------------------------------------------------------------------- catalogue

# make -> [(model, body, base_price, trims)]
CATALOGUE: dict[str, list[tuple[str, str, int, tuple[str, ...]]]] = {
    "Toyota": [
        ("Camry", "sedan", 28400, ("LE", "SE", "XLE", "XSE")),
        ("Corolla", "sedan", 22500, ("L", "LE", "SE", "XSE")),
        ("RAV4", "suv", 29800, ("LE", "XLE", "Adventure", "Limited")),
        ("Tacoma", "truck", 31500, ("SR", "SR5", "TRD Sport", "TRD Off-Road")),
        ("Highlander", "suv", 39500, ("LE", "XLE", "Limited", "Platinum")),
    ],
    "Honda": [
        ("Civic", "sedan", 24500, ("LX", "Sport", "EX", "Touring")),
        ("Accord", "sedan", 28900, ("LX", "Sport", "EX-L", "Touring")),
        ("CR-V", "suv", 30800, ("LX", "EX", "EX-L", "Touring")),
        ("Pilot", "suv", 40200, ("Sport", "EX-L", "TrailSport", "Elite")),
    ],
    "Ford": [
        ("F-150", "truck", 36900, ("XL", "XLT", "Lariat", "Platinum")),
        ("Escape", "suv", 29500, ("Active", "ST-Line", "Platinum")),
        ("Mustang", "coupe", 32500, ("EcoBoost", "EcoBoost Premium", "GT")),
        ("Explorer", "suv", 38700, ("Active", "ST-Line", "Platinum")),
    ],
    "Chevrolet": [
        ("Silverado", "truck", 37600, ("WT", "LT", "RST", "High Country")),
        ("Equinox", "suv", 28600, ("LS", "LT", "RS", "Premier")),
        ("Malibu", "sedan", 25100, ("LS", "RS", "LT")),
    ],
    "Hyundai": [
        ("Elantra", "sedan", 21800, ("SE", "SEL", "Limited")),
        ("Tucson", "suv", 28900, ("SE", "SEL", "N Line", "Limited")),
        ("Santa Fe", "suv", 33900, ("SE", "SEL", "XRT", "Calligraphy")),
    ],
    "Kia": [
        ("Sorento", "suv", 32100, ("LX", "S", "EX", "SX")),
        ("Sportage", "suv", 27900, ("LX", "EX", "X-Line", "SX")),
        ("Forte", "sedan", 20900, ("LXS", "GT-Line", "GT")),
    ],
    "Subaru": [
        ("Outback", "wagon", 30200, ("Base", "Premium", "Limited", "Touring")),
        ("Forester", "suv", 29700, ("Base", "Premium", "Sport", "Touring")),
    ],
    "Mazda": [
        ("CX-5", "suv", 29900, ("S", "Select", "Preferred", "Turbo")),
        ("Mazda3", "hatchback", 24100, ("S", "Select", "Preferred", "Turbo")),
    ],
}
BODY_TYPES = ("sedan", "suv", "truck", "coupe", "wagon", "hatchback")
TRIM_MULT = (1.0, 1.08, 1.17, 1.28)
COLOURS = {
    "White": 20, "Black": 18, "Gray": 15, "Silver": 14, "Blue": 11,
    "Red": 9, "Green": 4, "Beige": 3, "Orange": 3, "Brown": 3,
}
FEATURES = (
    "Apple CarPlay", "Android Auto", "Backup camera", "Adaptive cruise control", "Blind-spot monitoring",
    "Lane keeping assist", "Heated seats", "Leather seats", "Sunroof", "Navigation", "All-wheel drive",
    "Remote start", "Wireless charging", "Premium audio", "Heated steering wheel", "360-degree camera",
    "Third-row seating", "Tow package",
)
WMI = {
    "Toyota": "4T1", "Honda": "1HG", "Ford": "1FM", "Chevrolet": "1G1",
    "Hyundai": "5NP", "Kia": "5XY", "Subaru": "4S4", "Mazda": "JM3",
}
VIN_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"  # no I, O, Q
_VIN_VALUES = dict(zip("ABCDEFGHJKLMNPRSTUVWXYZ", (1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5,
                                                   6, 7, 8, 9), strict=False))
_VIN_VALUES.update({str(d): d for d in range(10)})
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_VIN_YEAR = "ABCDEFGHJKLMNPRSTVWXY123456789"  # 2010 -> A

LOCATIONS = [
    ("LOC1", "Downtown Motors", "Springfield", "120 Main Street, Springfield, IL 62701", "217-555-0141",
     {"monday": ["09:00", "19:00"], "tuesday": ["09:00", "19:00"], "wednesday": ["09:00", "19:00"],
      "thursday": ["09:00", "19:00"], "friday": ["09:00", "19:00"], "saturday": ["09:00", "17:00"],
      "sunday": None}),
    ("LOC2", "Northside Auto", "Springfield", "4550 N Grand Avenue, Springfield, IL 62702", "217-555-0188",
     {"monday": ["10:00", "18:00"], "tuesday": ["10:00", "18:00"], "wednesday": ["10:00", "18:00"],
      "thursday": ["10:00", "18:00"], "friday": ["10:00", "18:00"], "saturday": ["10:00", "18:00"],
      "sunday": ["11:00", "16:00"]}),
    ("LOC3", "Airport Road Cars", "Springfield", "2900 Airport Road, Springfield, IL 62707", "217-555-0163",
     {"monday": ["08:00", "20:00"], "tuesday": ["08:00", "20:00"], "wednesday": ["08:00", "20:00"],
      "thursday": ["08:00", "20:00"], "friday": ["08:00", "20:00"], "saturday": ["09:00", "18:00"],
      "sunday": None}),
]

FINANCING = [
    ("FP-P36", "Prime 36", 36, 700, 5.49, 120000, 0.0),
    ("FP-P48", "Prime 48", 48, 690, 5.99, 120000, 0.0),
    ("FP-P60", "Prime 60", 60, 680, 6.49, 100000, 0.0),
    ("FP-P72", "Prime 72", 72, 680, 6.99, 90000, 0.05),
    ("FP-N48", "Near-prime 48", 48, 600, 9.99, 50000, 0.10),
    ("FP-N60", "Near-prime 60", 60, 600, 10.99, 45000, 0.10),
    ("FP-N72", "Near-prime 72", 72, 620, 11.99, 40000, 0.15),
]

SCHEMA = """
CREATE TABLE locations(location_id TEXT PRIMARY KEY, name TEXT, city TEXT, address TEXT, phone TEXT,
    hours TEXT);
CREATE TABLE vehicles(stock_no TEXT PRIMARY KEY, vin TEXT UNIQUE, make TEXT, model TEXT, year INTEGER,
    trim TEXT, body TEXT, condition TEXT, price INTEGER, mileage INTEGER, colour TEXT, features TEXT,
    location_id TEXT REFERENCES locations(location_id), status TEXT);
CREATE TABLE customers(customer_id TEXT PRIMARY KEY, first_name TEXT, last_name TEXT, email TEXT UNIQUE,
    phone TEXT, dob TEXT, zip TEXT, credit_score INTEGER);
CREATE TABLE bookings(booking_id TEXT PRIMARY KEY, customer_id TEXT, stock_no TEXT, location_id TEXT,
    start TEXT, duration_min INTEGER, status TEXT);
CREATE INDEX bookings_vehicle ON bookings(stock_no, start);
CREATE INDEX bookings_customer ON bookings(customer_id);
CREATE TABLE financing_products(product_id TEXT PRIMARY KEY, name TEXT, term_months INTEGER,
    min_credit_score INTEGER, apr REAL, max_amount INTEGER, min_down_pct REAL);
CREATE TABLE promotions(promo_id TEXT PRIMARY KEY, title TEXT, description TEXT, make TEXT, model TEXT,
    condition TEXT, kind TEXT, amount REAL, start_date TEXT, end_date TEXT);
CREATE TABLE trade_in_base(make TEXT, model TEXT, base_value INTEGER, PRIMARY KEY(make, model));
CREATE TABLE escalations(ticket_id TEXT PRIMARY KEY, customer_id TEXT, reason TEXT, summary TEXT);
"""
TABLES = ("locations", "vehicles", "customers", "bookings", "financing_products", "promotions",
          "trade_in_base", "escalations")

N_VEHICLES = 360
N_CUSTOMERS = 200


def slot_starts(hours: list[str] | tuple[str, str] | None, duration_min: int = 30) -> list[str]:
    """All 'HH:MM' starts every 30 minutes from opening until close - duration."""
    if not hours:
        return []
    oh, om = map(int, hours[0].split(":"))
    ch, cm = map(int, hours[1].split(":"))
    out = []
    t = oh * 60 + om
    while t + duration_min <= ch * 60 + cm:
        out.append(f"{t // 60:02d}:{t % 60:02d}")
        t += 30
    return out


def _vin(rng: random.Random, make: str, year: int) -> str:
    chars = list(WMI[make] + "".join(rng.choice(VIN_ALPHABET) for _ in range(5)) + "0"
                 + _VIN_YEAR[(year - 2010) % 30] + rng.choice(VIN_ALPHABET[:23])
                 + "".join(rng.choice("0123456789") for _ in range(6)))
    total = sum(_VIN_VALUES[c] * w for c, w in zip(chars, _VIN_WEIGHTS, strict=False))
    chars[8] = "X" if total % 11 == 10 else str(total % 11)
    return "".join(chars)


def _round_price(x: float) -> int:
    return max(1995, round(x / 100.0) * 100 - 5)


class DealershipWorld(SqliteWorld):
    """In-memory SQLite dealership. Build with `generate(seed)`, fork per conversation with `copy()`."""

    def __init__(self, conn: sqlite3.Connection, today: str, seed: int | None = None):
        super().__init__(conn, today, seed)
        self._hours = {r["location_id"]: json.loads(r["hours"])
                       for r in conn.execute("SELECT location_id, hours FROM locations")}

    # ------------------------------------------------------------------------------------------ building

    @classmethod
    def generate(cls, seed: int = 0, today: str = "2026-12-01") -> DealershipWorld:
        rng = random.Random(seed)
        today_d = dt.date.fromisoformat(today)
        conn = connect()
        conn.executescript(SCHEMA)
        conn.executemany("INSERT INTO locations VALUES (?,?,?,?,?,?)",
                         [(*loc[:5], json.dumps(loc[5])) for loc in LOCATIONS])
        vehicles = cls._gen_vehicles(rng, today_d.year)
        conn.executemany("INSERT INTO vehicles VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", vehicles)
        customers = cls._gen_customers(rng)
        conn.executemany("INSERT INTO customers VALUES (?,?,?,?,?,?,?,?)", customers)
        conn.executemany("INSERT INTO bookings VALUES (?,?,?,?,?,?,?)",
                         cls._gen_bookings(rng, today_d, vehicles, customers))
        conn.executemany("INSERT INTO financing_products VALUES (?,?,?,?,?,?,?)", FINANCING)
        conn.executemany("INSERT INTO promotions VALUES (?,?,?,?,?,?,?,?,?,?)", cls._promotions(today_d))
        conn.executemany(
            "INSERT INTO trade_in_base VALUES (?,?,?)",
            [(make, m[0], round(m[2] * 0.78 / 100.0) * 100) for make, ms in CATALOGUE.items() for m in ms],
        )
        conn.commit()
        return cls(conn, today, seed)

    @staticmethod
    def _gen_vehicles(rng: random.Random, this_year: int) -> list[tuple]:
        models = [(make, *m) for make, ms in CATALOGUE.items() for m in ms]
        colours, weights = list(COLOURS), list(COLOURS.values())
        # (make_index, colour, forced_available): every model twice available, plus ambiguity clusters
        plan: list[tuple[int, str | None, bool]] = [(i, None, True) for i in range(len(models)) for _ in (0, 1)]
        idx = {(m[0], m[1]): i for i, m in enumerate(models)}
        for key, colour, n in ((("Toyota", "Camry"), "White", 4), (("Honda", "CR-V"), "Black", 3),
                               (("Ford", "F-150"), "Blue", 3), (("Toyota", "RAV4"), "Silver", 3),
                               (("Hyundai", "Tucson"), "Gray", 3)):
            plan += [(idx[key], colour, True)] * n
        while len(plan) < N_VEHICLES:
            plan.append((rng.randrange(len(models)), None, False))
        rng.shuffle(plan)
        rows, vins = [], set()
        for n, (mi, colour, forced) in enumerate(plan):
            make, model, body, base, trims = models[mi]
            ti = rng.randrange(len(trims))
            r = rng.random()
            condition = "new" if r < 0.45 else ("used" if r < 0.85 else "certified")
            if condition == "new":
                year = rng.choice((this_year, this_year, this_year + 1))
                mileage = rng.randint(3, 45)
            else:
                year = rng.randint(this_year - 10, this_year - 1) if condition == "used" \
                    else rng.randint(this_year - 6, this_year - 1)
                age = this_year - year
                mileage = int(age * 12000 * rng.uniform(0.6, 1.35)) + rng.randint(0, 999)
                if condition == "certified":
                    mileage = min(mileage, 79000 - rng.randint(0, 9000))
            age = max(0, this_year - year)
            price = base * TRIM_MULT[ti]
            if condition != "new":
                price *= 0.85 * 0.93 ** (age - 1)
                price -= (mileage - age * 12000) * 0.05
                price *= 1.04 if condition == "certified" else 1.0
            else:
                price *= 1.0 + 0.03 * (year - this_year)
            colour = colour or rng.choices(colours, weights)[0]
            k = rng.randint(3, 7)
            feats = sorted(rng.sample(range(len(FEATURES)), k))
            vin = _vin(rng, make, year)
            while vin in vins:
                vin = _vin(rng, make, year)
            vins.add(vin)
            s = rng.random()
            status = "available" if forced or s < 0.85 else ("reserved" if s < 0.93 else "sold")
            rows.append((f"A{1001 + n}", vin, make, model, year, trims[ti], body, condition,
                         _round_price(price), mileage, colour, json.dumps([FEATURES[i] for i in feats]),
                         rng.choice(("LOC1", "LOC2", "LOC3")), status))
        return rows

    @staticmethod
    def _gen_customers(rng: random.Random) -> list[tuple]:
        rows, emails, last4 = [], set(), set()
        for n in range(N_CUSTOMERS):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = f"{first}.{last}{rng.randint(1, 99)}@example.com".lower()
            while email in emails:
                email = f"{first}.{last}{rng.randint(1, 999)}@example.com".lower()
            emails.add(email)
            tail = f"{rng.randint(0, 9999):04d}"
            while tail in last4:
                tail = f"{rng.randint(0, 9999):04d}"
            last4.add(tail)
            phone = f"{rng.randint(201, 989)}-{rng.randint(200, 999)}-{tail}"
            dob = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randint(0, 54 * 365))
            rows.append((f"C{1001 + n}", first, last, email, phone, dob.isoformat(),
                         f"{rng.randint(60000, 62999):05d}", rng.randint(520, 830)))
        return rows

    @staticmethod
    def _gen_bookings(rng: random.Random, today: dt.date, vehicles: list[tuple],
                      customers: list[tuple]) -> list[tuple]:
        hours = {loc[0]: loc[5] for loc in LOCATIONS}
        available = [v for v in vehicles if v[13] == "available"]
        chosen = rng.sample([c[0] for c in customers], 36)
        plan = [(c, "active") for c in chosen[:10] for _ in (0, 1)]  # 10 customers with 2 active
        plan += [(c, "active") for c in chosen[10:32]]  # 22 customers with 1 active
        plan += [(c, "cancelled") for c in chosen[32:36]]  # 4 with only a cancelled one
        taken: set[tuple[str, str]] = set()
        cust_times: set[tuple[str, str]] = set()
        rows = []
        for customer_id, status in plan:
            while True:
                v = rng.choice(available)
                day = today + dt.timedelta(days=rng.randint(1, 14))
                starts = slot_starts(hours[v[12]][WEEKDAYS[day.weekday()]])
                if not starts:
                    continue
                start = f"{day.isoformat()}T{rng.choice(starts)}"
                if (v[0], start) in taken or (customer_id, start) in cust_times:
                    continue
                break
            if status == "active":
                taken.add((v[0], start))
            cust_times.add((customer_id, start))
            rows.append((customer_id, v[0], v[12], start, 30, status))
        rows.sort(key=lambda r: (r[3], r[0]))
        return [(f"TD{1001 + i}", *r) for i, r in enumerate(rows)]

    @staticmethod
    def _promotions(today: dt.date) -> list[tuple]:
        def d(days: int) -> str:
            return (today + dt.timedelta(days=days)).isoformat()

        return [
            ("PR1", "RAV4 Winter Cash", "$1,500 cash back on new Toyota RAV4 models.",
             "Toyota", "RAV4", "new", "cash_back", 1500.0, d(-20), d(30)),
            ("PR2", "Honda Low-APR Event", "1.0 percentage point off the APR on any new Honda.",
             "Honda", None, "new", "apr_reduction", 1.0, d(-10), d(45)),
            ("PR3", "Certified Care", "Two years of complimentary scheduled maintenance on certified vehicles.",
             None, None, "certified", "service", 600.0, d(-60), d(60)),
            ("PR4", "F-150 Truck Month", "$2,500 cash back on new Ford F-150 trucks.",
             "Ford", "F-150", "new", "cash_back", 2500.0, d(-75), d(-15)),
            ("PR5", "Hyundai Used-Car APR Cut", "0.5 percentage point off the APR on used Hyundai vehicles.",
             "Hyundai", None, "used", "apr_reduction", 0.5, d(10), d(40)),
            ("PR6", "Holiday Bonus", "$500 holiday cash back on any vehicle purchased this season.",
             None, None, None, "cash_back", 500.0, d(-5), d(31)),
            ("PR7", "Outback Adventure Offer", "$1,000 cash back on new Subaru Outback.",
             "Subaru", "Outback", "new", "cash_back", 1000.0, d(-90), d(-31)),
        ]

    # ------------------------------------------------------------------------------------------ world API

    def toolbox(self) -> Toolbox:
        from .tools import TOOLBOX

        return TOOLBOX

    def state_hash(self) -> str:
        parts = {
            "bookings": sorted(
                [r["booking_id"], r["customer_id"], r["stock_no"], r["start"], r["status"]]
                for r in self.conn.execute("SELECT * FROM bookings")),
            "escalations": sorted(
                json.dumps([r["customer_id"], r["reason"]])
                for r in self.conn.execute("SELECT customer_id, reason FROM escalations")),
            "vehicles": sorted([r["stock_no"], r["status"]]
                               for r in self.conn.execute("SELECT stock_no, status FROM vehicles")),
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()

    # ------------------------------------------------------------------------------------------ helpers

    @staticmethod
    def weekday(date_str: str) -> str:
        return WEEKDAYS[dt.date.fromisoformat(date_str).weekday()]

    def location_hours(self, location_id: str, date_str: str) -> tuple[str, str] | None:
        hours = self._hours.get(location_id)
        if hours is None:
            return None
        day = hours.get(self.weekday(date_str))
        return (day[0], day[1]) if day else None

    def describe(self) -> dict[str, Any]:
        def group(col: str) -> dict[str, int]:
            return {r["k"]: r["n"] for r in self.conn.execute(
                f"SELECT {col} AS k, COUNT(*) AS n FROM vehicles GROUP BY {col} ORDER BY {col}")}

        return {
            "today": self.today,
            "seed": self.seed,
            "tables": {t: self.count(t) for t in TABLES},
            "vehicles_by_make": group("make"),
            "vehicles_by_status": group("status"),
            "vehicles_by_location": group("location_id"),
            "active_bookings": self.conn.execute(
                "SELECT COUNT(*) AS n FROM bookings WHERE status='active'").fetchone()["n"],
        }
