"""The example MAS's own verifier: `agentdistill verify RUN --verifier examples.openai_mas.checks:verify`.

What its owner knows and our judge cannot: which route a message needs, which tool call answers it, and that a
reply repeats only facts the tools returned. Each call it can check gets a verdict and, when wrong, the output
it should have been (y*), which `agentdistill datasets` trains on instead of the recorded one. The MAS itself
(mas.py) imports nothing of agentdistill; only this file does, for the Verdict it returns.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agentdistill.judge.user_verifier import CallVerdict, Verdict

ORDER_WORDS = ("order", "delivery", "delivered", "refund", "parcel")
ORDER_ID = re.compile(r"\bA\d{3}\b")


def _last(call: dict[str, Any], role: str) -> dict[str, Any] | None:
    return next((m for m in reversed(call["messages"]) if m.get("role") == role), None)


def _customer(call: dict[str, Any]) -> str:
    user = next((m for m in call["messages"] if m.get("role") == "user"), None)
    text = str((user or {}).get("content") or "")
    try:
        return str(json.loads(text).get("customer") or text)  # the explainer gets {"customer", "notes"}
    except (json.JSONDecodeError, AttributeError):
        return text


def route(message: str) -> str:
    return "orders" if any(w in message.lower() for w in ORDER_WORDS) else "chat"


def check_router(call: dict[str, Any]) -> CallVerdict:
    want, got = route(_customer(call)), (call.get("completion") or "").strip().lower().strip(".")
    if got == want:
        return CallVerdict(True)
    return CallVerdict(False, f"routed {got[:40]!r}, expected {want!r}", {"completion": want})


def check_order_agent(call: dict[str, Any]) -> CallVerdict | None:
    message = _customer(call)
    order = ORDER_ID.search(message)
    if order is None:
        return None  # nothing this verifier can say about it
    last = call["messages"][-1]
    if last.get("role") == "user":  # first step: look the order up (or start the refund) before answering
        tool = "refund_order" if "refund" in message.lower() else "lookup_order"
        want = {"order_id": order.group(0)}
        got = [(tc["function"]["name"], _json(tc["function"].get("arguments") or "{}"))
               for tc in call.get("tool_calls") or []]
        if got == [(tool, want)]:
            return CallVerdict(True)
        fix = [{"id": "call_0", "type": "function", "function": {"name": tool, "arguments": json.dumps(want)}}]
        return CallVerdict(False, f"should call {tool} for {order.group(0)} first", {"tool_calls": fix})
    if last.get("role") == "tool":  # after the tool result: a factual summary, no further call
        facts = _json(last.get("content")) or {}
        summary = "Order facts: " + json.dumps(facts, sort_keys=True)
        text = call.get("completion") or ""
        if not call.get("tool_calls") and order.group(0) in text:
            return CallVerdict(True)
        return CallVerdict(False, "should summarise the tool result", {"completion": summary})
    return None


def check_explainer(call: dict[str, Any]) -> CallVerdict:
    text = (call.get("completion") or "").strip()
    customer = _customer(call)
    order = ORDER_ID.search(customer)
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if s.strip()]
    if text and len(sentences) <= 2 and (order is None or order.group(0) in text) and text.isprintable():
        return CallVerdict(True)
    reply = (f"Thanks! I have checked order {order.group(0)} for you." if order
             else "Thanks for your message! We are open 9:00-18:00, Monday to Saturday.")
    return CallVerdict(False, "reply is empty, too long, garbled or misses the order number", {"completion": reply})


def _json(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        return None


CHECKS = {"router": check_router, "order_agent": check_order_agent, "explainer": check_explainer}


def verify(episode: dict[str, Any]) -> Verdict:
    """The episode passes when every call this verifier can check is right."""
    calls: dict[int, CallVerdict] = {}
    for i, call in enumerate(episode["calls"]):
        check = CHECKS.get(call["agent"])
        verdict = check(call) if check else None
        if verdict is not None:
            calls[i] = verdict
    wrong = sum(not v.correct for v in calls.values())
    return Verdict(wrong == 0, f"{wrong} of {len(calls)} checked calls wrong", calls)
