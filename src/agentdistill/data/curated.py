"""A domain's curated hard negatives (`Domain.hard_negatives_path`, or a user's file): loading and format checks.

Users extend these JSONL files by hand, so every line is validated and a broken one is reported by line
number instead of failing deep inside training.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentdistill.errors import UserError

FIELDS = ("id", "agent", "rule", "prompt", "chosen", "rejected", "note")
AGENTS = ("understander", "planner", "evaluator", "executor", "explainer")


def _check(case: Any, where: str) -> None:
    if not isinstance(case, dict) or any(k not in case for k in FIELDS):
        raise UserError(f"{where}: a curated case needs the fields {', '.join(FIELDS)}")
    if case["agent"] not in AGENTS:
        raise UserError(f"{where}: unknown agent {case['agent']!r}")
    prompt = case["prompt"]
    if not isinstance(prompt, list) or len(prompt) < 2 or prompt[0].get("role") != "system":
        raise UserError(f"{where}: prompt must be a message list starting with the role's system prompt")
    for side in ("chosen", "rejected"):
        msgs = case[side]
        if not (isinstance(msgs, list) and len(msgs) == 1 and msgs[0].get("role") == "assistant"):
            raise UserError(f"{where}: {side} must be a list with one assistant message")
    if case["chosen"] == case["rejected"]:
        raise UserError(f"{where}: chosen and rejected are identical")


def load_curated(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        raise UserError(f"curated hard-negative file {path} not found")
    cases, ids = [], set()
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{i}"
        try:
            case = json.loads(line)
        except json.JSONDecodeError:
            raise UserError(f"{where}: not valid JSON") from None
        _check(case, where)
        if case["id"] in ids:
            raise UserError(f"{where}: duplicate id {case['id']!r}")
        ids.add(case["id"])
        cases.append(case)
    return cases
