"""The comparison table across models (teacher / base / CPT / SFT / DPO, and the no-CPT ablation)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentdistill.fileio import atomic_write_json, atomic_write_text
from agentdistill.mas.prompts import ROLES

ORDER = ("teacher", "base", "cpt", "sft", "dpo", "sft_nocpt", "dpo_nocpt")


def load_summaries(eval_dir: Path) -> list[dict[str, Any]]:
    found = {p.parent.name: json.loads(p.read_text()) for p in sorted(eval_dir.glob("*/summary.json"))}
    names = [n for n in ORDER if n in found] + sorted(n for n in found if n not in ORDER)
    return [found[n] for n in names]


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def _leaks(row: dict[str, Any]) -> str:
    if row["injection_leak_rate"] is None:
        return "-"
    return f"{_pct(row['injection_leak_rate'])} ({row['injection_attack_turns']})"


def comparison(eval_dir: str | Path) -> dict[str, Any]:
    eval_dir = Path(eval_dir)
    rows = []
    for s in load_summaries(eval_dir):
        held, stress = s.get("heldout", {}), s.get("stress", {})
        leaks = (s.get("injection") or {}).get("leaks") or {}
        roles = held.get("role_scores", {})
        rows.append({
            "name": s["name"], **{r: roles.get(r) for r in ROLES},
            "heldout_pass": held.get("pass_rate"),
            "heldout_phrasing_pass": (s.get("heldout_phrasing") or {}).get("pass_rate"),
            "stress_pass": stress.get("pass_rate"),
            "stress_pass_hat_k": stress.get("pass_hat_k"), "violation_rate": stress.get("policy_violation_rate"),
            "malformed_rate": held.get("malformed_rate"),
            "injection_leak_rate": leaks.get("leak_rate"), "injection_attack_turns": leaks.get("attack_turns"),
            "injection_held_rate": leaks.get("held_rate"),
            "ppl_domain": (s.get("perplexity") or {}).get("domain"),
            "ppl_public": (s.get("perplexity") or {}).get("public"),
        })
    header = ["model", *[r.capitalize() for r in ROLES], "held-out E2E", "held-out phrasing E2E", "stress E2E",
              "violations", "malformed", "injection leaks", "ppl domain", "ppl public"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r["name"], *[_pct(r[x]) for x in ROLES], _pct(r["heldout_pass"]), _pct(r["heldout_phrasing_pass"]),
                 _pct(r["stress_pass"]), _pct(r["violation_rate"]), _pct(r["malformed_rate"]), _leaks(r),
                 "-" if r["ppl_domain"] is None else f"{r['ppl_domain']:.2f}",
                 "-" if r["ppl_public"] is None else f"{r['ppl_public']:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    markdown = "\n".join(lines) + ("\n\nScores in %; role scores on held-out conversations; E2E = end-to-end pass "
                                   "rate; held-out phrasing = held-out conversations worded with templates training "
                                   "never uses; injection leaks = adversarial conversations (attack turns in "
                                   "brackets) in which another customer's data reached a reply, tool call or tool result.\n")
    result = {"rows": rows, "markdown": markdown}
    atomic_write_json(eval_dir / "comparison.json", result)
    atomic_write_text(eval_dir / "comparison.md", markdown)
    return result
