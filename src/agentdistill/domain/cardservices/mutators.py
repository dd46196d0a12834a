"""The card desk's hard-negative mutators (data/mutators.py machinery): one per business rule and per tool-argument
error type, each turning a correct call into a plausible but wrong one. The DPO builder keeps an output only if
the judge rejects it, so a mutator that happens to produce an acceptable output costs a dropped pair."""

from __future__ import annotations

import json
import re

from agentdistill.data.mutators import MutationInput, Mutator, Output, registrar
from agentdistill.domain import mutatorkit
from agentdistill.domain.mutatorkit import drop_guard, ok_results, one_call, reply_text, with_args

from . import faults
from .policy import POLICY_PARAMS, REFERENCE_TOOLS

MUTATORS: dict[str, Mutator] = {}
mutator = registrar(MUTATORS)


def _without_guard(m: MutationInput, head: str) -> Output | None:
    lines = m.text.split("\n")
    kept = drop_guard(lines, head)
    return ("\n".join(kept), []) if kept != lines else None


def _profile_customer(m: MutationInput) -> str | None:
    return ((m.episode or {}).get("scenario", {}).get("profile") or {}).get("customer_id")


# ----------------------------------------------------------------------------------------- planner

@mutator("r1_skip_identity", "planner", "R1", "act on the customer's data without verifying (id looked up)")
def _r1(m: MutationInput) -> Output | None:
    found = re.search(r'v = verify_identity\(dob="([^"]*)"', m.text)
    if not found:
        return None
    rows = m.world.query("SELECT customer_id FROM customers WHERE dob = ?", (found.group(1),))
    cid = rows[0]["customer_id"] if rows else _profile_customer(m)
    if not cid:
        return None
    lines = [ln for ln in m.text.split("\n") if not ln.startswith("v = verify_identity(")]
    return "\n".join(drop_guard(lines, 'if not v["verified"]:')).replace('v["customer_id"]', json.dumps(cid)), []


@mutator("r2_other_card", "planner", "R2", "act on another of the customer's cards than the one named")
def _r2(m: MutationInput) -> Output | None:
    found = re.search(r'card_last4="(\d{4})"', m.text)
    if not found:
        return None
    owner = m.world.query("SELECT customer_id FROM cards WHERE last4 = ?", (found.group(1),))
    others = m.world.query("SELECT last4 FROM cards WHERE customer_id = ? AND last4 != ? ORDER BY last4",
                           (owner[0]["customer_id"], found.group(1))) if owner else []
    if not others:
        return None
    return m.text.replace(f'card_last4="{found.group(1)}"', f'card_last4="{m.rng.choice(others)["last4"]}"'), []


@mutator("r3_no_window_check", "planner", "R3", "dispute without checking the transaction's date")
def _r3(m: MutationInput) -> Output | None:
    return _without_guard(m, 'if tx["date"] <')


@mutator("r4_no_posted_check", "planner", "R4", "dispute without checking that the transaction has posted")
def _r4(m: MutationInput) -> Output | None:
    return _without_guard(m, 'if tx["status"] != "posted":')


@mutator("r5_no_dispute_limit", "planner", "R5", "dispute without checking the open disputes")
def _r5(m: MutationInput) -> Output | None:
    return _without_guard(m, 'if ds["open_count"] >=')


@mutator("r6_no_duplicate_check", "planner", "R6", "dispute without checking for an open dispute on it")
def _r6(m: MutationInput) -> Output | None:
    return _without_guard(m, 'if "TX')


@mutator("r7_replace_unblocked", "planner", "R7", "order a lost card's replacement without blocking it")
def _r7(m: MutationInput) -> Output | None:
    if "replace_card(" not in m.text or "report_lost_card(" not in m.text:
        return None
    lines = [ln for ln in m.text.split("\n") if "report_lost_card(" not in ln]
    lines = [ln for ln in lines if ln != 'if c["status"] in ["active", "frozen"]:']
    return "\n".join(lines).replace('"blocked", ', ""), []


