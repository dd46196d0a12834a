"""How much the simulated conversations look like the ones a student is judged on: lengths, wording
diversity, and near-copies between a training set and an evaluation suite.

The paper's first lesson is that the student is bottlenecked by the fidelity of the synthetic data, so a
simulation run reports these beside its pass rates (summary.json "fidelity", and conversation_lengths.png).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

LONG_TURNS = 8  # "long" in the sense: at least this many user turns
_WORD = re.compile(r"[a-z0-9']+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def histogram(values: Iterable[int], edges: tuple[int, ...]) -> dict[str, int]:
    """Counts per bucket [edges[i], edges[i+1]); the last bucket is open ("40+")."""
    values = list(values)
    out: dict[str, int] = {}
    for i, lo in enumerate(edges):
        hi = edges[i + 1] if i + 1 < len(edges) else None
        label = f"{lo}+" if hi is None else (str(lo) if hi == lo + 1 else f"{lo}-{hi - 1}")
        out[label] = sum(1 for v in values if v >= lo and (hi is None or v < hi))
    return out


def length_stats(turns: list[int], calls: list[int]) -> dict[str, Any]:
    """Distributions of user turns and agent calls per conversation."""
    n = max(len(turns), 1)
    return {
        "turns_per_conversation": {"mean": round(sum(turns) / n, 2), "max": max(turns, default=0),
                                   "histogram": histogram(turns, tuple(range(1, 14)))},
        "calls_per_conversation": {"mean": round(sum(calls) / n, 2), "max": max(calls, default=0),
                                   "histogram": histogram(calls, (0, 10, 20, 30, 40, 60, 80))},
        "share_long": round(sum(1 for t in turns if t >= LONG_TURNS) / n, 4),
    }


def diversity(texts: list[str], templates: Iterable[str] = ()) -> dict[str, Any]:
    """Distinct-n (distinct n-grams / all n-grams, Li et al. 2016) over the user utterances, and how many
    paraphrase templates produced them."""
    toks = [words(t) for t in texts]
    out: dict[str, Any] = {"utterances": len(texts), "distinct_utterances": len(set(texts))}
    for n in (1, 2, 3):
        grams = [g for t in toks for g in ngrams(t, n)]
        out[f"distinct_{n}"] = round(len(set(grams)) / max(len(grams), 1), 4)
        out[f"distinct_{n}_count"] = len(set(grams))
    used = set(templates)
    out["templates_used"] = len(used)
    out["requests_with_templates"] = len({t.split("#")[0] for t in used})
    return out


def shingles(texts: Iterable[str], n: int = 3) -> frozenset[tuple[str, ...]]:
    return frozenset(g for t in texts for g in ngrams(words(t), n))


def jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / max(len(a | b), 1)


def near_copies(train: list[Any], held: list[Any], threshold: float = 0.5) -> list[tuple[str, str, float]]:
    """(train id, held id, similarity) for every pair of scenarios whose user turns share at least
    `threshold` of their word 3-grams, or that are the same customer with the same gold actions."""
    def key(sc: Any) -> tuple[frozenset, str, str]:
        return (shingles(t.text for t in sc.turns), str(sc.profile.get("customer_id")),
                repr(sc.gold_actions))

    held_keys = [(sc.scenario_id, *key(sc)) for sc in held]
    found = []
    for sc in train:
        sh, cust, gold = key(sc)
        for hid, hsh, hcust, hgold in held_keys:
            sim = jaccard(sh, hsh)
            if sim >= threshold or (sc.gold_actions and cust == hcust and gold == hgold):
                found.append((sc.scenario_id, hid, round(sim, 3)))
    return found


class FidelityTally:
    """Length distributions and user-utterance diversity, gathered one episode at a time (the summary reads
    a run's traces once)."""

    def __init__(self) -> None:
        self.turns: list[int] = []
        self.calls: list[int] = []
        self.texts: list[str] = []
        self.templates: list[str] = []

    def add(self, ep: dict[str, Any]) -> None:
        played = [t["user"] for t in ep["turns"]]
        self.turns.append(len(played))
        self.calls.append(ep["stats"]["agent_calls"])
        self.texts += played
        by_text = {t["text"]: t.get("templates") or [] for t in ep["scenario"]["turns"]}
        self.templates += [tid for text in played for tid in by_text.get(text, [])]

    def result(self) -> dict[str, Any]:
        return {**length_stats(self.turns, self.calls), "user_utterances": diversity(self.texts, self.templates)}


FIDELITY_COLUMNS = ("run", "conversations", "turns mean", "turns max", "share >= 8 turns", "calls mean", "calls max",
                    "distinct-2", "distinct-3", "templates")


def fidelity_rows(runs: dict[str, dict[str, Any]]) -> list[list[str]]:
    """One row of FIDELITY_COLUMNS per run's summary "fidelity" (the CLI's table and the run report's)."""
    rows = []
    for name, f in runs.items():
        t, c, u = f["turns_per_conversation"], f["calls_per_conversation"], f["user_utterances"]
        rows.append([name, str(sum(t["histogram"].values())), f"{t['mean']:g}", str(t["max"]),
                     f"{100 * f['share_long']:.1f}%", f"{c['mean']:g}", str(c["max"]), f"{u['distinct_2']:.3f}",
                     f"{u['distinct_3']:.3f}", str(u["templates_used"])])
    return rows
