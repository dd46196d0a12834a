"""Writing a domain's curated hard negatives (`Domain.hard_negatives_path`, checked by data/curated.py): DPO
cases on rule boundaries, built with the real role prompts and real tool results from the domain's world.

`chosen` is the reference output for the input, so the judge accepts it; `rejected` is the boundary mistake the
case is about. A domain's generator subclasses `CaseBook` with its own picks and writes the JSONL it ships.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from agentdistill.mas.prompts import build_prompts, render_input


class CaseBook:
    def __init__(self, domain: Any):
        self.domain = domain
        self.world = domain.new_world()
        self.system = build_prompts(domain).system
        self.today = domain.today
        self.cases: list[dict[str, Any]] = []

    def day(self, n: int) -> str:
        return (dt.date.fromisoformat(self.today) + dt.timedelta(days=n)).isoformat()

    def next_weekday(self, weekday: int) -> str:
        for n in range(1, 8):
            if dt.date.fromisoformat(self.day(n)).weekday() == weekday:
                return self.day(n)
        raise AssertionError

    def add(self, agent: str, rule: str, payload: dict[str, Any], chosen: dict[str, Any], rejected: dict[str, Any],
            note: str, extra: list[dict[str, Any]] | None = None) -> None:
        payload = {"history": [], "today": self.today, **payload}
        prompt = [{"role": "system", "content": self.system[agent]}, {"role": "user", "content": render_input(payload)},
                  *(extra or [])]
        self.cases.append({"id": f"hn{len(self.cases) + 1:03d}", "agent": agent, "rule": rule, "prompt": prompt,
                           "chosen": [chosen], "rejected": [rejected], "note": note})

    @staticmethod
    def text(s: str) -> dict[str, Any]:
        return {"role": "assistant", "content": s}

    @staticmethod
    def call(name: str, args: dict[str, Any], n: int) -> dict[str, Any]:
        fn = {"name": name, "arguments": json.dumps(args, sort_keys=True)}
        return {"role": "assistant", "content": "", "tool_calls": [{"id": f"call_{n}", "type": "function", "function": fn}]}

    def run(self, steps: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
        """Executor transcript (assistant tool call + tool result) for these calls on a copy of the world."""
        world, out = self.world.copy(), []
        for n, (name, args) in enumerate(steps):
            out += [self.call(name, args, n), {"role": "tool", "tool_call_id": f"call_{n}",
                                               "content": json.dumps(world.call_tool(name, args), sort_keys=True)}]
        return out

    def write(self, path: Path) -> None:
        path.write_text("".join(json.dumps(x, ensure_ascii=False, sort_keys=True) + "\n" for x in self.cases),
                        encoding="utf-8")
        print(f"wrote {len(self.cases)} cases to {path}")
