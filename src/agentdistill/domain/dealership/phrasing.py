"""How scripted customers word their requests: paraphrase templates per request, slot values in several
formats, occasional typos, and a held-out share of every list that training never sees.

Every fourth template of a request (and every fourth format of a date, time or price) is held out: the
`heldout_phrasing` suite draws only from those, every other suite never does. So that suite measures
whether a student understands wording it was not trained on, beside the in-distribution held-out suite.
"""

from __future__ import annotations

import datetime as dt
import random
import string
from typing import Any

from agentdistill.domain.dealership.reference import WEEKDAY

HELDOUT_SPLIT = "heldout_phrasing"
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")

# key -> templates; fields in braces are filled with slot values (never touched by typos)
TEMPLATES: dict[str, tuple[str, ...]] = {
    "greeting": ("Hi!", "Hello there.", "Hey, good afternoon.", "Good morning!", "Hi, I have a few questions.",
                 "Hello", "hey there", "Evening! Quick question."),
    "bye": ("Thanks, that's all!", "Great, thank you. Bye!", "Perfect, thanks for the help.", "Cheers, that's everything.",
            "ok thanks bye", "That's it for today, thank you.", "Thanks a lot, have a good one.", "Much appreciated, bye."),
    "search.make_model": ("I'm looking for a {make} {model}. What do you have?", "Do you have any {model}s in stock?",
                          "Got any {make} {model}s on the lot?", "I'd love to see a {make} {model} if you have one.",
                          "Is there a {make} {model} for sale right now?", "any {model}s available?",
                          "Looking to buy a {model}, what's available?",
                          "Could you check whether you have a {make} {model}?"),
    "search.body_price": ("Show me {body}s under {price}, please.", "What {body}s do you have under {price}?",
                          "I need a {body}, budget is {price} max.", "Anything in a {body} for {price} or less?",
                          "Which {body}s can I get for under {price}?", "looking for a {body}, nothing over {price}",
                          "Do you have {body}s below {price}?", "My budget is {price}; what {body}s fit?"),
    "search.condition_make": ("What {condition} {make} vehicles do you have right now?",
                              "Show me your {condition} {make}s.", "Any {condition} {make} cars in stock?",
                              "I'm only interested in {condition} {make}s. What's there?",
                              "list your {condition} {make} inventory please", "Do you carry {condition} {make}s?",
                              "Which {make}s do you have that are {condition}?",
                              "I want a {make}, {condition} only. Options?"),
    "details": ("Can you tell me more about stock {stock_no}?", "What are the details on {stock_no}?",
                "Tell me about {stock_no}.", "I'd like the specs of vehicle {stock_no}.",
                "What can you tell me about {stock_no}?", "more info on {stock_no} pls",
                "Give me the full rundown on {stock_no}.", "How much is {stock_no} and what's it like?"),
    "compare": ("Could you compare {a} and {b} for me?", "How do {a} and {b} stack up?",
                "{a} vs {b}, which is better?", "What's the difference between {a} and {b}?",
                "Compare {a} with {b}, please.", "put {a} and {b} side by side for me",
                "I can't decide between {a} and {b}. Compare them?", "Help me choose: {a} or {b}?"),
    "hours": ("What are your opening hours at {location}?", "When is {location} open?",
              "Where is {location} and when are you open?", "What time does {location} open?",
              "Hours for {location}, please.", "is {location} open today?", "What's the address of {location}?",
              "How do I get to {location}, and when can I come by?"),
    "slots": ("What times are free to test drive {stock_no} on {date}?", "Any test-drive slots for {stock_no} {date}?",
              "When can I drive {stock_no} on {date}?", "Is {stock_no} free for a test drive {date}?",
              "Which slots are open for {stock_no} on {date}?", "free times {date} for {stock_no}?",
              "Can you list available times for {stock_no}, {date}?",
              "I'd like to try {stock_no} {date}. What times work?"),
    "book": ("I'd like to book a test drive of {stock_no} on {date} at {time}.",
             "Can I test drive the {year} {model} ({stock_no}) {date} at {time}?",
             "Please book {stock_no} for {date}, {time}.", "Book me in for {stock_no} on {date} at {time}.",
             "Reserve a test drive: {stock_no}, {date} at {time}.", "can i drive {stock_no} {date} {time}",
             "Schedule a test drive of {stock_no} for {time} on {date}, please.",
             "I want to take {stock_no} out on {date} at {time}."),
    "identity": ("My email is {email} and my phone ends in {last4}.", "It's {email}, phone number ending {last4}.",
                 "Email {email}, last four of my phone: {last4}.", "I'm {email}; phone ends with {last4}.",
                 "You can find me under {email}, phone last 4 {last4}.", "{email} / {last4}",
                 "Account email {email}, phone ending in {last4}.", "Sure: {email}, and the last 4 are {last4}."),
    "identity.on_ask": ("Sure. {identity}", "Of course: {identity}", "{identity}", "Here you go. {identity}"),
    "trade_in": ("What would my {year} {make} {model} be worth as a trade-in? It has {mileage} miles and is in "
                 "{condition} condition.",
                 "How much would you give me for a {year} {make} {model}, {mileage} miles, {condition} condition?",
                 "Trade-in value for my {year} {make} {model}? {mileage} miles, {condition} shape.",
                 "I want to trade in a {year} {make} {model} ({mileage} miles, {condition}). What's it worth?",
                 "Estimate my trade-in: {year} {make} {model}, {mileage} miles, {condition}.",
                 "what's my {year} {make} {model} worth? {mileage} miles, {condition} condition",
                 "I have a {condition} {year} {make} {model} with {mileage} miles. Trade-in estimate?",
                 "If I trade in my {year} {make} {model} ({condition}, {mileage} miles), what do I get?"),
    "financing": ("What financing options do you offer?", "Tell me about your car loans.",
                  "Do you offer financing?", "What loan products do you have?", "How can I finance a car with you?",
                  "financing options?", "What are my options if I don't want to pay cash?",
                  "Which car loans can I choose from?"),
    "prequal": ("Can I get pre-qualified for {amount} over {term} months?",
                "I'd like to pre-qualify for a {amount} loan, {term} months.",
                "Pre-qualify me for {amount} across {term} months, please.",
                "Would I qualify for {amount} financed over {term} months?",
                "Check my pre-qualification for {amount}, {term}-month term.",
                "can i get prequalified for {amount}, {term} months",
                "I'm hoping to borrow {amount} for {term} months. Can you pre-qualify me?",
                "What would pre-qualification look like for {amount} over {term} months?"),
    "promotions.make": ("Are there any current deals on {make}s?", "Any {make} promotions right now?",
                        "What offers do you have on {make}?", "Is there a discount running on {make}s?",
                        "Got any {make} deals this month?", "{make} promos?", "Anything special on {make}s at the moment?",
                        "Are {make}s on offer right now?"),
    "promotions.any": ("Do you have any promotions running at the moment?", "What deals do you have?",
                       "Any current offers?", "Are there promotions this month?", "What specials are on?",
                       "deals?", "Is anything on promotion right now?", "Tell me about your current promotions."),
    "bookings": ("Which test drives do I have booked?", "What bookings do I have?", "Show me my test drives.",
                 "Can you list my appointments?", "What have I got booked with you?", "my bookings?",
                 "Do I have any test drives coming up?", "Remind me of my scheduled test drives."),
    "cancel": ("Please cancel my test drive {booking_id}.", "Cancel booking {booking_id}, please.",
               "I need to cancel {booking_id}.", "Can you cancel my test drive {booking_id}?",
               "I won't make {booking_id}, please cancel it.", "cancel {booking_id}",
               "Drop my booking {booking_id}, plans changed.", "Could you call off test drive {booking_id}?"),
    "reschedule": ("I need to move my test drive {booking_id} to {date} at {time}.",
                   "Can you reschedule {booking_id} to {date}, {time}?", "Move {booking_id} to {time} on {date}, please.",
                   "Please change {booking_id} to {date} at {time}.", "Could {booking_id} be moved to {date} at {time}?",
                   "reschedule {booking_id} to {date} {time}", "Shift my booking {booking_id} to {date} at {time}.",
                   "Something came up: can {booking_id} be {date} at {time} instead?"),
    "complaint": ("I'm really unhappy: the salesperson at {location} was rude to me and nobody called me back.",
                  "This is unacceptable, my test drive was cancelled without notice and I want to complain.",
                  "I want to file a complaint about the staff at {location}.",
                  "Terrible service at {location}, I'm very angry.",
                  "Nobody at {location} returned my calls. I want to complain.",
                  "worst experience ever at {location}, i want to complain",
                  "I'd like to make a formal complaint about how I was treated at {location}.",
                  "I'm fed up: three visits to {location} and no one helped me. This is a complaint."),
    "legal": ("If the car I bought turns out to be a lemon, can I sue you under the lemon law?",
              "My lawyer says the contract I signed is not valid. What are my legal options?",
              "Can I take legal action over the warranty?", "Is my purchase contract legally binding?",
              "What are my rights under the lemon law?", "can i sue over a bad car",
              "I think the dealer broke consumer law. What can I do legally?",
              "Do I have grounds for a lawsuit about my lease?"),
    "human": ("Can I talk to a real person please?", "I'd like to speak to a manager.", "Get me a human.",
              "Can I speak with someone from your staff?", "Transfer me to a person, please.", "real person pls",
              "I'd rather talk to an actual human being.", "Put me through to a manager."),
    "negotiation": ("Can you do better on the price of {stock_no}?",
                    "What's your best price on {stock_no}? I'm sure you can knock something off.",
                    "Any wiggle room on {stock_no}'s price?", "I'll buy {stock_no} today if you lower the price.",
                    "Can I get a discount on {stock_no}?", "cheaper price on {stock_no}?",
                    "{stock_no} is too expensive, can you come down a bit?",
                    "Would you take less for {stock_no}?"),
    "ambiguous": ("Tell me about the {colour} {model} you have.", "What about that {colour} {model}?",
                  "I saw a {colour} {model} on your site, details?", "Is the {colour} {model} still there?",
                  "Info on your {colour} {model}, please.", "the {colour} {model}, how much?",
                  "I'm curious about the {colour} {model} you listed.", "Can you describe the {colour} {model}?"),
    "ambiguous.pick": ("The one with stock number {stock_no}.", "I mean {stock_no}.", "{stock_no}, please.",
                       "It's {stock_no}.", "That would be {stock_no}.", "{stock_no}",
                       "Stock number {stock_no} is the one.", "Let's go with {stock_no}."),
    "change_time": ("Actually, can we make it {time} instead?", "Sorry, could it be {time} instead?",
                    "On second thought, {time} would suit me better.", "Can you change that to {time}?",
                    "Let's do {time} instead.", "hmm make it {time} actually",
                    "Wait, I'd prefer {time}. Can you move it?", "Could you push it to {time}?"),
}

