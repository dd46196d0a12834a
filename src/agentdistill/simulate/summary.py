"""The numbers a simulation run reports: volume, speed, pass rates by scenario type and split, faults."""

from __future__ import annotations

from collections import Counter, defaultdict
from math import comb
from typing import Any

from agentdistill.fileio import atomic_write_json
from agentdistill.mas.prompts import ROLES
from agentdistill.simulate.fidelity import FidelityTally


def pass_hat_k(trials: dict[str, list[bool]]) -> dict[str, float]:
    """tau-bench's pass^k: the chance that k trials of the same task all pass, C(c,k)/C(n,k) averaged over tasks."""
    n = min((len(v) for v in trials.values()), default=0)
    out = {}
    for k in range(1, n + 1):
        out[str(k)] = round(sum(comb(sum(v), k) / comb(len(v), k) for v in trials.values()) / len(trials), 4)
    return out


def summarize(store: Any, cfg: Any = None, elapsed_s: float | None = None, episodes_run: int | None = None,
              write: bool = True) -> dict[str, Any]:
    by_type: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    split = {"core": [0, 0], "long_tail": [0, 0]}
    agents: Counter = Counter()
    wrong: Counter = Counter()
    malformed: Counter = Counter()
    totals = Counter()
    trials: dict[str, list[bool]] = defaultdict(list)
    errors: Counter = Counter()  # episodes ended by an unexpected exception, by "stage:ExceptionType"
    limits: Counter = Counter()  # resource limits that fired (docs/how-it-works.md)
    verifier: Counter = Counter()
    llm_judge: Counter = Counter()
    tally = FidelityTally()
    for ep in store.episodes(expand=False):
        tally.add(ep)
        j = ep.get("judgement") or {}
        ok = bool(j.get("pass"))
        sc = ep["scenario"]
        trials[sc["scenario_id"]].append(ok)
        by_type[sc["scenario_type"]][0] += 1
        by_type[sc["scenario_type"]][1] += ok
        s = split["long_tail" if sc["long_tail"] else "core"]
        s[0] += 1
        s[1] += ok
        totals["episodes"] += 1
        totals["passed"] += ok
        totals["end_state"] += bool(j.get("end_state"))
        totals["with_violation"] += bool(j.get("violations"))
        totals["turns"] += len(ep["turns"])
        totals["fallbacks"] += ep["stats"]["fallbacks"]
        totals["injected"] += j.get("injected", 0)
        totals["injected_flagged"] += j.get("injected_flagged", 0)
        totals["tokens_in"] += ep["stats"]["tokens_in"]
        totals["tokens_out"] += ep["stats"]["tokens_out"]
        injected_eps = sum(1 for c in ep["calls"] if c.get("injected"))
        totals["clean_episodes"] += injected_eps == 0
        totals["clean_passed"] += injected_eps == 0 and ok
        if mine := j.get("user_verifier"):  # judge/user_verifier.py
            verifier["episodes"] += 1
            verifier["passed"] += bool(mine.get("pass"))
            verifier["errors"] += "error" in mine
        if rubric := j.get("llm_judge"):  # judge/llm_judge.py
            llm_judge["episodes"] += 1
            llm_judge["passed"] += bool(rubric.get("pass"))
            for key in ("calls_judged", "calls_wrong", "unjudged"):
                llm_judge[key] += int(rubric.get(key) or 0)
        if err := ep.get("error"):
            errors[f"{err['stage']}:{err['type']}"] += 1
        if ep.get("exit") in ("call_limit", "time_limit"):
            limits[ep["exit"]] += 1
        for c in ep["calls"]:
            for name in c.get("limits") or ():
                limits[name] += 1
            agents[c["agent"]] += 1
            wrong[c["agent"]] += not (c.get("verdict") or {}).get("correct", True)
            if c.get("malformed"):
                malformed[c["malformed"]] += 1
    n = max(totals["episodes"], 1)
    calls = sum(agents.values())
    summary: dict[str, Any] = {
        "episodes": totals["episodes"],
        "agent_calls": calls,
        "agent_calls_per_episode": round(calls / n, 2),
        "turns_per_episode": round(totals["turns"] / n, 2),
        "pass_rate": round(totals["passed"] / n, 4),
        "end_state_rate": round(totals["end_state"] / n, 4),
        "policy_violation_rate": round(totals["with_violation"] / n, 4),
        "pass_rate_core": round(split["core"][1] / max(split["core"][0], 1), 4),
        "pass_rate_long_tail": round(split["long_tail"][1] / max(split["long_tail"][0], 1), 4),
        "episodes_core": split["core"][0],
        "episodes_long_tail": split["long_tail"][0],
        "clean_episodes": totals["clean_episodes"],
        "clean_pass_rate": round(totals["clean_passed"] / max(totals["clean_episodes"], 1), 4),
        "injected_faults": totals["injected"],
        "injected_flagged_rate": round(totals["injected_flagged"] / max(totals["injected"], 1), 4),
        # our five roles in order, then a captured MAS's own agents
        "role_scores": {a: round(1 - wrong[a] / agents[a], 4) for a in [*ROLES, *sorted(set(agents) - set(ROLES))]
                        if agents[a]},
        "malformed_rate": round(sum(malformed.values()) / max(calls, 1), 4),
        "pass_hat_k": pass_hat_k(trials),
        "calls_by_agent": dict(agents),
        "wrong_calls_by_agent": dict(wrong),
        "malformed": dict(malformed),
        "fallback_turns": totals["fallbacks"],
        "episode_errors": sum(errors.values()),
        "episode_errors_by_kind": dict(errors),
        "limits_fired": dict(limits),
        **({"user_verifier": dict(verifier)} if verifier else {}),
        **({"llm_judge": dict(llm_judge)} if llm_judge else {}),
        "llm_evaluator_rate": round(agents["evaluator"] / max(agents["planner"], 1), 4),
        "tokens_in": totals["tokens_in"],
        "tokens_out": totals["tokens_out"],
        "pass_rate_by_type": {k: {"episodes": v[0], "pass_rate": round(v[1] / v[0], 4)}
                              for k, v in sorted(by_type.items())},
        "fidelity": tally.result(),
    }
    if elapsed_s is not None and episodes_run:
        summary["run"] = {"episodes_run": episodes_run, "elapsed_s": round(elapsed_s, 2),
                          "episodes_per_s": round(episodes_run / elapsed_s, 2),
                          "workers": getattr(cfg, "workers", None)}
    if getattr(cfg, "suite", None) == "injection":  # cross-customer leaks (judge/leaks.py)
        from agentdistill.judge.leaks import leak_summary

        if leaks := leak_summary(store.episodes(expand=False)):
            summary["leaks"] = leaks
    if write:
        atomic_write_json(store.root / "summary.json", summary)
    return summary
