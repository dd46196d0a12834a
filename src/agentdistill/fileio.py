"""Atomic file writes and JSONL reading, so that an interrupt never leaves a half-written file."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentdistill.errors import UserError


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over the target."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def read_jsonl(path: str | Path, *, tolerate_torn_tail: bool = True) -> Iterator[dict[str, Any]]:
    """Yield records; a torn last line (a killed writer) is skipped, any other bad line is a UserError."""
    path = Path(path)
    with path.open(encoding="utf-8") as fh:
        lines = fh.readlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            last = i == len(lines) - 1 and not line.endswith("\n")
            if tolerate_torn_tail and last:
                return
            raise UserError(f"malformed trace file {path}: line {i + 1} is not valid JSON") from None
        if not isinstance(rec, dict):
            raise UserError(f"malformed trace file {path}: line {i + 1} is not a JSON object")
        yield rec


def ensure_writable_dir(path: str | Path) -> Path:
    """Create the folder if needed and prove we can write there, or raise a one-line UserError."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write_probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"output directory {path} is not writable ({exc.strerror or exc})") from None
    return path
