"""`agentdistill report RUN`: the whole result of a run in one self-contained HTML file, plus markdown."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from agentdistill.errors import UserError
from agentdistill.fileio import atomic_write_text
from agentdistill.paths import RunPaths


def default_student(paths: RunPaths) -> str:
    """The most trained student that was evaluated: DPO, else SFT, else CPT."""
    for name in ("dpo", "sft", "cpt"):
        if (paths.eval / name).is_dir():
            return name
    return "dpo"


def build_report(run_dir: str | Path, out: str | Path | None = None, student: str | None = None,
                 teacher: str = "teacher") -> dict[str, Any]:
    """Write report.html (plots inlined) and report.md (beside its PNGs) under RUN/report (or `out`)."""
    from agentdistill.report import sections
    from agentdistill.report.document import to_html, to_markdown
    from agentdistill.report.gate import promotion_gate

    paths = RunPaths(Path(run_dir))
    if not paths.root.is_dir():
        raise UserError(f"no run directory at {paths.root}")
    out_dir = Path(out) if out else paths.root / "report"
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    student = student or default_student(paths)
    verdict = promotion_gate(paths.root, student, teacher)
    parts = [sections.headline(paths, verdict),
             sections.data(paths, fig_dir), sections.training(paths, fig_dir), sections.quality(paths, fig_dir),
             sections.gate(verdict), sections.budget(paths, fig_dir),
             sections.drafters(paths, fig_dir), sections.calibration(paths, fig_dir),
             sections.ladder(paths, fig_dir), sections.role_latency(paths, fig_dir)]
    title = f"agentdistill report: {paths.root.name} ({time.strftime('%Y-%m-%d %H:%M')})"
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    atomic_write_text(html_path, to_html(title, parts))
    atomic_write_text(md_path, to_markdown(title, parts, out_dir))
    return {"html": str(html_path), "markdown": str(md_path), "student": student, "teacher": teacher,
            "sections": {s.title: s.ran for s in parts}}
