"""Hard negatives from a user's own tool schemas: a correct captured call made wrong in three generic ways.

A captured MAS has no domain of ours, so no rule-driven mutators (data/mutators.py) apply to it. What every
tool-using MAS has is the `tools` list its calls carry (JSON schemas) and the tool results its later calls
read. From those alone:

- `wrong_argument`: one argument of a tool call gets another value of the same type (another enum value, a
  nearby number, the other boolean, a string id with a character changed); every required key stays;
- `skipped_tool`: the tool calls are dropped and the answer claims, in words, that they were done;
- `unsupported_claim`: a final answer states a fact (a number, date or id) that no message of its input, tool
  results included, supports: a fact it repeated is changed, else a changed tool-result value is added.

Each is a `Mutator` (data/mutators.py: returns None where it does not apply, never the original output), so the
DPO builder uses them as it uses a domain's. There is no judge to gate them for a captured run: each output is
wrong by construction relative to the correct call it came from.
"""

from __future__ import annotations

import json
import random
import re
from typing import Any

from agentdistill.data.mutators import MutationInput, Mutator, Output

ANY_AGENT = "*"  # schema mutators apply to whichever role made the call
KEEPS_REQUIRED = frozenset({"wrong_argument"})  # mutations whose tool calls keep every required key
_FACT = re.compile(r"(?<![\w.])(?=[\w\-./:]*\d)[A-Za-z]*[\w\-./:]*\w")  # a token with a digit: 42, A100, 2025-06-03
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


