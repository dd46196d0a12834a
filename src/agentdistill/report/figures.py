"""The report's own plots (training curves, drafter acceptance, the ladder, per-role latency); the stages' plots
(budget curve, clip curve, conversation lengths) come from the modules that own them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentdistill.evaluate.plots import save_figure
from agentdistill.mas.prompts import ROLES


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def training_curves(logs: dict[str, list[dict[str, Any]]], out: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    for stage, rows in logs.items():
        points = [(r["step"], r["loss"]) for r in rows if "loss" in r and "step" in r]
        if points:
            ax.plot(*zip(*points, strict=True), marker=".", label=stage)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out)


def acceptance_by_role(drafters: dict[str, dict[str, Any]], out: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(1, len(drafters))
    for i, (name, m) in enumerate(drafters.items()):
        per_role = m["baseline"]["student"].get("per_role") or {}
        ax.bar([j + i * width for j in range(len(ROLES))],
               [(per_role.get(r) or {}).get("mean_acceptance_length") or 0 for r in ROLES], width,
               label=f"{name} ({m['kind']}, {m['data']} data)")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(ROLES))], ROLES)
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_ylabel("mean generated length per step")
    ax.legend(fontsize=8)
    return save_figure(fig, out)


def ladder_bars(result: dict[str, Any], out: Path) -> Path:
    plt = _plt()
    c = str(result["concurrency"])
    measured = [(k, r["runs"][c]) for k, r in result["rungs"].items() if (r.get("runs") or {}).get(c)]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    keys = [k for k, _ in measured]
    axes[0].bar(keys, [r["turn_throughput"] for _, r in measured], color="tab:blue")
    axes[0].set_yscale("log")
    axes[0].set_ylabel(f"turns/s at concurrency {c} (log)")
    axes[1].bar(keys, [r["p90_turn_latency_ms"] / 1000 for _, r in measured], color="tab:orange")
    axes[1].set_yscale("log")
    axes[1].set_ylabel("P90 turn latency, s (log)")
    for ax in axes:
        ax.set_xlabel("rung")
        ax.grid(alpha=0.3, axis="y")
    return save_figure(fig, out)


def latency_vs_concurrency(result: dict[str, Any], out: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key, rung in result["rungs"].items():
        runs = rung.get("runs") or {}
        if len(runs) < 2:
            continue
        cs = sorted(runs, key=int)
        ax.plot([runs[c]["turn_throughput"] for c in cs], [runs[c]["p90_turn_latency_ms"] / 1000 for c in cs],
                marker="o", label=f"{key}: {rung['label']}")
        for c in cs:
            ax.annotate(c, (runs[c]["turn_throughput"], runs[c]["p90_turn_latency_ms"] / 1000), fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("turns/s (log; labels: conversations in flight)")
    ax.set_ylabel("P90 turn latency, s (log)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return save_figure(fig, out)


def role_latency(per_role: dict[str, dict[str, Any]], out: Path) -> Path:
    plt = _plt()
    roles = list(per_role)
    ttft = [(per_role[r].get("mean_ttft_ms") or 0) / 1000 for r in roles]
    decode = [max(0.0, (per_role[r].get("mean_e2el_ms") or 0) / 1000 - t) for r, t in zip(roles, ttft, strict=True)]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(roles, ttft, label="time to first token")
    ax.bar(roles, decode, bottom=ttft, label="decode")
    ax.set_ylabel("mean seconds per call")
    ax.legend(fontsize=8)
    return save_figure(fig, out)
