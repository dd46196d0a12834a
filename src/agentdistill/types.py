"""Core data types shared by every stage: tool calls, completions and the backend protocol.

Everything speaks the OpenAI chat format so that a trace written here is a training record for TRL
and a request that vLLM's OpenAI server understands.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

_TOKEN_RE = re.compile(r"\w+|[^\w\s]")


def approx_tokens(text: str) -> int:
    """Cheap, deterministic token count (words and punctuation) for backends without a tokenizer."""
    return len(_TOKEN_RE.findall(text or ""))


@dataclass
class ToolCall:
    """One OpenAI-format function call."""

    name: str
    arguments: dict[str, Any]
    id: str = ""

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": json.dumps(self.arguments, sort_keys=True)},
        }

    @classmethod
    def from_openai(cls, raw: dict[str, Any]) -> ToolCall:
        """Parse an OpenAI `tool_calls` entry; malformed JSON arguments become {"__raw__": text}."""
        from agentdistill.mas.model_text import tool_arguments  # the model-text boundary (limits, no crash)

        fn = raw.get("function") or {}
        args = tool_arguments(fn.get("arguments") or "{}")
        return cls(name=str(fn.get("name") or ""), arguments=args, id=str(raw.get("id") or ""))


@dataclass
class Completion:
    """What a backend returns for one call: text and/or tool calls, with cost figures."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    latency_s: float = 0.0
    model: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Backend(Protocol):
    """How a role (or a user simulator, or a judge) gets text. Teacher, student, judge: all backends."""

    name: str

    def complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None, **sampling: Any
    ) -> Completion: ...