@mutator("r8_no_status_check", "planner", "R8", "request a limit increase without checking the card is active")
def _r8(m: MutationInput) -> Output | None:
    if "request_limit_increase(" not in m.text:
        return None
    return _without_guard(m, 'if c["status"] != "active":')


@mutator("r9_over_cap", "planner", "R9", "request a credit limit above the cap")
def _r9(m: MutationInput) -> Output | None:
    found = re.search(r"new_limit=(\d+)", m.text)
    if not found:
        return None
    over = POLICY_PARAMS[m.policy_version]["max_credit_limit"] + m.rng.choice([1000, 5000, 10000])
    return m.text.replace(found.group(1), str(over)), []


@mutator("r10_long_trip", "planner", "R10", "a travel notice longer than allowed")
def _r10(m: MutationInput) -> Output | None:
    found = re.search(r'depart_date="([\d-]+)", return_date="([\d-]+)"', m.text)
    if not found:
        return None
    days = POLICY_PARAMS[m.policy_version]["max_travel_days"] + m.rng.choice([1, 10, 30])
    return m.text.replace(f'return_date="{found.group(2)}"',
                          f'return_date="{mutatorkit.shift(found.group(1), days=days)}"'), []


@mutator("r14_tools_for_off_topic", "planner", "R14", "answer an off-topic request with a tool call")
def _r14(m: MutationInput) -> Output | None:
    if m.text.strip() != 'reply(topics=["off_topic"])':
        return None
    return 'fs = get_fee_schedule()\nreply(topics=["fees"])', []


@mutator("r15_no_escalation", "planner", "R15", "answer fraud, a complaint or a request for a person without a ticket")
def _r15(m: MutationInput) -> Output | None:
    if "escalate_to_human(" not in m.text:
        return None
    lines = [ln for ln in m.text.split("\n") if "escalate_to_human(" not in ln]
    return "\n".join(lines).replace('"escalated"', '"greeting"'), []


@mutator("r19_express_damaged", "planner", "R19", "express delivery for a damaged card (v2)")
def _r19(m: MutationInput) -> Output | None:
    if POLICY_PARAMS[m.policy_version]["express_for_damaged"] or 'reason="damaged")' not in m.text:
        return None
    return m.text.replace('reason="damaged")', 'reason="damaged", delivery="express")'), []


# --------------------------------------------------------------------------------------- explainer

@mutator("r11_no_fee", "explainer", "R11", "order a replacement without stating its fee and delivery time")
def _r11(m: MutationInput) -> Output | None:
    if "replace_card" not in ok_results(m):
        return None
    out = re.sub(r" Fee: \$[\d,.]+, \w+ delivery in \d+ business days\.", "", m.text)
    return (out, []) if out != m.text else None


@mutator("r12_refund_promise", "explainer", "R12", "promise a refund or a waived fee")
def _r12(m: MutationInput) -> Output | None:
    if not reply_text(m):
        return None
    return m.text + m.rng.choice(["\n\nGood news as well: we'll refund the charge right away.",
                                  " I can also waive the fee for you this time."]), []


@mutator("r13_other_customer_data", "explainer", "R13", "reveal another customer's name and email")
def _r13(m: MutationInput) -> Output | None:
    if not reply_text(m):
        return None
    others = m.world.query("SELECT first_name, last_name, email FROM customers WHERE customer_id != ? ORDER BY "
                           "customer_id", (_profile_customer(m) or "",))
    o = m.rng.choice(others)
    return m.text + f" By the way, {o['first_name']} {o['last_name']} ({o['email']}) asked the same thing.", []


@mutator("r16_ask_sensitive", "explainer", "R16", "ask for the PIN or the CVV")
def _r16(m: MutationInput) -> Output | None:
    if not reply_text(m):
        return None
    return m.text + " " + m.rng.choice(["To confirm, please send me your card's PIN.",
                                        "Could you also share the CVV on the back of the card?"]), []


@mutator("r17_internal_details", "explainer", "R17", "mention the internal customer id")
def _r17(m: MutationInput) -> Output | None:
    if not reply_text(m):
        return None
    cid = (m.inp.get("session") or {}).get("customer_id") or _profile_customer(m) or "CU1001"
    return m.text + f" (Internal note: customer record {cid}.)", []


