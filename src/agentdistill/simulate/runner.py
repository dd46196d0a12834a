"""`agentdistill simulate`: many conversations over K worker processes, judged as they finish,
written to sharded JSONL, resumable after any interrupt (kill -9 included), with a progress bar.
"""

from __future__ import annotations

import contextlib
import fcntl
import multiprocessing as mp
import os
import queue
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from agentdistill.backends.scripted import FaultConfig, ScriptedTeacher
from agentdistill.config import SimulateConfig, build, load_yaml, save_yaml
from agentdistill.data.splits import hash_unit
from agentdistill.domain.base import Domain, Scenario
from agentdistill.errors import UserError
from agentdistill.fileio import ensure_writable_dir
from agentdistill.judge.judge import Judge
from agentdistill.judge.leaks import judge_leaks
from agentdistill.mas.runtime import MAS, MASConfig
from agentdistill.simulate.episode import failure, run_episode
from agentdistill.simulate.store import TraceStore
from agentdistill.simulate.summary import summarize
from agentdistill.simulate.user import LLMUser, ScriptedUser


def make_domain(cfg: SimulateConfig) -> Domain:
    from agentdistill.domain.registry import make_domain as from_registry

    d = cfg.domain
    return from_registry(d.name, world_seed=d.world_seed, today=d.today, policy_version=d.policy_version)


def saved_config(root: str | Path) -> SimulateConfig:
    """The settings a run directory was simulated with (simulate.yaml), or the defaults for one without."""
    path = Path(root) / "simulate.yaml"
    return build(SimulateConfig, load_yaml(path)) if path.exists() else SimulateConfig()


def run_domain(root: str | Path, policy_version: str | None = None) -> Domain:
    """The domain a run was simulated in, optionally under another policy version (verify, datasets)."""
    cfg = saved_config(root)
    if policy_version:
        cfg.domain.policy_version = policy_version
    return make_domain(cfg)


def make_endpoint(url: str, model: str | None) -> Any:
    from agentdistill.backends.openai_backend import OpenAIBackend

    return OpenAIBackend(url, model=model)


@dataclass
class Worker:
    """Everything one process needs to run and judge episodes."""

    cfg: SimulateConfig

    def __post_init__(self) -> None:
        cfg = self.cfg
        self.domain = make_domain(cfg)
        if cfg.teacher == "scripted":
            self.teacher: Any = ScriptedTeacher(self.domain, FaultConfig(cfg.error_rate, cfg.error_mix, cfg.seed))
        else:
            self.teacher = make_endpoint(cfg.teacher, cfg.teacher_model)
        self.user_backend = None if cfg.user_sim == "scripted" else make_endpoint(cfg.user_sim, cfg.user_sim_model)
        refiner = None if cfg.judge == "scripted" else make_endpoint(cfg.judge, cfg.judge_model)
        self.judge = Judge(self.domain, refiner=refiner)
        sampling = {"temperature": cfg.temperature}
        if cfg.teacher != "scripted":
            sampling["max_tokens"] = cfg.max_tokens
        mas_cfg = MASConfig(halstead_metric=cfg.mas.halstead_metric, halstead_threshold=cfg.mas.halstead_threshold,
                            max_replans=cfg.mas.max_replans, sampling=sampling,
                            prompt_style=cfg.mas.prompt_style, constrained_roles=tuple(cfg.mas.constrained_roles))
        self.mas = MAS(self.domain, self.teacher, mas_cfg)

    def scenario(self, index: int) -> Scenario:
        return scenario_for(self.domain, self.cfg, index)

    def run(self, index: int) -> dict[str, Any]:
        sc = self.scenario(index)
        trial = index % self.cfg.trials
        if isinstance(self.teacher, ScriptedTeacher):  # each trial of a scenario draws its own faults
            self.teacher.faults.seed = self.cfg.seed * 1000 + trial
        user = (ScriptedUser(sc, self.domain.fallback_reply) if self.user_backend is None
                else LLMUser(self.user_backend, sc, self.domain))
        ep = run_episode(episode_id_for(self.cfg, index), sc, self.mas, user, self.teacher,
                         fail_fast=self.cfg.fail_fast)
        ep["index"], ep["trial"] = index, trial
        try:
            self.judge.judge_episode(ep)
        except Exception as exc:  # a judge that cannot read this episode fails it, not the run
            if self.cfg.fail_fast:
                raise
            ep.setdefault("error", failure(exc, "judge", len(ep["turns"])))
            ep["judgement"] = {"pass": False, "end_state": False, "violations": [], "error": ep["error"]["type"]}
        if self.cfg.suite == "injection":  # cross-customer leaks (judge/leaks.py): counted in the judgement
            judge_leaks(self.domain, ep)
        return ep


