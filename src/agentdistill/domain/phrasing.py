"""How scripted customers word their requests, for any domain: paraphrase templates per request, slot values
(dates, times, amounts) in several formats, occasional typos, and a held-out share of every list.

Every fourth template of a request (and every fourth format of a date, time or amount) is held out: the
`heldout_phrasing` suite draws only from those, every other suite never does. So that suite measures whether a
student understands wording it was not trained on. A domain supplies its templates; formats of its own slots
go in a subclass.
"""

from __future__ import annotations

import datetime as dt
import random
import string
from typing import Any

HELDOUT_SPLIT = "heldout_phrasing"
WEEKDAY = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")


def heldout_index(i: int) -> bool:
    return i % 4 == 3


def split_choices(items: tuple[Any, ...], heldout: bool) -> list[Any]:
    picked = [x for i, x in enumerate(items) if heldout_index(i) == heldout]
    return picked or list(items)  # a list shorter than four has no held-out entry


def add_typos(text: str, rng: random.Random, n: int = 1) -> str:
    """n keyboard slips in the words of a template (never in slot values, which callers add later)."""
    chars = list(text)
    letters = [i for i, ch in enumerate(chars) if ch.isalpha()]
    for _ in range(n):
        if len(letters) < 4:
            break
        i = rng.choice(letters[1:-1])
        kind = rng.randrange(3)
        if kind == 0:
            chars[i] = ""  # dropped letter
        elif kind == 1 and i + 1 < len(chars) and chars[i + 1].isalpha():
            chars[i], chars[i + 1] = chars[i + 1], chars[i]  # swapped letters
        else:
            chars[i] = chars[i] * 2  # doubled letter
    return "".join(chars)


def ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


class Phraser:
    """Renders requests for one scenario from `templates` (key -> templates; fields in braces are slot values,
    never touched by typos): the training share of every list, or the held-out share."""

    def __init__(self, rng: random.Random, split: str, today: str, templates: dict[str, tuple[str, ...]],
                 typo_rate: float = 0.08):
        self.rng, self.today, self.typo_rate = rng, dt.date.fromisoformat(today), typo_rate
        self.templates = templates
        self.heldout = split == HELDOUT_SPLIT

    def choose(self, items: tuple[Any, ...]) -> Any:
        return self.rng.choice(split_choices(items, self.heldout))

    def say(self, key: str, **fields: Any) -> tuple[str, str]:
        """(text, template id) for a request; typos land only in the template's own words."""
        templates = self.templates[key]
        index = self.choose(tuple(range(len(templates))))
        template = templates[index]
        if self.rng.random() < self.typo_rate:
            template = self._typo_template(template)
        return template.format(**fields), f"{key}#{index}"

    def _typo_template(self, template: str) -> str:
        parts = list(string.Formatter().parse(template))
        out = []
        for literal, field, spec, conv in parts:
            out.append(add_typos(literal, self.rng) if len(literal) > 6 else literal)
            if field is not None:
                out.append("{" + field + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}")
        return "".join(out)

    # --- slot formats --------------------------------------------------------------------------------
    def date(self, iso: str) -> str:
        """A date near today, as a customer says it ("this Friday", "Dec 4", "12/04")."""
        d = dt.date.fromisoformat(iso)
        ahead = (d - self.today).days
        day = WEEKDAY[d.weekday()]
        month = MONTHS[d.month - 1]
        forms = [f"{day}, {month} {d.day}", f"{month} {d.day}", f"{day.lower()} the {d.day}",
                 f"{d.day} {month[:3]}", f"{d.month}/{d.day:02d}", f"{month[:3]} {d.day}",
                 f"this {day}" if 0 < ahead < 7 else f"{month} {d.day}", f"the {ordinal(d.day)}"]
        if ahead == 1:
            forms[5] = "tomorrow"
        return self.choose(tuple(forms))

    def time(self, hhmm: str) -> str:
        h, m = map(int, hhmm.split(":"))
        h12 = (h - 1) % 12 + 1
        ampm = "am" if h < 12 else "pm"
        minutes = "" if m == 0 else f":{m:02d}"
        part = "in the morning" if h < 12 else "in the afternoon" if h < 18 else "in the evening"
        forms = (f"{h12}{minutes}{ampm}", hhmm, f"{h12}{minutes} {ampm.upper()}", f"{h12}{minutes} {part}",
                 f"{h12}:{m:02d}{ampm}", f"{h:02d}{m:02d}h" if m else f"{h12}{ampm}", f"{h12}{minutes}{ampm}",
                 f"{h}h{m:02d}")
        return self.choose(forms)

    def price(self, amount: int) -> str:
        """A whole-dollar amount in thousands ("$25,000", "25k", "25 grand")."""
        k = amount // 1000
        forms = (f"${amount:,}", f"{k}k", f"${k}k", f"{k} grand", f"${amount:,}", f"{amount}", f"{k}K",
                 f"{k} thousand dollars")
        return self.choose(forms)
