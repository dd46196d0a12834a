"""The boundary for model text: every parse of what a model wrote goes through these functions.

A model (teacher, judge, user simulator or student) can answer anything: 2,000 nested brackets, a megabyte of
junk, JSON of the wrong types, lone surrogates. Each function here returns a value of the documented shape or
raises `ModelTextError` (a `ValueError` with a `kind`), never anything else, so a caller needs one `except`.
Time per parse is bounded by the size and depth limits: the checks run before any parser, in linear time, and
the JSON parser is linear in its input (benchmarks/results/fuzz.json records the slowest parse seen).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from agentdistill.types import ToolCall


@dataclass(frozen=True)
class TextLimits:
    """What one model answer may contain before it is refused unparsed (documented in the README)."""

    max_chars: int = 32_000  # about 8k tokens: more than any role's max_tokens allows
    max_depth: int = 24  # JSON / bracket nesting; role outputs need 3
    max_tool_calls: int = 8  # per answer; the Executor makes one per step
    max_name_chars: int = 64  # a tool or intent name
    max_items: int = 64  # intents, missing slots, entities


LIMITS = TextLimits()


class ModelTextError(ValueError):
    """Model text that does not parse into what the caller asked for. `kind` names the reason:
    too_long, too_deep, invalid_json, not_an_object, wrong_type, too_many_calls."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


_FENCE = re.compile(r"^```\w*\n?|\n?```$")
_OPEN, _CLOSE = frozenset("[{("), frozenset("]})")


def as_text(value: Any, limits: TextLimits = LIMITS) -> str:
    """Any model field as a str: None -> "", non-str -> its str(), lone surrogates replaced (they cannot be
    encoded, so they would fail later when written), and refused above the size limit."""
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    if len(text) > limits.max_chars:
        raise ModelTextError("too_long", f"answer is {len(text):,} characters (limit {limits.max_chars:,})")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def clean_text(value: Any, limits: TextLimits = LIMITS) -> tuple[str, bool]:
    """Text as a backend hands it on: a str without lone surrogates, cut to max_chars; (text, whether cut)."""
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    cut = len(text) > limits.max_chars
    return as_text(text[:limits.max_chars], limits), cut


def nesting_depth(text: str) -> int:
    """The deepest bracket nesting outside JSON strings (a linear scan, before any recursive parser runs)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in _OPEN:
            depth += 1
            deepest = max(deepest, depth)
        elif ch in _CLOSE:
            depth = max(depth - 1, 0)
    return deepest


def check_size(text: str, limits: TextLimits = LIMITS) -> str:
    """`text` within the size and depth limits, or ModelTextError."""
    text = as_text(text, limits)
    if (depth := nesting_depth(text)) > limits.max_depth:
        raise ModelTextError("too_deep", f"answer nests {depth} levels deep (limit {limits.max_depth})")
    return text


def json_value(text: str, limits: TextLimits = LIMITS) -> Any:
    """One JSON value, within the limits."""
    text = check_size(text, limits)
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError, MemoryError) as exc:  # Recursion: belt and braces
        raise ModelTextError("invalid_json", f"not JSON: {exc}"[:200]) from None


def json_object(text: str, limits: TextLimits = LIMITS) -> dict[str, Any]:
    """The JSON object in an answer: bare, fenced, or the outermost {...} inside prose."""
    text = check_size(text, limits).strip()
    if text.startswith("```"):
        text = _FENCE.sub("", text).strip()
    try:
        obj = json_value(text, limits)
    except ModelTextError:
        start, end = text.find("{"), text.rfind("}")
        if start < 0 or end <= start:
            raise ModelTextError("invalid_json", "no JSON object in the answer") from None
        obj = json_value(text[start:end + 1], limits)
    if not isinstance(obj, dict):
        raise ModelTextError("not_an_object", f"answer is a JSON {type(obj).__name__}, not an object")
    return obj


def extract_json_object(text: str, limits: TextLimits = LIMITS) -> dict[str, Any] | None:
    """`json_object`, or None when there is none (for callers that only ask whether there is one)."""
    try:
        return json_object(text, limits)
    except ModelTextError:
        return None


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def _entity_value(value: Any) -> bool:
    """An entity is a scalar or a flat list of scalars (e.g. stock numbers to compare)."""
    return _scalar(value) or (isinstance(value, list) and all(_scalar(v) for v in value))


def understanding(text: str, limits: TextLimits = LIMITS) -> dict[str, Any]:
    """The Understander's answer: {intents: [str], entities: {str: scalar}, missing: [str]}."""
    obj = json_object(text, limits)
    intents, entities, missing = obj.get("intents"), obj.get("entities") or {}, obj.get("missing") or []
    if not isinstance(intents, list) or not all(isinstance(i, str) for i in intents):
        raise ModelTextError("wrong_type", "intents must be a list of strings")
    if not isinstance(entities, dict) or not all(isinstance(k, str) and _entity_value(v) for k, v in entities.items()):
        raise ModelTextError("wrong_type", "entities must map names to scalars or lists of scalars")
    if not isinstance(missing, list) or not all(isinstance(m, str) for m in missing):
        raise ModelTextError("wrong_type", "missing must be a list of strings")
    if max(len(intents), len(entities), len(missing)) > limits.max_items:
        raise ModelTextError("too_long", f"more than {limits.max_items} intents, entities or missing slots")
    if any(len(i) > limits.max_name_chars for i in intents):
        raise ModelTextError("too_long", f"an intent name is longer than {limits.max_name_chars} characters")
    return {"intents": intents, "entities": entities, "missing": missing}


