"""One function per report section, each reading only what its stage wrote into the run directory (paths.py);
a stage that has not run gives a section that says so and names the command that runs it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentdistill.fileio import read_jsonl
from agentdistill.mas.prompts import ROLES
from agentdistill.paths import RunPaths
from agentdistill.report import figures
from agentdistill.report.document import Figure, Section, Table

TRAINED = ("base", "cpt", "sft", "dpo", "sft_nocpt", "dpo_nocpt")
# the paper's targets for the optimized student: vs the teacher-size model and vs the customized student
QPS_TARGETS = {"qps_vs_1": 30.0, "qps_vs_3b": 2.5}


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _pct(x: Any) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def data(paths: RunPaths, fig_dir: Path) -> Section:
    summary = _json(paths.root / "summary.json")
    if summary is None:
        return Section.not_run("Data", f"no simulated conversations (agentdistill simulate {paths.root})")
    s = Section("Data")
    s.blocks.append(f"{summary['episodes']} simulated conversations ({summary['episodes_core']} core, "
                    f"{summary['episodes_long_tail']} long-tail), {summary['agent_calls']} agent calls, "
                    f"{summary.get('turns_per_episode', '-')} user turns each on average; teacher pass rate "
                    f"{_pct(summary.get('pass_rate'))}, policy violations {_pct(summary.get('policy_violation_rate'))}.")
    s.blocks.append(Table(["role", "calls", "wrong calls"],
                          [[r, summary["calls_by_agent"].get(r, 0), (summary.get("wrong_calls_by_agent") or {}).get(r)]
                           for r in ROLES]))
    by_type = summary.get("pass_rate_by_type") or {}
    if by_type:
        s.blocks.append("Scenario coverage (teacher pass rate by scenario type):")
        s.blocks.append(Table(["scenario type", "conversations", "pass"],
                              [[t, v.get("episodes") if isinstance(v, dict) else None,
                                _pct(v.get("pass_rate") if isinstance(v, dict) else v)]
                               for t, v in sorted(by_type.items())]))
    lengths = paths.eval / "conversation_lengths.png"
    if lengths.is_file():
        s.blocks.append(Figure(lengths, "Conversation lengths: the training mix beside the suites it is judged on"))
    stats = _json(paths.datasets / "stats.json")
    if stats is None:
        s.blocks.append(f"Datasets: not built (agentdistill datasets {paths.root}).")
    else:
        rows = [[kind, (v.get("records") or {}).get("train", (v.get("train") or {}).get("records")),
                 (v.get("records") or {}).get("val", (v.get("val") or {}).get("records"))]
                for kind, v in stats.items() if isinstance(v, dict) and kind in ("cpt", "sft", "dpo")]
        s.blocks.append(Table(["dataset", "train records", "val records"], rows))
    return s


def training(paths: RunPaths, fig_dir: Path) -> Section:
    logs = {stage: list(read_jsonl(paths.model(stage) / "train_log.jsonl")) for stage in
            [*TRAINED, *sorted(p.name for p in paths.models.glob("drafter-*"))]
            if (paths.model(stage) / "train_log.jsonl").is_file()}
    if not logs:
        return Section.not_run("Training curves", f"no trained stage (agentdistill run, or train cpt/sft/dpo "
                               f"{paths.root})")
    s = Section("Training curves")
    rows = []
    for stage in logs:
        t = _json(paths.model(stage) / "train_summary.json") or {}
        rows.append([stage, t.get("steps"), t.get("tokens_seen"), t.get("tokens_per_s"),
                     round(t["wall_s"] / 60, 1) if t.get("wall_s") else None, t.get("train_loss_first"),
                     t.get("train_loss_last")])
    s.blocks.append(Table(["stage", "steps", "tokens seen", "tokens/s", "CPU-minutes", "first loss", "last loss"], rows))
    s.blocks.append(Figure(figures.training_curves(logs, fig_dir / "training_curves.png"),
                           "Training loss per logged step, one line per stage"))
    return s


def quality(paths: RunPaths, fig_dir: Path) -> Section:
    from agentdistill.evaluate.compare import comparison

    if not list(paths.eval.glob("*/summary.json")):
        return Section.not_run("Quality: teacher to base, CPT, SFT and DPO",
                               f"no evaluated model (agentdistill eval model ... {paths.root})")
    rows = comparison(paths.eval)["rows"]
    s = Section("Quality: teacher to base, CPT, SFT and DPO")
    s.blocks.append("Per-role scores on held-out conversations; end-to-end (E2E) pass held-out vs stress.")
    s.blocks.append(Table(["model", *ROLES, "held-out E2E", "phrasing E2E", "stress E2E", "violations", "malformed"],
                          [[r["name"], *[_pct(r[x]) for x in ROLES], _pct(r["heldout_pass"]),
                            _pct(r["heldout_phrasing_pass"]), _pct(r["stress_pass"]), _pct(r["violation_rate"]),
                            _pct(r["malformed_rate"])] for r in rows]))
    incomplete = sorted(f"{p.parent.parent.name} {p.parent.name}" for p in paths.eval.glob("*/*/simulate.yaml")
                        if not (p.parent.parent / "summary.json").is_file())
    if incomplete:
        s.blocks.append("Evaluation started and not finished (agentdistill run resumes it): "
                        + ", ".join(incomplete) + ".")
    return s


def budget(paths: RunPaths, fig_dir: Path) -> Section:
    curve = _json(paths.eval / "budget_curve.json")
    if curve is None:
        return Section.not_run("Budget curve", "SFT snapshots not evaluated (agentdistill run --curve)")
    from agentdistill.evaluate.plots import plot_budget_curve

    s = Section("Budget curve")
    s.blocks.append(Table(["snapshot", "SFT steps", "records seen", "CPU-minutes", "held-out E2E"],
                          [[p["name"], p["steps"], p["records_seen"], p["cpu_minutes"], _pct(p["heldout_pass"])]
                           for p in curve["points"]]))
    s.blocks.append(Figure(plot_budget_curve(curve["points"], fig_dir / "budget_curve.png"),
                           "Student quality against the SFT budget"))
    return s


def drafters(paths: RunPaths, fig_dir: Path) -> Section:
    found = {p.parent.name: _json(p) for p in sorted(paths.models.glob("drafter-*/drafter.json"))}
    if not found:
        return Section.not_run("Drafter acceptance", f"no drafter trained (agentdistill train drafter {paths.root})")
    s = Section("Drafter acceptance")
    s.blocks.append("Mean generated length (MGL) per drafting step on held-out agent calls, replayed offline at the "
                    "draft length k: recorded = the answers in the traces, student = the student's own outputs.")
    rows = []
    for name, m in found.items():
        rec, own = m["baseline"]["recorded"], m["baseline"]["student"]
        rows.append([name, m["kind"], m["data"], m["k"], rec.get("mean_acceptance_length"),
                     own.get("mean_acceptance_length"),
                     *[(own.get("per_role") or {}).get(r, {}).get("mean_acceptance_length") for r in ROLES]])
    s.blocks.append(Table(["drafter", "kind", "data", "k", "MGL recorded", "MGL student",
                           *[f"{r} (student)" for r in ROLES]], rows))
    s.blocks.append(Figure(figures.acceptance_by_role(found, fig_dir / "drafter_acceptance.png"),
                           "MGL per role and per drafter (data source)"))
    return s


def calibration(paths: RunPaths, fig_dir: Path) -> Section:
    clip = _json(paths.root / "optimize" / "calibration" / "clip_curve.json")
    quant = _json(paths.root / "optimize" / "quantize.json")
    if clip is None and quant is None:
        return Section.not_run("Calibration and W8A8", f"no calibration (agentdistill optimize calibrate "
                               f"{paths.root}, then optimize quantize)")
    s = Section("Calibration and W8A8")
    if clip is not None:
        from agentdistill.optimize.calibrate import plot_clip_curve

        s.blocks.append(Figure(plot_clip_curve(clip, fig_dir / "clip_curve.png"),
                               "Clip rate against calibration length (the paper's Figure 4)"))
    else:
        s.blocks.append("Clip-rate curves: not run (agentdistill optimize calibrate).")
    if isinstance(quant, dict) and quant.get("checkpoints"):
        s.blocks.append(f"W8A8 checkpoints: greedy token agreement with the unquantized student on "
                        f"{quant.get('agreement_calls')} recorded agent calls.")
        s.blocks.append(Table(["checkpoint", "scheme", "activations", "calibration", "token agreement",
                               "calls identical"],
                              [[tag, v.get("scheme"), v.get("activations"), v.get("calibration"),
                                v.get("token_agreement"), v.get("calls_identical")]
                               for tag, v in sorted(quant["checkpoints"].items())]))
    return s


def ladder(paths: RunPaths, fig_dir: Path) -> Section:
    result = _json(paths.root / "bench" / "ladder.json")
    if result is None:
        return Section.not_run("Attribution ladder", f"not measured (agentdistill bench ladder {paths.root})")
    c = str(result["concurrency"])
    s = Section("Attribution ladder")
    s.blocks.append(f"Recorded conversations replayed with their dependencies: {result['conversations']} "
                    f"conversations, {result['max_turns']} user turn(s) each, {c} in flight, outputs capped at "
                    f"{result['max_output_tokens']} tokens, {result['dtype']}; machine: {result['machine'].get('cpus')} "
                    f"CPUs, {_flags(result['machine'])}.")
    rows, ratios = [], result.get("ratios", {})
    for key, rung in result["rungs"].items():
        run = (rung.get("runs") or {}).get(c)
        if run is None:
            rows.append([key, rung["label"], *["-"] * 7, rung.get("skipped", "not run")])
            continue
        r = ratios.get(key, {})
        rows.append([key, rung["label"], run["turn_throughput"], run["p90_turn_latency_ms"] / 1000,
                     run["output_throughput"], rung.get("mean_acceptance_length"), rung.get("prefix_cache_hit_rate"),
                     r.get("qps_vs_1"), r.get("qps_vs_3b"), "; ".join(rung.get("notes") or [])])
    s.blocks.append(Table(["rung", "configuration", "turns/s", "P90 turn s", "tok/s", "MGL", "prefix hits",
                           "x rung 1", "x rung 3b", "notes"], rows))
    best = max((k for k in ratios if k.isdigit() or k == "3b"), key=lambda k: ratios[k].get("qps_vs_1", 0),
               default=None)
    if best is not None:
        for metric, target in QPS_TARGETS.items():
            got = ratios[best].get(metric)
            if got is not None:
                s.blocks.append(f"Optimized (rung {best}) {metric.replace('qps_vs_', 'vs rung ')}: {got:g}x turns/s, "
                                f"target {target:g}x: {'met' if got >= target else 'missed'}.")
    s.blocks.append(Figure(figures.ladder_bars(result, fig_dir / "ladder.png"),
                           "Turns/s and P90 turn latency per rung"))
    if len(result.get("concurrencies", [])) > 1:
        s.blocks.append(Figure(figures.latency_vs_concurrency(result, fig_dir / "ladder_sweep.png"),
                               "P90 turn latency against turns/s as concurrency grows, per rung"))
    return s


def role_latency(paths: RunPaths, fig_dir: Path) -> Section:
    """Per-role latency of the most optimized measured rung, else of `bench mas`."""
    result = _json(paths.root / "bench" / "ladder.json")
    source, per_role = None, None
    if result is not None:
        c = str(result["concurrency"])
        measured = [k for k, r in result["rungs"].items() if (r.get("runs") or {}).get(c) and not k.startswith("s")]
        if measured:
            source = f"ladder rung {measured[-1]} ({result['rungs'][measured[-1]]['label']})"
            per_role = result["rungs"][measured[-1]]["runs"][c]["per_role"]
    mas = _json(paths.root / "bench" / "mas.json")
    if per_role is None and mas is not None and mas.get("runs"):
        c = max(mas["runs"], key=int)
        source, per_role = f"bench mas at concurrency {c}", mas["runs"][c]["per_role"]
    if per_role is None:
        return Section.not_run("Per-role latency profile", f"not measured (agentdistill bench ladder or bench mas "
                               f"{paths.root})")
    s = Section("Per-role latency profile")
    s.blocks.append(f"From {source}.")
    s.blocks.append(Table(["role", "calls", "mean TTFT ms", "mean TPOT ms", "mean E2E ms", "P90 E2E ms"],
                          [[r, v["completed"], v.get("mean_ttft_ms"), v.get("mean_tpot_ms"), v.get("mean_e2el_ms"),
                            v.get("p90_e2el_ms")] for r, v in per_role.items()]))
    s.blocks.append(Figure(figures.role_latency(per_role, fig_dir / "role_latency.png"),
                           "Mean time to first token and decode time per role"))
    return s


def gate(result: dict[str, Any]) -> Section:
    """The gate's verdict and its table, from report/gate.py's promotion_gate."""
    student, teacher = result["student"], result["teacher"]
    s = Section("Promotion gate")
    s.blocks.append(f"Verdict: {result['verdict']}.")
    s.blocks.append(f"{student} - {teacher} pass^k on the same scenarios, {int(100 * result['level'])}% bootstrap "
                    f"interval over scenarios; the student is refused on a suite when the whole interval is below 0.")
    rows = [[suite, row["k"], row["scenarios"], _pct(row["teacher"]), _pct(row["student"]), row["difference"],
             f"[{row['ci'][0]:+.3f}, {row['ci'][1]:+.3f}]", "worse" if row["worse"] else "not worse"]
            for suite, v in result["suites"].items() for row in v["pass^k"]]
    if rows:
        s.blocks.append(Table(["suite", "k", "scenarios", "teacher", "student", "difference", "interval", "result"],
                              rows))
    s.ran = result["promote"] is not None
    return s


def _flags(machine: dict[str, Any]) -> str:
    flags = [k for k in ("amx_bf16", "amx_int8", "avx512_bf16", "avx512f", "avx2") if machine.get(k)]
    return ", ".join(flags) or "no vector flags recorded"


def headline(paths: RunPaths, gate_result: dict[str, Any]) -> Section:
    """The three answers first: what the student costs in quality, whether it may replace the teacher, and
    where the speed-up comes from."""
    student, teacher = gate_result["student"], gate_result["teacher"]
    s = Section("Summary")
    summaries = {n: _json(paths.eval / n / "summary.json") for n in (teacher, student)}
    for name, summ in summaries.items():
        if summ:
            s.blocks.append(f"{name}: held-out E2E pass {_pct((summ.get('heldout') or {}).get('pass_rate'))}, "
                            f"stress {_pct((summ.get('stress') or {}).get('pass_rate'))}.")
        else:
            s.blocks.append(f"{name}: not evaluated.")
    s.blocks.append(f"Promotion gate: {gate_result['verdict']}.")
    ladder_result = _json(paths.root / "bench" / "ladder.json")
    ratios = (ladder_result or {}).get("ratios") or {}
    speed = [k for k in ratios if k.isdigit() or k == "3b"]
    if speed:
        best = max(speed, key=lambda k: ratios[k].get("qps_vs_1", 0))
        s.blocks.append("Speed (turns/s, attribution ladder): optimized student (rung " + best + ") "
                        + ", ".join(f"{ratios[best][m]:g}x {m.replace('qps_vs_', 'rung ')} (target {t:g}x: "
                                    f"{'met' if ratios[best][m] >= t else 'missed'})"
                                    for m, t in QPS_TARGETS.items() if ratios[best].get(m) is not None) + ".")
    else:
        s.blocks.append(f"Speed: not measured (agentdistill bench ladder {paths.root}).")
    return s
