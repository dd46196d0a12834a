"""Constrained decoding for the LLM roles, derived from the Domain alone (its tool schemas and intents).

A served student that has never seen a tool name outside its training data can still invent one; a grammar
makes the wrong shape impossible instead of merely unlikely. Each constrained role gets one vLLM
`structured_outputs` payload (request field, OpenAI client: `extra_body`; exactly one of json / regex /
choice / grammar / structural_tag):

- planner: `grammar`, a Lark grammar of the plan language (mas/plan.py): calls name a domain tool and only
  that tool's parameters, terminals are `reply(topics=[...])` / `ask(missing=[<slot>...], topics=[...])`,
  `if`/`elif`/`else` blocks with literal 4-space indents to the parser's depth limit. vLLM 0.32 hands a Lark
  grammar to xgrammar (`Grammar.from_lark`, `GrammarCompiler.compile_lark`), which reads it character by
  character with no lexer and no indenter: every space and newline is spelled out, as the reference writes them.
- understander / evaluator: `json`, a JSON schema.
- executor: `structural_tag`, one hermes call `<tool_call>{"name": N, "arguments": A}</tool_call>` (what
  train/chat.py renders and vLLM's hermes parser reads; the newline variant vLLM's own hermes tag allows is
  accepted too) whose arguments follow tool N's schema, or the word DONE.
- explainer: none (free text).

Property order: xgrammar emits an object's properties in the schema's declared order, so every schema here
declares them sorted: training targets are written with `json.dumps(sort_keys=True)` (the Understander and
Evaluator outputs, `ToolCall.to_openai` arguments). Tool arguments keep the schema's structure (property names,
types, required, additionalProperties) and drop value checks (enum, format, pattern, lengths, bounds,
uniqueItems): the Executor copies the plan's values, and the reference Executor copies a wrong one too (a
condition "goods" after an Understander slip), which the judge scores as right and the tool answers with an
error the Explainer reports; `format: date-time` would also reject the domain's `YYYY-MM-DDTHH:MM`.

Why not `tool_choice="required"` (read in vLLM 0.32, tried on vLLM CPU with a tiny random Llama, our chat
template and `--enable-auto-tool-choice --tool-call-parser hermes`): with VLLM_ENFORCE_STRICT_TOOL_CALLING on (the
default) vLLM turns it into a structural tag of one or more `<tool_call>{"name": <a sent tool>, "arguments": ...}
</tool_call>` blocks, but the arguments are any JSON value unless a tool is sent with `strict: true`, and DONE
can never be written. Measured: the envelope and the tool name held, the arguments came back as `true`, `false`,
or a string that ran into max_tokens (then nothing was parsed as a tool call); `tool_choice="auto"` gave free
text. So the Executor sends its own structural tag and keeps tool_choice at auto, for which vLLM applies the
request's constraint unchanged (it only merges in its hermes tag when the server's --tool-strict-level asks).
"""

from __future__ import annotations

import json
from typing import Any

from agentdistill.mas.plan import MAX_DEPTH
from agentdistill.train.chat import TOOL_CALL_END, TOOL_CALL_START

__all__ = [
    "CONSTRAINABLE_ROLES",
    "DONE",
    "PARSER_ONLY",
    "call_schema",
    "check_constrained_roles",
    "evaluator_schema",
    "executor_constraint",
    "parse_constrained_roles",
    "plan_grammar",
    "role_constraints",
    "slot_names",
    "understander_schema",
]

CONSTRAINABLE_ROLES = ("understander", "planner", "evaluator", "executor")  # the explainer writes free text
DONE = "DONE"
INDENT = "    "

# What the plan grammar leaves to mas/plan.py (a context-free grammar cannot see it), as the parser words it: a
# name used before it is assigned on every path, a Python keyword or a tool used as a name, more than 12 tool
# calls, a statement after an if whose branches all end, an if/else ending the plan without every branch ending.
PARSER_ONLY = ("before assignment", "syntax error", "names a tool", "at most", "unreachable", "must end with")

# Value checks dropped from tool argument schemas (see the module docstring).
_VALUE_KEYS = frozenset({
    "enum", "const", "format", "pattern", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
    "exclusiveMaximum", "multipleOf", "minItems", "maxItems", "uniqueItems", "contains", "minContains", "maxContains",
    "minProperties", "maxProperties", "description", "default", "examples", "title",
})


