"""Compact, domain-derived views of what a role decides from, for the short prompt styles.

A student trained on header-only system prompts never sees the tool list, so it invents tools (54 of 58
unparseable SmolLM2 plans called tools the domain lacks). These views put back just the names a role
must choose among, generated from the `Domain` (tool schemas, intents and slots) and never written per domain:
- Planner, Executor, Evaluator: one signature per tool, required arguments bare and optional ones with `?`,
  plus the plan's terminal steps;
- Understander: each intent with its slots.
The view is constant per role, so it sits in the system prompt where the serving engine's prefix cache
reuses it. It must stay within `VIEW_TOKEN_BUDGET` (counted with the student's tokenizer by
`agentdistill bench train`); a domain too large for it gets the names alone, then a cut list.
"""

from __future__ import annotations

from typing import Any

VIEW_CHAR_BUDGET = 1600  # ~4 characters a token: about 400 tokens of SmolLM2's tokenizer
VIEW_TOKEN_BUDGET = 450
TERMINALS = "reply(topics) | ask(missing, topics)"
_TOOL_ROLES = ("planner", "executor", "evaluator")


def tool_signature(name: str, parameters: dict[str, Any]) -> str:
    """`get_item(item_id)`, `search(kind?, max_price?)`: what a call may pass, in schema order."""
    required = set(parameters.get("required") or ())
    args = [p if p in required else f"{p}?" for p in (parameters.get("properties") or {})]
    return f"{name}({', '.join(args)})"


def tools_view(domain: Any) -> str:
    lines = [tool_signature(t.name, t.parameters) for t in domain.tools()]
    return _fit("Tools: ", lines, [t.name for t in domain.tools()], f"\nFinal step: {TERMINALS}")


def intents_view(domain: Any) -> str:
    intents = domain.intents()
    lines = [f"{i.name}({', '.join(i.slots)})" if i.slots else i.name for i in intents]
    return _fit("Intents: ", lines, [i.name for i in intents], "")


def role_view(domain: Any, role: str) -> str:
    """The view a role's short system prompt carries; empty for roles that need none (the Explainer)."""
    if role in _TOOL_ROLES:
        return tools_view(domain)
    if role == "understander":
        return intents_view(domain)
    return ""


def _fit(head: str, full: list[str], names: list[str], tail: str) -> str:
    """Signatures if they fit the budget, else names only, else as many names as fit."""
    for items in (full, names):
        text = head + "; ".join(items) + tail
        if len(text) <= VIEW_CHAR_BUDGET:
            return text
    text = head + "; ".join(names)
    return text[:VIEW_CHAR_BUDGET - len(tail) - 4].rsplit("; ", 1)[0] + "; ..." + tail
