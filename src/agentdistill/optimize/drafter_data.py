"""Drafter training data in the paper's three variants, as chat records TRL's SFT stage reads.

  external   public conversations (chitchat-dataset): open-domain text, no agent calls
  synthetic  the run's simulator agent calls, each answered again by the student itself (the paper trained its
             EAGLE head on pi_BF16's own responses: a drafter should predict the model it drafts for)
  combined   both, shuffled together

Regenerated answers come from the student served by vLLM with no tool parser, so an answer is the exact text the
student wrote (tool calls included as `<tool_call>` text) and renders back to the student's tokens. The synthetic
set is cached per student under RUN/datasets/drafter/ so a second drafter, or a resumed run, does not regenerate.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import socket
from pathlib import Path
from typing import Any

from agentdistill.data.jsonl import write_jsonl
from agentdistill.errors import UserError
from agentdistill.fileio import read_jsonl
from agentdistill.paths import RunPaths

SOURCES = ("external", "synthetic", "combined")


def external_records(n: int, seed: int = 0, max_turns: int = 8) -> list[dict[str, Any]]:
    """`n` chitchat conversations as user/assistant turns (speaker A asks, B answers)."""
    from agentdistill.data.cpt_public import load_conversations

    conversations = load_conversations()
    rng = random.Random(seed)
    picked = rng.sample(conversations, min(n, len(conversations)))
    out = []
    for cid, text in picked:
        turns = [line.split(": ", 1)[1] for line in text.splitlines() if ": " in line][:max_turns]
        messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
        if messages and messages[-1]["role"] == "user":
            messages.pop()
        if len(messages) >= 2:
            out.append({"messages": messages, "agent": "public", "source": "external", "id": f"chitchat:{cid}"})
    return out


def agent_calls(path: Path, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """A seeded sample of `n` SFT records of a run: the prompts the student reads in the MAS."""
    if not path.is_file():
        raise UserError(f"no agent calls at {path}: run 'agentdistill datasets RUN' first")
    records = [r for r in read_jsonl(path) if r.get("messages") and r["messages"][-1].get("role") == "assistant"]
    if not records:
        raise UserError(f"{path} holds no agent calls")
    rng = random.Random(seed)
    return rng.sample(records, min(n, len(records)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def regenerate(records: list[dict[str, Any]], model: Path, *, max_tokens: int = 256, concurrency: int = 16,
               **serve: Any) -> list[dict[str, Any]]:
    """Each record's last answer replaced by `model`'s own greedy answer to the same prompt (vLLM, raw text);
    `serve` holds ServeConfig fields (port: a free one by default)."""
    from agentdistill.bench.serving import drive
    from agentdistill.serve.vllm_server import ServeConfig, VLLMServer

    calls = [{"agent": r.get("agent", "?"), "messages": r["messages"][:-1]} for r in records]
    config = ServeConfig(model=model, tool_parser=None, max_num_seqs=concurrency,
                         **{"port": free_port(), "max_model_len": 4096, **serve})
    with VLLMServer(config) as server:
        _, rows = asyncio.run(drive(server.url, config.served_model_name, calls, concurrency, max_tokens))
    return [{**r, "messages": [*r["messages"][:-1], {"role": "assistant", "content": row["content"]}],
             "source": "synthetic"} for r, row in zip(records, rows, strict=True)]


def model_tag(model: Path) -> str:
    """Identifies a checkpoint's weights cheaply (names, sizes, mtimes): a retrained student regenerates."""
    h = hashlib.sha256()
    for f in sorted(Path(model).glob("*.safetensors")):
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:12]


def student_answers(run_dir: Path, student: Path, sizes: dict[str, int], seed: int = 0,
                    **serve: Any) -> dict[str, list[dict[str, Any]]]:
    """Per split (train, val), a seeded sample of the run's agent calls answered by `student`; one vLLM session
    answers every split not yet cached in RUN/datasets/drafter/."""
    paths = RunPaths(run_dir)
    cache = {split: paths.datasets / "drafter" / f"{split}-{model_tag(student)}-{n}-{seed}.jsonl"
             for split, n in sizes.items()}
    out = {split: list(read_jsonl(path)) for split, path in cache.items() if path.is_file()}
    todo = {split: agent_calls(paths.dataset("sft", split), n, seed) for split, n in sizes.items() if split not in out}
    if todo:
        flat = [r for records in todo.values() for r in records]
        answered = iter(regenerate(flat, student, **serve))
        for split, records in todo.items():
            out[split] = [next(answered) for _ in records]
            write_jsonl(cache[split], out[split])
    return out


def drafter_records(source: str, synthetic: list[dict[str, Any]], n: int, seed: int = 0) -> list[dict[str, Any]]:
    """The training records of one data variant from the student-answered calls; `combined` holds both sets."""
    if source not in SOURCES:
        raise UserError(f"unknown drafter data {source!r}: use {', '.join(SOURCES)}")
    out: list[dict[str, Any]] = []
    if source in ("synthetic", "combined"):
        out += synthetic
    if source in ("external", "combined"):
        out += external_records(n, seed)
    random.Random(seed).shuffle(out)
    return out
