"""Sharded, resumable trace store: one JSONL line per episode (its agent calls inside), one shard per worker.

A line is written whole and flushed, so a killed run loses at most the episode in flight; on resume a
torn last line is cut off and finished episodes are skipped. System prompts and tool schemas repeat in
every call, so they are stored once in prompts.json and referenced as "@prompt:<id>" / "@tools:<id>".
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from agentdistill.errors import UserError
from agentdistill.fileio import atomic_write_json, read_jsonl
from agentdistill.mas.prompts import prompt_id

SHARD_GLOB = "episodes-*.jsonl"


EPISODE_KEYS = ("episode_id", "scenario", "turns", "calls", "stats", "world_hash")
SCENARIO_KEYS = ("scenario_id", "scenario_type", "long_tail", "gold_actions", "required_outputs")


def check_record(ep: dict[str, Any], shard: Path) -> None:
    """A record must have what the judge and the dataset builders read, or it is a malformed trace file."""
    missing = [k for k in EPISODE_KEYS if k not in ep]
    scenario = ep.get("scenario")
    if not missing and isinstance(scenario, dict):
        missing = [f"scenario.{k}" for k in SCENARIO_KEYS if k not in scenario]
    elif not missing:
        missing = ["scenario"]
    if missing or not isinstance(ep["calls"], list) or not isinstance(ep["turns"], list):
        raise UserError(f"malformed trace file {shard}: episode {ep.get('episode_id')!r} lacks "
                        f"{', '.join(missing) or 'well-formed turns/calls'}")


class TraceStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.traces = self.root / "traces"
        self._registry: dict[str, Any] | None = None

    # ------------------------------------------------------------------------------------------ write
    def prepare(self) -> None:
        self.traces.mkdir(parents=True, exist_ok=True)

    def shards(self) -> list[Path]:
        return sorted(self.traces.glob(SHARD_GLOB))

    def repair_and_completed(self) -> set[str]:
        """Cut torn tails left by a killed writer; return the ids of finished episodes."""
        done: set[str] = set()
        for shard in self.shards():
            data = shard.read_bytes()
            if data and not data.endswith(b"\n"):
                with shard.open("r+b") as fh:
                    fh.truncate(data.rfind(b"\n") + 1)
            for rec in read_jsonl(shard, tolerate_torn_tail=False):
                done.add(rec["episode_id"])
        return done

    def open_shard(self, worker: int) -> TextIO:
        return (self.traces / f"episodes-{worker:03d}.jsonl").open("a", encoding="utf-8")

    def register(self, prompts: dict[str, str], tools: list[dict[str, Any]] | None) -> None:
        """Store system prompts and tool schemas once (merged with what is there)."""
        registry = self._load_registry()
        for text in prompts.values():
            registry["prompts"][prompt_id(text)] = text
        if tools is not None:
            registry["tools"][prompt_id(json.dumps(tools, sort_keys=True))] = tools
        atomic_write_json(self.traces / "prompts.json", registry)
        self._registry = registry

    @staticmethod
    def compact(ep: dict[str, Any]) -> dict[str, Any]:
        """Replace repeated system prompts and tool lists with their ids."""
        for call in ep["calls"]:
            msgs = call["messages"]
            if msgs and msgs[0]["role"] == "system" and not msgs[0]["content"].startswith("@prompt:"):
                msgs[0] = {"role": "system", "content": "@prompt:" + prompt_id(msgs[0]["content"])}
            if isinstance(call.get("tools"), list):
                call["tools"] = "@tools:" + prompt_id(json.dumps(call["tools"], sort_keys=True))
        return ep

    @staticmethod
    def write(fh: TextIO, ep: dict[str, Any]) -> None:
        fh.write(json.dumps(TraceStore.compact(ep), ensure_ascii=False, separators=(",", ":")) + "\n")
        fh.flush()

    # ------------------------------------------------------------------------------------------- read
    def _load_registry(self) -> dict[str, Any]:
        if self._registry is None:
            path = self.traces / "prompts.json"
            if path.exists():
                try:
                    self._registry = json.loads(path.read_text())
                except json.JSONDecodeError:
                    raise UserError(f"malformed trace file {path}: not valid JSON") from None
            else:
                self._registry = {"prompts": {}, "tools": {}}
        return self._registry

    def expand(self, call: dict[str, Any]) -> dict[str, Any]:
        """A call record with its system prompt and tools written out again."""
        reg = self._load_registry()
        msgs = call.get("messages") or []
        if msgs and str(msgs[0].get("content", "")).startswith("@prompt:"):
            key = msgs[0]["content"][len("@prompt:"):]
            if key not in reg["prompts"]:
                raise UserError(f"malformed traces in {self.traces}: prompt {key} missing from prompts.json")
            call = {**call, "messages": [{"role": "system", "content": reg["prompts"][key]}, *msgs[1:]]}
        tools = call.get("tools")
        if isinstance(tools, str) and tools.startswith("@tools:"):
            call = {**call, "tools": reg["tools"].get(tools[len("@tools:"):])}
        return call

    def episodes(self, expand: bool = True) -> Iterator[dict[str, Any]]:
        if not self.traces.is_dir() or not self.shards():
            raise UserError(f"no traces found in {self.root} (expected {self.traces}/{SHARD_GLOB})")
        for shard in self.shards():
            for ep in read_jsonl(shard):
                check_record(ep, shard)
                if expand:
                    ep["calls"] = [self.expand(c) for c in ep["calls"]]
                yield ep

    def calls(self) -> Iterator[dict[str, Any]]:
        """Every agent-call record, expanded: what dataset building reads."""
        for ep in self.episodes():
            yield from ep["calls"]

    def rewrite(self, transform: Any) -> None:
        """Apply transform(episode) to every episode, shard by shard, atomically."""
        for shard in self.shards():
            tmp = shard.with_suffix(".jsonl.tmp")
            with tmp.open("w", encoding="utf-8") as out:
                for ep in read_jsonl(shard):
                    check_record(ep, shard)
                    ep["calls"] = [self.expand(c) for c in ep["calls"]]
                    transform(ep)
                    out.write(json.dumps(self.compact(ep), ensure_ascii=False, separators=(",", ":")) + "\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, shard)
