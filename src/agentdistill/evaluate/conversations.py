"""The run report's view of simulator fidelity: the training mix beside the suites the student is judged on
(lengths, wording diversity), as eval/conversations.{json,md,png}."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentdistill.fileio import atomic_write_json, atomic_write_text
from agentdistill.simulate.fidelity import FIDELITY_COLUMNS, fidelity_rows


def _fidelity(summary: Path) -> dict[str, Any] | None:
    try:
        return json.loads(summary.read_text()).get("fidelity")
    except (OSError, json.JSONDecodeError):
        return None


def conversation_report(run_dir: str | Path, evaluated: str = "teacher") -> dict[str, Any]:
    """Training conversations (RUN/summary.json) against the evaluation suites one model was run on."""
    run_dir = Path(run_dir)
    runs: dict[str, dict[str, Any]] = {}
    if train := _fidelity(run_dir / "summary.json"):
        runs["train"] = train
    for suite in ("heldout", "heldout_phrasing", "stress", "injection"):
        if fid := _fidelity(run_dir / "eval" / evaluated / suite / "summary.json"):
            runs[suite] = fid
    lines = ["| " + " | ".join(FIDELITY_COLUMNS) + " |", "|" + "---|" * len(FIDELITY_COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in fidelity_rows(runs)]
    markdown = "\n".join(lines) + ("\n\nturns = user turns per conversation, calls = agent calls; distinct-n = distinct "
                                   "word n-grams / all n-grams of the user turns; templates = paraphrase templates "
                                   "used.\n")
    out = run_dir / "eval"
    result = {"runs": runs, "markdown": markdown}
    atomic_write_json(out / "conversations.json", result)
    atomic_write_text(out / "conversations.md", markdown)
    if runs:
        from agentdistill.evaluate.plots import plot_conversation_lengths

        plot_conversation_lengths(runs, out / "conversation_lengths.png")
    return result