def scenario_types(domain: Any, cfg: SimulateConfig) -> list[str]:
    known = [s.name for s in domain.scenario_types()]
    for name in cfg.scenario_types:
        if name not in known:
            raise UserError(f"unknown scenario {name!r}; run 'agentdistill domain --scenarios' to list them")
    return cfg.scenario_types or known


def scenario_for(domain: Any, cfg: SimulateConfig, index: int) -> Scenario:
    """Episode i's scenario: round-robin over types, seeded by (suite, seed, i); the stress and injection
    suites are the domain's own (Domain.stress_scenario, Domain.injection_scenario)."""
    index //= cfg.trials  # k consecutive episodes replay the same scenario (pass^k)
    if cfg.suite == "stress":
        return domain.stress_scenario(index, cfg.seed)
    if cfg.suite == "injection":
        return domain.injection_scenario(index, cfg.seed)
    if not cfg.scenario_types and hash_unit(f"long:{cfg.suite}:{index}", cfg.seed) < cfg.long_share:
        return domain.long_scenario(index, cfg.seed, split=cfg.suite)
    types = scenario_types(domain, cfg)
    return domain.make_scenario(types[index % len(types)], f"{cfg.seed}:{index}", split=cfg.suite)


def episode_id_for(cfg: SimulateConfig, index: int) -> str:
    return f"{cfg.suite}-{cfg.seed}-{index:06d}"


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker when its parent dies (kill -9 of the CLI must not orphan it)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _worker_main(cfg_data: dict[str, Any], root: str, worker: int, indices: list[int], progress: Any) -> None:
    _die_with_parent()
    parent = os.getppid()
    cfg = SimulateConfig.model_validate(cfg_data)
    try:
        w = Worker(cfg)
        store = TraceStore(root)
        with store.open_shard(worker) as fh:
            for i in indices:
                if os.getppid() != parent:  # parent gone and no PDEATHSIG: stop rather than write alone
                    return
                ep = w.run(i)
                store.write(fh, ep)
                progress.put(("episode", ep["stats"]["agent_calls"], ep["judgement"]["pass"]))
    except UserError as exc:  # e.g. the endpoint went away mid-run: the parent reports it in one line
        progress.put(("error", worker, str(exc)))
        sys.exit(2)


def _run_threads(cfg: SimulateConfig, root: Path, todo: list[int], threads: int, tick: Any) -> None:
    """Concurrent conversations against an endpoint (vLLM batches them); one shard, one writer lock."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    store = TraceStore(root)
    lock = threading.Lock()
    local = threading.local()

    def one(i: int) -> None:
        if not hasattr(local, "worker"):
            local.worker = Worker(cfg)
        ep = local.worker.run(i)
        with lock:
            store.write(fh, ep)
            tick(ep["stats"]["agent_calls"], ep["judgement"]["pass"])

    with store.open_shard(0) as fh:
        pool = ThreadPoolExecutor(threads)
        try:
            for fut in [pool.submit(one, i) for i in todo]:
                fut.result()  # the first failure (e.g. the endpoint went away) stops the run
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def _check_resume(root: Path, cfg: SimulateConfig) -> None:
    path = root / "simulate.yaml"
    if path.exists():
        old = SimulateConfig.model_validate(load_yaml(path))
        if old.identity() != cfg.identity():
            changed = sorted(k for k, v in cfg.identity().items() if old.identity().get(k) != v)
            raise UserError(f"{root} holds a run with other settings ({', '.join(changed)}); use a new --out")
    save_yaml(path, cfg.model_dump())


def simulate(cfg: SimulateConfig, out: str | Path, show_progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the simulation into `out` and return the summary."""
    probe = Worker(cfg)  # validates endpoints, scenario names and the fault mix before any process starts
    scenario_types(probe.domain, cfg)
    for backend in (probe.teacher, probe.user_backend, probe.judge.refiner):
        if hasattr(backend, "check_reachable"):
            backend.check_reachable()
    root = ensure_writable_dir(out)
    with exclusive_lock(root):
        return _simulate_locked(cfg, root, probe, show_progress)


