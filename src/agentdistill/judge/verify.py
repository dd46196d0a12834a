"""`agentdistill verify DIR`: re-judge every episode of a run and rewrite its traces atomically.

Simulated episodes are judged by their domain's judge (y* from the scripted reference or the --judge URL).
Captured ones (the user's own MAS) have no reference of ours: the LLM judge with the user's rubric
(judge/llm_judge.py: --judge URL --rubric FILE) and/or the user's verifier (judge/user_verifier.py) decide,
the verifier last, so a call it names takes its verdict.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.progress import Progress

from agentdistill.capture.records import SOURCE as CAPTURED
from agentdistill.config import SimulateConfig
from agentdistill.errors import UserError
from agentdistill.judge.judge import Judge
from agentdistill.judge.leaks import judge_leaks
from agentdistill.judge.llm_judge import RubricJudge, load_rubric
from agentdistill.judge.user_verifier import Verifier, apply_verdict, load_verifier
from agentdistill.simulate.store import TraceStore
from agentdistill.simulate.summary import summarize


def verify_run(run_dir: str | Path, judge: str = "scripted", judge_model: str | None = None,
               policy_version: str | None = None, show_progress: bool = True,
               verifier: str | None = None, rubric: str | Path | None = None) -> dict[str, Any]:
    """Re-judge every episode of a run; `verifier` (module:function) adds the user's own verdicts
    (judge/user_verifier.py); `rubric` (a file) makes the `judge` URL the LLM judge of captured episodes."""
    from agentdistill.simulate.runner import make_endpoint, saved_config

    root = Path(run_dir)
    if not root.is_dir():
        raise UserError(f"run directory {root} does not exist")
    cfg = saved_config(root)
    if policy_version:
        cfg.domain.policy_version = policy_version
    if judge != "scripted" and not judge.startswith(("http://", "https://")):
        raise UserError(f"--judge must be 'scripted' or an http(s):// URL, got {judge!r}")
    if rubric is not None and refiner_url(judge) is None:
        raise UserError("--rubric needs an LLM judge: give --judge http(s)://... (an OpenAI-compatible endpoint)")
    rubric_text = load_rubric(rubric) if rubric is not None else None
    refiner = None if judge == "scripted" else make_endpoint(judge, judge_model)
    if refiner is not None:
        refiner.check_reachable()
    user = (verifier, load_verifier(verifier)) if verifier else None
    llm = RubricJudge(refiner, rubric_text, str(rubric)) if rubric_text is not None else None
    from agentdistill.simulate.runner import exclusive_lock

    with exclusive_lock(root):
        return _verify_locked(root, cfg, refiner, show_progress, user, llm)


def refiner_url(judge: str) -> str | None:
    return judge if judge.startswith(("http://", "https://")) else None


def _verify_locked(root: Path, cfg: SimulateConfig, refiner: Any, show_progress: bool,
                   user: tuple[str, Verifier] | None = None, llm: RubricJudge | None = None) -> dict[str, Any]:
    from agentdistill.simulate.runner import make_domain

    store = TraceStore(root)
    total = captured = 0
    for ep in store.episodes(expand=False):
        total += 1
        captured += ep.get("source") == CAPTURED
    if captured and user is None and llm is None:
        raise UserError(f"{captured} episode(s) in {root} were captured from your own MAS (agentdistill proxy / "
                        "import-logs): the domain judge cannot score them; pass --verifier module:function "
                        "and/or --judge URL --rubric FILE")
    if llm is not None and not captured:
        raise UserError(f"--rubric judges episodes captured from your own MAS; {root} has none (its domain's judge "
                        "scores simulated ones)")
    j = Judge(make_domain(cfg), refiner=refiner) if captured < total else None  # a captured run has no domain
    with Progress(disable=not show_progress) as bar:
        task = bar.add_task("verify", total=total)

        def rejudge(ep: dict[str, Any]) -> None:
            if ep.get("source") == CAPTURED:  # no scenario of ours: the rubric judge and the user's verifier decide
                ep["judgement"] = {"pass": True}
                for call in ep.get("calls") or []:  # verdicts of an earlier verify do not carry over
                    call.pop("verdict", None)
                    call.pop("refined", None)
                if llm is not None:
                    llm.apply(ep)
                if user:
                    apply_verdict(ep, user[1], user[0])
                bar.advance(task)
                return
            j.judge_episode(ep)
            if cfg.suite == "injection":  # the same leak check simulate ran (a leak fails the episode again)
                judge_leaks(j.domain, ep)
            if user:
                apply_verdict(ep, user[1], user[0])
            bar.advance(task)

        store.rewrite(rejudge)
    return summarize(store, cfg)