# ---------------------------------------------------------------------------------------------- reading
def tool_schemas(call: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Tool name -> its `parameters` JSON schema, from the call's `tools` (OpenAI format or bare functions)."""
    out: dict[str, dict[str, Any]] = {}
    for tool in call.get("tools") or []:
        fn = tool.get("function", tool) if isinstance(tool, dict) else None
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            params = fn.get("parameters")
            out[fn["name"]] = params if isinstance(params, dict) else {}
    return out


def arguments(tool_call: dict[str, Any]) -> dict[str, Any] | None:
    """A tool call's arguments as a dict; None when they are not a JSON object."""
    raw = (tool_call.get("function") or {}).get("arguments")
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw or "{}")
    except (TypeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None


def with_arguments(tool_call: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    fn = tool_call.get("function") or {}
    return {"id": tool_call.get("id"), "type": "function",
            "function": {"name": fn.get("name"), "arguments": json.dumps(args, sort_keys=True)}}


def evidence(call: dict[str, Any]) -> str:
    """Everything the call's input says (user, tool results, earlier tool calls): what an answer may repeat."""
    parts = []
    for m in (call.get("messages") or [])[1:]:
        parts.append(m.get("content") if isinstance(m.get("content"), str) else json.dumps(m.get("content")))
        parts += [json.dumps(tc) for tc in m.get("tool_calls") or []]
    return "\n".join(p for p in parts if p)


def tool_results(call: dict[str, Any]) -> list[Any]:
    """The tool results in the call's input, parsed where they are JSON."""
    out = []
    for m in call.get("messages") or []:
        if m.get("role") == "tool":
            try:
                out.append(json.loads(m.get("content") or ""))
            except (TypeError, json.JSONDecodeError):
                out.append(m.get("content"))
    return out


# --------------------------------------------------------------------------------------------- changing
def changed_token(token: str, rng: random.Random, avoid: str = "") -> str | None:
    """The same kind of token with one part changed (a date a day off, a digit or letter moved), absent from
    `avoid`; None when none is found in a few tries."""
    if m := _DATE.match(token):
        year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
        for delta in (1, -1, 2, 7):
            new_day = (day - 1 + delta) % 28 + 1
            candidate = f"{year:04d}-{month:02d}-{new_day:02d}"
            if candidate != token and candidate not in avoid:
                return candidate
        return None
    positions = [i for i, ch in enumerate(token) if ch.isdigit()] or [i for i, ch in enumerate(token) if ch.isalpha()]
    for _ in range(12):
        if not positions:
            return None
        i = positions[-1] if rng.random() < 0.7 else rng.choice(positions)
        ch = token[i]
        if ch.isdigit():
            new = str((int(ch) + rng.randint(1, 9)) % 10)
        else:
            base = "A" if ch.isupper() else "a"
            new = chr((ord(ch) - ord(base) + rng.randint(1, 25)) % 26 + ord(base))
        candidate = token[:i] + new + token[i + 1:]
        if candidate != token and candidate not in avoid:
            return candidate
    return None


def other_value(value: Any, schema: dict[str, Any], rng: random.Random, avoid: str = "") -> Any:
    """Another value of the same JSON type the schema allows; None when there is none."""
    enum = schema.get("enum")
    if isinstance(enum, list):
        others = [v for v in enum if v != value and type(v) is type(value)]
        return rng.choice(others) if others else None
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        for delta in rng.sample([1, -1, 2, -2, 10], 5):
            new = value + delta
            if (lo is None or new >= lo) and (hi is None or new <= hi):
                return new
        return None
    if isinstance(value, float):
        new = round(value * 1.5 + 1.0, 2)
        return new if new != value else None
    if isinstance(value, str) and value.strip():
        return changed_token(value, rng, avoid)
    return None


def _free_text(value: Any) -> bool:
    return isinstance(value, str) and (len(value.split()) > 3 or len(value) > 60)


# -------------------------------------------------------------------------------------------- mutators
def wrong_argument(m: MutationInput) -> Output | None:
    """One argument of one tool call changed to another value of its type; prefers values the input states
    (ids, numbers the user gave), which are the ones a wrong copy makes wrong."""
    schemas, calls = tool_schemas(m.call), m.tool_calls
    if not calls or not schemas:
        return None
    said = evidence(m.call)
    options = []
    for i, tc in enumerate(calls):
        name, args = (tc.get("function") or {}).get("name"), arguments(tc)
        if name not in schemas or not args:
            continue
        for key, value in args.items():
            if value is None or isinstance(value, (dict, list)) or _free_text(value):
                continue
            grounded = str(value).lower() in said.lower()
            options.append((not grounded, i, key))
    if not options:
        return None
    options.sort(key=lambda o: (o[0], m.rng.random()))
    for _, i, key in options:
        name = calls[i]["function"]["name"]
        args = dict(arguments(calls[i]) or {})
        new = other_value(args[key], (schemas[name].get("properties") or {}).get(key) or {}, m.rng, said)
        if new is None or new == args[key]:
            continue
        args[key] = new
        out = [with_arguments(tc, args) if j == i else tc for j, tc in enumerate(calls)]
        return m.text, out
    return None


def _said_args(args: dict[str, Any] | None) -> str:
    if not args:
        return ""
    shown = [f"{k} {v}" for k, v in args.items() if not isinstance(v, (dict, list)) and not _free_text(v)]
    return f" for {', '.join(shown)}" if shown else ""


def skipped_tool(m: MutationInput) -> Output | None:
    """No tool call at all, and an answer that says the work was done: the tool it needed was skipped."""
    if not m.tool_calls:
        return None
    done = []
    for tc in m.tool_calls:
        name = str((tc.get("function") or {}).get("name") or "")
        if not name:
            return None
        done.append(name.replace("_", " ") + _said_args(arguments(tc)))
    return f"Done: I have completed {' and '.join(done)}.", []


def unsupported_claim(m: MutationInput) -> Output | None:
    """A final answer stating a fact nothing in its input supports: a fact it repeats from its input is
    changed, else a tool-result value is added, changed."""
    text = m.text
    if m.tool_calls or not text.strip():
        return None
    said = evidence(m.call)
    facts = [t for t in dict.fromkeys(_FACT.findall(text)) if t in said]
    m.rng.shuffle(facts)
    for fact in facts:
        new = changed_token(fact, m.rng, said + text)
        if new is not None:
            return re.sub(rf"(?<![\w.]){re.escape(fact)}(?!\w)", new, text), []
    for result in tool_results(m.call):
        if not isinstance(result, dict):
            continue
        for key, value in result.items():
            if isinstance(value, (str, int, float)) and not isinstance(value, bool) and not _free_text(value):
                new = other_value(value, {}, m.rng, said + text)
                if new is not None and str(new) not in said:
                    return f"{text.rstrip()} The {str(key).replace('_', ' ')} is {new}.", []
    return None


SCHEMA_MUTATORS: dict[str, Mutator] = {
    "wrong_argument": Mutator("wrong_argument", ANY_AGENT, "wrong_argument",
                              "a tool argument changed to another value of its type", wrong_argument),
    "skipped_tool": Mutator("skipped_tool", ANY_AGENT, "skipped_tool",
                            "the tool calls dropped, the answer claiming they were done", skipped_tool),
    "unsupported_claim": Mutator("unsupported_claim", ANY_AGENT, "unsupported_claim",
                                 "a final answer stating a fact no tool result supports", unsupported_claim),
}
