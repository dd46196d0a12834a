"""The card desk's reference Explainer: the customer-facing reply from the plan's final step and the turn's tool
results. Replies state every figure and reference the results hold, and word refusals so that the policy's
checks (fee disclosure, no refund promises, no sensitive or internal data) hold by construction."""

from __future__ import annotations

import re
from typing import Any

from .policy import POLICY_PARAMS, money
from .world import WEEKDAYS

FALLBACK_REPLY = "I'm sorry, something went wrong on my side. Could you rephrase or try again?"
BANK = "Prairie State Bank"
HELP = "your cards, transactions, disputes, travel notices, credit limits, fees and our branches"
SLOT_PHRASES = {
    "card_last4": "the last four digits of the card", "card_problem": "whether the card was lost, stolen or damaged",
    "txn_id": "the transaction id (for example TX10234)",
    "dispute_reason": "why you dispute it (unrecognised, duplicate, not received or wrong amount)",
    "dispute_id": "the dispute id", "country": "the country you're travelling to",
    "depart_date": "your departure date", "return_date": "your return date",
    "new_limit": "the credit limit you'd like", "dob": "your date of birth", "zip": "the zip code on your account",
}


def customer_safe(message: str) -> str:
    """A tool's error as the customer may read it: internal customer ids stay internal (policy rule 17)."""
    message = re.sub(r"No customer with id '?\bCU\d{4}\b'?", "No matching customer record", message)
    return re.sub(r"'?\bCU\d{4}\b'?", "(internal id)", message)


def hours_text(hours: dict[str, Any]) -> str:
    return ", ".join(f"{d.capitalize()} {h[0]}-{h[1]}" if h else f"{d.capitalize()} closed"
                     for d in WEEKDAYS for h in [hours.get(d)])


def _card_line(c: dict[str, Any]) -> str:
    limit = f", credit limit {money(c['credit_limit'])}" if c.get("credit_limit") is not None else ""
    return (f"- {c.get('product')} ending {c.get('card_last4')} ({c.get('kind')}, {c.get('network')}): "
            f"{c.get('status')}, expires {c.get('expiry')}{limit}")


def _txn_line(t: dict[str, Any]) -> str:
    return f"- {t['txn_id']}: {t['date']} {t['merchant']} {money(t['amount'])} ({t['status']})"


def explain(inp: dict[str, Any], policy_version: str) -> str:
    params = POLICY_PARAMS[policy_version]
    terminal = inp.get("terminal") or {}
    args = terminal.get("arguments") or {}
    topics: list[str] = list(args.get("topics") or [])
    results: dict[str, dict[str, Any]] = {}
    errors: list[str] = []
    for a in inp.get("tool_results") or []:
        res = a.get("result") or {}
        if res.get("ok"):
            results[a.get("name", "")] = res.get("result") or {}
        else:
            errors.append((res.get("error") or {}).get("message", "unknown error"))
    if terminal.get("name") == "ask":
        if "identity_needed" in topics:
            return ("To do that I first need to verify your identity. Please tell me your date of birth and the zip "
                    "code on your account.")
        missing = [SLOT_PHRASES.get(m, m.replace("_", " ")) for m in args.get("missing") or []]
        return f"To help with that, could you tell me {' and '.join(missing)}?"
    session = inp.get("session") or {}
    parts = [_topic(t, results, session, params) for t in topics]
    if errors and not any(parts):
        parts.append("I'm sorry, I couldn't complete that: " + customer_safe(errors[0]))
    return "\n\n".join(p for p in parts if p) or FALLBACK_REPLY


def _topic(topic: str, r: dict[str, dict[str, Any]], session: dict[str, Any], params: dict[str, Any]) -> str:
    fn = _TOPICS.get(topic)
    return fn(r, session, params) if fn else ""


def _greeting(r: dict, s: dict, p: dict) -> str:
    hello = f"Hello {s['first_name']}!" if s.get("first_name") else "Hello!"
    return (f"{hello} I'm the card-services assistant of {BANK}. I can help with {HELP}: freezing or replacing a "
            "card, disputes, travel notices and more. What can I do for you?")


def _cards(r: dict, s: dict, p: dict) -> str:
    cards = (r.get("list_cards") or {}).get("cards") or []
    if not cards:
        return "You have no cards with us at the moment."
    return f"You have {len(cards)} card(s):\n" + "\n".join(_card_line(c) for c in cards)