@contextlib.contextmanager
def exclusive_lock(root: Path) -> Iterator[None]:
    """One writer per run directory: a second simulate/verify on the same directory fails at once."""
    fh = (root / ".lock").open("w")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise UserError(f"another agentdistill process is writing to {root}") from None
    try:
        yield
    finally:
        fcntl.flock(fh, fcntl.LOCK_UN)
        fh.close()


def _simulate_locked(cfg: SimulateConfig, root: Path, probe: Worker, show_progress: bool) -> dict[str, Any]:
    _check_resume(root, cfg)
    store = TraceStore(root)
    store.prepare()
    store.register(probe.mas.prompts.system, probe.mas.tool_schemas)
    done_ids = store.repair_and_completed()
    todo = [i for i in range(cfg.episodes) if episode_id_for(cfg, i) not in done_ids]
    t0 = time.perf_counter()
    if todo:
        _run_pool(cfg, root, todo, show_progress, probe)
    elapsed = time.perf_counter() - t0
    return summarize(store, cfg, elapsed_s=elapsed, episodes_run=len(todo))


def _run_pool(cfg: SimulateConfig, root: Path, todo: list[int], show_progress: bool, probe: Worker) -> None:
    workers = min(cfg.workers, len(todo))
    columns = [TextColumn("simulate"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
               TimeRemainingColumn()]
    with Progress(*columns, disable=not show_progress, transient=False) as bar:
        task = bar.add_task("simulate", total=len(todo), rate="")
        passed = n = 0

        def tick(calls: int, ok: bool) -> None:
            nonlocal passed, n
            n += 1
            passed += ok
            bar.update(task, advance=1, rate=f"pass {passed / n:.1%}")

        if cfg.teacher != "scripted" and workers > 1:  # an endpoint does the work: threads keep it busy
            _run_threads(cfg, root, todo, workers, tick)
            return
        if workers == 1:  # in-process: no spawn cost, easiest to debug
            store = TraceStore(root)
            with store.open_shard(0) as fh:
                for i in todo:
                    ep = probe.run(i)
                    store.write(fh, ep)
                    tick(ep["stats"]["agent_calls"], ep["judgement"]["pass"])
            return
        ctx = mp.get_context("fork")
        progress = ctx.Queue()
        errors: list[str] = []
        procs = [ctx.Process(target=_worker_main, args=(cfg.model_dump(), str(root), k, todo[k::workers], progress),
                             daemon=True) for k in range(workers)]
        for p in procs:
            p.start()
        try:
            remaining = len(todo)
            while remaining:
                try:
                    msg = progress.get(timeout=0.5)
                except queue.Empty:
                    if not any(p.is_alive() for p in procs):
                        break
                    continue
                if msg[0] == "error":
                    errors.append(msg[2])
                    continue
                tick(msg[1], msg[2])
                remaining -= 1
            for p in procs:
                p.join()
        finally:
            for p in procs:
                if p.is_alive():
                    p.terminate()
        if errors:
            raise UserError(f"{errors[0]}; rerun the same command to resume")
        failed = [p.exitcode for p in procs if p.exitcode]
        if failed:
            raise UserError(f"{len(failed)} simulation worker(s) failed (exit codes {failed}); rerun to resume")
