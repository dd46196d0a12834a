"""Live calls grouped into episodes: by the `X-Episode-Id` header, else by an idle gap between calls.

An episode closes when no call of it has been in flight for `idle_gap_s`, or when the proxy shuts down; it is
then written whole (writer.py). Until it closes, each finished call is also appended to a journal
(RUN/capture/pending.jsonl), so a proxy killed outright loses nothing: the next start writes the journalled
episodes out (exit "recovered") before it accepts calls. Calls without the header share one episode at a time,
so concurrent conversations without it are merged; that is what the header is for.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agentdistill.capture.records import episode_record
from agentdistill.capture.writer import TraceWriter
from agentdistill.fileio import atomic_write_text, read_jsonl


@dataclass
class OpenEpisode:
    episode_id: str
    grouped_by: str  # "header" | "idle_gap"
    key: str | None  # the header value; None for the idle-gap episode
    started_at: float = field(default_factory=time.time)
    calls: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    last_activity: float = 0.0


class EpisodeBook:
    def __init__(self, writer: TraceWriter, idle_gap_s: float, capture: dict[str, Any],
                 clock: Callable[[], float] = time.monotonic):
        self.writer, self.idle_gap_s, self.capture, self.clock = writer, idle_gap_s, capture, clock
        self.journal = writer.root / "capture" / "pending.jsonl"
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        self.open: dict[str | None, OpenEpisode] = {}  # by header value; None = the idle-gap episode
        self._seq = 0
        self._journal_fh: Any = None

    # ---------------------------------------------------------------------------------------- calls
    def begin(self, header_id: str | None) -> OpenEpisode:
        """The episode a call starting now belongs to (opened if needed); pair with `finish`."""
        key = header_id.strip()[:200] if header_id and header_id.strip() else None
        ep = self.open.get(key)
        if ep is not None and ep.in_flight == 0 and self.clock() - ep.last_activity > self.idle_gap_s:
            self._close(ep, "idle")
            ep = None
        if ep is None:
            ep = OpenEpisode(self._new_id(key), "header" if key else "idle_gap", key)
            self.open[key] = ep
        ep.in_flight += 1
        ep.last_activity = self.clock()
        return ep

    def finish(self, ep: OpenEpisode, call: dict[str, Any] | None) -> None:
        """A call ended; `call` is its record, None when there is nothing to record (an upstream error)."""
        ep.in_flight -= 1
        ep.last_activity = self.clock()
        if call is None:
            return
        ep.calls.append(call)
        if self._journal_fh is None:
            self._journal_fh = self.journal.open("a", encoding="utf-8")
        line = {"episode_id": ep.episode_id, "grouped_by": ep.grouped_by, "started_at": ep.started_at, "call": call}
        self._journal_fh.write(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._journal_fh.flush()

    def _new_id(self, key: str | None) -> str:
        if key is not None:
            return self.writer.unique_id(key)
        self._seq += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        return self.writer.unique_id(f"cap-{stamp}-{self._seq:04d}")

    # -------------------------------------------------------------------------------------- closing
    def close_idle(self) -> int:
        """Close every episode idle for longer than the gap; returns how many were written."""
        now = self.clock()
        idle = [ep for ep in self.open.values() if ep.in_flight == 0 and now - ep.last_activity > self.idle_gap_s]
        for ep in idle:
            self._close(ep, "idle")
        return len(idle)

    def close_all(self, exit_reason: str = "shutdown") -> None:
        for ep in list(self.open.values()):
            self._close(ep, exit_reason)
        if self._journal_fh is not None:
            self._journal_fh.close()
            self._journal_fh = None

    def _close(self, ep: OpenEpisode, exit_reason: str) -> None:
        del self.open[ep.key]
        self.writer.reserved.discard(ep.episode_id)
        if ep.calls:
            self.writer.write(episode_record(ep.episode_id, ep.calls, exit_reason,
                                             {**self.capture, "grouped_by": ep.grouped_by,
                                              "started_at": ep.started_at}))
        self._rewrite_journal()

    def _rewrite_journal(self) -> None:
        """Keep only the calls of episodes still open (atomically: a crash leaves the old or the new one)."""
        if self._journal_fh is not None:
            self._journal_fh.close()
            self._journal_fh = None
        lines = [json.dumps({"episode_id": ep.episode_id, "grouped_by": ep.grouped_by, "started_at": ep.started_at,
                             "call": call}, ensure_ascii=False, separators=(",", ":"))
                 for ep in self.open.values() for call in ep.calls]
        atomic_write_text(self.journal, "".join(line + "\n" for line in lines))

    # -------------------------------------------------------------------------------------- restart
    def recover(self) -> int:
        """Write out the episodes a killed proxy left in the journal; returns how many."""
        if not Path(self.journal).exists():
            return 0
        pending: dict[str, list[dict[str, Any]]] = defaultdict(list)
        meta: dict[str, dict[str, Any]] = {}
        for line in read_jsonl(self.journal):
            if line.get("episode_id") in self.writer.done or not isinstance(line.get("call"), dict):
                continue  # written before the kill, journal not yet trimmed
            pending[line["episode_id"]].append(line["call"])
            meta.setdefault(line["episode_id"], line)
        for episode_id, calls in pending.items():
            capture = {**self.capture, "grouped_by": meta[episode_id].get("grouped_by"),
                       "started_at": meta[episode_id].get("started_at")}
            self.writer.write(episode_record(episode_id, calls, "recovered", capture))
        atomic_write_text(self.journal, "")
        return len(pending)