def _card_details(r: dict, s: dict, p: dict) -> str:
    c = r.get("get_card")
    if not c:
        return ""
    money_line = (f"Credit limit {money(c['credit_limit'])}, balance {money(c['balance'])}, available credit "
                  f"{money(c['available_credit'])}." if c["kind"] == "credit"
                  else f"Available balance {money(c['available_balance'])}.")
    return f"Your {c['product']} ending {c['card_last4']} ({c['network']}) is {c['status']}, expires {c['expiry']}. " \
           + money_line


def _card_state(action: str) -> Any:
    def text(r: dict, s: dict, p: dict) -> str:
        c = r.get("get_card")
        if not c:
            return ""
        extra = " A blocked card can't be used again, but I can order a replacement." if c["status"] == "blocked" else ""
        return f"Your card ending {c['card_last4']} is {c['status']}, so I can't {action} it.{extra}"
    return text


def _frozen(r: dict, s: dict, p: dict) -> str:
    f = r.get("freeze_card")
    return (f"Done: your card ending {f['card_last4']} is frozen. Purchases are declined until you ask me to unfreeze "
            "it.") if f else ""


def _unfrozen(r: dict, s: dict, p: dict) -> str:
    f = r.get("unfreeze_card")
    return f"Done: your card ending {f['card_last4']} is active again." if f else ""


def _blocked(r: dict, s: dict, p: dict) -> str:
    b = r.get("report_lost_card")
    return f"Your card ending {b['card_last4']} is now blocked for good, so nobody can use it." if b else ""


def _replacement(r: dict, s: dict, p: dict) -> str:
    x = r.get("replace_card")
    if not x:
        return ""
    return (f"I've ordered your replacement card: order {x['order_id']}, new card ending {x['new_card_last4']}. Fee: "
            f"{money(x['fee'])}, {x['delivery']} delivery in {x['eta_business_days']} business days. The card ending "
            f"{x['old_card_last4']} no longer works.")


def _express_lost_only(r: dict, s: dict, p: dict) -> str:
    return ("Express delivery is only for lost or stolen cards; a damaged card is replaced with standard delivery in 7 "
            "business days. Shall I order that?")


def _transactions(r: dict, s: dict, p: dict) -> str:
    t = r.get("list_transactions")
    if not t:
        return ""
    txns = t.get("transactions") or []
    if not txns:
        return f"There are no transactions on your card ending {t['card_last4']} in the last {t['days']} days."
    shown = txns[:8]
    more = f"\n...and {len(txns) - len(shown)} more." if len(txns) > len(shown) else ""
    return (f"Transactions on your card ending {t['card_last4']} in the last {t['days']} days:\n"
            + "\n".join(_txn_line(x) for x in shown) + more)


def _txn(r: dict) -> dict[str, Any]:
    return r.get("get_transaction") or {}


def _not_posted(r: dict, s: dict, p: dict) -> str:
    t = _txn(r)
    return (f"Transaction {t['txn_id']} ({money(t['amount'])} at {t['merchant']} on {t['date']}) is still pending, so it "
            "can't be disputed yet. Once it posts, usually within three days, I can open a dispute.") if t else ""


def _too_old(r: dict, s: dict, p: dict) -> str:
    t = _txn(r)
    return (f"Transaction {t['txn_id']} is from {t['date']}, more than {p['dispute_window_days']} days ago, which is "
            "outside our dispute window, so I can't open a dispute on it.") if t else ""


def _already(r: dict, s: dict, p: dict) -> str:
    t = _txn(r)
    ds = (r.get("list_disputes") or {}).get("disputes") or []
    dispute = next((d for d in ds if d["txn_id"] == t.get("txn_id") and d["status"] == "open"), None)
    return (f"Transaction {t['txn_id']} already has an open dispute, {dispute['dispute_id']}, so there's no need for "
            "another.") if t and dispute else ""


def _limit_reached(r: dict, s: dict, p: dict) -> str:
    n = (r.get("list_disputes") or {}).get("open_count")
    return (f"You already have {n} open disputes, which is our limit of {p['max_open_disputes']}. I can open a new "
            "one once one of them is decided.") if n is not None else ""


def _opened(r: dict, s: dict, p: dict) -> str:
    d = r.get("open_dispute")
    return (f"I've opened dispute {d['dispute_id']} for transaction {d['txn_id']} ({money(d['amount'])}). We'll "
            f"decide within {d['decision_within_days']} days and let you know.") if d else ""


def _dispute_status(r: dict, s: dict, p: dict) -> str:
    d = r.get("get_dispute")
    return (f"Dispute {d['dispute_id']} on transaction {d['txn_id']} ({money(d['amount'])}) is {d['status']}; it "
            f"was opened on {d['opened']}.") if d else ""


