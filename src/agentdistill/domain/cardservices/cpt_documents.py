"""The card desk's knowledge base for continued pre-training: branches, card products, fees, how merchants
appear on statements and FAQs, in prose from the public tables and the policy parameters. Customers' own data
(cards, transactions, disputes) never enters it: a student must not memorise private records.
(data/cpt_domain.py adds the policy and tool documents every domain gets.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agentdistill.data.cpt_domain import cpt_doc, knowledge_base
from agentdistill.data.splits import hash_unit

from .policy import money
from .replies import fee_amount, hours_text
from .world import BRANCHES, COUNTRIES, MERCHANTS, PRODUCTS

MERCHANT_TEMPLATES = (
    "A charge from {name} is a {category} purchase. Typical amounts on our cards range from {lo} to {hi}. If you "
    "do not recognise a {name} charge, you can dispute it within the dispute window once it has posted.",
    "{name} ({category}) appears on card statements under its own name. Purchases there usually cost between {lo} "
    "and {hi}; pending {name} charges post within about three days.",
    "Seeing {name} on your statement? It is a {category} merchant, with charges usually from {lo} to {hi}. A "
    "duplicate or wrong {name} charge can be disputed after it posts.",
)


def branch_docs(kb: str, world: Any) -> Iterator[dict[str, Any]]:
    for bid, name, address, phone, hours in BRANCHES:
        weekend = "open on Sundays" if hours.get("sunday") else "closed on Sundays"
        text = (f"The {name} ({bid}) is at {address}, phone {phone}. Opening hours: {hours_text(hours)}. It is "
                f"{weekend}. Card services can freeze, replace and dispute cards at every branch.")
        yield cpt_doc(f"branch:{bid}", "branch", f"{kb} | branch | {name}", text, "always_train")


def product_docs(kb: str) -> Iterator[dict[str, Any]]:
    for product, (kind, network, annual) in PRODUCTS.items():
        fee = f"an annual fee of {money(annual)}" if annual else "no annual fee"
        extra = (" It has a credit limit that can be raised on request while the card is active." if kind == "credit"
                 else " It spends the money in your checking account.")
        text = f"The {product} is a {network} {kind} card with {fee}.{extra}"
        yield cpt_doc(f"product:{product}", "product", f"{kb} | card product | {product}", text, "always_train")


def fee_docs(kb: str, world: Any) -> Iterator[dict[str, Any]]:
    for f in world.query("SELECT * FROM fees ORDER BY fee_id"):
        text = f"{f['name']} ({f['fee_id']}): {fee_amount(f)}, {f['note']}."
        yield cpt_doc(f"fee:{f['fee_id']}", "fee", f"{kb} | fee schedule | {f['name']}", text, "always_train")


def merchant_docs(kb: str, seed: int) -> Iterator[dict[str, Any]]:
    for name, category, lo, hi in MERCHANTS:
        template = MERCHANT_TEMPLATES[int(hash_unit(name, seed) * len(MERCHANT_TEMPLATES))]
        text = template.format(name=name, category=category, lo=money(lo), hi=money(hi))
        yield cpt_doc(f"merchant:{name}", "merchant", f"{kb} | merchant | {name}", text, "holdout_pool")


def faq_docs(kb: str, domain: Any) -> Iterator[dict[str, Any]]:
    """Questions customers ask, answered from the policy (v1 parameters) and the public tables."""
    p = domain.policy_params("v1")
    faqs: list[tuple[str, str]] = [
        ("How do you verify my identity?", "With your date of birth and the zip code on your account. We never ask "
         "for your full card number, CVV, PIN or passwords."),
        ("How long do I have to dispute a transaction?", f"{p['dispute_window_days']} days from the transaction date; "
         "the transaction must have posted (pending ones cannot be disputed yet)."),
        ("How many disputes can I have open?", f"Up to {p['max_open_disputes']} at a time, one per transaction."),
        ("I lost my card. What happens?", "We block it for good, then order a replacement with new last four digits. "
         "Standard delivery takes 7 business days and is free; express takes 2 business days for $25.00."),
        ("What is the difference between freezing and blocking a card?", "A frozen card can be unfrozen when you find "
         "it; a blocked (lost or stolen) card never works again and is replaced."),
        ("Can you raise my credit limit?", f"On an active credit card, up to {money(p['max_credit_limit'])}. The bank "
         "decides at once and you get a request number."),
        ("Can I get a limit increase on a frozen card?", "No. Unfreeze it first; only active credit cards qualify."),
        ("Do I need a travel notice?", f"Yes, for trips abroad: it starts today or later and lasts at most "
         f"{p['max_travel_days']} days, and covers all your cards."),
        ("Can you refund a charge right away?", "No. We never promise refunds or fee waivers; a dispute decides "
         "whether an amount is credited back."),
        ("Can you tell me about another customer's card?", "No. We never share another customer's data."),
        ("What if I think my card is used for fraud?", "Tell us and we open a ticket with our fraud team, who contact "
         "you within minutes; you can also freeze the card."),
        ("Can I talk to a person?", "Yes. We open a ticket for our team and give you the ticket number."),
    ]
    faqs += [(f"Does my card work in {country}?", f"Yes. Visa and Mastercard cards work in {country}; set a travel "
              "notice before you go so payments there are not declined as suspicious.") for country in COUNTRIES]
    for q, a in faqs:
        yield cpt_doc(f"faq:{q}", "faq", f"{kb} | FAQ | {q}", f"Q: {q}\nA: {a}", "holdout_pool")


def documents(domain: Any, seed: int) -> list[dict[str, Any]]:
    kb = knowledge_base(domain)
    world = domain.base_world
    return [*branch_docs(kb, world), *product_docs(kb), *fee_docs(kb, world), *merchant_docs(kb, seed),
            *faq_docs(kb, domain)]
