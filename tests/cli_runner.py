"""Run the installed `agentdistill` command as a user would: a real process, its exit code and output."""

from __future__ import annotations

import subprocess
from pathlib import Path


def run_cli(*args: str | Path, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["agentdistill", *map(str, args)], check=False, capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)