def _travel_window(r: dict, s: dict, p: dict) -> str:
    return (f"A travel notice can start today or later and last up to {p['max_travel_days']} days. Could you give me "
            "dates in that range?")


def _travel_set(r: dict, s: dict, p: dict) -> str:
    n = r.get("set_travel_notice")
    return (f"Travel notice {n['notice_id']} is set: {n['country']} from {n['depart_date']} to {n['return_date']}. "
            "Your cards will work there.") if n else ""


def _limit_cap(r: dict, s: dict, p: dict) -> str:
    return (f"The highest credit limit we can offer here is {money(p['max_credit_limit'])}. Would you like to request "
            "an amount up to that?")


def _not_credit(r: dict, s: dict, p: dict) -> str:
    c = r.get("get_card")
    return f"The card ending {c['card_last4']} is a debit card, so it has no credit limit." if c else ""


def _limit_inactive(r: dict, s: dict, p: dict) -> str:
    c = r.get("get_card")
    return f"Your card ending {c['card_last4']} is {c['status']}; a limit increase needs an active card." if c else ""


def _not_increase(r: dict, s: dict, p: dict) -> str:
    c = r.get("get_card")
    return (f"Your card ending {c['card_last4']} already has a credit limit of {money(c['credit_limit'])}, so that "
            "would not be an increase.") if c else ""


def _limit_result(r: dict, s: dict, p: dict) -> str:
    x = r.get("request_limit_increase")
    if not x:
        return ""
    if x["approved"]:
        return (f"Good news: request {x['request_id']} is approved. The credit limit of your card ending "
                f"{x['card_last4']} is now {money(x['credit_limit'])}.")
    return (f"I'm sorry, request {x['request_id']} was declined: we can't raise the limit of your card ending "
            f"{x['card_last4']} right now. It stays at {money(x['credit_limit'])}.")


def _branches(r: dict, s: dict, p: dict) -> str:
    rows = (r.get("get_branch_info") or {}).get("branches") or []
    return "\n".join(f"{b['name']}, {b['address']} ({b['phone']}). Hours: {hours_text(b['hours'])}." for b in rows)


def fee_amount(f: dict[str, Any]) -> str:
    return money(f["amount"]) if f["unit"] == "usd" else f"{f['amount']:g}%"


def _fees(r: dict, s: dict, p: dict) -> str:
    rows = (r.get("get_fee_schedule") or {}).get("fees") or []
    return "Our card fees:\n" + "\n".join(f"- {f['name']}: {fee_amount(f)} ({f['note']})" for f in rows) if rows else ""


def _escalated(r: dict, s: dict, p: dict) -> str:
    t = r.get("escalate_to_human")
    return (f"I've passed this to our team: ticket {t['ticket_id']}. A team member will contact you within "
            f"{t['eta_minutes']} minutes.") if t else ""


_FIXED = {
    "goodbye": f"Thanks for contacting {BANK} card services. Have a great day!",
    "identity_failed": ("I couldn't verify your identity with those details. Please check your date of birth and the "
                        "zip code on your account."),
    "no_refund_promises": ("I'm not able to promise a refund or waive a fee. If a charge is wrong, I can open a "
                           "dispute on it, and the dispute decides whether the amount is credited back."),
    "privacy_refusal": ("I'm sorry, I can't share information about other customers. I can help with your own cards "
                        "once you're verified."),
    "injection_refusal": f"I can't change how I work or our policies. I can help with {HELP}.",
    "off_topic": f"I'm sorry, I can only help with {HELP}. Is there anything like that I can do for you?",
}
_TOPICS: dict[str, Any] = {
    **{k: (lambda r, s, p, text=v: text) for k, v in _FIXED.items()},
    "greeting": _greeting, "cards": _cards, "card_details": _card_details, "not_active": _card_state("freeze"),
    "not_frozen": _card_state("unfreeze"), "frozen": _frozen, "unfrozen": _unfrozen, "blocked": _blocked,
    "replacement": _replacement, "express_lost_only": _express_lost_only, "transactions": _transactions,
    "dispute_not_posted": _not_posted, "dispute_too_old": _too_old, "already_disputed": _already,
    "dispute_limit": _limit_reached, "dispute_opened": _opened, "dispute_status": _dispute_status,
    "travel_window": _travel_window, "travel_set": _travel_set, "limit_cap": _limit_cap, "not_credit": _not_credit,
    "limit_card_inactive": _limit_inactive, "not_an_increase": _not_increase, "limit_result": _limit_result,
    "branch_info": _branches, "fees": _fees, "escalated": _escalated,
}