def verdict(text: str, limits: TextLimits = LIMITS) -> dict[str, str]:
    """The Evaluator's answer: {verdict: approve|reject, feedback: str}."""
    obj = json_object(text, limits)
    if obj.get("verdict") not in ("approve", "reject"):
        raise ModelTextError("wrong_type", "verdict must be 'approve' or 'reject'")
    feedback = obj.get("feedback")
    return {"verdict": obj["verdict"], "feedback": feedback if isinstance(feedback, str) else ""}


def tool_arguments(raw: Any, limits: TextLimits = LIMITS) -> dict[str, Any]:
    """A tool call's arguments (a JSON object string or a dict); anything else becomes {"__raw__": text}, which
    the tool layer answers with an error, so a wrong call is executed and judged rather than lost."""
    if isinstance(raw, dict):
        return raw
    if raw is None or raw == "":
        return {}
    try:
        text = as_text(raw, limits)
    except ModelTextError:
        return {"__raw__": f"<{len(str(raw)):,} characters>"}
    try:
        args = json_value(text, limits) if text.strip() else {}
    except ModelTextError:
        return {"__raw__": text}
    return args if isinstance(args, dict) else {"__raw__": text}


def bounded_tool_calls(raw: list[Any], limits: TextLimits = LIMITS) -> tuple[list[ToolCall], bool]:
    """What a backend hands on: the first max_tool_calls entries as ToolCalls, and whether more were dropped."""
    return tool_calls(raw[:limits.max_tool_calls], limits), len(raw) > limits.max_tool_calls


def tool_calls(raw: Any, limits: TextLimits = LIMITS) -> list[ToolCall]:
    """OpenAI-style `tool_calls` entries (dicts) as ToolCalls; entries that are not dicts are dropped."""
    if not raw:
        return []
    if not isinstance(raw, list):
        raise ModelTextError("wrong_type", f"tool_calls is a {type(raw).__name__}, not a list")
    if len(raw) > limits.max_tool_calls:
        raise ModelTextError("too_many_calls", f"{len(raw)} tool calls in one answer (limit {limits.max_tool_calls})")
    calls = []
    for entry in raw:
        if not isinstance(entry, dict):
            continue
        fn = entry.get("function") if isinstance(entry.get("function"), dict) else {}
        name = clean_text(fn.get("name"), limits)[0][:256]  # an unknown tool either way; keeps the trace small
        calls.append(ToolCall(name=name, arguments=tool_arguments(fn.get("arguments"), limits),
                              id=clean_text(entry.get("id"), limits)[0][:128]))
    return calls
