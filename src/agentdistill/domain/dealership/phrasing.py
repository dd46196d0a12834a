"""How the dealership's scripted customers word their requests: paraphrase templates per request (the held-out
share, slot formats and typos are domain/phrasing.py's, shared by every domain).
"""

from __future__ import annotations

import random

from agentdistill.domain.phrasing import HELDOUT_SPLIT, MONTHS, add_typos, heldout_index
from agentdistill.domain.phrasing import Phraser as BasePhraser

__all__ = ["HELDOUT_SPLIT", "MONTHS", "TEMPLATES", "Phraser", "add_typos", "heldout_index"]

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


class Phraser(BasePhraser):
    """The dealership's requests (TEMPLATES), plus mileage formats."""

    def __init__(self, rng: random.Random, split: str, today: str, typo_rate: float = 0.08):
        super().__init__(rng, split, today, TEMPLATES, typo_rate)

    def miles(self, mileage: int) -> str:
        return self.choose((f"{mileage:,}", f"{mileage}", f"{mileage:,}", f"{mileage / 1000:g}k"))
