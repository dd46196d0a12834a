"""Is a run directory a captured one? Later stages (datasets, eval) treat a run whose every episode came from
the user's own MAS (agentdistill proxy / import-logs) as having no built-in domain: nothing of ours is added to
it, and it is evaluated by running that MAS again, not ours."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentdistill.capture.records import SOURCE
from agentdistill.simulate.store import TraceStore


def captured_run(run: str | Path | Any) -> bool:
    """True when the run (a directory or its TraceStore) holds episodes and every one was captured. A run mixing
    captured and simulated episodes keeps its domain: the simulated ones were made in it."""
    store = run if isinstance(run, TraceStore) else TraceStore(Path(run))
    if not store.traces.is_dir() or not store.shards():
        return False
    seen = False
    for ep in store.episodes(expand=False):  # stops at the first simulated episode: a big simulated run is cheap
        if ep.get("source") != SOURCE:
            return False
        seen = True
    return seen
