"""Chat-message helpers shared by the SFT and DPO builders: one canonical assistant message per output.

Training targets must be byte-stable (so duplicates can be found and builds are reproducible), hence
tool-call arguments are always re-serialised as JSON with sorted keys.
"""

from __future__ import annotations

import json
from typing import Any

from agentdistill.mas.prompts import ROLES
from agentdistill.types import ToolCall


def canonical_tool_call(raw: dict[str, Any], index: int = 0) -> dict[str, Any]:
    """An OpenAI tool call whose `arguments` is a JSON string with sorted keys."""
    call = ToolCall.from_openai(raw)
    return {"id": call.id or f"call_{index}", "type": "function",
            "function": {"name": call.name, "arguments": json.dumps(call.arguments, sort_keys=True)}}


def assistant_message(agent: str, completion: str | None, tool_calls: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The assistant turn a role should produce: tool calls for an executor step, else the text. A role that is
    not one of ours (a captured MAS, capture/) keeps the tool calls it made."""
    if tool_calls and (agent == "executor" or agent not in ROLES):
        return {"role": "assistant", "content": "",
                "tool_calls": [canonical_tool_call(tc, i) for i, tc in enumerate(tool_calls)]}
    return {"role": "assistant", "content": completion or ""}


def canonical_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Input messages with any earlier tool calls re-serialised the canonical way."""
    out = []
    for m in messages:
        if m.get("tool_calls"):
            m = {**m, "tool_calls": [canonical_tool_call(tc, i) for i, tc in enumerate(m["tool_calls"])]}
        out.append(m)
    return out


def restyle_prompt(messages: list[dict[str, Any]], style: str, domain: Any,
                   policy_version: str) -> list[dict[str, Any]]:
    """The same call as the `style` runtime sends it (see mas/prompts.py): the role header as system prompt for
    compact and focused, and the role's own input fields for focused; outputs are untouched."""
    from agentdistill.mas.prompts import compact_prompt, focused_input, role_of

    if style == "full" or not messages or messages[0].get("role") != "system":
        return messages
    role = role_of(messages[0].get("content") or "")
    if role is None:
        return messages
    rest = messages[1:]
    if style == "focused":
        rest = [{**m, "content": focused_input(role, m["content"])} if m.get("role") == "user" and m.get("content")
                else m for m in rest]
    return [{**messages[0], "content": compact_prompt(role, domain, policy_version)}, *rest]


def teacher_message(call: dict[str, Any]) -> dict[str, Any]:
    return assistant_message(call["agent"], call.get("completion"), call.get("tool_calls"))


def refined_message(call: dict[str, Any]) -> dict[str, Any]:
    refined = call.get("refined") or {}
    return assistant_message(call["agent"], refined.get("completion"), refined.get("tool_calls"))


def record_key(*parts: Any) -> str:
    """Exact-duplicate key of a record's content."""
    return json.dumps(parts, sort_keys=True, ensure_ascii=False)
