"""Plots a person would rather look at than read: the paper's Figure 5 (loss by position)."""

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
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
