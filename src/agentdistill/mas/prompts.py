"""Role prompts. All five roles share one long prefix (domain facts, policy, tools) so that a serving
engine's prefix cache reuses it; each role's own instructions and examples follow it.

Three styles:
- `full`: the prefix plus the role's instructions; what a general model (the teacher) needs.
- `compact`: the role header and the policy version only. A fine-tuned student has learned the facts,
  policy and formats from its training data (context distillation), so repeating ~18,000 characters on
  every call only costs compute: on the student's tokenizer the full prompt is ~560 tokens against ~60 for
  the call's own input, so training on compact records fits ~9x more agent calls into the same CPU budget
  (and serving prefills less). The dataset builder rewrites system prompts into this style, and the
  evaluation drives a student with the style it was trained on.
- `focused`: the compact system prompt, and inputs cut to the fields the role decides from
  (`ROLE_INPUT_FIELDS`): no conversation transcript, no Halstead figures, and the Executor sees just the
  plan and its tool results. The transcript is ~45% of all input characters and grows with the
  conversation, so a student trained on 3-turn conversations meets inputs on the 10-turn stress suite
  longer than any it has seen. Every role's reference output is a function of its listed fields (tested on
  every scenario type; the Understander reads the utterance with the known entities and session facts, and
  no utterance in the traces means two things). A MAS whose roles do need the transcript (e.g. an LLM
  resolving "yes, that one") should not use it.

Inputs are passed as one JSON object in the user message, which is what both an LLM and the scripted
teacher read.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

ROLES = ("understander", "planner", "evaluator", "executor", "explainer")
PROMPT_STYLES = ("full", "compact", "focused")
SHORT_STYLES = ("compact", "focused")  # styles whose system prompt is the role header only
ROLE_HEADER = "## Your role: "
_INPUT_RE = re.compile(r"```json\n(.*?)\n```", re.S)
# The input fields each role decides from; the focused style sends only these (see the module docstring).
_PLANNER_FIELDS = ("today", "utterance", "understanding", "known_entities", "session", "feedback", "previous_plan")
ROLE_INPUT_FIELDS: dict[str, tuple[str, ...]] = {
    "understander": ("today", "utterance", "known_entities", "session"),
    "planner": _PLANNER_FIELDS,
    "evaluator": (*_PLANNER_FIELDS, "plan"),
    "executor": ("plan",),
    "explainer": ("today", "terminal", "tool_results", "known_entities", "session"),
}

PLAN_LANGUAGE = """\
Plans are short programs in a restricted Python subset. They are parsed, never executed as Python:
- `name = tool(arg=value, ...)` calls a tool and keeps its result; `tool(arg=value)` calls it and drops it.
- Keyword arguments only. Values: strings, numbers, booleans, None, lists, dicts, earlier results with
  constant subscripts (`r["id"]`, `r["items"][0]["id"]`) and `len(x)`.
- `if <test>:` / `elif` / `else:` with comparisons (== != < <= > >= in, not in), `and`, `or`, `not`.
  An `if` whose block ends with a reply stops the plan there; otherwise the plan goes on.
- Every path ends with exactly one final step: `reply(topics=[...])` to answer, or
  `ask(missing=[...], topics=[...])` to ask the customer for what is missing.
- No loops, imports, attribute access, functions or other calls. At most 12 tool calls."""

ROLE_INSTRUCTIONS = {
    "understander": """\
Read the customer's latest message with the conversation so far and extract what they want.
Answer with one JSON object and nothing else:
{"intents": [intent names from the list below, in the order asked], "entities": {slot: value, ...} for what
this message states (dates as YYYY-MM-DD, times as HH:MM 24h, money as integers, ids exactly as given),
"missing": [required slots still unknown, including {identity_slots} when identity is needed and not yet
verified]}.
Intents:
{intents}""",
    "planner": """\
Write the plan for this turn: the tool calls that serve the customer's request while following every
rule of the policy, and the final reply or ask step. Check preconditions with tools when they are not
already known (availability, identity, limits). If the input has "feedback", your previous plan was
rejected: fix what it says. Answer with the plan only.
{plan_language}""",
    "evaluator": """\
Review the proposed plan before it runs. The deterministic rule check has already passed; judge what rules
cannot: does the plan do what the customer asked, with the right arguments, in a policy-compliant order?
Answer with one JSON object and nothing else: {"verdict": "approve" or "reject", "feedback": "what to fix,
empty when approved"}.""",
    "executor": """\
Execute the approved plan one step at a time. Each time, emit exactly one tool call: the next call of the
plan, with every argument made concrete from the plan and the tool results so far. Follow the plan's
conditions using the results. When the plan has reached its final reply or ask step, answer with the single
word DONE and no tool call.""",
    "explainer": """\
Write the reply to the customer from the plan's final step and this turn's tool results. Be concise and
friendly, state exact figures and reference numbers from the results, follow the policy, and never mention
tools, ids of other customers, or these instructions. Answer with the reply text only.""",
}


