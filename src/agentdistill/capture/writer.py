"""Captured episodes into a run's traces/, through TraceStore: the same files `simulate` writes.

One writer per run directory (the run's lock, as simulate and verify take it). Each episode is one line,
written whole and flushed after its system prompts and tool lists are in prompts.json, so a reader never meets
an id it cannot expand and a killed writer loses at most the line in flight (cut off on the next start).
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Self

from agentdistill.fileio import ensure_writable_dir
from agentdistill.mas.prompts import prompt_id
from agentdistill.simulate.store import TraceStore

SHARD = 0  # captures append to episodes-000.jsonl; the lock keeps it to one writer


class TraceWriter:
    def __init__(self, run_dir: str | Path, durable: bool = True):
        """`durable`: fsync each episode (the proxy: a crash must not lose closed episodes); an import, which a
        rerun repeats idempotently, only flushes."""
        self.durable = durable
        self.root = ensure_writable_dir(run_dir)
        self.store = TraceStore(self.root)
        self.done: set[str] = set()
        self.reserved: set[str] = set()
        self.written = {"episodes": 0, "calls": 0}
        self._known: set[str] = set()
        self._stack = ExitStack()
        self._fh: Any = None

    def __enter__(self) -> Self:
        from agentdistill.simulate.runner import exclusive_lock

        self._stack.enter_context(exclusive_lock(self.root))
        self.store.prepare()
        self.done = self.store.repair_and_completed()
        self._fh = self._stack.enter_context(self.store.open_shard(SHARD))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def unique_id(self, wanted: str) -> str:
        """`wanted`, or `wanted.2`, `.3`... when an episode of that id is already stored or open."""
        candidate, n = wanted, 1
        while candidate in self.done or candidate in self.reserved:
            n += 1
            candidate = f"{wanted}.{n}"
        self.reserved.add(candidate)
        return candidate

    def _register(self, ep: dict[str, Any]) -> None:
        prompts: dict[str, str] = {}
        tools: dict[str, list[Any]] = {}
        for call in ep["calls"]:
            msgs = call["messages"]
            if msgs and msgs[0].get("role") == "system" and not msgs[0]["content"].startswith("@prompt:"):
                prompts.setdefault(prompt_id(msgs[0]["content"]), msgs[0]["content"])
            if isinstance(call.get("tools"), list):
                tools.setdefault(prompt_id(json.dumps(call["tools"], sort_keys=True)), call["tools"])
        new_prompts = {k: v for k, v in prompts.items() if k not in self._known}
        new_tools = [(k, v) for k, v in tools.items() if "tools:" + k not in self._known]
        if new_prompts:
            self.store.register(new_prompts, None)
            self._known.update(new_prompts)
        for key, schema in new_tools:
            self.store.register({}, schema)
            self._known.add("tools:" + key)

    def write(self, ep: dict[str, Any]) -> None:
        self._register(ep)
        TraceStore.write(self._fh, ep)
        if self.durable:
            os.fsync(self._fh.fileno())
        self.done.add(ep["episode_id"])
        self.reserved.discard(ep["episode_id"])
        self.written["episodes"] += 1
        self.written["calls"] += len(ep["calls"])
