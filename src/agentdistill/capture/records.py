"""Call and episode records in our trace format (shared/DESIGN.md), built from OpenAI requests and answers.

A captured episode has no scenario of ours to be judged against, so its scenario is a stub carrying only what
readers index by; `source: "capture"` tells verify to leave scoring to the user's verifier. Turns are what
the MAS's own conversation shows: an `X-Turn` header (or log metadata) when given, else a new turn each time
the episode's first role is called with a user message last (its tool loop ends on tool results instead).
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

SOURCE = "capture"
_NOT_SAMPLING = {"messages", "tools", "stream", "model"}


def text_of(content: Any) -> Any:
    """A text-only list of content parts as one string (what chat templates and our compaction expect);
    anything else (images, audio) is kept as sent."""
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "".join(str(p.get("text") or "") for p in content)
    return content


def normalize_messages(messages: list[Any]) -> list[dict[str, Any]]:
    out = []
    for m in messages:
        m = dict(m) if isinstance(m, dict) else {"role": "user", "content": str(m)}
        if "content" in m:
            m["content"] = text_of(m["content"])
        if m.get("role") in ("system", "developer") and not isinstance(m.get("content"), str):
            m["content"] = "" if m.get("content") is None else json.dumps(m["content"])
        out.append(m)
    return out


def system_prompt(messages: list[dict[str, Any]]) -> str:
    """The text that identifies an agent: its leading system (or developer) message, "" when it has none."""
    if messages and messages[0].get("role") in ("system", "developer"):
        return str(text_of(messages[0].get("content")) or "")
    return ""


def call_record(request: dict[str, Any], response: dict[str, Any], *, agent: str, role_source: str,
                latency_s: float, started_at: float | None, ttft_s: float | None = None, stream: bool = False,
                turn: int | None = None, interrupted: bool = False) -> dict[str, Any]:
    """One agent call: what was asked (messages, tools, sampling) and the first choice's answer."""
    choices = response.get("choices") or [{}]
    message = choices[0].get("message") or {}
    usage = response.get("usage") or {}
    record: dict[str, Any] = {
        "agent": agent, "role_source": role_source, "turn": turn,
        "messages": normalize_messages(request.get("messages") or []),
        "completion": text_of(message.get("content")) or "",
        "latency_s": round(latency_s, 6), "tokens_in": int(usage.get("prompt_tokens") or 0),
        "tokens_out": int(usage.get("completion_tokens") or 0), "malformed": None, "injected": None,
        "model": response.get("model") or request.get("model"), "finish_reason": choices[0].get("finish_reason"),
        "params": {k: v for k, v in request.items() if k not in _NOT_SAMPLING}, "stream": stream,
    }
    if started_at is not None:
        record["started_at"] = round(started_at, 6)  # wall clock: orders an episode's calls as they were sent
    if not usage:
        record["usage_missing"] = True  # e.g. a stream without stream_options.include_usage
    if ttft_s is not None:
        record["ttft_s"] = round(ttft_s, 6)
    if isinstance(request.get("tools"), list):
        record["tools"] = request["tools"]
    if message.get("tool_calls") or "tools" in record:
        record["tool_calls"] = list(message.get("tool_calls") or [])
    if message.get("reasoning_content"):
        record["reasoning"] = message["reasoning_content"]
    if len(choices) > 1:
        record["choices"] = len(choices)  # only the first is a training target
    if interrupted:
        record["interrupted"] = True  # the client went away mid-stream: the answer is partial
    if record["finish_reason"] == "length":
        record["limits"] = ["max_tokens"]
    return record


def _last_is_user(call: dict[str, Any]) -> bool:
    msgs = call["messages"]
    return bool(msgs) and msgs[-1].get("role") == "user"


def number_turns(calls: list[dict[str, Any]]) -> None:
    """Fill each call's `turn` (1-based) where neither a header nor the log said it."""
    if not calls:
        return
    entry, turn = calls[0]["agent"], 0
    for i, call in enumerate(calls):
        if call.get("turn") is not None:
            turn = int(call["turn"])
            continue
        if i == 0 or (call["agent"] == entry and _last_is_user(call)):
            turn += 1
        call["turn"] = max(turn, 1)


def _actions(calls: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """The tool calls the MAS asked for, per turn, with the result it sent back later (None if never seen)."""
    results: dict[str, Any] = {}
    for call in calls:
        for m in call["messages"]:
            if m.get("role") == "tool" and m.get("tool_call_id"):
                results.setdefault(m["tool_call_id"], m.get("content"))
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for call in calls:
        for tc in call.get("tool_calls") or []:
            fn = tc.get("function") or {}
            try:
                args = json.loads(fn.get("arguments") or "{}")
            except (json.JSONDecodeError, TypeError):
                args = fn.get("arguments")
            result = results.get(tc.get("id"))
            if isinstance(result, str):
                try:
                    result = json.loads(result)
                except json.JSONDecodeError:
                    pass
            out[call["turn"]].append({"name": fn.get("name"), "arguments": args, "result": result})
    return out


def _turns(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_turn: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for call in calls:
        by_turn[call["turn"]].append(call)
    actions = _actions(calls)
    turns = []
    for number, group in sorted(by_turn.items()):
        users = [m for m in group[0]["messages"] if m.get("role") == "user"]
        replies = [c["completion"] for c in group if c["completion"] and not c.get("tool_calls")]
        turns.append({"turn": number, "user": str(users[-1].get("content") or "") if users else "",
                      "reply": replies[-1] if replies else "", "annotation": None, "understanding": None,
                      "fallback": False, "actions": actions.get(number, [])})
    return turns


def episode_record(episode_id: str, calls: list[dict[str, Any]], exit_reason: str,
                   capture: dict[str, Any]) -> dict[str, Any]:
    """The episode line TraceStore writes: calls in the order they were sent (a stable sort: calls without a
    start time, e.g. imported, keep their order), numbered, with turns and stats."""
    calls = sorted(calls, key=lambda c: c.get("started_at") or 0.0)
    for i, call in enumerate(calls):
        call["episode_id"], call["call_index"] = episode_id, i
    number_turns(calls)
    turns = _turns(calls)
    return {
        "episode_id": episode_id, "source": SOURCE, "capture": capture,
        "scenario": {"scenario_id": episode_id, "scenario_type": "captured", "long_tail": False,
                     "gold_actions": [], "required_outputs": [], "turns": []},
        "turns": turns, "calls": calls, "world_hash": None, "exit": exit_reason,
        "stats": {
            "agent_calls": len(calls), "tokens_in": sum(c["tokens_in"] for c in calls),
            "tokens_out": sum(c["tokens_out"] for c in calls),
            "latency_s": round(sum(c["latency_s"] for c in calls), 6), "malformed": 0, "fallbacks": 0,
            "injected": 0,
        },
    }
