"""Continued pre-training documents: the domain's own knowledge base plus what every domain has.

The student must know the business facts, the rules and the tools before it learns the roles. A domain
writes its facts in prose (`Domain.cpt_documents`); the policy (one document per rule) and the tool
documentation come from the `Domain` here, the same way for every domain. Each document carries a context
prefix (kept out of the loss: context-aware CPT) that names where the text comes from, so the model learns
facts attached to their source rather than free-floating. `key` is a stable id used for the held-out split;
`group` is "holdout_pool" (may be held out for perplexity and validation) or "always_train".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any


def knowledge_base(domain: Any) -> str:
    return f"{domain.name} knowledge base"


def cpt_doc(key: str, kind: str, context: str, text: str, group: str) -> dict[str, Any]:
    """One CPT document; `context` becomes the bracketed prefix that is kept out of the loss."""
    return {"key": key, "kind": kind, "group": group, "context": f"[{context}]", "text": text}


def policy_docs(domain: Any) -> Iterator[dict[str, Any]]:
    """The policy text of every version, split into one document per rule (plus the preamble)."""
    kb = knowledge_base(domain)
    for version in domain.policy_versions:
        text = domain.policy_text(version)
        parts = re.split(r"\n(?=\d+\. \*\*)", text.strip())
        yield cpt_doc(f"policy:{version}:intro", "policy", f"{kb} | business policy {version} | overview",
                      parts[0].strip(), "always_train")
        for part in parts[1:]:
            m = re.match(r"(\d+)\. \*\*(.+?)\*\*", part)
            if not m:
                continue
            body = " ".join(line.strip() for line in part.split("\n"))
            yield cpt_doc(f"policy:{version}:R{m.group(1)}", "policy",
                          f"{kb} | business policy {version} | rule R{m.group(1)} {m.group(2).rstrip('.')}", body,
                          "always_train")


def tool_docs(domain: Any) -> Iterator[dict[str, Any]]:
    kb = knowledge_base(domain)
    for tool in domain.tools():
        props = tool.parameters.get("properties") or {}
        required = set(tool.parameters.get("required") or [])
        args = "; ".join(f"{k} ({v.get('type', 'any')}{', required' if k in required else ''})"
                         f"{': ' + v['description'] if v.get('description') else ''}" for k, v in props.items())
        text = f"Tool {tool.name}: {tool.description} Arguments: {args or 'none'}."
        yield cpt_doc(f"tool:{tool.name}", "tool", f"{kb} | tool documentation | {tool.name}", text, "always_train")


def domain_documents(domain: Any, seed: int) -> list[dict[str, Any]]:
    return [*domain.cpt_documents(seed), *policy_docs(domain), *tool_docs(domain)]
