"""The 17 card-services tools: OpenAI schemas (domain/toolkit.py builders) and their implementations.

A card is named by its last four digits (unique across the bank) and always together with the verified
customer's id, so a tool never touches another customer's card: it answers not_found. Tools guard integrity
(existence, ownership, states that cannot change: a replaced card stays replaced); business policy lives in
policy.py.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from agentdistill.domain.base import ToolSpec
from agentdistill.domain.toolkit import Impl, Toolbox, ToolFailure, bad, integer, obj, show, string

from .world import DELIVERY, DISPUTE_REASONS

CUSTOMER_ID = string("Customer id returned by verify_identity, e.g. 'CU1042'.", minLength=1, maxLength=20)
LAST4 = string("Last four digits of the card, e.g. '4821'.", pattern=r"^[0-9]{4}$")
TXN_ID = string("Transaction id, e.g. 'TX10234'.", minLength=1, maxLength=20)
DATE = string("Date 'YYYY-MM-DD'.", format="date")
CARD_COLS = "last4 AS card_last4, kind, product, network, status, credit_limit, expiry"


def _customer(world: Any, customer_id: str) -> dict[str, Any]:
    row = world.conn.execute("SELECT * FROM customers WHERE customer_id = ?", (customer_id,)).fetchone()
    if row is None:
        raise ToolFailure("not_found", f"No customer with id {show(customer_id)}.")
    return row


def _card(world: Any, customer_id: str, last4: str) -> dict[str, Any]:
    _customer(world, customer_id)
    row = world.conn.execute("SELECT * FROM cards WHERE last4 = ? AND customer_id = ?", (last4, customer_id)).fetchone()
    if row is None:
        raise ToolFailure("not_found", f"No card ending {last4} on this account.")
    return row


def _txn(world: Any, customer_id: str, txn_id: str) -> dict[str, Any]:
    _customer(world, customer_id)
    row = world.conn.execute("SELECT * FROM transactions WHERE txn_id = ? AND customer_id = ?",
                             (txn_id, customer_id)).fetchone()
    if row is None:
        raise ToolFailure("not_found", f"No transaction {show(txn_id)} on this account.")
    return row


def _set_status(world: Any, last4: str, status: str, reason: str | None = None) -> None:
    world.conn.execute("UPDATE cards SET status = ?, blocked_reason = COALESCE(?, blocked_reason) WHERE last4 = ?",
                       (status, reason, last4))
    world.conn.commit()


def _card_out(row: dict[str, Any]) -> dict[str, Any]:
    out = {"card_last4": row["last4"], "kind": row["kind"], "product": row["product"], "network": row["network"],
           "status": row["status"], "expiry": row["expiry"]}
    if row["kind"] == "credit":
        out.update(credit_limit=row["credit_limit"], balance=row["balance"],
                   available_credit=round(row["credit_limit"] - row["balance"], 2))
    else:
        out["available_balance"] = row["balance"]
    return out


def _txn_out(row: dict[str, Any]) -> dict[str, Any]:
    return {"txn_id": row["txn_id"], "card_last4": row["last4"], "date": row["date"], "merchant": row["merchant"],
            "amount": row["amount"], "status": row["status"]}


# ------------------------------------------------------------------------------------------------ tools

def verify_identity(world: Any, dob: str, zip: str) -> dict[str, Any]:
    row = world.conn.execute("SELECT customer_id, first_name, zip FROM customers WHERE dob = ?", (dob,)).fetchone()
    if row is None or row["zip"] != zip.strip():
        return {"verified": False}
    return {"verified": True, "customer_id": row["customer_id"], "first_name": row["first_name"]}


def list_cards(world: Any, customer_id: str) -> dict[str, Any]:
    _customer(world, customer_id)
    rows = world.conn.execute(f"SELECT {CARD_COLS} FROM cards WHERE customer_id = ? AND status != 'replaced' "
                              "ORDER BY kind DESC, last4", (customer_id,)).fetchall()
    return {"cards": rows}


def get_card(world: Any, customer_id: str, card_last4: str) -> dict[str, Any]:
    return _card_out(_card(world, customer_id, card_last4))


def freeze_card(world: Any, customer_id: str, card_last4: str) -> dict[str, Any]:
    card = _card(world, customer_id, card_last4)
    if card["status"] != "active":
        raise ToolFailure("invalid_state", f"The card ending {card_last4} is {card['status']}, not active.")
    _set_status(world, card_last4, "frozen")
    return {"card_last4": card_last4, "status": "frozen"}


def unfreeze_card(world: Any, customer_id: str, card_last4: str) -> dict[str, Any]:
    card = _card(world, customer_id, card_last4)
    if card["status"] != "frozen":
        raise ToolFailure("invalid_state", f"The card ending {card_last4} is {card['status']}, not frozen.")
    _set_status(world, card_last4, "active")
    return {"card_last4": card_last4, "status": "active"}


def report_lost_card(world: Any, customer_id: str, card_last4: str, reason: str) -> dict[str, Any]:
    card = _card(world, customer_id, card_last4)
    if card["status"] in ("blocked", "replaced"):
        raise ToolFailure("invalid_state", f"The card ending {card_last4} is already {card['status']}.")
    _set_status(world, card_last4, "blocked", reason)
    return {"card_last4": card_last4, "status": "blocked", "reason": reason}


def replace_card(world: Any, customer_id: str, card_last4: str, reason: str, delivery: str = "standard") -> dict:
    card = _card(world, customer_id, card_last4)
    if card["status"] == "replaced":
        raise ToolFailure("invalid_state", f"The card ending {card_last4} has already been replaced.")
    fee_id, days = DELIVERY[delivery]
    fee = world.conn.execute("SELECT amount FROM fees WHERE fee_id = ?", (fee_id,)).fetchone()["amount"]
    new = world.unused_last4(f"{card_last4}:{customer_id}")
    order_id = world.next_id("replacements", "order_id", "RP")
    world.conn.execute("INSERT INTO cards VALUES (?,?,?,?,?,?,?,?,?,?)",
                       (new, customer_id, card["kind"], card["product"], card["network"], "active",
                        card["credit_limit"], card["balance"], card["expiry"], None))
    world.conn.execute("UPDATE cards SET status = 'replaced' WHERE last4 = ?", (card_last4,))
    world.conn.execute("INSERT INTO replacements VALUES (?,?,?,?,?,?,?,?)",
                       (order_id, customer_id, card_last4, new, reason, delivery, fee, days))
    world.conn.commit()
    return {"order_id": order_id, "old_card_last4": card_last4, "new_card_last4": new, "delivery": delivery,
            "fee": fee, "eta_business_days": days}


def list_transactions(world: Any, customer_id: str, card_last4: str, days: int = 30) -> dict[str, Any]:
    _card(world, customer_id, card_last4)
    since = (dt.date.fromisoformat(world.today) - dt.timedelta(days=days)).isoformat()
    rows = world.conn.execute("SELECT * FROM transactions WHERE last4 = ? AND date >= ? ORDER BY date DESC, txn_id "
                              "DESC", (card_last4, since)).fetchall()
    return {"card_last4": card_last4, "days": days, "transactions": [_txn_out(r) for r in rows]}


def get_transaction(world: Any, customer_id: str, txn_id: str) -> dict[str, Any]:
    return _txn_out(_txn(world, customer_id, txn_id))


def open_dispute(world: Any, customer_id: str, txn_id: str, reason: str) -> dict[str, Any]:
    t = _txn(world, customer_id, txn_id)
    dispute_id = world.next_id("disputes", "dispute_id", "DP")
    world.conn.execute("INSERT INTO disputes VALUES (?,?,?,?,?,?,?)",
                       (dispute_id, customer_id, t["txn_id"], reason, "open", world.today, t["amount"]))
    world.conn.commit()
    return {"dispute_id": dispute_id, "txn_id": t["txn_id"], "amount": t["amount"], "status": "open",
            "decision_within_days": 10}


def list_disputes(world: Any, customer_id: str) -> dict[str, Any]:
    _customer(world, customer_id)
    rows = world.conn.execute("SELECT dispute_id, txn_id, reason, status, opened, amount FROM disputes WHERE "
                              "customer_id = ? ORDER BY dispute_id", (customer_id,)).fetchall()
    open_ = [r for r in rows if r["status"] == "open"]
    return {"disputes": rows, "open_count": len(open_), "open_txn_ids": [r["txn_id"] for r in open_]}


def get_dispute(world: Any, customer_id: str, dispute_id: str) -> dict[str, Any]:
    _customer(world, customer_id)
    row = world.conn.execute("SELECT dispute_id, txn_id, reason, status, opened, amount FROM disputes WHERE "
                             "dispute_id = ? AND customer_id = ?", (dispute_id, customer_id)).fetchone()
    if row is None:
        raise ToolFailure("not_found", f"No dispute {show(dispute_id)} on this account.")
    return row


def set_travel_notice(world: Any, customer_id: str, country: str, depart_date: str, return_date: str) -> dict:
    _customer(world, customer_id)
    if return_date < depart_date:
        raise bad("Argument 'return_date' must not be before 'depart_date'.")
    notice_id = world.next_id("travel_notices", "notice_id", "TN")
    world.conn.execute("INSERT INTO travel_notices VALUES (?,?,?,?,?)",
                       (notice_id, customer_id, country.strip(), depart_date, return_date))
    world.conn.commit()
    return {"notice_id": notice_id, "country": country.strip(), "depart_date": depart_date,
            "return_date": return_date}


def request_limit_increase(world: Any, customer_id: str, card_last4: str, new_limit: int) -> dict[str, Any]:
    card = _card(world, customer_id, card_last4)
    if card["kind"] != "credit":
        raise ToolFailure("invalid_state", f"The card ending {card_last4} is a debit card and has no credit limit.")
    c = _customer(world, customer_id)
    approved = c["credit_score"] >= 660 and new_limit <= c["income"] * 0.25
    request_id = world.next_id("limit_requests", "request_id", "LR")
    world.conn.execute("INSERT INTO limit_requests VALUES (?,?,?,?,?,?)",
                       (request_id, customer_id, card_last4, card["credit_limit"], new_limit,
                        "approved" if approved else "declined"))
    if approved:
        world.conn.execute("UPDATE cards SET credit_limit = ? WHERE last4 = ?", (new_limit, card_last4))
    world.conn.commit()
    return {"request_id": request_id, "card_last4": card_last4, "approved": approved,
            "credit_limit": new_limit if approved else card["credit_limit"]}


def get_branch_info(world: Any, branch_id: str | None = None) -> dict[str, Any]:
    sql, params = "SELECT * FROM branches", ()
    if branch_id is not None:
        sql, params = sql + " WHERE branch_id = ?", (branch_id,)
    rows = world.conn.execute(sql + " ORDER BY branch_id", params).fetchall()
    if not rows:
        raise ToolFailure("not_found", f"No branch {show(branch_id)}.")
    for r in rows:
        r["hours"] = json.loads(r["hours"])
    return {"branches": rows}


def get_fee_schedule(world: Any) -> dict[str, Any]:
    return {"fees": world.conn.execute("SELECT * FROM fees ORDER BY fee_id").fetchall()}


def escalate_to_human(world: Any, reason: str, summary: str, customer_id: str | None = None) -> dict[str, Any]:
    if customer_id is not None:
        customer_id = _customer(world, customer_id)["customer_id"]
    if not summary.strip():
        raise bad("Argument 'summary' must not be blank.")
    ticket_id = world.next_id("escalations", "ticket_id", "ESC")
    world.conn.execute("INSERT INTO escalations VALUES (?,?,?,?)", (ticket_id, customer_id, reason, summary))
    world.conn.commit()
    return {"ticket_id": ticket_id, "reason": reason, "eta_minutes": 10 if reason == "fraud" else 30}


# ------------------------------------------------------------------------------------------------ specs

def _personal(name: str, description: str, properties: dict[str, Any], required: list[str], fn: Impl,
              mutates: bool = False) -> tuple[ToolSpec, Impl]:
    return ToolSpec(name, description, obj({"customer_id": CUSTOMER_ID, **properties}, ["customer_id", *required]),
                    mutates=mutates, personal=True), fn


_SPECS: list[tuple[ToolSpec, Impl]] = [
    (ToolSpec(
        "verify_identity",
        "Verify a customer's identity from their date of birth and the zip code on the account. Returns "
        "verified=true with customer_id and first_name on a match, otherwise verified=false. Every tool about a "
        "customer's own cards, transactions, disputes or travel needs the verified customer_id.",
        obj({"dob": string("Date of birth 'YYYY-MM-DD'.", format="date"),
             "zip": string("Five-digit zip code on the account.", pattern=r"^[0-9]{5}$")}, ["dob", "zip"])),
     verify_identity),
    _personal("list_cards", "List the customer's cards (not the replaced ones): card_last4, kind (debit or credit), "
              "product, network, status (active, frozen or blocked), credit_limit (credit cards) and expiry.",
              {}, [], list_cards),
    _personal("get_card", "One of the customer's cards by its last four digits: kind, product, status, expiry, and "
              "for a credit card credit_limit, balance and available_credit (for a debit card available_balance).",
              {"card_last4": LAST4}, ["card_last4"], get_card),
    _personal("freeze_card", "Temporarily freeze an active card: purchases are declined until it is unfrozen. Fails "
              "with invalid_state unless the card is active.", {"card_last4": LAST4}, ["card_last4"], freeze_card,
              mutates=True),
    _personal("unfreeze_card", "Unfreeze a frozen card so it works again. Fails with invalid_state unless the card "
              "is frozen.", {"card_last4": LAST4}, ["card_last4"], unfreeze_card, mutates=True),
    _personal("report_lost_card", "Block a lost or stolen card permanently (it cannot be unfrozen). Fails with "
              "invalid_state if the card is already blocked or replaced.",
              {"card_last4": LAST4, "reason": string("What happened to the card.", enum=["lost", "stolen"])},
              ["card_last4", "reason"], report_lost_card, mutates=True),
    _personal("replace_card", "Order a replacement for a card (lost, stolen or damaged). The new card has new last "
              "four digits; the old one stops working. Returns order_id, new_card_last4, the fee in USD and the "
              "delivery time in business days (standard: 7, express: 2).",
              {"card_last4": LAST4, "reason": string("Why the card is replaced.", enum=["lost", "stolen", "damaged"]),
               "delivery": string("Delivery speed.", enum=list(DELIVERY), default="standard")},
              ["card_last4", "reason"], replace_card, mutates=True),
    _personal("list_transactions", "Transactions of one card over the last `days` days, newest first: txn_id, date, "
              "merchant, amount in USD and status (posted or pending).",
              {"card_last4": LAST4, "days": integer("How many days back (1-120).", minimum=1, maximum=120, default=30)},
              ["card_last4"], list_transactions),
    _personal("get_transaction", "One transaction of the customer by id: card_last4, date, merchant, amount and "
              "status (posted or pending).", {"txn_id": TXN_ID}, ["txn_id"], get_transaction),
    _personal("open_dispute", "Open a dispute on one of the customer's transactions. Returns the dispute_id, the "
              "amount and the number of days until a decision.",
              {"txn_id": TXN_ID, "reason": string("Why the transaction is disputed.", enum=list(DISPUTE_REASONS))},
              ["txn_id", "reason"], open_dispute, mutates=True),
    _personal("list_disputes", "The customer's disputes (open and resolved), with open_count and the txn ids of the "
              "open ones (open_txn_ids).", {}, [], list_disputes),
    _personal("get_dispute", "One of the customer's disputes by id: transaction, reason, status and date opened.",
              {"dispute_id": string("Dispute id, e.g. 'DP1042'.", minLength=1, maxLength=20)}, ["dispute_id"],
              get_dispute),
    _personal("set_travel_notice", "Tell the bank the customer travels abroad, so card payments in that country "
              "are not declined as suspicious. Covers all the customer's cards. Returns the notice_id.",
              {"country": string("Destination country, e.g. 'Japan'.", minLength=2, maxLength=60),
               "depart_date": DATE, "return_date": DATE},
              ["country", "depart_date", "return_date"], set_travel_notice, mutates=True),
    _personal("request_limit_increase", "Request a higher credit limit on a credit card. The bank decides at once "
              "from the customer's record: returns request_id, approved and the resulting credit_limit. Fails with "
              "invalid_state for a debit card.",
              {"card_last4": LAST4, "new_limit": integer("Requested credit limit in whole USD.", minimum=500,
                                                         maximum=100_000)},
              ["card_last4", "new_limit"], request_limit_increase, mutates=True),
    (ToolSpec(
        "get_branch_info",
        "Branches with name, address, phone and weekly opening hours (per weekday an [open, close] pair in 24-hour "
        "'HH:MM', or null when closed). Omit branch_id to list all branches.",
        obj({"branch_id": string("Branch id: 'BR1', 'BR2' or 'BR3'.")})), get_branch_info),
    (ToolSpec(
        "get_fee_schedule",
        "The card fee schedule: fee_id, name, amount, unit ('usd' or 'percent') and a note.", obj({})),
     get_fee_schedule),
    (ToolSpec(
        "escalate_to_human",
        "Hand the conversation to a person: suspected fraud, complaints, an explicit request for a person, or "
        "anything the assistant cannot handle. Include a short summary. Returns a ticket id and the expected wait.",
        obj({"reason": string("Why the conversation is escalated.",
                              enum=["fraud", "complaint", "request_human", "other"]),
             "summary": string("One or two sentences summarising the issue.", minLength=1, maxLength=500),
             "customer_id": string("Customer id, if the customer has been verified.", maxLength=20)},
            ["reason", "summary"]), mutates=True), escalate_to_human),
]

TOOLBOX = Toolbox(_SPECS)
TOOLS: dict[str, ToolSpec] = TOOLBOX.specs
