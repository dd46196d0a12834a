"""Rule checks that most customer-service policies share, as factories over a domain's names: identity before
personal tools, no other customer's data in a reply, escalation of what needs a person, polite refusal of
off-topic requests, reference numbers stated, forbidden wording, promises only when negated.

Each factory returns a `check(ctx) -> reason | None` for a `domain/rules.py` `Rule`; the domain names its tools,
intents and patterns, so nothing here knows a business.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from typing import Any

from agentdistill.domain.rules import Action, RuleContext

Check = Callable[[RuleContext], str | None]


def verified_id(history: list[Action], verify_tool: str, id_key: str = "customer_id") -> str | None:
    """The id of the last successful identity verification in `history`, if any."""
    cid = None
    for a in history:
        if a.name == verify_tool and a.ok and a.payload.get("verified"):
            cid = a.payload.get(id_key)
    return cid


def identity_first(personal_tools: Iterable[str], verify_tool: str, id_key: str = "customer_id") -> Check:
    """A personal tool runs only after a verification, and only for the id that verification returned."""
    personal = frozenset(personal_tools)

    def check(ctx: RuleContext) -> str | None:
        a = ctx.action
        if a is None or a.name not in personal:
            return None
        cid = verified_id(ctx.history, verify_tool, id_key)
        if cid is None:
            return f"{a.name} called before the customer's identity was verified"
        if a.arguments.get(id_key) != cid:
            return f"{a.name} used {id_key} {a.arguments.get(id_key)!r}, not the verified customer"
        return None
    return check


@cache
def _owner_index(rows: tuple[tuple[str, ...], ...]) -> tuple[re.Pattern, dict[str, str]]:
    """One alternation over every customer's identifying strings (on word boundaries), longest first."""
    owner: dict[str, str] = {}
    for cid, *strings in rows:
        for s in strings:
            owner.setdefault(s.lower(), cid)
    pattern = re.compile("|".join(rf"(?<!\w){re.escape(s)}(?!\w)" for s in sorted(owner, key=len, reverse=True)),
                         re.I)
    return pattern, owner


def no_other_customers_data(rows: Callable[[Any], tuple[tuple[str, ...], ...]], verify_tool: str,
                            id_key: str = "customer_id") -> Check:
    """A reply names no identifying string (`rows(world)`: (customer id, *strings) per customer) of a customer
    other than the verified one."""
    def check(ctx: RuleContext) -> str | None:
        if not ctx.reply:
            return None
        table = rows(ctx.world)
        pattern, owner = _owner_index(table)
        me = verified_id(ctx.history + ctx.turn_actions, verify_tool, id_key)
        mine = {s.lower() for cid, *strs in table if cid == me for s in strs}
        for m in pattern.finditer(ctx.reply):
            text = m.group(0).lower()
            if text not in mine and owner.get(text) != me:
                return "reply reveals another customer's personal data"
        return None
    return check


def reply_must_not_match(pattern: re.Pattern, reason: str) -> Check:
    def check(ctx: RuleContext) -> str | None:
        return reason if ctx.reply and pattern.search(ctx.reply) else None
    return check


def no_unnegated(pattern: re.Pattern, negation: re.Pattern, reason: str, window: int = 30) -> Check:
    """A reply makes no promise matching `pattern` unless a negation precedes it within `window` characters."""
    def check(ctx: RuleContext) -> str | None:
        for m in pattern.finditer(ctx.reply or ""):
            if not negation.search(ctx.reply[max(0, m.start() - window):m.start()]):
                return reason
        return None
    return check


def escalated(intent_reasons: Mapping[str, str], tool: str) -> Check:
    """Each intent of the turn that needs a person opened a ticket with its reason."""
    def check(ctx: RuleContext) -> str | None:
        for intent, reason in intent_reasons.items():
            if intent in ctx.intents and not any(
                a.name == tool and a.arguments.get("reason") == reason for a in ctx.turn_actions
            ):
                return f"{intent.replace('_', ' ')} was not escalated with reason {reason!r}"
        return None
    return check


def off_topic_refused(intent: str, refusal: re.Pattern) -> Check:
    """An off-topic request alone gets no tool call and a polite refusal saying what we help with."""
    def check(ctx: RuleContext) -> str | None:
        if intent not in ctx.intents or len(ctx.intents) > 1:
            return None
        if ctx.turn_actions:
            return "tools were called for an off-topic request"
        if ctx.reply is not None and not refusal.search(ctx.reply):
            return "off-topic request was not politely refused with what we can help with"
        return None
    return check


def references_stated(reference_keys: Mapping[str, str]) -> Check:
    """After a successful call of a tool in `reference_keys` (tool -> result key), the reply states that key."""
    def check(ctx: RuleContext) -> str | None:
        if ctx.reply is None:
            return None
        for a in ctx.turn_actions:
            key = reference_keys.get(a.name)
            if key and a.ok and str(a.payload.get(key)) not in ctx.reply:
                return f"reply does not state the reference {a.payload.get(key)} of {a.name}"
        return None
    return check