@dataclass(frozen=True)
class RolePrompts:
    """The five system prompts of a domain and policy version, built once."""

    system: dict[str, str]

    def prompt_id(self, role: str) -> str:
        return prompt_id(self.system[role])


def prompt_id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def check_prompt_style(style: str, allow_auto: bool = False) -> str:
    """A user-given style (CLI flag or API argument): one-line error for anything but full, compact (or auto)."""
    from agentdistill.errors import UserError

    allowed = ("auto", *PROMPT_STYLES) if allow_auto else PROMPT_STYLES
    if style not in allowed:
        raise UserError(f"--prompt-style must be one of {', '.join(allowed)}, got {style!r}")
    return style


def compact_prompt(role: str, domain: Any, policy_version: str) -> str:
    """The student's system prompt: which role, which business, which policy version (rules differ by version),
    and the role's domain-derived view (mas/views.py: the tools or intents it must choose among)."""
    from agentdistill.mas.views import role_view

    view = role_view(domain, role)
    return (f"{ROLE_HEADER}{role.capitalize()}\nBusiness: {domain.name}. Policy version: {policy_version}.\n"
            + (f"{view}\n" if view else ""))


def role_input(role: str, payload: dict[str, Any], style: str) -> dict[str, Any]:
    """What a role is sent: the whole payload, or only the role's own fields in the focused style."""
    if style != "focused" or role not in ROLE_INPUT_FIELDS:
        return payload
    return {k: v for k, v in payload.items() if k in ROLE_INPUT_FIELDS[role]}


def focused_input(role: str, content: str) -> str:
    """A rendered role input cut to the role's own fields, byte for byte what the focused-style runtime sends;
    a message without an input block is returned unchanged."""
    m = _INPUT_RE.search(content or "")
    if not m:
        return content
    payload = json.loads(m.group(1))
    if not isinstance(payload, dict):
        return content
    body = json.dumps(role_input(role, payload, "focused"), sort_keys=True, ensure_ascii=False)
    return content[:m.start(1)] + body + content[m.end(1):]


def style_of(messages: list[dict[str, Any]]) -> str:
    """Which style a call's messages are in: short styles' system prompts start with the role header, and a
    focused input has only the role's own fields (a compact one always carries the transcript key)."""
    system = messages[0].get("content") or "" if messages and messages[0].get("role") == "system" else ""
    if not system.startswith(ROLE_HEADER):
        return "full"
    role = role_of(system)
    user = next((m.get("content") or "" for m in messages[1:] if m.get("role") == "user"), "")
    fields = set(parse_input(user))
    return "focused" if role in ROLE_INPUT_FIELDS and fields <= set(ROLE_INPUT_FIELDS[role]) else "compact"


def build_prompts(domain: Any, policy_version: str | None = None, style: str = "full") -> RolePrompts:
    if style not in PROMPT_STYLES:
        raise ValueError(f"unknown prompt style {style!r}; choose one of {', '.join(PROMPT_STYLES)}")
    version = policy_version or domain.policy_version
    if style in SHORT_STYLES:
        return RolePrompts({role: compact_prompt(role, domain, version) for role in ROLES})
    tools = json.dumps([t.openai_schema() for t in domain.tools()], indent=1)
    prefix = (
        f"You are one of five cooperating agents behind the customer assistant of a {domain.name} business. "
        "All agents share the facts, policy and tools below.\n\n"
        f"# Facts\n{domain.knowledge()}\n\n"
        f"# Policy\n{domain.policy_text(policy_version)}\n\n"
        f"# Tools\n{tools}\n\n"
    )
    intents = "\n".join(f"- {i.name}: {i.description}" + (f" (slots: {', '.join(i.slots)})" if i.slots else "")
                        for i in domain.intents())
    examples = domain.prompt_examples()
    system = {}
    for role in ROLES:
        text = (ROLE_INSTRUCTIONS[role].replace("{intents}", intents).replace("{plan_language}", PLAN_LANGUAGE)
                .replace("{identity_slots}", " and ".join(f'"{s}"' for s in domain.identity_slots)))
        example = f"\n{examples[role]}\n" if role in examples else ""
        system[role] = f"{prefix}{ROLE_HEADER}{role.capitalize()}\n{text}\n{example}"
    return RolePrompts(system)


def render_input(payload: dict[str, Any]) -> str:
    return "Input:\n```json\n" + json.dumps(payload, sort_keys=True, ensure_ascii=False) + "\n```"


def parse_input(content: str) -> dict[str, Any]:
    m = _INPUT_RE.search(content or "")
    return json.loads(m.group(1)) if m else {}


def role_of(system_prompt: str) -> str | None:
    i = system_prompt.rfind(ROLE_HEADER)
    if i < 0:
        return None
    return system_prompt[i + len(ROLE_HEADER):].split("\n", 1)[0].strip().lower()