@mutator("r18_omit_reference", "explainer", "R18", "confirm a dispute, notice, request, order or ticket without its id")
def _r18(m: MutationInput) -> Output | None:
    refs = [str(r.get(key)) for name, r in ok_results(m).items() for key in [REFERENCE_TOOLS.get(name)] if key
            and r.get(key) and str(r.get(key)) in m.text]
    if not refs:
        return None
    text = m.text
    for ref in refs:
        text = re.sub(rf"\s*(?:dispute |order |request |ticket |notice |Travel notice )?{re.escape(ref)}", " it", text)
    return text.replace(" it it", " it"), []


# ---------------------------------------------------------------------------------------- executor

def _replace_arg(m: MutationInput, key: str, values: list) -> Output | None:
    got = one_call(m)
    if not got or key not in got[1]:
        return None
    name, args, cid = got
    choices = [v for v in values if v != args[key]]
    if not choices:
        return None
    args[key] = m.rng.choice(choices)
    return with_args(name, args, cid)


@mutator("exec_wrong_card", "executor", "args", "another existing card's last four digits")
def _e_card(m: MutationInput) -> Output | None:
    return _replace_arg(m, "card_last4", [r["last4"] for r in m.world.query("SELECT last4 FROM cards ORDER BY 1")])


@mutator("exec_wrong_transaction", "executor", "args", "another transaction id")
def _e_txn(m: MutationInput) -> Output | None:
    got = one_call(m)
    if not got or not isinstance(got[1].get("txn_id"), str):
        return None
    return _replace_arg(m, "txn_id", [faults.mutate_value(got[1]["txn_id"], m.rng)])


@mutator("exec_wrong_date", "executor", "args", "a travel date moved by days")
def _e_date(m: MutationInput) -> Output | None:
    return mutatorkit.shift_first(m, ("depart_date", "return_date", "dob"), [1, -1, 7], "days")


@mutator("exec_wrong_amount", "executor", "args", "a different requested credit limit")
def _e_amount(m: MutationInput) -> Output | None:
    got = one_call(m)
    if not got or not isinstance(got[1].get("new_limit"), int):
        return None
    return _replace_arg(m, "new_limit", [got[1]["new_limit"] + d for d in (-1000, 500, 1000, 5000)])


@mutator("exec_wrong_reason", "executor", "args", "a different dispute or replacement reason")
def _e_reason(m: MutationInput) -> Output | None:
    got = one_call(m)
    if not got or got[0] not in ("open_dispute", "replace_card", "report_lost_card"):
        return None
    reasons = {"open_dispute": ["unrecognised", "duplicate", "not_received", "wrong_amount"],
               "replace_card": ["lost", "stolen", "damaged"], "report_lost_card": ["lost", "stolen"]}[got[0]]
    return _replace_arg(m, "reason", reasons)


@mutator("exec_wrong_customer_id", "executor", "args", "another customer's id")
def _e_customer(m: MutationInput) -> Output | None:
    got = one_call(m)
    if not got or not isinstance(got[1].get("customer_id"), str):
        return None
    return _replace_arg(m, "customer_id", [r["customer_id"] for r in m.world.query(
        "SELECT customer_id FROM customers ORDER BY 1 LIMIT 40")])


mutator("exec_missing_argument", "executor", "args", "a required argument left out")(mutatorkit.missing_argument)


# --------------------------------------------------------------------------- understander, evaluator

mutator("understander_wrong_entity", "understander", "understanding", "one entity value changed")(
    mutatorkit.from_fault(faults.inject, "understander", "wrong_entity"))
mutator("understander_wrong_intent", "understander", "understanding", "a related but wrong intent")(
    mutatorkit.from_fault(faults.inject, "understander", "wrong_intent"))
mutator("evaluator_flipped_verdict", "evaluator", "verdict", "approve a bad plan or reject a good one")(
    mutatorkit.from_fault(faults.inject, "evaluator", "wrong_verdict"))
