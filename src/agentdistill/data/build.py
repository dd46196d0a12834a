"""`agentdistill datasets`: every training and evaluation dataset of a run, from its judged traces.

One pass over the episodes feeds the SFT and DPO builders; the CPT mix comes from the domain and public
text; everything is written atomically under RUN_DIR/datasets with a stats.json describing the contents.

A captured run (every episode recorded from the user's own MAS: agentdistill proxy / import-logs) has no
built-in domain: its datasets hold only what was captured. SFT and DPO come from its calls (DPO negatives from
the verdicts' y* and from the tool schemas the calls carried, data/schema_mutators.py), prompts stay as the MAS
sent them, and CPT has no domain documents, so no public replay either (ppl/public is still written, to
measure forgetting). The built-in domain's curated hard negatives are never added to it.
"""

from __future__ import annotations

from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

from rich.progress import Progress

from agentdistill.capture.runs import captured_run
from agentdistill.data.cpt import build_cpt
from agentdistill.data.curated import load_curated
from agentdistill.data.dpo import DpoBuilder
from agentdistill.data.evaluator_rejects import EvaluatorRejects
from agentdistill.data.jsonl import write_jsonl
from agentdistill.data.messages import restyle_prompt
from agentdistill.data.sft import SftBuilder
from agentdistill.data.splits import split_of
from agentdistill.errors import UserError
from agentdistill.fileio import atomic_write_json, ensure_writable_dir
from agentdistill.paths import RunPaths
from agentdistill.simulate.store import TraceStore


def build_datasets(run_dir: str | Path, public_ratio: float = 0.3, val_fraction: float = 0.1, seed: int = 0,
                   show_progress: bool = True, curated_path: str | Path | None = None,
                   prompt_style: str = "compact", evaluator_rejects: int = 0) -> dict[str, Any]:
    """Build cpt/, sft/, dpo/, ppl/ and stats.json under RUN_DIR/datasets; returns the stats.

    `prompt_style` is the system prompt the student is trained with (mas/prompts.py): "compact" by default,
    so the student learns the role prompts' content instead of reading it on every call.
    `evaluator_rejects` adds up to that many SFT records per approving evaluator call in which the evaluator
    rejects a mutated plan (data/evaluator_rejects.py); 0 = off, the default (see the README for why).
    """
    from agentdistill.mas.prompts import check_prompt_style

    check_prompt_style(prompt_style)
    if evaluator_rejects < 0:
        raise UserError(f"--evaluator-rejects must be >= 0, got {evaluator_rejects}")
    if not 0 <= public_ratio < 1:
        raise UserError(f"--public-ratio must be in [0, 1), got {public_ratio}")
    if not 0 <= val_fraction < 1:
        raise UserError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    if seed < 0:
        raise UserError(f"--seed must be >= 0, got {seed}")
    paths = RunPaths(Path(run_dir))
    store = TraceStore(paths.root)
    episodes = store.episodes()  # raises "no traces found in ..." when there are none
    first = next(episodes, None)
    if first is None:
        raise UserError(f"dataset sft has no records: the traces in {paths.traces} hold no episodes")
    captured = captured_run(store)
    if captured:
        domain, rejects, restyle = None, None, None  # the user's MAS: its own prompts, no domain of ours
    else:
        from agentdistill.simulate.runner import run_domain

        domain = run_domain(paths.root, first.get("policy_version"))  # its policy version decides what is expected
        rejects = EvaluatorRejects(domain, seed, per_call=evaluator_rejects) if evaluator_rejects else None
        restyle = partial(restyle_prompt, style=prompt_style, domain=domain,
                          policy_version=domain.policy_version)
    ensure_writable_dir(paths.datasets)
    sft = SftBuilder(val_fraction, seed, rejects=rejects, restyle=restyle)
    dpo = DpoBuilder(domain, val_fraction, seed, restyle=restyle)
    episode_splits: Counter = Counter()
    scenario_types: Counter = Counter()
    with Progress(disable=not show_progress, transient=True) as progress:
        task = progress.add_task("building SFT/DPO from episodes", total=None)
        ep: dict[str, Any] | None = first
        while ep is not None:
            sft.add_episode(ep)
            dpo.add_episode(ep)
            episode_splits[split_of(ep["episode_id"], val_fraction, seed)] += 1
            scenario_types[ep["scenario"].get("scenario_type", "unknown")] += 1
            progress.advance(task)
            ep = next(episodes, None)
    curated_path = curated_path or (domain.hard_negatives_path() if domain is not None else None)
    if curated_path:
        dpo.add_curated(load_curated(curated_path))
    cpt, cpt_stats = build_cpt(domain, public_ratio, val_fraction, seed)

    for name, builder in (("sft", sft), ("dpo", dpo)):
        if not any(builder.splits.values()):
            raise UserError(f"dataset {name} has no records (traces in {paths.traces})")
    for split in ("train", "val"):
        write_jsonl(paths.dataset("sft", split), sft.splits[split])
        write_jsonl(paths.dataset("dpo", split), dpo.splits[split])
        write_jsonl(paths.dataset("cpt", split), cpt[split])
    write_jsonl(paths.dataset("ppl", "domain"), cpt["ppl_domain"])
    write_jsonl(paths.dataset("ppl", "public"), cpt["ppl_public"])
    stats = {"settings": {"public_ratio": public_ratio, "val_fraction": val_fraction, "seed": seed,
                          "policy_version": domain.policy_version if domain is not None else None,
                          "prompt_style": prompt_style if domain is not None else "as captured",
                          "evaluator_rejects": evaluator_rejects, "captured": captured},
             "episodes": {"total": sum(episode_splits.values()), **dict(sorted(episode_splits.items())),
                          "by_scenario_type": dict(sorted(scenario_types.items()))},
             "sft": sft.stats, "dpo": dpo.stats, "cpt": cpt_stats}
    atomic_write_json(paths.datasets / "stats.json", stats)
    return stats
