"""The promotion gate: may the student replace the teacher?

On each gated suite (held-out and stress) the student's pass rate and pass^k are compared with the teacher's on
the same scenarios. The difference (student - teacher) gets a bootstrap confidence interval, resampling scenarios
(paired: both models played the same ones); the student is refused on a suite when the whole interval lies
below zero, i.e. when it is worse than the teacher beyond what the sample's noise explains. A small sample
gives a wide interval and so a weak gate: the interval is reported beside the verdict for that reason.
"""

from __future__ import annotations

import random
from math import comb
from pathlib import Path
from typing import Any

from agentdistill.errors import UserError
from agentdistill.paths import RunPaths

GATED_SUITES = ("heldout", "stress")
LEVEL = 0.95
ROUNDS = 2000


def suite_trials(suite_dir: Path) -> dict[str, list[bool]]:
    """scenario_id -> pass of each trial, from an evaluated suite's traces."""
    from agentdistill.simulate.store import TraceStore

    trials: dict[str, list[bool]] = {}
    for ep in TraceStore(suite_dir).episodes(expand=False):
        trials.setdefault(ep["scenario"]["scenario_id"], []).append(bool((ep.get("judgement") or {}).get("pass")))
    return trials


def pass_k(trials: list[bool], k: int) -> float:
    """Unbiased estimate that k trials of this scenario all pass (tau-bench's pass^k for one task)."""
    return comb(sum(trials), k) / comb(len(trials), k)


def bootstrap_difference(student: dict[str, list[bool]], teacher: dict[str, list[bool]], k: int = 1,
                         rounds: int = ROUNDS, level: float = LEVEL, seed: int = 0) -> dict[str, Any]:
    """Student - teacher pass^k over their common scenarios, with a percentile bootstrap interval."""
    common = sorted(set(student) & set(teacher))
    if not common:
        raise UserError("the student and the teacher share no evaluated scenario: evaluate both on the same suites")
    s = [pass_k(student[c], k) for c in common]
    t = [pass_k(teacher[c], k) for c in common]
    n = len(common)
    rng = random.Random(seed)
    diffs = []
    for _ in range(rounds):
        idx = [rng.randrange(n) for _ in range(n)]
        diffs.append(sum(s[i] - t[i] for i in idx) / n)
    diffs.sort()
    lo, hi = diffs[int((1 - level) / 2 * rounds)], diffs[min(rounds - 1, int((1 + level) / 2 * rounds))]
    return {"k": k, "scenarios": n, "student": round(sum(s) / n, 4), "teacher": round(sum(t) / n, 4),
            "difference": round((sum(s) - sum(t)) / n, 4), "ci": [round(lo, 4), round(hi, 4)], "level": level,
            "worse": hi < 0}


def promotion_gate(run_dir: Path, student: str, teacher: str = "teacher",
                   suites: tuple[str, ...] = GATED_SUITES) -> dict[str, Any]:
    """The gate on every suite both models were evaluated on; `promote` is None when a gated suite is missing."""
    eval_dir = RunPaths(Path(run_dir)).eval
    out: dict[str, Any] = {"student": student, "teacher": teacher, "level": LEVEL, "suites": {}, "missing": []}
    for suite in suites:
        dirs = {name: eval_dir / name / suite for name in (student, teacher)}
        if not all((d / "traces").is_dir() for d in dirs.values()):
            out["missing"].append(suite)
            continue
        s, t = suite_trials(dirs[student]), suite_trials(dirs[teacher])
        if not s or not t:
            out["missing"].append(suite)
            continue
        trials = min(min(map(len, s.values())), min(map(len, t.values())))
        out["suites"][suite] = {"pass^k": [bootstrap_difference(s, t, k) for k in range(1, trials + 1)]}
    worse = [f"{suite} pass^{row['k']}" for suite, v in out["suites"].items() for row in v["pass^k"] if row["worse"]]
    out["worse_on"] = worse
    out["promote"] = None if out["missing"] else not worse
    out["verdict"] = ("not decided: no evaluation of " + ", ".join(out["missing"]) + f" for both {student} and "
                      f"{teacher}" if out["missing"] else
                      f"{student} may replace {teacher}" if not worse else
                      f"{student} stays behind {teacher}: worse beyond the {int(100 * LEVEL)}% interval on "
                      + ", ".join(worse))
    return out
