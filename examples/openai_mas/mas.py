"""A small multi-agent system written only against the OpenAI Python client: what `agentdistill proxy` records.

Three agents share one endpoint and differ by system prompt: a router picks a route for each customer message,
an order agent answers order questions by calling tools (run here, in this process), and an explainer writes
the reply the customer reads. Nothing here knows about agentdistill: point --base-url at the proxy instead of
the model server and every call is recorded. --headers adds X-Agent-Role and X-Episode-Id to each call (the
proxy then needs neither a roles file nor an idle gap); --stream streams every answer.

    python examples/openai_mas/mas.py --base-url http://127.0.0.1:8100/v1 --conversations 3 --headers
"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from typing import Any

from openai import OpenAI

ROUTER = ("You are the router of Bike Barn's customer assistant. Read the customer's message and answer with one "
          "word: 'orders' if it is about an order, a delivery or a refund, else 'chat'.")
ORDER_AGENT = ("You are Bike Barn's order agent. Look orders up with the tools before you say anything about them; "
               "never guess a status. When you know enough, answer with a short factual summary for the explainer.")
EXPLAINER = ("You are Bike Barn's explainer. Write the reply the customer reads: friendly, two sentences at most, "
             "stating exact order numbers and dates from the notes you are given. Opening hours: 9:00-18:00, "
             "Monday to Saturday.")

TOOLS = [
    {"type": "function", "function": {
        "name": "lookup_order", "description": "Status and delivery date of an order.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}},
    {"type": "function", "function": {
        "name": "refund_order", "description": "Start a refund for a delivered order.",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"},
                                                        "reason": {"type": "string"}}, "required": ["order_id"]}}},
]
ORDERS = {"A100": {"status": "shipped", "delivery": "2025-06-03"}, "A101": {"status": "delivered",
                                                                          "delivery": "2025-05-28"}}
MAX_TOOL_STEPS = 4


def run_tool(name: str, arguments: str) -> dict[str, Any]:
    try:
        args = json.loads(arguments or "{}")
    except json.JSONDecodeError:
        return {"error": "arguments are not valid JSON"}
    order = ORDERS.get(str(args.get("order_id")))
    if order is None:
        return {"error": f"no order {args.get('order_id')!r}"}
    if name == "lookup_order":
        return {"order_id": args["order_id"], **order}
    if name == "refund_order":
        return {"order_id": args["order_id"], "refund": "started"}
    return {"error": f"unknown tool {name!r}"}


class Agents:
    def __init__(self, client: OpenAI, model: str, stream: bool, headers: bool):
        self.client, self.model, self.stream, self.headers = client, model, stream, headers
        self.episode = ""

    def ask(self, role: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None
            ) -> dict[str, Any]:
        """One agent call; returns the assistant message as a dict (content, tool_calls)."""
        extra = {"X-Agent-Role": role, "X-Episode-Id": self.episode} if self.headers else None
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": 0.0,
                                  "max_tokens": 256, "extra_headers": extra}
        if tools:
            kwargs["tools"] = tools
        if not self.stream:
            msg = self.client.chat.completions.create(**kwargs).choices[0].message
            calls = [{"id": tc.id, "type": "function",
                      "function": {"name": tc.function.name, "arguments": tc.function.arguments}}
                     for tc in msg.tool_calls or []]
            return {"role": "assistant", "content": msg.content or "", **({"tool_calls": calls} if calls else {})}
        text, calls = [], {}
        for chunk in self.client.chat.completions.create(stream=True, **kwargs):
            if not chunk.choices:
                continue
            delta = chunk.choices[0].delta
            text.append(delta.content or "")
            for tc in delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"id": None, "type": "function",
                                                   "function": {"name": "", "arguments": ""}})
                slot["id"] = slot["id"] or tc.id
                if tc.function is not None:
                    slot["function"]["name"] += tc.function.name or ""
                    slot["function"]["arguments"] += tc.function.arguments or ""
        out: dict[str, Any] = {"role": "assistant", "content": "".join(text)}
        if calls:
            out["tool_calls"] = [calls[i] for i in sorted(calls)]
        return out

    def turn(self, utterance: str) -> str:
        route = self.ask("router", [{"role": "system", "content": ROUTER}, {"role": "user", "content": utterance}])
        notes = ""
        if "order" in (route["content"] or "").lower():
            messages: list[dict[str, Any]] = [{"role": "system", "content": ORDER_AGENT},
                                              {"role": "user", "content": utterance}]
            for _ in range(MAX_TOOL_STEPS):
                answer = self.ask("order_agent", messages, TOOLS)
                messages.append(answer)
                if not answer.get("tool_calls"):
                    break
                for tc in answer["tool_calls"]:
                    result = run_tool(tc["function"]["name"], tc["function"]["arguments"])
                    messages.append({"role": "tool", "tool_call_id": tc["id"], "content": json.dumps(result)})
            notes = messages[-1].get("content") or ""
        reply = self.ask("explainer", [{"role": "system", "content": EXPLAINER},
                                       {"role": "user", "content": json.dumps({"customer": utterance,
                                                                               "notes": notes})}])
        return reply["content"] or ""


CONVERSATIONS = [
    ["Where is my order A100?", "Thanks! When are you open on Saturday?"],
    ["My order A101 arrived broken, I want a refund.", "Great, thank you."],
    ["Do you sell kids' bikes?"],
    # from here on: conversations a first recording (--conversations 3) does not include, for evaluation (--start 3)
    ["Has my order A101 been delivered yet?"],
    ["Are you open on Sunday?", "And where is order A100 now?"],
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL", "http://127.0.0.1:8100/v1"))
    ap.add_argument("--model", default=None, help="default: the first model the endpoint lists")
    ap.add_argument("--api-key", default="EMPTY")
    ap.add_argument("--conversations", type=int, default=len(CONVERSATIONS))
    ap.add_argument("--start", type=int, default=0, help="index of the first conversation (3: ones a recording of "
                                                          "the first 3 does not include)")
    ap.add_argument("--headers", action="store_true", help="send X-Agent-Role and X-Episode-Id")
    ap.add_argument("--stream", action="store_true")
    args = ap.parse_args()
    client = OpenAI(base_url=args.base_url, api_key=args.api_key, max_retries=0, timeout=60)
    model = args.model or client.models.list().data[0].id
    agents = Agents(client, model, args.stream, args.headers)
    for i in range(args.conversations):
        agents.episode = f"conv-{uuid.uuid4().hex[:8]}"
        for utterance in CONVERSATIONS[(args.start + i) % len(CONVERSATIONS)]:
            print(json.dumps({"conversation": i, "user": utterance, "reply": agents.turn(utterance)}), flush=True)


if __name__ == "__main__":
    main()
