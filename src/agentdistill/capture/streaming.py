"""Reassemble an OpenAI server-sent-event stream into the chat.completion it stands for.

The proxy relays the stream byte for byte and feeds the same bytes here, so what is recorded is exactly what
the MAS received: text deltas concatenated, tool-call deltas merged by their index (id and name arrive once,
`arguments` in fragments), the last finish_reason and the usage chunk when the client asked for one.
"""

from __future__ import annotations

import json
import time
from typing import Any


class StreamAssembler:
    """Feed raw bytes as they arrive; `completion()` gives the equivalent non-streamed response."""

    def __init__(self, started: float | None = None):
        self.started = time.perf_counter() if started is None else started
        self.ttft_s: float | None = None
        self.chunks = 0
        self._buffer = b""
        self._meta: dict[str, Any] = {}
        self._usage: dict[str, Any] | None = None
        self._choices: dict[int, dict[str, Any]] = {}

    def feed(self, data: bytes) -> None:
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for line in lines:
            self._line(line.strip())

    def _line(self, line: bytes) -> None:
        if not line.startswith(b"data:"):
            return  # comments, event names and blank separators carry nothing we record
        payload = line[len(b"data:"):].strip()
        if payload == b"[DONE]":
            return
        try:
            chunk = json.loads(payload)
        except json.JSONDecodeError:
            return  # not ours to judge: the client gets the bytes unchanged either way
        if not isinstance(chunk, dict):
            return
        self.chunks += 1
        for key in ("id", "model", "created", "system_fingerprint"):
            if chunk.get(key) is not None:
                self._meta.setdefault(key, chunk[key])
        if isinstance(chunk.get("usage"), dict):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            self._delta(choice)

    def _delta(self, choice: dict[str, Any]) -> None:
        slot = self._choices.setdefault(int(choice.get("index") or 0),
                                        {"content": [], "reasoning": [], "tool_calls": {}, "finish_reason": None})
        delta = choice.get("delta") or {}
        if choice.get("finish_reason"):
            slot["finish_reason"] = choice["finish_reason"]
        text = delta.get("content")
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if text:
            slot["content"].append(text)
        if reasoning:
            slot["reasoning"].append(reasoning)
        for tc in delta.get("tool_calls") or []:
            merged = slot["tool_calls"].setdefault(int(tc.get("index") or 0),
                                                   {"id": None, "type": "function", "name": "", "arguments": []})
            fn = tc.get("function") or {}
            merged["id"] = merged["id"] or tc.get("id")
            merged["type"] = tc.get("type") or merged["type"]
            merged["name"] += fn.get("name") or ""
            merged["arguments"].append(fn.get("arguments") or "")
        if self.ttft_s is None and (text or reasoning or delta.get("tool_calls")):
            self.ttft_s = time.perf_counter() - self.started

    def completion(self) -> dict[str, Any]:
        """A chat.completion object with the reassembled message(s)."""
        self.feed(b"\n")  # a last line without its newline
        choices = []
        for index, slot in sorted(self._choices.items()):
            message: dict[str, Any] = {"role": "assistant", "content": "".join(slot["content"]) or None}
            if slot["reasoning"]:
                message["reasoning_content"] = "".join(slot["reasoning"])
            if slot["tool_calls"]:
                message["tool_calls"] = [
                    {"id": tc["id"] or f"call_{i}", "type": tc["type"],
                     "function": {"name": tc["name"], "arguments": "".join(tc["arguments"])}}
                    for i, tc in sorted(slot["tool_calls"].items())]
            choices.append({"index": index, "message": message, "finish_reason": slot["finish_reason"]})
        out: dict[str, Any] = {"object": "chat.completion", **self._meta, "choices": choices}
        if self._usage is not None:
            out["usage"] = self._usage
        return out
