"""`agentdistill import-logs`: calls a MAS already logged in OpenAI chat format -> our trace format.

One JSON object per line: {"messages": [...], "tools"?: [...], "response" | "choices": ...,
"metadata"?: {"episode_id", "role", "turn", "latency_s"}}. "response" may be a whole chat.completion
(with "choices"), an assistant message, or its text. Lines sharing an episode_id form one episode (in file
order); a line without one is an episode of its own. Roles come from the metadata, else the system prompt as
in the proxy (mapping file, fingerprint, agent-N). Rerunning the same import skips the episodes already stored,
so an interrupted import is finished by running it again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentdistill.capture.records import call_record, episode_record, system_prompt
from agentdistill.capture.roles import RoleTagger, load_mapping
from agentdistill.capture.writer import TraceWriter
from agentdistill.errors import UserError


def _response(rec: dict[str, Any], where: str) -> dict[str, Any]:
    """The line's answer as a chat.completion object."""
    resp = rec.get("response", rec if "choices" in rec else None)
    if isinstance(resp, str):
        return {"choices": [{"message": {"role": "assistant", "content": resp}}]}
    if isinstance(resp, dict) and isinstance(resp.get("choices"), list) and resp["choices"]:
        if not isinstance(resp["choices"][0], dict):
            raise UserError(f"{where}: choices[0] is not an object")
        return resp
    if isinstance(resp, dict) and ("content" in resp or "tool_calls" in resp):
        return {"choices": [{"message": resp, "finish_reason": resp.get("finish_reason")}],
                **({"usage": rec["usage"]} if isinstance(rec.get("usage"), dict) else {})}
    raise UserError(f"{where}: no answer; give \"response\" (a chat.completion, an assistant message or its text) "
                    "or \"choices\"")


def _line(raw: str, where: str) -> dict[str, Any]:
    try:
        rec = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UserError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(rec, dict):
        raise UserError(f"{where}: not a JSON object")
    if not isinstance(rec.get("messages"), list) or not rec["messages"] or \
            not all(isinstance(m, dict) and "role" in m for m in rec["messages"]):
        raise UserError(f"{where}: \"messages\" must be a non-empty list of chat messages with a role")
    if "tools" in rec and not isinstance(rec["tools"], list):
        raise UserError(f"{where}: \"tools\" must be a list of tool schemas")
    if "metadata" in rec and not isinstance(rec["metadata"], dict):
        raise UserError(f"{where}: \"metadata\" must be an object")
    return rec


def read_log(path: Path, tagger: RoleTagger) -> dict[str, list[dict[str, Any]]]:
    """Call records by episode id, in file order; every line is checked before anything is written."""
    episodes: dict[str, list[dict[str, Any]]] = {}
    with path.open(encoding="utf-8") as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            where = f"{path} line {number}"
            rec = _line(raw, where)
            meta = rec.get("metadata") or {}
            request = {k: v for k, v in rec.items() if k not in ("response", "choices", "metadata", "usage")}
            role, source = tagger.tag(system_prompt(rec["messages"]), meta.get("role"))
            try:
                turn = int(meta["turn"]) if meta.get("turn") is not None else None
                latency = float(meta.get("latency_s") or 0.0)
            except (TypeError, ValueError):
                raise UserError(f"{where}: metadata turn must be an integer and latency_s a number") from None
            call = call_record(request, _response(rec, where), agent=role, role_source=source, turn=turn,
                               latency_s=latency, started_at=None)
            episode = str(meta.get("episode_id") or f"{path.stem}-{number:06d}")
            episodes.setdefault(episode, []).append(call)
    if not episodes:
        raise UserError(f"{path} holds no log lines")
    return episodes


def import_logs(log_file: str | Path, run_dir: str | Path, roles: str | Path | None = None) -> dict[str, int]:
    """Write every episode of the log not yet in RUN_DIR/traces; returns counts."""
    path = Path(log_file)
    if not path.is_file():
        raise UserError(f"log file {path} does not exist")
    rules = load_mapping(roles)
    with TraceWriter(run_dir, durable=False) as writer:
        tagger = RoleTagger(rules, writer.root / "capture" / "roles.json")
        episodes = read_log(path, tagger)
        skipped = 0
        for episode_id, calls in episodes.items():
            if episode_id in writer.done:
                skipped += 1
                continue
            writer.write(episode_record(episode_id, calls, "imported", {"via": "import-logs", "file": str(path)}))
        return {**writer.written, "skipped": skipped}
