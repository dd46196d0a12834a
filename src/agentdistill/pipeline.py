"""`agentdistill run`: every stage that exists, chained on the embedded default, sized by one preset knob."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentdistill.config import SimulateConfig, save_yaml
from agentdistill.errors import UserError
from agentdistill.fileio import ensure_writable_dir

PRESETS: dict[str, dict[str, int]] = {
    "smoke": {"episodes": 70, "stress": 12},
    "default": {"episodes": 2000, "stress": 120},
    "quality": {"episodes": 7172, "stress": 120},
}
NOT_BUILT = {
    "datasets": "issue: customize a compact student", "train": "issue: customize a compact student",
    "serve": "issue: customize a compact student", "eval": "issue: customize a compact student",
}


def run_pipeline(preset: str, out: str | Path | None = None, workers: int = 2,
                 show_progress: bool = True) -> dict[str, Any]:
    from agentdistill.simulate.runner import simulate

    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}; allowed: {', '.join(PRESETS)}")
    size = PRESETS[preset]
    root = ensure_writable_dir(out or Path("runs") / preset)
    train = SimulateConfig(episodes=size["episodes"], workers=workers, suite="train")
    stress = SimulateConfig(episodes=size["stress"], workers=workers, suite="stress")
    save_yaml(root / "config.yaml", {"preset": preset, "simulate": train.model_dump(),
                                      "stress": stress.model_dump()})
    result = {
        "run_dir": str(root),
        "train": simulate(train, root, show_progress=show_progress),
        "stress": simulate(stress, root / "eval" / "stress-teacher", show_progress=show_progress),
        "skipped": NOT_BUILT,
    }
    return result
