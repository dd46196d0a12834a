"""Plots a person would rather look at than read: the paper's Figure 5 (loss by position), the budget curve and
conversation lengths per suite."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_position_loss(result: dict[str, Any], out: str | Path) -> Path:
    """Mean token loss at each document position: plain CPT vs context-aware CPT (with / without its context)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {
        "plain CPT (no context)": result["plain_cpt"]["without_context"],
        "context-aware CPT, with context": result["context_aware_cpt"]["with_context"],
        "context-aware CPT, context removed": result["context_aware_cpt"]["without_context"],
    }
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, ys in curves.items():
        ax.plot(range(len(ys)), ys, label=label)
    ax.set_xlabel("position in the document (tokens)")
    ax.set_ylabel("mean token loss (nats)")
    ax.set_title(f"Per-position loss on {result['records']} held-out domain documents (paper's Figure 5)")
    ax.legend()
    return save_figure(fig, out)


def plot_budget_curve(points: list[dict[str, Any]], out: str | Path) -> Path:
    """Per-role scores and held-out pass of SFT snapshots against records seen and CPU-minutes: how quality grows
    with data and compute, and so what a larger budget would buy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from agentdistill.evaluate.compare import ROLES

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, key, label in ((axes[0], "records_seen", "SFT records seen"), (axes[1], "cpu_minutes", "SFT CPU-minutes")):
        xs = [p[key] for p in points]
        for role in ROLES:
            ax.plot(xs, [100 * (p["role_scores"].get(role) or 0) for p in points], marker="o", label=role)
        ax.plot(xs, [100 * (p["heldout_pass"] or 0) for p in points], marker="s", color="black", linewidth=2.5,
                label="held-out E2E pass")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("%")
    axes[0].set_ylim(0, 100)
    axes[1].legend(loc="lower right", fontsize=8)
    fig.suptitle("Student quality against the SFT budget (snapshots of one run)")
    return save_figure(fig, out)


def plot_conversation_lengths(fidelity: dict[str, dict[str, Any]], out: str | Path) -> Path:
    """User turns and agent calls per conversation, one line per run (e.g. the training mix beside the stress
    suite it is judged on): summary.json "fidelity" of each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, fid in fidelity.items():
        for ax, key in ((axes[0], "turns_per_conversation"), (axes[1], "calls_per_conversation")):
            hist = fid[key]["histogram"]  # JSON sorts "10" before "2": order buckets by their lower edge
            labels = sorted(hist, key=lambda b: int(b.split("-")[0].rstrip("+")))
            total = max(sum(hist.values()), 1)
            ax.plot(labels, [100 * hist[b] / total for b in labels], marker="o",
                    label=f"{name} (mean {fid[key]['mean']:g})")
    axes[0].set_xlabel("user turns per conversation")
    axes[1].set_xlabel("agent calls per conversation")
    for ax in axes:
        ax.set_ylabel("% of conversations")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Conversation lengths")
    return save_figure(fig, out)


def save_figure(fig: Any, out: str | Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