def check_constrained_roles(roles: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Roles a user asked to constrain: known roles with a constraint, or a one-line ValueError."""
    from agentdistill.mas.prompts import ROLES

    for role in roles:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r} in constrained_roles; roles: {', '.join(ROLES)}")
        if role not in CONSTRAINABLE_ROLES:
            raise ValueError(f"the {role} writes free text and cannot be constrained; "
                             f"constrainable: {', '.join(CONSTRAINABLE_ROLES)}")
    return tuple(dict.fromkeys(roles))


def parse_constrained_roles(text: str) -> tuple[str, ...]:
    """A CLI value: "" (none), "all" (every constrainable role) or a comma list; UserError on a bad role."""
    from agentdistill.errors import UserError

    text = (text or "").strip()
    if text in ("", "none"):
        return ()
    if text == "all":
        return CONSTRAINABLE_ROLES
    try:
        return check_constrained_roles([r.strip() for r in text.split(",") if r.strip()])
    except ValueError as exc:
        raise UserError(str(exc)) from None


# ---------------------------------------------------------------------------------------------- shared


def _params(tool: Any) -> dict[str, Any]:
    return (tool.parameters or {}).get("properties") or {}


def slot_names(domain: Any) -> list[str]:
    """Every name an entity or a missing slot may have: intent slots, identity slots (a domain may list them as
    `identity_slots`) and tool parameter names (a search filter the customer states is an entity too)."""
    names = {slot for intent in domain.intents() for slot in intent.slots}
    names |= set(domain.identity_slots)
    names |= {p for tool in domain.tools() for p in _params(tool)}
    return sorted(names)


def _shape(schema: Any) -> dict[str, Any]:
    """A parameter schema's structure without its value checks, properties in sorted order."""
    if not isinstance(schema, dict):
        return {}
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _VALUE_KEYS:
            continue
        if key == "properties" and isinstance(value, dict):
            out[key] = {k: _shape(value[k]) for k in sorted(value)}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = _shape(value)
        elif key in ("anyOf", "oneOf") and isinstance(value, list):
            out[key] = [_shape(v) for v in value]
        else:
            out[key] = value
    return out


def call_schema(tool: Any) -> dict[str, Any]:
    """The JSON schema of one tool's arguments as the Executor must write them."""
    schema = _shape(tool.parameters or {"type": "object"})
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema


def _entity_schema(domain: Any, name: str) -> dict[str, Any]:
    """An entity's type from the tool parameters of that name, when they agree on it; else any JSON value."""
    shapes = []
    for tool in domain.tools():
        prop = _params(tool).get(name)
        if isinstance(prop, dict) and "type" in prop:
            shape = {"type": prop["type"]}
            if prop["type"] == "array" and isinstance(prop.get("items"), dict) and "type" in prop["items"]:
                shape["items"] = {"type": prop["items"]["type"]}
            shapes.append(shape)
    return shapes[0] if shapes and all(s == shapes[0] for s in shapes) else {}


# --------------------------------------------------------------------------------------------- schemas


def understander_schema(domain: Any) -> dict[str, Any]:
    """{"entities": {slot: value}, "intents": [intent, ...], "missing": [slot, ...]}, names from the Domain."""
    slots = slot_names(domain)
    intents = [i.name for i in domain.intents()]
    return {
        "type": "object",
        "properties": {
            "entities": {"type": "object", "properties": {s: _entity_schema(domain, s) for s in slots},
                         "additionalProperties": False},
            "intents": {"type": "array", "items": {"type": "string", "enum": intents}, "minItems": 1},
            "missing": {"type": "array", "items": {"type": "string", "enum": slots}},
        },
        "required": ["entities", "intents", "missing"],
        "additionalProperties": False,
    }


def evaluator_schema() -> dict[str, Any]:
    """{"feedback": str, "verdict": "approve" | "reject"} (sorted, as the reference writes it)."""
    return {
        "type": "object",
        "properties": {"feedback": {"type": "string"}, "verdict": {"type": "string", "enum": ["approve", "reject"]}},
        "required": ["feedback", "verdict"],
        "additionalProperties": False,
    }


def executor_constraint(domain: Any) -> dict[str, Any]:
    """`structured_outputs` for the Executor: one hermes tool call of a domain tool, or DONE."""
    tags = []
    for tool in domain.tools():
        prefix = '{"name": ' + json.dumps(tool.name) + ', "arguments": '
        content = {"type": "json_schema", "json_schema": call_schema(tool)}
        for begin, end in ((TOOL_CALL_START, "}" + TOOL_CALL_END), (TOOL_CALL_START + "\n", "}\n" + TOOL_CALL_END)):
            tags.append({"type": "tag", "begin": begin + prefix, "content": content, "end": end})
    tags.append({"type": "const_string", "value": DONE})
    return {"structural_tag": json.dumps({"type": "structural_tag", "format": {"type": "or", "elements": tags}})}


# ---------------------------------------------------------------------------------------- plan grammar


def _lit(text: str) -> str:
    return json.dumps(text)


def plan_grammar(domain: Any) -> str:
    """A Lark grammar of the plan language for this domain's tools (see the module docstring).

    Statement rules are written once per indentation depth (0..MAX_DEPTH, `if` allowed below MAX_DEPTH, as
    mas/plan.py enforces); a block's terminal step can only be its last statement, and the plan itself ends
    with a terminal step or an `if ... else` whose branches end it. The rest is the parser's (PARSER_ONLY).
    """
    tools = domain.tools()
    for tool in tools:
        if not tool.name.isidentifier():
            raise ValueError(f"tool name {tool.name!r} cannot be called in a plan: not an identifier")
    slots = slot_names(domain)
    rules: list[str] = [
        'start: (stmt0 "\\n")* (term0 | ifelse0) "\\n"?',
    ]
    for d in range(MAX_DEPTH + 1):
        ind = f"{_lit(INDENT * d)} " if d else ""
        stmt = f"stmt{d}: {ind}simple" + (f" | if{d}" if d < MAX_DEPTH else "")
        rules += [stmt, f"term{d}: {ind}terminal"]
        if d >= 1:
            rules.append(f'block{d}: (stmt{d} "\\n")* (stmt{d} | term{d})')
        if d < MAX_DEPTH:
            n = d + 1
            head = f'{ind}"if " test ":\\n" block{n} ("\\n" {ind}"elif " test ":\\n" block{n})*'
            els = f'"\\n" {ind}"else:\\n" block{n}'
            rules.append(f"if{d}: {head} ({els})?")
            if d == 0:
                rules.append(f"ifelse0: {head} {els}")
    rules += [
        'simple: NAME " = " call | call',
        "call: " + " | ".join(f"tool{i}" for i in range(len(tools))),
    ]
    for i, tool in enumerate(tools):
        params = sorted(_params(tool))
        if params:
            names = " | ".join(_lit(p) for p in params)
            rules += [f'tool{i}: {_lit(tool.name + "(")} [kw{i} (", " kw{i})*] ")"', f'kw{i}: ({names}) "=" test']
        else:
            rules.append(f"tool{i}: {_lit(tool.name + '()')}")
    slot_alts = " | ".join(_lit(json.dumps(s)) for s in slots)
    rules += [
        "terminal: reply | ask",
        'reply: "reply(topics=" strings ")"',
        'ask: "ask(missing=" slots ", topics=" strings ")"',
        'strings: "[" [STRING (", " STRING)*] "]"',
        'slots: "[" [SLOT (", " SLOT)*] "]"',
        f"SLOT: {slot_alts}" if slots else 'SLOT: "\\"\\""',
        # expressions: the subset mas/plan.py accepts, spaced as ast.unparse and the reference write them
        'test: and_test (" or " and_test)*',
        'and_test: not_test (" and " not_test)*',
        'not_test: "not " not_test | comparison',
        "comparison: primary (COMP primary)*",
        'COMP: " == " | " != " | " < " | " <= " | " > " | " >= " | " in " | " not in "',
        'primary: atom ("[" key "]")*',
        "key: STRING | INT",
        'atom: NAME | STRING | NUMBER | "True" | "False" | "None" | "len(" test ")" | list | dict | "(" test ")"',
        'list: "[" [test (", " test)*] "]"',
        'dict: "{" [key ": " test (", " key ": " test)*] "}"',
        r"""STRING: /"([^"\\\n]|\\.)*"/ | /'([^'\\\n]|\\.)*'/""",
        "INT: /-?[0-9]+/",
        "NUMBER: /-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?/",
        "NAME: /[A-Za-z_][A-Za-z0-9_]{0,31}/",  # bounded: a weak model otherwise spells one name forever
    ]
    return "\n".join(rules) + "\n"


# --------------------------------------------------------------------------------------------- per role


def role_constraints(domain: Any, roles: tuple[str, ...] | list[str]) -> dict[str, dict[str, Any]]:
    """role -> its `structured_outputs` payload, for the given roles (checked by check_constrained_roles)."""
    builders = {
        "understander": lambda: {"json": understander_schema(domain)},
        "planner": lambda: {"grammar": plan_grammar(domain)},
        "evaluator": lambda: {"json": evaluator_schema()},
        "executor": lambda: executor_constraint(domain),
    }
    return {role: builders[role]() for role in check_constrained_roles(roles)}