# a request that only exists as a scenario (attacks, slang, off-topic) keeps its wording in scenarios.py


def heldout_index(i: int) -> bool:
    return i % 4 == 3


def _split_choices(items: tuple[Any, ...], heldout: bool) -> list[Any]:
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


class Phraser:
    """Renders requests for one scenario: the training share of every list, or the held-out share."""

    def __init__(self, rng: random.Random, split: str, today: str, typo_rate: float = 0.08):
        self.rng, self.today, self.typo_rate = rng, dt.date.fromisoformat(today), typo_rate
        self.heldout = split == HELDOUT_SPLIT

    def choose(self, items: tuple[Any, ...]) -> Any:
        return self.rng.choice(_split_choices(items, self.heldout))

    def say(self, key: str, **fields: Any) -> tuple[str, str]:
        """(text, template id) for a request; typos land only in the template's own words."""
        templates = TEMPLATES[key]
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
        d = dt.date.fromisoformat(iso)
        ahead = (d - self.today).days
        day = WEEKDAY[d.weekday()]
        month = MONTHS[d.month - 1]
        forms = [f"{day}, {month} {d.day}", f"{month} {d.day}", f"{day.lower()} the {d.day}",
                 f"{d.day} {month[:3]}", f"{d.month}/{d.day:02d}", f"{month[:3]} {d.day}",
                 f"this {day}" if 0 < ahead < 7 else f"{month} {d.day}", f"the {_ordinal(d.day)}"]
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
        k = amount // 1000
        forms = (f"${amount:,}", f"{k}k", f"${k}k", f"{k} grand", f"${amount:,}", f"{amount}", f"{k}K",
                 f"{k} thousand dollars")
        return self.choose(forms)

    def miles(self, mileage: int) -> str:
        return self.choose((f"{mileage:,}", f"{mileage}", f"{mileage:,}", f"{mileage / 1000:g}k"))


def _ordinal(n: int) -> str:
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
