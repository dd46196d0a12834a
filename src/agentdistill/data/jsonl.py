"""Atomic JSONL output: records stream into a temporary file that replaces the target only when complete.

Datasets can be gigabytes (every SFT record repeats its system prompt), so they are streamed, not built as
one string; an interrupted build leaves the previous files (or none), never a truncated one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any


class AtomicJsonl:
    """`with AtomicJsonl(path) as out: out.write(rec)`; renamed over `path` on a clean exit, deleted otherwise."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.count = 0

    def __enter__(self) -> AtomicJsonl:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        self.fh = os.fdopen(fd, "w", encoding="utf-8")
        return self

    def write(self, record: dict[str, Any]) -> None:
        self.fh.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
        self.count += 1

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            if exc_type is None:
                self.fh.flush()
                os.fsync(self.fh.fileno())
            self.fh.close()
            if exc_type is None:
                os.chmod(self.tmp, 0o644)  # mkstemp creates 0600; datasets are meant to be shared
                os.replace(self.tmp, self.path)
        finally:
            if os.path.exists(self.tmp):
                os.unlink(self.tmp)


def write_jsonl(path: str | Path, records: list[dict[str, Any]]) -> int:
    with AtomicJsonl(path) as out:
        for rec in records:
            out.write(rec)
    return out.count
